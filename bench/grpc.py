#!/usr/bin/python3
"""gRPC vs REST: the tiny model over both transports of one server, side by side.

    /usr/bin/python3 bench/grpc.py [--quick] [--runs N] [--duration S] [--threads N]

One `orrery serve --threads N` (default 1) pinned to CPU 0 (`--server-cpu`), on its own data dir
and free loopback ports, serves `linear16-native` (16 FP32 in, 16 out: the native in-process
plugin of bench/native_linear16.cc, built as build/bench/liborrery-bench-linear16.so, with fixed
random weights; the leanest backend, so the rows measure the transports). Three loads, each with
32 requests in flight (`--connections`), from a client pinned to CPU 1 (`--client-cpu`):

  rest         wrk -t1 -c32: POST /v2/models/bench/linear16-native/infer, JSON [1, 16]
  grpc unary   orrery-bench-grpc (bench/grpc_load.cc): ModelInfer, 32 calls in flight on one
               channel, the tensor as raw contents
  grpc stream  orrery-bench-grpc --stream: ModelStreamInfer, 32 requests in flight over 4 streams

Every answer is checked once against the model (W x + b) before the loads. Runs are interleaved
(the order rotates), `--runs` of each (3; 1 with --quick), `--duration` seconds (10; 3 with
--quick) after a warm-up; medians of req/s, p50, p99 and the server's CPU per request.

Bars (issue 13): grpc unary req/s >= 0.8 x rest req/s; grpc stream req/s >= 1.2 x grpc unary.
Prints a table with PASS/FAIL and writes bench/out/grpc-<UTC timestamp>.json; exit status 1 when
a check failed (a wrong answer, errors under load, a failed start).
"""
import argparse
import datetime
import json
import random
import re
import shutil
import signal
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving as sv  # noqa: E402  (the serving benchmark's server, wrk and CPU helpers)

REPO = sv.REPO
MODEL = sv.NATIVE
BARS = {"grpc_vs_rest": 0.8, "stream_vs_unary": 1.2}


def make_model(tmp, plugin):
    """The linear16-native package and the expected answer for sv.X16."""
    rng = random.Random(13)
    w = [rng.uniform(-0.25, 0.25) for _ in range(256)]
    b = [rng.uniform(-0.1, 0.1) for _ in range(16)]
    pkg = tmp / MODEL
    pkg.mkdir()
    (pkg / "weights.bin").write_bytes(struct.pack("<272f", *(w + b)))
    w = struct.unpack("<256f", struct.pack("<256f", *w))  # as the plugin reads them (FP32)
    b = struct.unpack("<16f", struct.pack("<16f", *b))
    shutil.copyfile(plugin, pkg / sv.NATIVE_LIB)
    (pkg / "orrery.yaml").write_text(
        'name: %s\ntitle: "Linear 16x16, native in-process plugin (benchmark)"\n'
        'creators: [{name: "Orrery bench"}]\nyear: 2026\nbackend: native\n'
        'files: ["%s", "weights.bin"]\nconfig: {library: "%s", weights: "weights.bin"}\n'
        "signature: {inputs: [{name: x, datatype: FP32, shape: [-1, 16]}], "
        "outputs: [{name: y, datatype: FP32, shape: [-1, 16]}]}\n" % (MODEL, sv.NATIVE_LIB, sv.NATIVE_LIB))
    expected = [sum(w[o * 16 + i] * sv.X16[i] for i in range(16)) + b[o] for o in range(16)]
    return pkg, expected


def run_grpc(load, server, args, stream):
    cmd = [load, "--target", "127.0.0.1:%d" % server.grpc_port, "--token", server.reader,
           "--model", "%s/%s" % (sv.TENANT, MODEL), "--concurrency", args.connections,
           "--duration", args.duration, "--warmup", args.warmup, "--channels", args.channels]
    if stream:
        cmd += ["--stream", "--streams", args.streams]
    meter = sv.CpuMeter([server.proc.pid])
    r = sv.run_cmd(sv.pinned(args.client_cpu, cmd), timeout=args.duration + args.warmup + 60)
    server_cpu = meter.read_s()  # the warm-up's too: scaled to the measured window below
    try:
        res = json.loads(r.stdout)
    except ValueError:
        return {"error": "orrery-bench-grpc rc=%d: %s" % (r.returncode, (r.stderr or r.stdout)[-500:])}
    total_s = args.duration + args.warmup
    if res.get("requests"):
        # CPU over the whole run (warm-up included) per request answered at the measured rate.
        res["server_cpu_us_per_req"] = round(server_cpu * 1e6 / (res["req_per_s"] * total_s), 2)
    if r.returncode != 0 or res.get("errors"):
        res["error"] = "rc=%d, %s errors: %s" % (r.returncode, res.get("errors"), r.stderr[-300:])
    return res


def run_rest(target, args):
    r = sv.run_wrk(target, args.connections, args.duration, args.client_cpu)
    if r.get("non_2xx"):
        r["error"] = "%d non-2xx answers" % r["non_2xx"]
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 run of 3 s per load")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--duration", type=int)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--connections", type=int, default=32, help="requests in flight")
    ap.add_argument("--streams", type=int, default=4, help="streams of the stream load")
    ap.add_argument("--channels", type=int, default=1,
                    help="gRPC channels (connections) the calls and streams spread over")
    ap.add_argument("--threads", type=int, default=1, help="orrery serve --threads")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--orrery", type=Path, default=REPO / "build" / "orrery")
    ap.add_argument("--bench-dir", type=Path, default=REPO / "build" / "bench",
                    help="where orrery-bench-grpc and %s are" % sv.NATIVE_LIB)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    load = args.bench_dir / "orrery-bench-grpc"
    plugin = args.bench_dir / sv.NATIVE_LIB
    for path in (args.orrery, load, plugin):
        if not path.exists():
            sys.exit("no %s: build it (ninja -C build orrery orrery-bench-grpc orrery-bench-linear16)" % path)
    if not shutil.which("wrk"):
        sys.exit("wrk not found (scripts/install-deps.sh --bench)")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    tmp = Path(tempfile.mkdtemp(prefix="orrery-grpc-bench-"))
    procs = sv.Procs()
    checks = []
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    res = {"benchmark": "grpc", "bars": BARS,
           "machine": sv.machine_facts({"orrery_binary": args.orrery, "load_generator": load}),
           "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    t0 = time.perf_counter()
    try:
        pkg, expected = make_model(tmp, plugin)
        server = sv.Orrery(procs, args.orrery, tmp, args.threads, args.server_cpu,
                           ["--trusted-native", "%s/%s" % (sv.TENANT, MODEL), "--grpc-port", "0"])
        server.grpc_port = int(re.search(r"gRPC listening on 127\.0\.0\.1:(\d+)",
                                         server.log_path.read_text()).group(1))
        server.publish_and_load(MODEL, pkg)
        body = sv.v2_body("x", sv.X16, [1, 16])
        sv.check_v2(server, MODEL, body, "y", expected)
        r = sv.run_cmd([load, "--target", "127.0.0.1:%d" % server.grpc_port, "--token", server.reader,
                        "--model", "%s/%s" % (sv.TENANT, MODEL), "--check"], timeout=60)
        got = json.loads(r.stdout)["output"] if r.returncode == 0 else None
        if got is None or not sv.close_to(got, expected):
            raise RuntimeError("gRPC answer %s, expected %s (%s)" % (got, expected, r.stderr[-300:]))
        print("orrery: pid %d, http %d, grpc %d; answers checked over both" %
              (server.proc.pid, server.port, server.grpc_port), flush=True)
        rest = sv.Target("rest", "REST /infer (wrk)", server.port,
                         "/v2/models/%s/%s/infer" % (sv.TENANT, MODEL), tmp, [server.proc.pid],
                         body=body, headers={"Content-Type": "application/json",
                                             "Authorization": "Bearer " + server.reader})
        loads = {"rest": lambda: run_rest(rest, args),
                 "grpc unary": lambda: run_grpc(load, server, args, stream=False),
                 "grpc stream": lambda: run_grpc(load, server, args, stream=True)}
        sv.run_wrk(rest, args.connections, args.warmup, args.client_cpu, record=False)
        runs = {key: [] for key in loads}
        keys = list(loads)
        for rep in range(args.runs):
            for key in keys[rep % 3:] + keys[:rep % 3]:
                r = loads[key]()
                r["rep"] = rep
                runs[key].append(r)
                if r.get("error"):
                    checks.append("%s rep %d: %s" % (key, rep, r["error"]))
                print("  %-12s rep %d  %9.1f req/s  p50 %7.1f us  p99 %7.1f us  cpu %6.1f us/req%s" % (
                    key, rep, r.get("req_per_s") or 0, r.get("p50_us") or 0, r.get("p99_us") or 0,
                    r.get("server_cpu_us_per_req") or 0, "  ERROR" if r.get("error") else ""), flush=True)
        medians = {}
        for key, entries in runs.items():
            ok = [e for e in entries if not e.get("error")]
            medians[key] = {f: sv.median([e[f] for e in ok if e.get(f) is not None]) if ok else None
                            for f in ("req_per_s", "p50_us", "p99_us", "server_cpu_us_per_req")}
        res["runs"], res["medians"] = runs, medians
        rest_rps, unary_rps, stream_rps = (medians[k]["req_per_s"] for k in keys)
        res["ratios"] = {
            "grpc_vs_rest": round(unary_rps / rest_rps, 3) if rest_rps and unary_rps else None,
            "stream_vs_unary": round(stream_rps / unary_rps, 3) if unary_rps and stream_rps else None}
    except Exception as e:
        checks.append("aborted: %r" % e)
    finally:
        procs.stop_all()
        res["checks_failed"] = checks
        res["elapsed_s"] = round(time.perf_counter() - t0, 1)
        out = sv.write_results("grpc", stamp, res)
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if "medians" in res:
        print("\n| load | req/s | p50 us | p99 us | server CPU us/req |\n|---|---|---|---|---|")
        for key, m in res["medians"].items():
            print("| %s | %s | %s | %s | %s |" % (key, sv.fmt(m["req_per_s"]), sv.fmt(m["p50_us"]),
                                                 sv.fmt(m["p99_us"]), sv.fmt(m["server_cpu_us_per_req"])))
        print("\n| bar | measured | target | |\n|---|---|---|---|")
        for bar, target in BARS.items():
            got = res["ratios"][bar]
            print("| %s | %s | >= %s | %s |" % (bar, sv.fmt(got, "%.3f"), target,
                                               "PASS" if got is not None and got >= target else "FAIL"))
    print("\nchecks: %s" % ("all passed" if not checks else "%d FAILED" % len(checks)))
    for c in checks:
        print("  - " + c[:300])
    print("results: %s  (%.0f s)" % (out, res["elapsed_s"]))
    return 1 if checks else 0


if __name__ == "__main__":
    sys.exit(main())
