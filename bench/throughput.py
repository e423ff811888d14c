#!/usr/bin/python3
"""Orrery throughput benchmark: dynamic batching, the response cache, pipelines (stdlib only).

    /usr/bin/python3 bench/throughput.py [--quick] [--bench batching|cache ...]

Builds nothing; reuses bench/serving.py's process, wrk and nginx helpers (same pinning: servers
on CPU 0, wrk on CPU 1; every process stopped by PID at the end). Makes its models at run time in
a temp dir (Debian's torch and scikit-learn, in a subprocess). Side by side in one run, medians of
--runs interleaved repetitions:

  1. batching: a compute-heavy digits classifier, `digits-mlp-wide` (an MLP 64 -> 2048 -> 2048
     -> 2048 -> 10 with ReLU, trained here on scikit-learn's digits for a few epochs, TorchScript),
     published twice: with `batching: {max_batch_size: 32, max_queue_delay_us: 1000}` (the
     delay covers reading the next 32 requests on the one server core) and without
     (`digits-mlp-wide-nobatch`, the same file). The examples' digits MLP (64 -> 128 -> 10) is too
     light for the bars' purpose: one row costs ~0.7 us of compute at batch 32, far less than one
     HTTP request, so no server can reach 0.7 x its raw rows/s with one row per request (measured
     in bench/serving.py part 4). Rows: wrk -t1 -c32 and -c1 on each; req/s, p50, mean batch size
     (from orrery_inference_batch_size in /metrics). Raw backend: orrery-bench-backend --batch 32
     (Orrery's TorchScript backend, one Infer() of [32, 64], no server), pinned to the server CPU.
     Bars: batching req/s >= 3 x without (c32); >= 0.7 x the raw backend's rows/s at batch 32;
     p50 at c1 with batching <= p50 without + max_queue_delay_us + 10% of p50 without.
  2. cache: `slow5ms`, a Python servable that sleeps 5 ms and returns 2x (16 FP32 in, 16 out),
     published with `cache: true`; wrk sends one request over and over, so every request after
     the first is a hit (checked: the response parameter cache_hit, and the hit counter in
     /metrics). Beside it, the tiny-model row of bench/serving.py part 1 (`linear16-native`, the
     native Linear(16,16) run in the server process) at the same load. Bars: hit p50 at c1 <=
     0.3 ms over HTTP; hit req/s at c32 >= 0.8 x the tiny model's req/s.
  3. pipeline: `chain3`, a pipeline of three steps, each `linear16-native` (y = W x + b run in
     the server process), x -> a -> b -> c -> y; and the example `digits-pipeline` (bitmap ->
     digits-bitmap-python -> digits-mlp-torchscript -> digits-label-python), published with its
     steps. wrk -t1 -c1 on each pipeline and on each of its steps with the input that step gets
     inside the pipeline (found by calling the steps one by one first; their answers checked
     against the pipeline's). nginx answers chain3's request with chain3's exact answer (the
     transport floor), and orrery-bench-backend --trusted times linear16-native in process.
     Bars: each pipeline's p50 <= the sum of its steps' p50s (a client calling them one by one
     over HTTP); chain3's added overhead per step, (p50 - nginx p50 - 3 x the in-process call) / 3,
     <= 30 us (the whole request's server-side cost charged to its three steps).

Prints the bars with PASS/FAIL and writes bench/out/throughput-<UTC timestamp>.json.
Exit status 1 when a check failed (a wrong answer, a non-2xx answer under load, a failed start).
"""
import argparse
import datetime
import json
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import serving as sv  # bench/serving.py: processes, wrk, nginx, Orrery, Client, medians

REPO, PY, TENANT = sv.REPO, sv.PY, sv.TENANT
WIDE, WIDE_NOBATCH = "digits-mlp-wide", "digits-mlp-wide-nobatch"
WIDE_BATCHING = {"max_batch_size": 32, "max_queue_delay_us": 1000}  # ~32 requests read meanwhile
WIDE_WIDTH = 2048  # hidden width: ~0.5 ms of compute per row at batch 32 on one core here
SLOW = "slow5ms"
CHAIN = "chain3"
EXAMPLE_STEPS = ("digits-bitmap-python", "digits-mlp-torchscript", "digits-label-python")
EXAMPLE_PIPELINE = "digits-pipeline"

BARS = {
    "batching_speedup": 3.0,     # req/s at c32: batching >= 3 x without
    "batching_vs_backend": 0.7,  # batching req/s >= 0.7 x raw backend rows/s at max_batch_size
    "batching_p50_slack": 0.10,  # p50 at c1: batching <= without + max_queue_delay_us + 10% of without
    "cache_hit_p50_us": 300.0,   # a cache hit's p50 at c1, end to end over HTTP
    "cache_vs_tiny": 0.8,        # hit req/s at c32 >= 0.8 x the tiny model (linear16-native)
    "pipeline_step_overhead_us": 30.0,  # chain3: added overhead per step vs the steps in process
}

# Trains the wide MLP on scikit-learn's digits (a subprocess with Debian's torch); prints the
# expected answer for one test row and the held-out accuracy.
WIDE_SCRIPT = r"""
import json, os, sys
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
out_dir = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)
x, y = load_digits(return_X_y=True)
xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0)
xtr, xte = torch.tensor(xtr, dtype=torch.float32), torch.tensor(xte, dtype=torch.float32)
ytr, yte = torch.tensor(ytr), torch.tensor(yte)
width = int(sys.argv[2])
model = torch.nn.Sequential(
    torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(),
    torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(5):
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), 64):
        idx = perm[i:i + 64]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xtr[idx] / 16.0), ytr[idx])
        loss.backward()
        opt.step()


# Pixel counts 0..16 in, logits out: the 1/16 scaling of training folded into the first layer.
with torch.no_grad():
    model[0].weight.mul_(0.0625)
scripted = torch.jit.script(model.eval())
os.makedirs(out_dir, exist_ok=True)
scripted.save(os.path.join(out_dir, "model.pt"))
with torch.no_grad():
    accuracy = (scripted(xte).argmax(1) == yte).float().mean().item()
    row = xte[0:1]
    logits = scripted(row)
print(json.dumps({"torch": torch.__version__, "accuracy": accuracy, "width": width,
                  "input": row[0].tolist(), "output": logits[0].tolist()}))
"""

SLOW_PY = '''"""slow5ms: sleeps 5 ms, then returns 2 x its input (benchmark servable for the cache)."""
import time

import numpy as np


def predict(inputs):
    time.sleep(0.005)
    return {"y": np.asarray(inputs["x"], dtype=np.float32) * 2}
'''


def manifest(name, title, backend, files, inputs, outputs, extra=""):
    sig = "signature: {inputs: [%s], outputs: [%s]}\n" % (inputs, outputs)
    return ('name: %s\ntitle: "%s"\ncreators: [{name: "Orrery bench"}]\nyear: 2026\nbackend: %s\n'
            'files: %s\n%s%s' % (name, title, backend, json.dumps(files), sig, extra))


def write_packages(ctx):
    """Every package this script publishes, in ctx.tmp; the expected answers in ctx.expected."""
    tmp, a = ctx.tmp, ctx.args
    pkgs = {}
    x16 = "{name: x, datatype: FP32, shape: [-1, 16]}"
    y16 = "{name: y, datatype: FP32, shape: [-1, 16]}"
    if "batching" in a.bench:
        r = sv.run_cmd([PY, "-c", WIDE_SCRIPT, tmp / WIDE, str(WIDE_WIDTH)], timeout=900)
        if r.returncode != 0:
            raise RuntimeError("training the wide MLP: " + r.stderr[-1500:])
        ctx.expected["wide"] = json.loads(r.stdout)
        print("  %s: held-out accuracy %.4f" % (WIDE, ctx.expected["wide"]["accuracy"]), flush=True)
        x = "{name: x, datatype: FP32, shape: [-1, 64]}"
        y = "{name: logits, datatype: FP32, shape: [-1, 10]}"
        batching = "batching: %s\n" % json.dumps(WIDE_BATCHING).replace('"', "")
        (tmp / WIDE / "orrery.yaml").write_text(manifest(
            WIDE, "Digits MLP 3x%d (benchmark)" % WIDE_WIDTH, "torchscript", ["model.pt"], x, y, batching))
        (tmp / WIDE_NOBATCH).mkdir()
        shutil.copyfile(tmp / WIDE / "model.pt", tmp / WIDE_NOBATCH / "model.pt")
        (tmp / WIDE_NOBATCH / "orrery.yaml").write_text(manifest(
            WIDE_NOBATCH, "Digits MLP 3x%d without batching (benchmark)" % WIDE_WIDTH, "torchscript",
            ["model.pt"], x, y))
        pkgs[WIDE] = pkgs[WIDE_NOBATCH] = None
    if "cache" in a.bench or "pipeline" in a.bench:
        # linear16 and its native twin's weights, exactly as bench/serving.py makes them.
        r = sv.run_cmd([PY, "-c", sv.PREP_SCRIPT, tmp, REPO / "examples" / sv.DIGITS,
                        json.dumps(sv.X16), sv.NOBATCH], timeout=300)
        if r.returncode != 0:
            raise RuntimeError("making linear16: " + r.stderr[-1500:])
        ctx.expected["linear16"] = json.loads(r.stdout)["linear16"]
        if not a.native_plugin.is_file():
            raise RuntimeError("no plugin %s (build target orrery-bench-linear16)" % a.native_plugin)
        nat = tmp / sv.NATIVE
        shutil.copyfile(a.native_plugin, nat / sv.NATIVE_LIB)
        (nat / "orrery.yaml").write_text(manifest(
            sv.NATIVE, "Linear 16x16, native in-process plugin (benchmark)", "native",
            [sv.NATIVE_LIB, "weights.bin"], x16, y16,
            'config: {library: "%s", weights: "weights.bin"}\n' % sv.NATIVE_LIB))
        pkgs[sv.NATIVE] = None
    if "pipeline" in a.bench:
        steps = [{"name": name, "servable": "%s/%s" % (TENANT, sv.NATIVE), "version": 1, "inputs": {"x": ref}}
                 for name, ref in (("a", "$inputs.x"), ("b", "a.y"), ("c", "b.y"))]
        (tmp / CHAIN).mkdir()
        (tmp / CHAIN / "orrery.yaml").write_text(manifest(
            CHAIN, "linear16-native three times (benchmark pipeline)", "pipeline", [], x16, y16,
            "pipeline: %s\n" % json.dumps({"steps": steps, "outputs": {"y": "c.y"}})))
        for name in EXAMPLE_STEPS + (EXAMPLE_PIPELINE,):
            shutil.copytree(REPO / "examples" / name, tmp / name)
            pkgs[name] = None
        pkgs[CHAIN] = None
    if "cache" in a.bench:
        (tmp / SLOW).mkdir()
        (tmp / SLOW / "slow.py").write_text(SLOW_PY)
        (tmp / SLOW / "orrery.yaml").write_text(manifest(
            SLOW, "Sleeps 5 ms (benchmark)", "python", ["slow.py"], x16, y16,
            'config: {entrypoint: "slow:predict"}\ncache: true\n'))
        pkgs[SLOW] = None
    return list(pkgs)


def infer(server, name, body):
    """(status, parsed JSON) of one v2 infer as the bench tenant's reader."""
    c = sv.Client(server.port, server.reader)
    status, data, _ = c.request("POST", "/v2/models/%s/%s/infer" % (TENANT, name), body.encode(),
                                {"Content-Type": "application/json"})
    try:
        return status, json.loads(data)
    except ValueError:
        return status, {"raw": data[:300].decode("latin-1")}


def metric_sum(server, pattern):
    """Sum of the /metrics samples whose line matches `pattern` (a regex on the whole line)."""
    status, data, _ = sv.Client(server.port, server.admin).request("GET", "/metrics")
    if status != 200:
        return None
    total = 0.0
    for line in data.decode().splitlines():
        if re.match(pattern, line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def target(ctx, key, label, name, body, batches=None):
    s = ctx.server
    return sv.Target(key, label, s.port, "/v2/models/%s/%s/infer" % (TENANT, name), ctx.tmp,
                     [s.proc.pid], body=body, headers={"Content-Type": "application/json",
                                                       "Authorization": "Bearer " + s.reader},
                     batches=batches)


# ------------------------------------------------------------------ batching
def raw_backend(ctx, pkg, batch, want):
    """orrery-bench-backend --batch N: the raw backend's rows/s at N rows, no server."""
    a = ctx.args
    runs = []
    for rep in range(a.runs):
        r = sv.run_cmd(sv.pinned(a.server_cpu, [a.backend_direct, pkg, "--batch", batch, "--calls", a.raw_calls,
                                                "--warmup", max(10, a.raw_calls // 10),
                                                "--data", ",".join(repr(v) for v in want["input"])]),
                       timeout=900)
        if r.returncode != 0:
            ctx.checks.append("raw backend: " + r.stderr[-300:])
            return {"error": r.stderr[-500:]}
        out = json.loads(r.stdout)
        got = sv.flatten(out.pop("outputs")[0]["data"])
        if not sv.close_to(got, want["output"] * batch, 1e-3):
            ctx.checks.append("raw backend: wrong answer %s" % got[:4])
            return {"error": "wrong answer"}
        runs.append(out)
        print("  raw backend --batch %d rep %d: median %.1f us per call, %.0f rows/s"
              % (batch, rep, out["median_us"], out["rows_per_second"]), flush=True)
    return {"runs": runs, "batch": batch, "median_us": sv.median([r["median_us"] for r in runs]),
            "rows_per_second": sv.median([r["rows_per_second"] for r in runs]),
            "how": "orrery-bench-backend %s --batch %d --calls %d: FindBackend(\"torchscript\")->Load()->"
                   "Infer() of [%d, 64], pinned to CPU %s" % (WIDE, batch, a.raw_calls, batch, a.server_cpu)}


def bench_batching(ctx):
    a, want = ctx.args, ctx.expected["wide"]
    print("\n1. batching: %s %s vs %s" % (WIDE, WIDE_BATCHING, WIDE_NOBATCH), flush=True)
    raw = raw_backend(ctx, ctx.tmp / WIDE, WIDE_BATCHING["max_batch_size"], want)
    body = sv.v2_body("x", want["input"], [1, 64])
    targets = [target(ctx, "batching", "%s (batching)" % WIDE, WIDE, body,
                      lambda: sv.batch_metrics(ctx.server, WIDE)),
               target(ctx, "nobatch", "%s (no batching)" % WIDE_NOBATCH, WIDE_NOBATCH, body)]
    thr = sv.measure(targets, a.connections, a.duration, a.runs, a.client_cpu, a.warmup, ctx.checks,
                     "batching c%d" % a.connections)
    one = sv.measure(targets, 1, a.latency_duration, a.runs, a.client_cpu, a.warmup, ctx.checks,
                     "batching c1")
    rb, rn = thr["batching"]["median_req_per_s"], thr["nobatch"]["median_req_per_s"]
    pb, pn = one["batching"]["median_p50_us"], one["nobatch"]["median_p50_us"]
    rows_s = raw.get("rows_per_second")
    return {"model": WIDE, "accuracy": want["accuracy"], "batching": WIDE_BATCHING, "raw": raw,
            "throughput": thr, "one_connection": one,
            "speedup": rb / rn if rb and rn else None,
            "vs_backend": rb / rows_s if rb and rows_s else None,
            "p50_c1_batching_us": pb, "p50_c1_nobatch_us": pn,
            "p50_c1_limit_us": (pn * (1 + BARS["batching_p50_slack"]) + WIDE_BATCHING["max_queue_delay_us"]
                                if pn else None)}


# --------------------------------------------------------------------- cache
def bench_cache(ctx):
    a, s = ctx.args, ctx.server
    print("\n2. cache: %s (cache: true) hits vs %s" % (SLOW, sv.NATIVE), flush=True)
    body = sv.v2_body("x", sv.X16, [1, 16])
    answers = []
    for _ in range(2):
        t0 = time.perf_counter()
        status, out = infer(s, SLOW, body)
        answers.append((status, out, (time.perf_counter() - t0) * 1e6))
    (s1, o1, miss_us), (s2, o2, hit_us) = answers
    hits = [o.get("parameters", {}).get("cache_hit") for o in (o1, o2)]
    ok = s1 == s2 == 200 and hits == [False, True]
    if ok:
        got = sv.flatten(o2["outputs"][0]["data"])
        ok = got == sv.flatten(o1["outputs"][0]["data"]) and sv.close_to(got, [2 * v for v in sv.X16])
    if not ok:
        ctx.checks.append("cache: first two answers %s / %s, cache_hit %s (want a miss then a hit)"
                          % (s1, s2, hits))
        return {"error": "the cache did not answer as expected"}
    print("  check: miss %.0f us, hit %.0f us (one request each, cold)" % (miss_us, hit_us), flush=True)
    hit_pattern = r'orrery_cache_hits_total\{[^}]*servable="%s/%s"[^}]*\} ' % (TENANT, SLOW)
    before = metric_sum(s, hit_pattern)
    targets = [target(ctx, "cache-hit", "%s, every request a hit" % SLOW, SLOW, body),
               target(ctx, "tiny", "%s (in process), the tiny-model row" % sv.NATIVE, sv.NATIVE, body)]
    thr = sv.measure(targets, a.connections, a.duration, a.runs, a.client_cpu, a.warmup, ctx.checks,
                     "cache c%d" % a.connections)
    one = sv.measure(targets, 1, a.latency_duration, a.runs, a.client_cpu, a.warmup, ctx.checks, "cache c1")
    after = metric_sum(s, hit_pattern)
    served = sum(r.get("requests") or 0 for part in (thr, one) for r in part["cache-hit"]["runs"])
    if before is None or after is None or after - before < served:
        ctx.checks.append("cache: %s hits counted for %d recorded requests" % (
            None if after is None or before is None else after - before, served))
    rh, rt = thr["cache-hit"]["median_req_per_s"], thr["tiny"]["median_req_per_s"]
    return {"servable": SLOW, "miss_us_once": miss_us, "throughput": thr, "one_connection": one,
            "hits_counted": None if after is None or before is None else after - before,
            "hit_p50_c1_us": one["cache-hit"]["median_p50_us"], "tiny_p50_c1_us": one["tiny"]["median_p50_us"],
            "hit_vs_tiny": rh / rt if rh and rt else None}


# ------------------------------------------------------------------ pipeline
def chain_steps(ctx, first_body, calls):
    """Calls each (name, input name, output name) in `calls` over HTTP, one after the other,
    each with the previous answer's output: the request bodies each step got, and the last
    answer's outputs by name."""
    bodies, body, outputs = [], first_body, None
    for name, in_name, out_name in calls:
        bodies.append(body)
        status, out = infer(ctx.server, name, body)
        if status != 200:
            raise RuntimeError("step %s: HTTP %d %s" % (name, status, str(out)[:300]))
        outputs = {o["name"]: o for o in out["outputs"]}
        o = outputs[out_name]
        body = json.dumps({"inputs": [{"name": in_name, "datatype": o["datatype"], "shape": o["shape"],
                                       "data": o["data"]}]}, separators=(",", ":"))
    return bodies, outputs


def pipeline_targets(ctx, key, pipeline, first_body, calls, outputs_to_check):
    """wrk targets for the pipeline and for each step with its own input; checks that the
    pipeline answers what the steps called one by one answered."""
    bodies, by_step = chain_steps(ctx, first_body, [(n, i, o) for n, i, o, _ in calls])
    status, out = infer(ctx.server, pipeline, first_body)
    if status != 200:
        raise RuntimeError("%s: HTTP %d %s" % (pipeline, status, str(out)[:300]))
    got = {o["name"]: sv.flatten(o["data"]) for o in out["outputs"]}
    last = {name: sv.flatten(o["data"]) for name, o in by_step.items()}
    for pipe_out, step_out in outputs_to_check:
        if not sv.close_to(got[pipe_out], last[step_out], 1e-4):
            raise RuntimeError("%s: output %s differs from the steps called one by one" % (pipeline, pipe_out))
    targets = [target(ctx, key, "%s (pipeline)" % pipeline, pipeline, first_body)]
    for (name, _, _, short), body in zip(calls, bodies):
        targets.append(target(ctx, "%s step %s" % (key, short), "%s alone" % name, name, body))
    return targets, out


def bench_pipeline(ctx):
    a = ctx.args
    print("\n3. pipeline: %s and %s vs their steps one by one" % (CHAIN, EXAMPLE_PIPELINE), flush=True)
    native_body = sv.v2_body("x", sv.X16, [1, 16])
    chain_calls = [(sv.NATIVE, "x", "y", s) for s in "abc"]
    chain_targets, _ = pipeline_targets(ctx, "chain3", CHAIN, native_body, chain_calls, [("y", "y")])
    # The example pipeline's own example input, as the hub stores it.
    c = sv.Client(ctx.server.port, ctx.server.reader)
    manifest_json = c.json("GET", "/api/v1/servables/%s/%s/versions/1" % (TENANT, EXAMPLE_PIPELINE))["manifest"]
    bitmap = manifest_json["examples"][0]["inputs"]["bitmap"]
    example_body = json.dumps({"inputs": [dict(bitmap, name="bitmap")]}, separators=(",", ":"))
    # (servable, the next step's input name, the output it takes, the step's name in the pipeline)
    example_calls = [(EXAMPLE_STEPS[0], "input", "pixels", "counts"),
                     (EXAMPLE_STEPS[1], "logits", "logits", "classify"),
                     (EXAMPLE_STEPS[2], None, "digit", "decide")]
    example_targets, _ = pipeline_targets(ctx, "example", EXAMPLE_PIPELINE, example_body, example_calls,
                                          [("digit", "digit"), ("confidence", "confidence")])
    # nginx: chain3's exact answer bytes for the transport floor.
    status, data, _ = sv.Client(ctx.server.port, ctx.server.reader).request(
        "POST", "/v2/models/%s/%s/infer" % (TENANT, CHAIN), native_body.encode(),
        {"Content-Type": "application/json"})
    floor_body = data.decode()
    nginx_proc, nginx_port = sv.start_nginx(ctx.procs, ctx.tmp, a.server_cpu, {"/" + CHAIN: floor_body})
    sv.check_nginx(nginx_port, "/" + CHAIN, floor_body)
    floor = sv.Target("nginx", "nginx, chain3's answer as a fixed body", nginx_port, "/" + CHAIN, ctx.tmp,
                      [nginx_proc.pid], body=native_body, headers={"Content-Type": "application/json"})
    direct = sv.direct_cpp(ctx, "native", ctx.tmp / sv.NATIVE, trusted=True)
    one = sv.measure(chain_targets + example_targets + [floor], 1, a.latency_duration, a.runs, a.client_cpu,
                     a.warmup, ctx.checks, "pipeline c1")
    p50 = {k: v["median_p50_us"] for k, v in one.items()}

    def steps_sum(prefix):
        vals = [v for k, v in p50.items() if k.startswith(prefix + " step ")]
        return sum(vals) if vals and None not in vals else None
    per_step = None
    if p50.get("chain3") and p50.get("nginx") and direct.get("median_us") is not None:
        per_step = (p50["chain3"] - p50["nginx"] - 3 * direct["median_us"]) / 3
    return {"one_connection": one, "direct_native": direct,
            "chain3_p50_us": p50.get("chain3"), "chain3_steps_sum_us": steps_sum("chain3"),
            "example_p50_us": p50.get("example"), "example_steps_sum_us": steps_sum("example"),
            "nginx_p50_us": p50.get("nginx"), "chain3_overhead_per_step_us": per_step}


# -------------------------------------------------------------------- report
def bars(res):
    rows = []
    b = res.get("batching")
    if b and not b.get("error"):
        rows.append(("1. batching / no batching req/s, c32 (%s)" % WIDE, b["speedup"],
                     BARS["batching_speedup"], b["speedup"] is not None and b["speedup"] >= BARS["batching_speedup"]))
        rows.append(("1. batching req/s / raw backend rows/s at batch 32", b["vs_backend"],
                     BARS["batching_vs_backend"],
                     b["vs_backend"] is not None and b["vs_backend"] >= BARS["batching_vs_backend"]))
        rows.append(("1. p50 c1 batching (us) <= limit %s" % sv.fmt(b["p50_c1_limit_us"]), b["p50_c1_batching_us"],
                     b["p50_c1_limit_us"], None if b["p50_c1_limit_us"] is None or b["p50_c1_batching_us"] is None
                     else b["p50_c1_batching_us"] <= b["p50_c1_limit_us"]))
    c = res.get("cache")
    if c and not c.get("error"):
        p = c["hit_p50_c1_us"]
        rows.append(("2. cache hit p50 at c1 (us)", p, BARS["cache_hit_p50_us"],
                     None if p is None else p <= BARS["cache_hit_p50_us"]))
        rows.append(("2. cache hit req/s / tiny model req/s, c32", c["hit_vs_tiny"], BARS["cache_vs_tiny"],
                     c["hit_vs_tiny"] is not None and c["hit_vs_tiny"] >= BARS["cache_vs_tiny"]))
    pl = res.get("pipeline")
    if pl and not pl.get("error"):
        for key, name in (("example", EXAMPLE_PIPELINE), ("chain3", CHAIN)):
            v, limit = pl[key + "_p50_us"], pl[key + "_steps_sum_us"]
            rows.append(("3. %s p50 <= its steps' p50s summed (c1, us)" % name, v, limit,
                         None if v is None or limit is None else v <= limit))
        v = pl["chain3_overhead_per_step_us"]
        rows.append(("3. chain3 added overhead per step vs in process (us)", v, BARS["pipeline_step_overhead_us"],
                     None if v is None else v <= BARS["pipeline_step_overhead_us"]))
    return rows


def print_report(res):
    for part in ("batching", "cache", "pipeline"):
        r = res.get(part)
        if not r or r.get("error"):
            continue
        print("\n%s (medians of %d runs)" % (part, res["config"]["runs"]))
        for block in ("throughput", "one_connection"):
            for key, e in r.get(block, {}).items():
                print("  %-10s %-22s %10s req/s  p50 %8s us  p99 %8s us%s" % (
                    block[:10], key, sv.fmt(e["median_req_per_s"]), sv.fmt(e["median_p50_us"]),
                    sv.fmt(e["median_p99_us"]),
                    "  mean batch %s" % sv.fmt(e["median_mean_batch_size"], "%.2f")
                    if e.get("median_mean_batch_size") else ""))
        if part == "pipeline" and r["direct_native"].get("median_us") is not None:
            print("  %s in process (orrery-bench-backend --trusted): %.2f us per call" % (
                sv.NATIVE, r["direct_native"]["median_us"]))
        if part == "batching":
            print("  raw backend at batch %s: %s rows/s (median %s us per call)" % (
                r["raw"].get("batch"), sv.fmt(r["raw"].get("rows_per_second")), sv.fmt(r["raw"].get("median_us"))))
    print("\nbars:")
    for label, value, want, ok in res["bars"]:
        verdict = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        print("  %-58s %10s  target %-8s %s" % (label, sv.fmt(value, "%.3f") if isinstance(value, float) and value < 10
                                               else sv.fmt(value), want, verdict))
    if res["checks_failed"]:
        print("\nchecks failed:\n  " + "\n  ".join(res["checks_failed"]))


# ---------------------------------------------------------------------- main
class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 run of 2 s per target")
    ap.add_argument("--bench", action="append", choices=["batching", "cache", "pipeline"],
                    help="parts (default: all)")
    ap.add_argument("--orrery", type=Path, default=REPO / "build-bench" / "orrery")
    ap.add_argument("--backend-direct", type=Path, default=REPO / "build-bench" / "bench" / "orrery-bench-backend")
    ap.add_argument("--native-plugin", type=Path,
                    default=REPO / "build-bench" / "bench" / sv.NATIVE_LIB)
    ap.add_argument("--runs", type=int, help="repetitions per target (default 3, quick 1)")
    ap.add_argument("--duration", type=int, help="seconds per wrk -c32 run (default 10, quick 2)")
    ap.add_argument("--latency-duration", type=int, help="seconds per wrk -c1 run (default 5, quick 2)")
    ap.add_argument("--warmup", type=int, help="seconds of wrk warm-up per target (default 2, quick 1)")
    ap.add_argument("--raw-calls", type=int, default=300, help="timed raw backend calls")
    ap.add_argument("--direct-calls", type=int, default=20000, help="timed in-process calls of linear16-native")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--nice", type=int, default=0, help="niceness of every process started (e.g. -10)")
    ap.add_argument("--tmp-root", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    args.bench = args.bench or ["batching", "cache", "pipeline"]
    q = args.quick
    args.runs = args.runs or (1 if q else 3)
    args.duration = args.duration or (2 if q else 10)
    args.latency_duration = args.latency_duration or (2 if q else 5)
    args.warmup = args.warmup if args.warmup is not None else (1 if q else 2)
    sv.NICE[0] = args.nice
    for path in (args.orrery, args.backend_direct):
        if not path.exists():
            sys.exit("missing %s: build it (ninja -C build-bench orrery orrery-bench-backend "
                     "orrery-bench-linear16)" % path)

    ctx = Ctx()
    ctx.args, ctx.checks, ctx.expected = args, [], {}
    ctx.tmp = Path(tempfile.mkdtemp(prefix="orrery-throughput-", dir=args.tmp_root))
    ctx.procs = sv.Procs()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    res = {"machine": sv.machine_facts({"orrery": args.orrery, "backend_direct": args.backend_direct}), "bars_config": BARS,
           "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    t_start = time.perf_counter()
    try:
        print("making models in %s ..." % ctx.tmp, flush=True)
        names = write_packages(ctx)
        ctx.server = sv.Orrery(ctx.procs, args.orrery, ctx.tmp, 1, args.server_cpu,
                               ["--trusted-native", "%s/%s" % (TENANT, sv.NATIVE)])
        print("orrery --threads 1: pid %d, port %d" % (ctx.server.proc.pid, ctx.server.port), flush=True)
        for name in names:
            print("  %s: loaded in %.2f s" % (name, ctx.server.publish_and_load(name, ctx.tmp / name)), flush=True)
        if "batching" in args.bench:
            want = ctx.expected["wide"]
            for name in (WIDE, WIDE_NOBATCH):
                status, out = infer(ctx.server, name, sv.v2_body("x", want["input"], [1, 64]))
                if status != 200 or not sv.close_to(sv.flatten(out["outputs"][0]["data"]), want["output"], 1e-3):
                    raise RuntimeError("%s: HTTP %d, answer differs from torch's: %s" % (name, status, str(out)[:300]))
            res["batching"] = bench_batching(ctx)
        if "cache" in args.bench or "pipeline" in args.bench:
            status, out = infer(ctx.server, sv.NATIVE, sv.v2_body("x", sv.X16, [1, 16]))
            if status != 200 or not sv.close_to(sv.flatten(out["outputs"][0]["data"]),
                                                ctx.expected["linear16"]["output"]):
                raise RuntimeError("%s: HTTP %d %s" % (sv.NATIVE, status, str(out)[:300]))
        if "cache" in args.bench:
            res["cache"] = bench_cache(ctx)
        if "pipeline" in args.bench:
            res["pipeline"] = bench_pipeline(ctx)
    except KeyboardInterrupt:
        ctx.checks.append("interrupted")
    except Exception as e:
        ctx.checks.append("aborted: %r" % e)
        raise
    finally:
        if getattr(ctx, "server", None):
            res["server_log_tail"] = ctx.server.log_tail()
        ctx.procs.stop_all()
        res["checks_failed"] = ctx.checks
        res["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        res["bars"] = bars(res)
        print_report(res)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = sv.write_results("throughput", stamp, res)
        print("\nwrote %s" % path)
        if args.keep:
            print("kept %s" % ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 1 if ctx.checks else 0


if __name__ == "__main__":
    sys.exit(main())
