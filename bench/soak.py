#!/usr/bin/python3
"""Orrery soak benchmark: the tiny model at about 80% of peak for a long time (stdlib only).

    /usr/bin/python3 bench/soak.py [--duration 600] [--target 0.8]

Starts one `orrery serve` (pinned to CPU 0, its own data dir and a free loopback port) with the
benchmark's Linear(16,16) as a native servable run in process (`--trusted-native`, the plugin
bench/native_linear16.cc built as liborrery-bench-linear16.so, weights made here), and loads it
with wrk pinned to CPU 1:
  1. peak: wrk -c32 for --peak-seconds, after a warm-up;
  2. load at --target x peak: wrk is closed-loop (it cannot pace requests), so the rate is set by
     the number of connections: each count from 1 up is tried for a few seconds and the one whose
     req/s comes closest to the target is kept;
  3. soak: that load for --duration seconds, while every --sample seconds the server's resident
     set (VmRSS), its open descriptors and threads are read from /proc, and an answer is checked
     exactly (y = W x + b) on a connection of its own.
Reports requests, errors (non-2xx answers, socket errors, wrong answers), the achieved rate as a
share of the peak, and the slopes of RSS and descriptors (least squares over the samples after the
first minute, per hour), and writes bench/out/soak-<UTC timestamp>.json. Exit status 1 when there
was an error of any kind.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402  (its process, wrk and result helpers)

REPO = serving.REPO
TENANT = serving.TENANT
NATIVE = serving.NATIVE
NATIVE_LIB = serving.NATIVE_LIB
X16 = serving.X16


def weights():
    """W (16x16, out x in, row-major) then b (16): small exact values."""
    w = [((i * 7 + j * 3) % 11 - 5) / 8.0 for i in range(16) for j in range(16)]
    b = [(i % 5 - 2) / 4.0 for i in range(16)]
    return w, b


def expected_answer():
    w, b = weights()
    return [sum(w[i * 16 + j] * X16[j] for j in range(16)) + b[i] for i in range(16)]


def proc_sample(pid):
    """(rss bytes, open descriptors, threads) of a process."""
    with open("/proc/%d/status" % pid) as f:
        status = f.read()
    rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    return rss, len(os.listdir("/proc/%d/fd" % pid)), threads


def slope_per_hour(points):
    """Least-squares slope of (seconds, value) points, per hour; None for fewer than 3."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return sxy / sxx * 3600 if sxx else None


def errors_of(run):
    return run.get("non_2xx", 0) + sum(run.get("socket_errors", {}).values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=600, help="seconds of soak (default 600)")
    ap.add_argument("--target", type=float, default=0.8, help="share of the peak to hold")
    ap.add_argument("--peak-seconds", type=int, default=10)
    ap.add_argument("--probe-seconds", type=int, default=3, help="per connection count tried")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--threads", type=int, default=1, help="`serve --threads`")
    ap.add_argument("--orrery", type=Path, default=None,
                    help="orrery binary (default build-bench/orrery, else build/orrery)")
    ap.add_argument("--native-plugin", type=Path, default=None,
                    help="%s (default build-bench/bench/, else build/bench/)" % NATIVE_LIB)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    args = ap.parse_args()
    pick = lambda *paths: next((p for p in paths if p.exists()), paths[0])
    args.orrery = (args.orrery or pick(REPO / "build-bench" / "orrery", REPO / "build" / "orrery")).resolve()
    args.native_plugin = (args.native_plugin or pick(REPO / "build-bench" / "bench" / NATIVE_LIB,
                                                     REPO / "build" / "bench" / NATIVE_LIB)).resolve()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit("%s not found (scripts/install-deps.sh --bench)" % tool)
    for path in (args.orrery, args.native_plugin):
        if not path.exists():
            sys.exit("no %s: build it (scripts/build.sh, or ninja -C build-bench)" % path)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    tmp = Path(tempfile.mkdtemp(prefix="orrery-soak-"))
    procs = serving.Procs()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    res = {"benchmark": "soak",
           "machine": serving.machine_facts({"orrery_binary": args.orrery,
                                             "native_plugin": args.native_plugin}),
           "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    failures = []
    try:
        pkg = tmp / NATIVE
        pkg.mkdir()
        shutil.copyfile(args.native_plugin, pkg / NATIVE_LIB)
        w, b = weights()
        (pkg / "weights.bin").write_bytes(struct.pack("<272f", *(w + b)))
        (pkg / "orrery.yaml").write_text(
            'name: %s\ntitle: "Linear 16x16, native in-process plugin (soak)"\n'
            'creators: [{name: "Orrery bench"}]\nyear: 2026\nbackend: native\n'
            'files: ["%s", "weights.bin"]\nconfig: {library: "%s", weights: "weights.bin"}\n'
            "signature: {inputs: [{name: x, datatype: FP32, shape: [-1, 16]}], "
            "outputs: [{name: y, datatype: FP32, shape: [-1, 16]}]}\n" % (NATIVE, NATIVE_LIB, NATIVE_LIB))
        server = serving.Orrery(procs, args.orrery, tmp, args.threads, args.server_cpu,
                                ["--trusted-native", "%s/%s" % (TENANT, NATIVE)])
        server.publish_and_load(NATIVE, pkg)
        body = serving.v2_body("x", X16, [1, 16])
        want = expected_answer()
        path = "/v2/models/%s/%s/infer" % (TENANT, NATIVE)
        checker = serving.Client(server.port, server.reader)

        def check():
            status, data, _ = checker.request("POST", path, body.encode(),
                                              {"Content-Type": "application/json"})
            if status != 200:
                return "HTTP %d %s" % (status, data[:200])
            got = json.loads(data)["outputs"][0]["data"]
            return None if serving.close_to(got, want) else "wrong answer %s" % got[:4]

        first = check()
        if first:
            raise RuntimeError("the servable's answer: " + first)
        target = serving.Target("soak", NATIVE, server.port, path, tmp, [server.proc.pid],
                                body=body, headers={"Content-Type": "application/json",
                                                    "Authorization": "Bearer " + server.reader})
        serving.run_wrk(target, 32, 3, args.client_cpu, record=False)  # warm-up
        peak = serving.run_wrk(target, 32, args.peak_seconds, args.client_cpu)
        res["peak"] = peak
        goal = args.target * peak["req_per_s"]
        print("peak: %.0f req/s (c32); target %.0f req/s" % (peak["req_per_s"], goal), flush=True)
        probes = {}
        for c in range(1, 33):
            probes[c] = serving.run_wrk(target, c, args.probe_seconds, args.client_cpu)["req_per_s"]
            print("  c%d: %.0f req/s" % (c, probes[c]), flush=True)
            if probes[c] >= goal:
                break
        connections = min(probes, key=lambda c: abs(probes[c] - goal))
        res["probes"] = probes
        res["connections"] = connections
        print("soak: c%d for %d s" % (connections, args.duration), flush=True)

        pid = server.proc.pid
        samples, bad_checks = [], []
        wrk = procs.start("wrk-soak", ["wrk", "-t1", "-c%d" % connections, "-d%ds" % args.duration,
                                       "--latency", "-s", target.lua, target.url],
                          tmp / "wrk-soak.log", args.client_cpu)
        t0 = time.monotonic()
        next_sample = t0
        while wrk.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                rss, fds, threads = proc_sample(pid)
                samples.append({"t_s": round(now - t0, 1), "rss_bytes": rss, "fds": fds,
                                "threads": threads})
                problem = check()
                if problem:
                    bad_checks.append({"t_s": round(now - t0, 1), "problem": problem})
                next_sample += args.sample
            time.sleep(0.2)
        soak = serving.parse_wrk((tmp / "wrk-soak.log").read_text())
        soak["connections"] = connections
        soak["share_of_peak"] = round(soak["req_per_s"] / peak["req_per_s"], 3) if soak["req_per_s"] else None
        steady = [s for s in samples if s["t_s"] >= 60] or samples
        soak["rss_mb_start"] = round(samples[0]["rss_bytes"] / 2 ** 20, 1)
        soak["rss_mb_end"] = round(samples[-1]["rss_bytes"] / 2 ** 20, 1)
        soak["rss_mb_per_hour"] = round(slope_per_hour([(s["t_s"], s["rss_bytes"] / 2 ** 20) for s in steady]), 3)
        soak["fds_start"], soak["fds_end"] = samples[0]["fds"], samples[-1]["fds"]
        soak["fds_per_hour"] = round(slope_per_hour([(s["t_s"], s["fds"]) for s in steady]), 3)
        soak["threads_end"] = samples[-1]["threads"]
        soak["errors"] = errors_of(soak)
        soak["bad_checks"] = bad_checks
        res["soak"] = soak
        res["samples"] = samples
        if soak["errors"]:
            failures.append("%d errors under load" % soak["errors"])
        if bad_checks:
            failures.append("%d checks failed, first: %s" % (len(bad_checks), bad_checks[0]))
    except Exception as e:
        failures.append("aborted: %r" % e)
        raise
    finally:
        procs.stop_all()
        res["failures"] = failures
        path = serving.write_results("soak", stamp, res)
        shutil.rmtree(tmp, ignore_errors=True)
    s = res.get("soak", {})
    print("\n%-22s %s" % ("duration", "%d s" % args.duration))
    print("%-22s %s" % ("connections", s.get("connections")))
    print("%-22s %s" % ("requests", s.get("requests")))
    print("%-22s %s req/s (%.0f%% of a %.0f req/s peak)" % (
        "rate", serving.fmt(s.get("req_per_s"), "%.0f"), 100 * (s.get("share_of_peak") or 0),
        res.get("peak", {}).get("req_per_s") or 0))
    print("%-22s %s" % ("p50 / p99", "%s / %s us" % (serving.fmt(s.get("p50_us")), serving.fmt(s.get("p99_us")))))
    print("%-22s %s" % ("errors", s.get("errors")))
    print("%-22s %s" % ("answer checks failed", len(s.get("bad_checks", []))))
    print("%-22s %s -> %s MB, %s MB/hour" % ("server RSS", s.get("rss_mb_start"), s.get("rss_mb_end"),
                                              s.get("rss_mb_per_hour")))
    print("%-22s %s -> %s, %s per hour" % ("descriptors", s.get("fds_start"), s.get("fds_end"),
                                            s.get("fds_per_hour")))
    print("results: %s" % path)
    for f in failures:
        print("FAILED: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
