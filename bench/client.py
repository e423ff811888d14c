#!/usr/bin/python3
"""The Python client and the publish check, measured (stdlib + numpy).

    /usr/bin/python3 bench/client.py [--quick] [--runs N]

Starts its own `orrery serve` (pinned to CPU 0, a temp data dir, a free loopback port) with
the examples published, and runs the client in this process pinned to CPU 1. Side by side in
one run, medians of --runs interleaved rounds:

  1. overhead: `Client.run()` on examples/digits-mlp-torchscript (one row of 64 FP32) against
     the raw HTTP request it makes (the same binary body, the same kept-alive connection,
     http.client, the answer read but not decoded). Overhead = the difference of the per-call
     medians. Bar: <= 150 us.
  2. throughput: calls per second of `Client.run()` against the JSON call a scientist would
     write by hand with urllib (json.dumps of x.tolist(), urlopen, json.loads, np.array), for
     one row and for 32 rows (the servable's max_batch_size). Bar: Client >= 10 x the hand-written call (one row).
  3. publish check: publishing each example servable with its check (load in the sandbox,
     run the examples) against check=false, each to a new name; the added time is the
     difference of the medians. Bar: <= 2 s for every example.

Prints a table and writes bench/out/client-<UTC timestamp>.json; exit status 1 when a bar is
missed or a call failed.
"""
import argparse
import datetime
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("ORRERY_BIN") or os.path.join(ROOT, "build", "orrery")
sys.path.insert(0, os.path.join(ROOT, "python"))
from orrery import Client, tensors  # noqa: E402
from orrery.package import pack_directory  # noqa: E402

MLP = "examples/digits-mlp-torchscript"  # published as hub/digits-mlp-torchscript
CHECKED = ["kepler-python", "digits-logreg-python", "digits-bitmap-python",
           "digits-label-python", "digits-mlp-torchscript", "digits-xgboost", "digits-cnn-onnx",
           "digits-svm-sklearn"]
# The Python environment digits-svm-sklearn names (scripts/example-envs.sh makes it).
SKLEARN_ENV = os.path.join(os.path.dirname(os.path.abspath(BIN)), "python-envs", "sklearn")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp):
    port = free_port()
    data = os.path.join(tmp, "data")
    log = open(os.path.join(tmp, "server.log"), "w")
    proc = subprocess.Popen(["taskset", "-c", "0", BIN, "serve", "--data-dir", data, "--port",
                             str(port), "--threads", "1", "--python-env",
                             "sklearn=" + SKLEARN_ENV], stdout=log, stderr=log,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    token = open(os.path.join(data, "admin.token")).read().strip()
    return proc, "http://127.0.0.1:%d" % port, token


def publish(url, token, directory, name, check):
    tar = pack_directory(directory)
    conn = http.client.HTTPConnection(url.split("//")[1].split(":")[0], int(url.rsplit(":", 1)[1]))
    path = "/api/v1/servables/hub/%s/versions%s" % (name, "" if check else "?check=false")
    conn.request("POST", path, body=tar, headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/x-tar",
        "X-Orrery-Sha256": hashlib.sha256(tar).hexdigest()})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 201:
        raise RuntimeError("publish %s: %d %s" % (name, resp.status, body[:300]))


def renamed(src, tmp, name):
    """A copy of the example package `src` whose manifest names it `name`."""
    dst = os.path.join(tmp, "pkg-" + name)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    path = os.path.join(dst, "orrery.yaml")
    lines = open(path).read().splitlines(True)
    with open(path, "w") as f:
        f.writelines("name: %s\n" % name if line.startswith("name:") else line for line in lines)
    return dst


def per_call(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and runs")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    calls = 300 if args.quick else 2000
    runs = 3 if args.quick else args.runs
    if not os.path.isdir(SKLEARN_ENV):
        sys.exit("no Python environment %s: run scripts/example-envs.sh" % SKLEARN_ENV)
    os.sched_setaffinity(0, {1})
    tmp = tempfile.mkdtemp(prefix="orrery-bench-client-")
    proc, url, token = start_server(tmp)
    failures, out = [], {"when": datetime.datetime.utcnow().isoformat() + "Z"}
    try:
        client = Client(url, token)
        publish(url, token, os.path.join(ROOT, MLP), "digits-mlp-torchscript", True)
        one = np.full((1, 64), 8, np.float32)
        many = np.random.default_rng(0).integers(0, 17, (32, 64)).astype(np.float32)
        name = "hub/digits-mlp-torchscript"
        client.run(name, one)

        # 1. overhead: the same bytes on the same kind of connection.
        body, headers = tensors.encode_request({"input": one})
        headers["Authorization"] = "Bearer " + token
        raw = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]))

        def raw_call():
            raw.request("POST", "/v2/models/hub/digits-mlp-torchscript/infer", body=body,
                        headers=headers)
            raw.getresponse().read()
        client_times, raw_times = [], []
        for _ in range(runs):
            client_times.append(per_call(lambda: client.run(name, one), calls))
            raw_times.append(per_call(raw_call, calls))
        overhead_us = (statistics.median(client_times) - statistics.median(raw_times)) * 1e6
        out["overhead"] = {"client_us": statistics.median(client_times) * 1e6,
                           "raw_us": statistics.median(raw_times) * 1e6,
                           "overhead_us": overhead_us, "bar_us": 150}

        # 2. throughput against the hand-written JSON call.
        def by_hand(x):
            request = urllib.request.Request(
                url + "/v2/models/hub/digits-mlp-torchscript/infer",
                data=json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                             "shape": list(x.shape),
                                             "data": x.reshape(-1).tolist()}]}).encode(),
                headers={"Authorization": "Bearer " + token,
                         "Content-Type": "application/json"})
            with urllib.request.urlopen(request) as resp:
                answer = json.loads(resp.read())
            return np.array(answer["outputs"][0]["data"], np.float32).reshape(
                answer["outputs"][0]["shape"])
        np.testing.assert_allclose(by_hand(many), client.run(name, many), rtol=1e-5)
        out["throughput"] = {}
        for label, x in (("1 row", one), ("32 rows", many)):
            n = max(calls // (8 if x is many else 1), 20)
            fast, slow = [], []
            for _ in range(runs):
                fast.append(1 / per_call(lambda: client.run(name, x), n))
                slow.append(1 / per_call(lambda: by_hand(x), n))
            out["throughput"][label] = {"client_per_s": statistics.median(fast),
                                        "by_hand_per_s": statistics.median(slow),
                                        "ratio": statistics.median(fast) / statistics.median(slow)}

        # 3. the publish check's cost per example.
        out["publish_check"] = {}
        for example in CHECKED:
            with_check, without = [], []
            for run in range(runs):
                for check, times in ((True, with_check), (False, without)):
                    new = "%s-%s-%d" % (example, "c" if check else "n", run)
                    pkg = renamed(os.path.join(ROOT, "examples", example), tmp, new)
                    start = time.perf_counter()
                    publish(url, token, pkg, new, check)
                    times.append(time.perf_counter() - start)
            out["publish_check"][example] = {
                "with_check_s": statistics.median(with_check),
                "without_s": statistics.median(without),
                "added_s": statistics.median(with_check) - statistics.median(without)}
    except Exception as error:  # a failed call is a failed benchmark, reported
        failures.append("%s: %s" % (type(error).__name__, error))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    if "overhead" in out:
        o = out["overhead"]
        ok = o["overhead_us"] <= o["bar_us"]
        rows.append(("Client.run overhead over its raw request", "%.0f us (%.0f vs %.0f)" % (
            o["overhead_us"], o["client_us"], o["raw_us"]), "<= 150 us", ok))
    for label, t in out.get("throughput", {}).items():
        ok = t["ratio"] >= 10 if label == "1 row" else None
        rows.append(("throughput vs urllib JSON, %s" % label, "%.1f x (%.0f vs %.0f calls/s)" % (
            t["ratio"], t["client_per_s"], t["by_hand_per_s"]), ">= 10 x" if ok is not None
            else "(information)", ok))
    for example, p in out.get("publish_check", {}).items():
        ok = p["added_s"] <= 2.0
        rows.append(("publish check adds, %s" % example, "%.2f s (%.2f vs %.2f)" % (
            p["added_s"], p["with_check_s"], p["without_s"]), "<= 2 s", ok))
    for name, value, bar, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        print("%-48s %-34s %-14s %s" % (name, value, bar, verdict))
        if ok is False:
            failures.append("%s: %s (bar %s)" % (name, value, bar))
    for failure in failures:
        print("FAILED: " + failure)
    out["failures"] = failures
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "out", "client-%s.json"
                        % datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ"))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote " + path)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
