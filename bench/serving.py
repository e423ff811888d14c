#!/usr/bin/python3
"""Orrery inference-serving benchmark: overhead, per-request latency, peers, batching (stdlib only).

    /usr/bin/python3 bench/serving.py [--quick] [--bench overhead|latency|peer|batching ...]

Builds nothing. Makes its test models at run time in a temp dir (with Debian's torch, in a
subprocess), starts one `orrery serve` per `--orrery-threads` value (pinned to CPU 0, each on its
own data dir and a free loopback port, with `--trusted-native bench/linear16-native`), nginx with
a fixed body (CPU 0), and for the peer part Flask and FastAPI apps (CPU 0); load comes from wrk
pinned to CPU 1. Every process it starts is stopped by PID at the end, also on an error, Ctrl-C or
SIGTERM. Measures, side by side in one run, medians of --runs repetitions (interleaved, the order
rotating per repetition):

  1. overhead: the tiny model y = W x + b, Linear(16,16) (16 FP32 in, 16 out), through
     POST /v2/.../infer vs nginx answering the same request with a fixed body of Orrery's exact
     answer: wrk -t1 -c32 -d10s; req/s, latency percentiles, ratio. The model is served twice
     with the same weights: `linear16-native`, a native servable run in the server process
     (bench/native_linear16.cc, the plugin built as liborrery-bench-linear16.so, reading
     weights.bin), the leanest backend, so its row measures the server itself; and `linear16`,
     TorchScript (libtorch's per-call cost included). Bar: Orrery (native) >= 0.45 x nginx; the
     TorchScript ratio is printed as information.
  2. latency: one connection (wrk -t1 -c1), p50 of /infer minus nginx's p50 (the transport
     floor, with the same answer body) minus the backend called directly in process: for the
     native and TorchScript linear16, the C++ program orrery-bench-backend
     (bench/backend_direct.cc, Orrery's own backend, median of 20k calls; `--trusted` for the
     native one, in process as in the server); for Python, `identity16` (numpy, returns its
     input) timed with timeit in a Python process. Bars: <= 25 us in-process (the native
     linear16; TorchScript as information), <= 60 us (Python).
  3. peer: examples/digits-mlp-torchscript served by Flask (threaded dev server), FastAPI +
     uvicorn and Orrery, same wrk load. Bars: Orrery >= 20 x the best peer, and a lower p99.
  4. batching: the digits MLP is published twice on every server: `digits-mlp-torchscript` as
     is (its manifest's `batching`, e.g. max_batch_size 32, max_queue_delay_us 200) and
     `digits-mlp-nobatch` (the same files; the manifest without `batching`, renamed, examples
     kept). Rows: wrk -t1 -c32 -d10s and -c1 (the latency duration) on each; req/s, p50, p99,
     cpu us/req and the mean batch size during the run (the deltas of the _sum and _count of
     orrery_inference_batch_size in /metrics, read before and after each run: rows per backend
     call). The raw backend: orrery-bench-backend --batch <max_batch_size> on the package (one
     Infer() of [32, 64], every row the checked example), pinned to the server CPU: rows/s.
     Rows shown for information against issue 4's batching targets (batching req/s >= 3 x no
     batching at c32; >= 0.7 x the raw backend's rows/s at max_batch_size; p50 at c1 <= p50
     without + max_queue_delay_us + 10%): this MLP costs ~0.7 us per row at batch 32, far less
     than an HTTP request, so the bars are measured by bench/throughput.py on a compute-heavy
     model. A binary without --batch is skipped (a failed check: rebuild it).

Prints a table with the bars and PASS/FAIL and writes bench/out/serving-<UTC timestamp>.json.
Exit status 1 when a check failed (a wrong answer, a non-2xx answer under load, a failed start).
"""
import argparse
import datetime
import http.client
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = "/usr/bin/python3"  # Debian's interpreter: torch, numpy, flask, fastapi (shared/recipes.md)
TENANT = "bench"
NATIVE = "linear16-native"                  # the native servable's name (trusted: in process)
NATIVE_LIB = "liborrery-bench-linear16.so"  # its plugin's file name in the package
DIGITS = "digits-mlp-torchscript"           # the example as is (its manifest asks for batching)
NOBATCH = "digits-mlp-nobatch"              # the same files, manifest without `batching`
SHORT = {DIGITS: "digits", NOBATCH: "digits-nobatch"}  # names in Orrery.ready and the rows
X16 = [i / 8.0 - 1.0 for i in range(16)]  # exact in FP32 and short in JSON
TOL = 1e-4

BARS = {
    "overhead_ratio": 0.45,       # Orrery req/s >= 0.45 x nginx, native linear16, 32 connections
    "inproc_overhead_us": 25.0,   # server-side overhead at p50, in-process (native) backend
    "py_overhead_us": 60.0,       # server-side overhead at p50, Python backend
    "peer_ratio": 20.0,           # Orrery req/s >= 20 x max(Flask, FastAPI)
    "batching_speedup": 3.0,      # digits MLP req/s at c32: batching >= 3 x without batching
    "batching_vs_backend": 0.7,   # ... and >= 0.7 x the raw backend's rows/s at max_batch_size
    "batching_p50_slack": 0.10,   # p50 at c1: batching <= without + max_queue_delay_us + 10% of without
}

# Runs in a subprocess with Debian's torch: makes linear16, computes expected answers and writes
# the no-batching digits manifest.
PREP_SCRIPT = r"""
import json, os, struct, sys
import torch, yaml
out_dir, digits_dir, x16, nobatch_name = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
eager = torch.nn.Linear(16, 16).eval()
linear = torch.jit.script(eager)
os.makedirs(os.path.join(out_dir, "linear16"))
linear.save(os.path.join(out_dir, "linear16", "model.pt"))
# The same weights for the native plugin (bench/native_linear16.cc): W (16x16, out x in,
# row-major) then b (16), 272 little-endian float32.
w = eager.weight.detach().to(torch.float32).reshape(-1).tolist()
b = eager.bias.detach().to(torch.float32).tolist()
os.makedirs(os.path.join(out_dir, "linear16-native"))
with open(os.path.join(out_dir, "linear16-native", "weights.bin"), "wb") as f:
    f.write(struct.pack("<272f", *(w + b)))
with torch.no_grad():
    y = linear(torch.tensor([x16], dtype=torch.float32))
manifest = yaml.safe_load(open(os.path.join(digits_dir, "orrery.yaml")))
example = manifest["examples"][0]
dx = example["inputs"]["input"]["data"]
digits = torch.jit.load(os.path.join(digits_dir, "model.pt")).eval()
with torch.no_grad():
    dy = digits(torch.tensor([dx], dtype=torch.float32))
# The digits MLP without batching: the same manifest (examples included), `batching` removed and
# the name changed; the caller copies the other files beside it.
nobatch = {k: v for k, v in manifest.items() if k != "batching"}
nobatch["name"] = nobatch_name
os.makedirs(os.path.join(out_dir, nobatch_name))
with open(os.path.join(out_dir, nobatch_name, "orrery.yaml"), "w") as f:
    yaml.safe_dump(nobatch, f, sort_keys=False, width=100)
print(json.dumps({
    "torch": torch.__version__,
    "linear16": {"input": x16, "output": y[0].tolist()},
    "digits": {"input": dx, "output": dy[0].tolist(),
               "manifest_output": example["outputs"]["logits"]["data"],
               "tolerance": example.get("tolerance", 1e-4), "batching": manifest.get("batching")},
}))
"""

# Runs in a subprocess pinned like the server: the Python servable's function called in process.
PY_DIRECT_SCRIPT = r"""
import importlib.util, json, sys, timeit
import numpy as np
pkg, x16, number, repeat = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
spec = importlib.util.spec_from_file_location("identity", pkg + "/identity.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
x = np.asarray([x16], dtype=np.float32)
out = mod.predict({"x": x})
per_call = sorted(t / number * 1e6 for t in timeit.repeat(lambda: mod.predict({"x": x}),
                                                          number=number, repeat=repeat))
print(json.dumps({"median_us": per_call[len(per_call) // 2], "min_us": per_call[0],
                  "max_us": per_call[-1], "number": number, "repeat": repeat,
                  "output": np.asarray(out["y"]).reshape(-1).tolist()}))
"""

IDENTITY_PY = '''"""identity16: returns its input (benchmark servable)."""
import numpy as np


def predict(inputs):
    return {"y": np.asarray(inputs["x"], dtype=np.float32)}
'''


# ------------------------------------------------------------------- helpers
def median(values):
    values = sorted(values)
    n = len(values)
    if not n:
        return None
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cmd(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


NICE = [0]  # --nice: niceness of every process this script starts (servers, peers, wrk, direct)


def pinned(cpu, args):
    prefix = ["nice", "-n", str(NICE[0])] if NICE[0] else []
    return prefix + (["taskset", "-c", str(cpu)] if cpu is not None else []) + [str(a) for a in args]


def close_to(got, want, tol=TOL):
    return (len(got) == len(want) and
            all(abs(float(g) - float(w)) <= tol * max(1.0, abs(float(w))) for g, w in zip(got, want)))


def flatten(x):
    if isinstance(x, list):
        return [v for item in x for v in flatten(item)]
    return [x]


def proc_stat(pid):
    """(ppid, utime+stime ticks, starttime) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid):
    """PIDs of the live descendants of pid (children, grandchildren, ...)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                parent[int(entry)] = st[0]
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        frontier += kids
    return found


class CpuMeter:
    """CPU seconds of a process tree (the server and, e.g., its Python worker)."""
    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids):
        self.pids = list(pids)
        self.start = self._now()

    def _now(self):
        total = {}
        for root in self.pids:
            for p in [root] + descendants(root):
                st = proc_stat(p)
                if st:
                    total[(p, st[2])] = st[1]
        return total

    def read_s(self):
        end = self._now()
        return sum(v - self.start.get(k, 0) for k, v in end.items()) / self.TICK


def machine_facts(paths):
    def out(args):
        try:
            r = run_cmd(args, cwd=REPO, env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"))
            return r.stdout.rstrip() if r.returncode == 0 else None
        except OSError:
            return None
    cpu = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(), "nproc_usable": len(os.sched_getaffinity(0)), "cpu": cpu,
        "kernel": platform.release(), "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "git_rev": out(["git", "rev-parse", "HEAD"]),
        "git_dirty_files": (out(["git", "status", "--porcelain", "--untracked-files=no"]) or "").splitlines(),
        "wrk": (out(["wrk", "--version"]) or "").splitlines()[:1],
        "nginx": (run_cmd(["nginx", "-v"]).stderr or "").strip(),
    }
    for name, p in paths.items():
        if p and Path(p).exists():
            facts[name] = {"path": str(p), "mtime": datetime.datetime.fromtimestamp(
                Path(p).stat().st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")}
    return facts


# ----------------------------------------------------------------- processes
class Procs:
    """Every process this script starts; stop() ends each by PID (and its descendants)."""

    def __init__(self):
        self.live = []  # (name, Popen, log file)

    def start(self, name, args, log_path, cpu=None, env=None):
        log = open(log_path, "w")
        proc = subprocess.Popen(pinned(cpu, args), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
        self.live.append((name, proc, log))
        return proc

    def stop(self, proc, timeout=15):
        for i, (name, p, log) in enumerate(self.live):
            if p is proc:
                del self.live[i]
                break
        else:
            return
        # Descendants (nginx's worker, Orrery's Python workers) before the parent goes, so
        # they can be found; after it exits, any still alive (same start time) are ended too.
        kids = [(k, proc_stat(k)) for k in descendants(proc.pid)] if proc.poll() is None else []
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        deadline = time.time() + 5
        for k, st in kids:
            while st and time.time() < deadline:
                now = proc_stat(k)
                if not now or now[2] != st[2]:
                    break
                time.sleep(0.05)
            now = proc_stat(k)
            if st and now and now[2] == st[2]:
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        log.close()

    def stop_all(self):
        for _, p, _ in list(reversed(self.live)):
            try:
                self.stop(p)
            except Exception as e:  # keep stopping the others
                print("warning: stopping pid %d: %r" % (p.pid, e), file=sys.stderr)


def wait_port(port, proc, log_path, timeout_s=60):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("exited (%s): %s" % (proc.returncode, Path(log_path).read_text()[-1500:]))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("no listener on port %d after %d s" % (port, timeout_s))


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port, token=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.token = token

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=body, headers=h)
            resp = self.conn.getresponse()
            data = resp.read()
            head = sum(len("%s: %s\r\n" % kv) for kv in resp.getheaders()) + len("HTTP/1.1 200 OK\r\n\r\n")
            return resp.status, data, head
        except (http.client.HTTPException, OSError) as e:
            self.conn.close()
            return 0, repr(e).encode(), 0

    def json(self, method, path, body=None, expect=(200, 201)):
        status, data, _ = self.request(method, path, body)
        if status not in expect:
            raise RuntimeError("%s %s -> %d %s" % (method, path, status, data[:300]))
        return json.loads(data)


class Orrery:
    """`orrery serve --threads N` pinned to a CPU, on its own data dir and a free port."""

    def __init__(self, procs, binary, tmp, threads, cpu, extra_args):
        self.threads = threads
        self.data_dir = tmp / ("data-t%d" % threads)
        self.log_path = tmp / ("orrery-t%d.log" % threads)
        args = [binary, "serve", "--data-dir", self.data_dir, "--port", "0", "--threads", threads]
        self.proc = procs.start("orrery-t%d" % threads, args + list(extra_args), self.log_path, cpu)
        deadline = time.time() + 60
        while True:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log_path.read_text())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("orrery --threads %d did not start: %s"
                                   % (threads, self.log_path.read_text()[-1500:]))
            time.sleep(0.05)
        self.admin = (self.data_dir / "admin.token").read_text().strip()
        admin = Client(self.port, self.admin)
        admin.json("POST", "/api/v1/tenants", {"name": TENANT})
        self.publisher = admin.json("POST", "/api/v1/tokens", {"tenant": TENANT, "role": "publisher"})["token"]
        self.reader = admin.json("POST", "/api/v1/tokens", {"tenant": TENANT, "role": "reader"})["token"]

    def publish_and_load(self, name, pkg_dir):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for f in sorted(pkg_dir.iterdir()):
                tar.add(f, arcname=f.name)
        c = Client(self.port, self.publisher)
        status, body, _ = c.request("POST", "/api/v1/servables/%s/%s/versions" % (TENANT, name),
                                    buf.getvalue(), {"Content-Type": "application/x-tar"})
        if status != 201:
            raise RuntimeError("publish %s: HTTP %d %s" % (name, status, body[:300]))
        t0 = time.perf_counter()
        status, body, _ = c.request("POST", "/v2/repository/models/%s/%s/load" % (TENANT, name))
        if status != 200:
            raise RuntimeError("load %s: HTTP %d %s" % (name, status, body[:300]))
        return time.perf_counter() - t0

    def log_tail(self, n=2000):
        try:
            return self.log_path.read_text()[-n:]
        except OSError:
            return ""


def v2_body(name, x, shape):
    return json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": shape, "data": x}]},
                      separators=(",", ":"))


def check_v2(server, model, body, out_name, want):
    """One inference with the reader token; returns (answer bytes, header bytes) or raises."""
    status, data, head = Client(server.port, server.reader).request(
        "POST", "/v2/models/%s/%s/infer" % (TENANT, model), body.encode(),
        {"Content-Type": "application/json"})
    if status != 200:
        raise RuntimeError("%s infer: HTTP %d %s" % (model, status, data[:300]))
    answer = json.loads(data)
    outs = {o["name"]: o for o in answer["outputs"]}
    got = flatten(outs[out_name]["data"])
    if not close_to(got, want):
        raise RuntimeError("%s infer: wrong answer %s, expected %s" % (model, got[:4], want[:4]))
    return data, head


def batch_metrics(server, servable):
    """(rows, backend calls) so far of the servable's `orrery_inference_batch_size` histogram
    (its _sum and _count in /metrics, summed over versions), or None when /metrics has none."""
    status, data, _ = Client(server.port, server.reader).request("GET", "/metrics")
    if status != 200:
        return None
    label = 'servable="%s/%s"' % (TENANT, servable)
    found = {}
    for line in data.decode(errors="replace").splitlines():
        m = re.match(r"orrery_inference_batch_size_(sum|count)\{([^}]*)\} (\d+)$", line)
        if m and label in m.group(2).split(","):
            found[m.group(1)] = found.get(m.group(1), 0) + int(m.group(3))
    return (found["sum"], found["count"]) if len(found) == 2 else None


# ----------------------------------------------------------------------- wrk
UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def parse_wrk(text):
    def dur(s):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
        return float(m.group(1)) * UNIT_US[m.group(2)] if m else None
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["req_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if m:
        r["avg_us"], r["stdev_us"], r["max_us"] = dur(m.group(1)), dur(m.group(2)), dur(m.group(3))
    for p in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % p, text, re.M)
        r["p%s_us" % p] = dur(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    r["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non_2xx"] = int(m.group(1)) if m else 0
    return r


class Target:
    """One thing wrk loads: a URL, a Lua script (method, body, headers), the server's PIDs; with
    `batches`, a function returning (rows, backend calls) so far (from /metrics), read around each
    recorded run for the mean batch size."""

    def __init__(self, key, label, port, path, tmp, pids, method="POST", body=None, headers=None,
                 batches=None):
        self.key, self.label, self.pids, self.batches = key, label, pids, batches
        self.url = "http://127.0.0.1:%d%s" % (port, path)
        self.lua = tmp / ("wrk-%s.lua" % re.sub(r"[^A-Za-z0-9_.-]", "_", key))
        lines = ['wrk.method = "%s"' % method]
        if body is not None:
            assert "]==]" not in body
            lines.append("wrk.body = [==[%s]==]" % body)
        for k, v in (headers or {}).items():
            lines.append('wrk.headers["%s"] = "%s"' % (k, v))
        self.lua.write_text("\n".join(lines) + "\n")


def run_wrk(target, connections, duration_s, cpu, record=True):
    args = pinned(cpu, ["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration_s, "--latency",
                        "-s", target.lua, target.url])
    # /metrics is read outside the CPU meter's window.
    before = target.batches() if record and target.batches else None
    meter = CpuMeter(target.pids)
    t0 = time.perf_counter()
    r = run_cmd(args, timeout=duration_s + 60)
    wall = time.perf_counter() - t0
    res = parse_wrk(r.stdout)
    if record:
        server_cpu = meter.read_s()
        after = target.batches() if before else None
        if before and after:
            rows, calls = after[0] - before[0], after[1] - before[1]
            res["batch_rows"], res["batch_calls"] = rows, calls
            res["mean_batch_size"] = round(rows / calls, 2) if calls else None
        res["server_cpu_s"] = round(server_cpu, 3)
        if res.get("requests"):
            res["server_cpu_us_per_req"] = round(server_cpu * 1e6 / res["requests"], 2)
        res["wall_s"] = round(wall, 2)
        res["loadavg_1m"] = os.getloadavg()[0]
    if r.returncode != 0 or res["req_per_s"] is None:
        res["error"] = "wrk rc=%d: %s" % (r.returncode, (r.stderr or r.stdout)[-500:])
    return res


def measure(targets, connections, duration_s, runs, cpu, warmup_s, checks, tag):
    """Interleaved repetitions (order rotating); medians per target."""
    out = {t.key: {"label": t.label, "url": t.url, "runs": []} for t in targets}
    for t in targets:
        if warmup_s > 0:
            run_wrk(t, connections, warmup_s, cpu, record=False)
    for rep in range(runs):
        order = targets[rep % len(targets):] + targets[:rep % len(targets)]
        for t in order:
            r = run_wrk(t, connections, duration_s, cpu)
            r["rep"] = rep
            out[t.key]["runs"].append(r)
            bad = r.get("error") or (("%d non-2xx answers" % r["non_2xx"]) if r.get("non_2xx") else None)
            if bad:
                checks.append("%s %s rep %d: %s" % (tag, t.key, rep, bad))
            print("  %-34s rep %d  %9.1f req/s  p50 %8.1f us  p99 %8.1f us%s%s" % (
                t.key, rep, r.get("req_per_s") or 0, r.get("p50_us") or 0, r.get("p99_us") or 0,
                "  mean batch %.2f" % r["mean_batch_size"] if r.get("mean_batch_size") else "",
                "  ERROR " + bad[:100] if bad else ""), flush=True)
    for key, entry in out.items():
        ok = [r for r in entry["runs"] if not r.get("error")]
        for field in ("req_per_s", "p50_us", "p75_us", "p90_us", "p99_us", "avg_us", "max_us",
                      "server_cpu_us_per_req", "mean_batch_size"):
            vals = [r[field] for r in ok if r.get(field) is not None]
            entry["median_" + field] = median(vals) if vals else None
        entry["socket_errors_total"] = sum(sum(r.get("socket_errors", {}).values()) for r in entry["runs"])
        entry["non_2xx_total"] = sum(r.get("non_2xx", 0) for r in entry["runs"])
    return out


# ------------------------------------------------------------------- nginx
def start_nginx(procs, tmp, cpu, bodies):
    """nginx answering each path in `bodies` with `return 200 '<body>'` (application/json)."""
    d = tmp / "nginx"
    d.mkdir()
    port = free_port()
    locations = []
    for path, body in bodies.items():
        if any(c in body for c in "'\\$"):
            raise RuntimeError("body for %s cannot be quoted for nginx: %r" % (path, body[:80]))
        locations.append("    location = %s { default_type application/json; return 200 '%s'; }"
                         % (path, body))
    conf = "\n".join([
        "daemon off;", "master_process on;", "worker_processes 1;",
        "user root;" if os.geteuid() == 0 else "",
        "pid %s/nginx.pid;" % d, "error_log %s/error.log warn;" % d,
        "events { worker_connections 4096; }",
        "http {", "  access_log off;", "  keepalive_requests 100000000;", "  keepalive_timeout 300s;",
        "  client_body_temp_path %s/body;" % d,
        "  server {", "    listen 127.0.0.1:%d;" % port, *locations, "  }", "}", ""])
    (d / "nginx.conf").write_text(conf)
    r = run_cmd(["nginx", "-t", "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf")])
    if r.returncode != 0:
        raise RuntimeError("nginx -t: " + r.stderr[-800:])
    proc = procs.start("nginx", ["nginx", "-p", d, "-e", d / "error.log", "-c", d / "nginx.conf"],
                       d / "stdout.log", cpu)
    wait_port(port, proc, d / "error.log")
    return proc, port


def check_nginx(port, path, body):
    status, data, head = Client(port).request("POST", path, b'{"x":1}', {"Content-Type": "application/json"})
    if status != 200 or data != body.encode():
        raise RuntimeError("nginx %s: HTTP %d, body %r" % (path, status, data[:100]))
    return head


# ------------------------------------------------------------------ benches
# Part 1's Orrery rows: key suffix -> (model, backend). The native row is the bar's tiny model.
OVERHEAD_ROWS = {"native": (NATIVE, "native"), "infer": ("linear16", "torchscript")}


def bench_overhead(ctx):
    a = ctx.args
    # nginx's body: the bar model's (native) answer when it loaded; the TorchScript answer differs
    # only in "model_name" (and is the body when the native servable is missing).
    nginx_path = "/" + NATIVE if ctx.native_answer else "/linear16"
    targets = [Target("nginx", "nginx, fixed body of Orrery's answer (%s)" % nginx_path[1:], ctx.nginx_port,
                      nginx_path, ctx.tmp, [ctx.nginx_proc.pid], body=ctx.linear_req,
                      headers=ctx.v2_headers(None))]
    for s in ctx.servers:
        for suffix, (model, backend) in OVERHEAD_ROWS.items():
            if model not in s.ready:
                continue
            targets.append(Target("orrery-t%d %s" % (s.threads, suffix),
                                  "Orrery /infer, %s %s, --threads %d" % (backend, model, s.threads),
                                  s.port, "/v2/models/%s/%s/infer" % (TENANT, model), ctx.tmp, [s.proc.pid],
                                  body=ctx.linear_req, headers=ctx.v2_headers(s)))
    for s in ctx.servers:
        targets.append(Target("orrery-t%d health" % s.threads,
                              "Orrery GET /v2/health/live, --threads %d" % s.threads, s.port,
                              "/v2/health/live", ctx.tmp, [s.proc.pid], method="GET"))
    print("\n1. overhead: wrk -t1 -c%d -d%ds, %d runs ..." % (a.connections, a.duration, a.runs), flush=True)
    res = measure(targets, a.connections, a.duration, a.runs, a.client_cpu, a.warmup, ctx.checks, "overhead")
    nginx = res["nginx"]["median_req_per_s"]
    nginx_cpu = res["nginx"]["median_server_cpu_us_per_req"]
    for key, e in res.items():
        e["vs_nginx"] = e["median_req_per_s"] / nginx if nginx and e["median_req_per_s"] else None
        # On a shared machine CPU time per request is steadier than req/s: the ratio of the
        # capacities one dedicated core would give (nginx CPU/req over this target's).
        cpu = e["median_server_cpu_us_per_req"]
        e["cpu_capacity_vs_nginx"] = nginx_cpu / cpu if nginx_cpu and cpu else None
    # Per backend, the best thread count: "native" is the bar, "torchscript" information.
    by_backend = {}
    for suffix, (model, backend) in OVERHEAD_ROWS.items():
        keys = [k for k in res if k.endswith(" " + suffix) and res[k]["vs_nginx"]]
        best = max(keys, key=lambda k: res[k]["vs_nginx"]) if keys else None
        by_backend[backend] = {"model": model, "best": best,
                               "ratio": res[best]["vs_nginx"] if best else None,
                               "cpu_capacity_ratio": res[best]["cpu_capacity_vs_nginx"] if best else None}
    return {"model": "linear16", "bar_backend": "native", "nginx_body": nginx_path[1:],
            "connections": a.connections, "duration_s": a.duration, "runs": a.runs,
            "response_bytes": {m: len(b) for m, b in (("linear16", ctx.linear_answer),
                                                       (NATIVE, ctx.native_answer)) if b},
            "targets": res, "by_backend": by_backend, "header_bytes": ctx.header_bytes}


def direct_cpp(ctx, backend, pkg, trusted=False):
    """orrery-bench-backend on a linear16 package: Orrery's backend's Infer() in process."""
    a = ctx.args
    if pkg is None:
        return {"error": "no package"}
    if not a.backend_direct.exists():
        ctx.checks.append("latency: no %s (build target orrery-bench-backend)" % a.backend_direct)
        return {"error": "binary missing: %s" % a.backend_direct}
    # --trusted right after the package: a binary without it answers "unknown flag --trusted"
    # (were it last, an old binary's flag/value loop would skip it and load a worker).
    flags = ["--trusted"] if trusted else []
    runs = []
    for rep in range(a.runs):
        r = run_cmd(pinned(a.server_cpu, [a.backend_direct, pkg] + flags +
                           ["--calls", a.direct_calls, "--data", ",".join(repr(v) for v in X16)]), timeout=600)
        if r.returncode != 0:
            if trusted and "unknown flag --trusted" in r.stderr:
                ctx.checks.append("direct %s: skipped: orrery-bench-backend has no --trusted (rebuild)" % backend)
                return {"error": "skipped: orrery-bench-backend has no --trusted (rebuild)"}
            ctx.checks.append("direct %s: %s" % (backend, r.stderr[-300:]))
            return {"error": r.stderr[-500:]}
        out = json.loads(r.stdout)
        got = out["outputs"][0]["data"]
        if not close_to(got, ctx.expected["linear16"]["output"]):
            ctx.checks.append("direct %s: wrong answer %s" % (backend, got[:4]))
            return {"error": "wrong answer"}
        if trusted and out.get("in_process") is False:
            ctx.checks.append("direct %s: the backend did not run in process" % backend)
            return {"error": "not in process"}
        del out["outputs"]
        runs.append(out)
        print("  direct %s (C++ Infer) rep %d: median %.2f us, p99 %.2f us"
              % (backend, rep, out["median_us"], out["p99_us"]), flush=True)
    return {"runs": runs, "median_us": median([r["median_us"] for r in runs]),
            "how": "orrery-bench-backend%s: FindBackend(\"%s\")->Load()->Infer(), %d calls, "
                   "pinned to CPU %s" % (" --trusted" if trusted else "", backend, a.direct_calls, a.server_cpu)}


def direct_python(ctx):
    a = ctx.args
    runs = []
    for rep in range(a.runs):
        r = run_cmd(pinned(a.server_cpu, [PY, "-c", PY_DIRECT_SCRIPT, ctx.tmp / "identity16", json.dumps(X16),
                                          2000, 25]), timeout=600)
        if r.returncode != 0:
            ctx.checks.append("direct python: " + r.stderr[-300:])
            return {"error": r.stderr[-500:]}
        out = json.loads(r.stdout)
        if not close_to(out.pop("output"), X16):
            ctx.checks.append("direct python: wrong answer")
            return {"error": "wrong answer"}
        runs.append(out)
        print("  direct python (predict() via timeit) rep %d: median %.3f us" % (rep, out["median_us"]), flush=True)
    return {"runs": runs, "median_us": median([r["median_us"] for r in runs]),
            "how": "timeit of identity.predict({'x': np.float32[1,16]}) in /usr/bin/python3, pinned to CPU %s"
                   % a.server_cpu}


def bench_latency(ctx):
    a = ctx.args
    print("\n2. latency, one connection: direct calls ...", flush=True)
    direct = {"native": direct_cpp(ctx, "native", ctx.native_pkg, trusted=True),
              "torchscript": direct_cpp(ctx, "torchscript", ctx.tmp / "linear16"),
              "python": direct_python(ctx)}
    targets = [Target("nginx linear16-body", "nginx, fixed body (linear16 answer)", ctx.nginx_port,
                      "/linear16", ctx.tmp, [ctx.nginx_proc.pid], body=ctx.linear_req,
                      headers=ctx.v2_headers(None))]
    if ctx.native_answer:
        targets.append(Target("nginx %s-body" % NATIVE, "nginx, fixed body (%s answer)" % NATIVE,
                              ctx.nginx_port, "/" + NATIVE, ctx.tmp, [ctx.nginx_proc.pid],
                              body=ctx.linear_req, headers=ctx.v2_headers(None)))
    if ctx.identity_answer:
        targets.append(Target("nginx identity16-body", "nginx, fixed body (identity16 answer)",
                              ctx.nginx_port, "/identity16", ctx.tmp, [ctx.nginx_proc.pid],
                              body=ctx.identity_req, headers=ctx.v2_headers(None)))
    for s in ctx.servers:
        if NATIVE in s.ready:
            targets.append(Target("orrery-t%d %s" % (s.threads, NATIVE), "Orrery native (in process) /infer, "
                                  "--threads %d" % s.threads, s.port, "/v2/models/%s/%s/infer" % (TENANT, NATIVE),
                                  ctx.tmp, [s.proc.pid], body=ctx.linear_req, headers=ctx.v2_headers(s)))
        if "linear16" in s.ready:
            targets.append(Target("orrery-t%d linear16" % s.threads, "Orrery torchscript /infer, --threads %d"
                                  % s.threads, s.port, "/v2/models/%s/linear16/infer" % TENANT, ctx.tmp,
                                  [s.proc.pid], body=ctx.linear_req, headers=ctx.v2_headers(s)))
        if "identity16" in s.ready:
            targets.append(Target("orrery-t%d identity16" % s.threads, "Orrery python /infer, --threads %d"
                                  % s.threads, s.port, "/v2/models/%s/identity16/infer" % TENANT, ctx.tmp,
                                  [s.proc.pid], body=ctx.identity_req, headers=ctx.v2_headers(s)))
        targets.append(Target("orrery-t%d health" % s.threads, "Orrery GET /v2/health/live, --threads %d"
                              % s.threads, s.port, "/v2/health/live", ctx.tmp, [s.proc.pid], method="GET"))
    print("2. latency: wrk -t1 -c1 -d%ds, %d runs ..." % (a.latency_duration, a.runs), flush=True)
    res = measure(targets, 1, a.latency_duration, a.runs, a.client_cpu, a.warmup, ctx.checks, "latency")
    overheads = {}
    for s in ctx.servers:
        for backend, model, floor_key in (("native", NATIVE, "nginx %s-body" % NATIVE),
                                          ("torchscript", "linear16", "nginx linear16-body"),
                                          ("python", "identity16", "nginx identity16-body")):
            key = "orrery-t%d %s" % (s.threads, model)
            d = direct[backend].get("median_us")
            if key not in res or floor_key not in res or d is None:
                continue
            p50, floor = res[key]["median_p50_us"], res[floor_key]["median_p50_us"]
            if p50 is None or floor is None:
                continue
            overheads[key] = {"backend": backend, "threads": s.threads, "orrery_p50_us": p50,
                              "nginx_p50_us": floor, "direct_us": d,
                              "overhead_us": round(p50 - floor - d, 2)}
    return {"direct": direct, "targets": res, "overheads": overheads, "duration_s": a.latency_duration,
            "runs": a.runs}


def bench_peer(ctx):
    a = ctx.args
    model = REPO / "examples" / "digits-mlp-torchscript" / "model.pt"
    exp = ctx.expected["digits"]
    peer_body = json.dumps({"inputs": [exp["input"]]}, separators=(",", ":"))
    targets = []
    for name, script, path in (("flask", "flask_app.py", "/predict"),
                               ("fastapi", "fastapi_app.py", "/predict"),
                               ("fastapi-async", "fastapi_app.py", "/predict_async")):
        if name == "fastapi-async" and not a.fastapi_async:
            continue
        if name != "fastapi-async":
            port = free_port()
            log = ctx.tmp / ("%s.log" % name)
            proc = ctx.procs.start(name, [PY, REPO / "bench" / "peers" / script, model, port], log, a.server_cpu)
            ctx.peer_procs.append(proc)
            try:
                wait_port(port, proc, log, timeout_s=90)
            except RuntimeError as e:
                ctx.checks.append("peer %s did not start: %s" % (name, e))
                continue
            ports = {name: (port, proc)}
        else:
            if "fastapi" not in ctx.peer_ports:
                continue
            ports = {name: ctx.peer_ports["fastapi"]}
        port, proc = ports[name]
        ctx.peer_ports[name] = (port, proc)
        c = Client(port)
        status, data, _ = c.request("POST", path, peer_body.encode(), {"Content-Type": "application/json"})
        if status != 200 or not close_to(flatten(json.loads(data)["outputs"]), exp["output"]):
            ctx.checks.append("peer %s: wrong answer: HTTP %d %s" % (name, status, data[:200]))
            continue
        targets.append(Target(name, {"flask": "Flask app.run(threaded=True)",
                                     "fastapi": "FastAPI + uvicorn, def endpoint",
                                     "fastapi-async": "FastAPI + uvicorn, async def endpoint"}[name],
                              port, path, ctx.tmp, [proc.pid], body=peer_body,
                              headers={"Content-Type": "application/json"}))
    for s in ctx.servers:
        if "digits" in s.ready:
            targets.append(Target("orrery-t%d digits" % s.threads, "Orrery /infer, --threads %d" % s.threads,
                                  s.port, "/v2/models/%s/%s/infer" % (TENANT, DIGITS), ctx.tmp,
                                  [s.proc.pid], body=ctx.digits_req, headers=ctx.v2_headers(s)))
    print("\n3. peer: wrk -t1 -c%d -d%ds, %d runs ..." % (a.connections, a.duration, a.runs), flush=True)
    res = measure(targets, a.connections, a.duration, a.runs, a.client_cpu, a.warmup, ctx.checks, "peer")
    for proc in ctx.peer_procs:
        ctx.procs.stop(proc)
    ctx.peer_procs.clear()
    peers = [k for k in res if not k.startswith("orrery")]
    ours = [k for k in res if k.startswith("orrery")]
    best_peer = max(peers, key=lambda k: res[k]["median_req_per_s"] or 0) if peers else None
    best_ours = max(ours, key=lambda k: res[k]["median_req_per_s"] or 0) if ours else None
    out = {"model": "examples/digits-mlp-torchscript", "connections": a.connections,
           "duration_s": a.duration, "runs": a.runs, "targets": res,
           "best_peer": best_peer, "best_orrery": best_ours}
    if best_peer and best_ours and res[best_peer]["median_req_per_s"]:
        out["ratio"] = res[best_ours]["median_req_per_s"] / res[best_peer]["median_req_per_s"]
        ours_cpu = res[best_ours]["median_server_cpu_us_per_req"]
        peer_cpu = min(res[k]["median_server_cpu_us_per_req"] or math.inf for k in peers)
        out["cpu_capacity_ratio"] = peer_cpu / ours_cpu if ours_cpu and peer_cpu < math.inf else None
        for k in res:
            cpu = res[k]["median_server_cpu_us_per_req"]
            res[k]["vs_best_peer"] = res[k]["median_req_per_s"] / res[best_peer]["median_req_per_s"] \
                if res[k]["median_req_per_s"] else None
            res[k]["cpu_capacity_vs_best_peer"] = peer_cpu / cpu if cpu and peer_cpu < math.inf else None
        out["orrery_p99_us"] = res[best_ours]["median_p99_us"]
        out["min_peer_p99_us"] = min(res[k]["median_p99_us"] for k in peers if res[k]["median_p99_us"])
    return out


def direct_batch(ctx, pkg, batch):
    """orrery-bench-backend --batch N on the digits package: the raw backend's rows/s at N rows."""
    a = ctx.args
    dg = ctx.expected["digits"]
    if not a.backend_direct.exists():
        ctx.checks.append("batching: no %s (build target orrery-bench-backend)" % a.backend_direct)
        return {"error": "binary missing: %s" % a.backend_direct}
    # --batch right after the package, like --trusted: a binary without it answers "unknown flag".
    runs = []
    for rep in range(a.runs):
        r = run_cmd(pinned(a.server_cpu, [a.backend_direct, pkg, "--batch", batch, "--calls", a.direct_calls,
                                          "--data", ",".join(repr(v) for v in dg["input"])]), timeout=600)
        if r.returncode != 0:
            if "unknown flag --batch" in r.stderr:
                msg = "skipped: orrery-bench-backend has no --batch (rebuild orrery-bench-backend)"
                ctx.checks.append("batching direct backend: " + msg)
                return {"error": msg}
            ctx.checks.append("batching direct backend: %s" % r.stderr[-300:])
            return {"error": r.stderr[-500:]}
        out = json.loads(r.stdout)
        got = flatten(out["outputs"][0]["data"])
        if out.get("batch") != batch or not close_to(got, dg["output"] * batch):
            ctx.checks.append("batching direct backend: wrong answer (batch %s) %s" % (out.get("batch"), got[:4]))
            return {"error": "wrong answer"}
        del out["outputs"]
        runs.append(out)
        print("  direct torchscript --batch %d (C++ Infer) rep %d: median %.2f us per call, %.0f rows/s"
              % (batch, rep, out["median_us"], out["rows_per_second"]), flush=True)
    return {"runs": runs, "batch": batch, "median_us": median([r["median_us"] for r in runs]),
            "rows_per_second": median([r["rows_per_second"] for r in runs]),
            "how": "orrery-bench-backend --batch %d: FindBackend(\"torchscript\")->Load()->Infer() of [%d, 64] "
                   "(every row the checked example), %d calls, pinned to CPU %s; rows/s = %d x 1e6 / median us"
                   % (batch, batch, a.direct_calls, a.server_cpu, batch)}


def bench_batching(ctx):
    """Part 4: the digits MLP with its manifest's batching vs the same files without it."""
    a = ctx.args
    cfg = ctx.expected["digits"].get("batching") or {}
    max_batch = int(cfg.get("max_batch_size") or 0)
    delay_us = float(cfg.get("max_queue_delay_us") or 0)
    if not max_batch:
        ctx.checks.append("batching: %s's manifest has no batching (max_batch_size)" % DIGITS)
    print("\n4. batching: %s (batching %s) vs %s; direct call ..." % (DIGITS, cfg, NOBATCH), flush=True)
    direct = direct_batch(ctx, ctx.tmp / DIGITS, max_batch or 32)
    targets = []
    for s in ctx.servers:
        for kind, name in (("batching", DIGITS), ("nobatch", NOBATCH)):
            if SHORT[name] not in s.ready:
                continue
            targets.append(Target("orrery-t%d %s" % (s.threads, kind), "Orrery /infer %s (%s), --threads %d" % (
                name, "manifest batching" if kind == "batching" else "no batching", s.threads), s.port,
                "/v2/models/%s/%s/infer" % (TENANT, name), ctx.tmp, [s.proc.pid], body=ctx.digits_req,
                headers=ctx.v2_headers(s), batches=lambda s=s, name=name: batch_metrics(s, name)))
    if not targets:
        ctx.checks.append("batching: skipped, the digits MLP did not load")
        return None
    print("4. batching: wrk -t1 -c%d -d%ds, %d runs ..." % (a.connections, a.duration, a.runs), flush=True)
    thr = measure(targets, a.connections, a.duration, a.runs, a.client_cpu, a.warmup, ctx.checks,
                  "batching c%d" % a.connections)
    print("4. batching: wrk -t1 -c1 -d%ds, %d runs ..." % (a.latency_duration, a.runs), flush=True)
    one = measure(targets, 1, a.latency_duration, a.runs, a.client_cpu, a.warmup, ctx.checks, "batching c1")
    rows_s = direct.get("rows_per_second")
    by_server = {}
    for s in ctx.servers:
        b, n = "orrery-t%d batching" % s.threads, "orrery-t%d nobatch" % s.threads
        if b not in thr or n not in thr:
            continue
        rb, rn = thr[b]["median_req_per_s"], thr[n]["median_req_per_s"]
        pb, pn = one[b]["median_p50_us"], one[n]["median_p50_us"]
        by_server["orrery-t%d" % s.threads] = {
            "threads": s.threads, "batching_req_per_s": rb, "nobatch_req_per_s": rn,
            "speedup": rb / rn if rb and rn else None,
            "mean_batch_size": thr[b]["median_mean_batch_size"],
            "batching_cpu_us_per_req": thr[b]["median_server_cpu_us_per_req"],
            "nobatch_cpu_us_per_req": thr[n]["median_server_cpu_us_per_req"],
            "vs_backend": rb / rows_s if rb and rows_s else None,
            "p50_c1_batching_us": pb, "p50_c1_nobatch_us": pn,
            "p50_c1_limit_us": pn * (1 + BARS["batching_p50_slack"]) + delay_us if pn is not None else None}
    return {"model": "examples/" + DIGITS, "nobatch_servable": NOBATCH, "batching": cfg,
            "connections": a.connections, "duration_s": a.duration, "latency_duration_s": a.latency_duration,
            "runs": a.runs, "throughput": thr, "one_connection": one, "direct": direct, "by_server": by_server}


# -------------------------------------------------------------------- report
INFO = "info"  # a bar row shown for information: the bar's target, no PASS/FAIL


def bars(res):
    """(label, value, target, ok) rows; ok is True, False, None (not measured) or INFO."""
    rows = []
    ov = res.get("overhead")
    if ov:
        for backend, label in (("native", "1. Orrery req/s / nginx (tiny model = native linear16 in process"),
                               ("torchscript", "   (torchscript linear16")):  # the bar, then information
            b = ov["by_backend"][backend]
            r = b["ratio"]
            ok = INFO if backend != "native" else None if r is None else r >= BARS["overhead_ratio"]
            rows.append(("%s, c%d; %s)" % (label, ov["connections"], b["best"] or "not measured"),
                         "%.3f (cpu %s)" % (r, fmt(b["cpu_capacity_ratio"], "%.2f")) if r else "n/a",
                         ">= %.2f" % BARS["overhead_ratio"], ok))
    lat = res.get("latency")
    if lat:
        for backend, bar, label in (
                ("native", "inproc_overhead_us",
                 "2. server-side overhead p50, in process (tiny model = native linear16"),
                ("torchscript", "inproc_overhead_us", "   (torchscript linear16"),
                ("python", "py_overhead_us", "2. server-side overhead p50, python (identity16")):
            cands = {k: v for k, v in lat["overheads"].items() if v["backend"] == backend}
            best = min(cands, key=lambda k: cands[k]["overhead_us"]) if cands else None
            v = cands[best]["overhead_us"] if best else None
            ok = INFO if backend == "torchscript" else None if v is None else v <= BARS[bar]
            rows.append(("%s; %s)" % (label, best or "not measured"),
                         "%.1f us" % v if v is not None else "n/a", "<= %.0f us" % BARS[bar], ok))
    pe = res.get("peer")
    if pe:
        r = pe.get("ratio")
        rows.append(("3. Orrery req/s / best peer (%s vs %s)" % (pe.get("best_orrery"), pe.get("best_peer")),
                     "%.1fx (cpu %s)" % (r, fmt(pe.get("cpu_capacity_ratio"), "%.0fx")) if r else "n/a",
                     ">= %.0fx" % BARS["peer_ratio"],
                     None if r is None else r >= BARS["peer_ratio"]))
        o, p = pe.get("orrery_p99_us"), pe.get("min_peer_p99_us")
        rows.append(("3. Orrery p99 < every peer's p99", "%.0f us vs %.0f us" % (o, p) if o and p else "n/a",
                     "lower", None if not (o and p) else o < p))
    ba = res.get("batching")
    if ba:
        bs = ba["by_server"]
        cfg = ba["batching"] or {}
        # Information: the examples' MLP is too light for issue 4's batching bars, which
        # bench/throughput.py part 1 measures on a compute-heavy model. Best thread count each.
        cands = [k for k in bs if bs[k]["speedup"]]
        best = max(cands, key=lambda k: bs[k]["speedup"]) if cands else None
        v = bs[best] if best else None
        rows.append(("4. digits MLP req/s, batching / no batching (c%d; %s)" % (ba["connections"], best or
                                                                              "not measured"),
                     "%.2fx (batch %s)" % (v["speedup"], fmt(v["mean_batch_size"], "%.1f")) if v else "n/a",
                     ">= %.0fx" % BARS["batching_speedup"],
                     INFO))
        d = ba["direct"]
        cands = [k for k in bs if bs[k]["vs_backend"]]
        best = max(cands, key=lambda k: bs[k]["vs_backend"]) if cands else None
        v = bs[best] if best else None
        rows.append(("4. batching req/s / raw backend rows/s at batch %s (%s)" % (
                        d.get("batch", cfg.get("max_batch_size")),
                        best or ("not measured: no raw backend" if d.get("error") else "not measured")),
                     "%.3f (of %.0f/s)" % (v["vs_backend"], d["rows_per_second"]) if v else "n/a",
                     ">= %.2f" % BARS["batching_vs_backend"],
                     INFO))
        cands = [k for k in bs if bs[k]["p50_c1_batching_us"] is not None and bs[k]["p50_c1_limit_us"] is not None]
        best = min(cands, key=lambda k: bs[k]["p50_c1_batching_us"] - bs[k]["p50_c1_limit_us"]) if cands else None
        v = bs[best] if best else None
        rows.append(("4. p50 c1, batching <= no batching + %s us + %.0f%% (%s)" % (
                        fmt(cfg.get("max_queue_delay_us"), "%s"), BARS["batching_p50_slack"] * 100,
                        best or "not measured"),
                     "%.1f us (no b. %.1f)" % (v["p50_c1_batching_us"], v["p50_c1_nobatch_us"]) if v else "n/a",
                     "<= %.0f us" % v["p50_c1_limit_us"] if v else "",
                     INFO))
    return rows


def write_results(name, stamp, res):
    """Writes `res` as bench/out/<name>-<stamp>.json; returns the path."""
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("%s-%s.json" % (name, stamp))
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return path


def fmt(v, spec="%.1f"):
    return spec % v if v is not None else "-"


def print_table(res):
    def table(entries, ref=None):
        w = max([24] + [len(k) for k in entries])
        print("%-*s %9s %8s %8s %8s %8s %8s %9s %8s" % (
            w, "", "req/s", "p50 us", "p90 us", "p99 us", "max us", ref and "vs " + ref or "",
            "cpu us/req", ref and "cpu cap." or ""))
        for key, e in entries.items():
            vs = e.get("vs_" + ref) if ref else None
            cap = e.get("cpu_capacity_vs_" + ref) if ref else None
            print("%-*s %9s %8s %8s %8s %8s %8s %9s %8s" % (
                w, key, fmt(e["median_req_per_s"]), fmt(e["median_p50_us"]), fmt(e["median_p90_us"]),
                fmt(e["median_p99_us"]), fmt(e["median_max_us"], "%.0f"), fmt(vs, "%.3f") if ref else "",
                fmt(e["median_server_cpu_us_per_req"]), fmt(cap, "%.3f") if ref else ""))
    ov = res.get("overhead")
    if ov:
        print("\n== 1. Overhead: linear16 (16 FP32 -> 16 FP32, answer %s), wrk -t1 -c%d -d%ds, "
              "server CPU %s, wrk CPU %s; medians of %d ==" % (
                  ", ".join("%s %d B" % kv for kv in ov["response_bytes"].items()), ov["connections"],
                  ov["duration_s"], res["config"]["server_cpu"], res["config"]["client_cpu"], ov["runs"]))
        table(ov["targets"], "nginx")
        print("  native: %s, a native servable in the server process (the bar's tiny model); infer: linear16, "
              "TorchScript; nginx: fixed body of the %s answer" % (NATIVE, ov["nginx_body"]))
        print("  cpu us/req: CPU time of the server's process tree per request (from /proc); cpu cap.: "
              "nginx's cpu us/req over the row's (the throughput ratio one dedicated core would give)")
    lat = res.get("latency")
    if lat:
        print("\n== 2. One connection (wrk -t1 -c1 -d%ds), medians of %d ==" % (lat["duration_s"], lat["runs"]))
        table(lat["targets"])
        for name, d in lat["direct"].items():
            print("  direct %-11s %s" % (name, "median %.3f us  (%s)" % (d["median_us"], d["how"])
                                         if "median_us" in d else "ERROR " + d.get("error", "")[:200]))
        for key, o in lat["overheads"].items():
            print("  overhead %-24s %7.1f us = p50 %.1f - nginx p50 %.1f - direct %.2f" % (
                key, o["overhead_us"], o["orrery_p50_us"], o["nginx_p50_us"], o["direct_us"]))
    pe = res.get("peer")
    if pe:
        print("\n== 3. Peer: digits MLP (64 -> 10), wrk -t1 -c%d -d%ds, medians of %d ==" % (
            pe["connections"], pe["duration_s"], pe["runs"]))
        table(pe["targets"], "best_peer")
        if pe.get("ratio"):
            print("  Orrery / best peer: %.1fx req/s (%s / %s); by server CPU per request: %s" % (
                pe["ratio"], pe["best_orrery"], pe["best_peer"], fmt(pe.get("cpu_capacity_ratio"), "%.1fx")))
    ba = res.get("batching")
    if ba:
        print("\n== 4. Batching: digits MLP, %s (manifest batching %s) vs %s (no batching), wrk -t1 -c%d -d%ds "
              "and -c1 -d%ds, medians of %d ==" % (DIGITS, json.dumps(ba["batching"], separators=(",", ":")),
                                                   NOBATCH, ba["connections"], ba["duration_s"],
                                                   ba["latency_duration_s"], ba["runs"]))
        rows4 = [("%s c%d" % (k, ba["connections"]), e) for k, e in ba["throughput"].items()] + \
                [("%s c1" % k, e) for k, e in ba["one_connection"].items()]
        w = max([24] + [len(k) for k, _ in rows4])
        print("%-*s %9s %8s %8s %8s %9s %10s" % (w, "", "req/s", "p50 us", "p90 us", "p99 us", "cpu us/req",
                                                 "mean batch"))
        for key, e in rows4:
            print("%-*s %9s %8s %8s %8s %9s %10s" % (
                w, key, fmt(e["median_req_per_s"]), fmt(e["median_p50_us"]), fmt(e["median_p90_us"]),
                fmt(e["median_p99_us"]), fmt(e["median_server_cpu_us_per_req"]),
                fmt(e.get("median_mean_batch_size"), "%.2f")))
        d = ba["direct"]
        print("  raw backend: %s" % ("median %.2f us per call, %.0f rows/s  (%s)" % (
            d["median_us"], d["rows_per_second"], d["how"]) if "rows_per_second" in d
            else "ERROR " + d.get("error", "")[:200]))
        for key, v in ba["by_server"].items():
            print("  %s: batching / no batching %s req/s at c%d (mean batch %s); batching / raw backend %s; "
                  "p50 c1 %s vs %s us (limit %s)" % (
                      key, fmt(v["speedup"], "%.2fx"), ba["connections"], fmt(v["mean_batch_size"], "%.2f"),
                      fmt(v["vs_backend"], "%.3f"), fmt(v["p50_c1_batching_us"]), fmt(v["p50_c1_nobatch_us"]),
                      fmt(v["p50_c1_limit_us"])))
        print("  mean batch: rows / backend calls of the servable during the run, from the _sum and _count "
              "of orrery_inference_batch_size in /metrics (none without batching)")
    rows = bars(res)
    if rows:
        print("\n== Bars ==")
        w = max(len(r[0]) for r in rows)
        for label, value, bar, ok in rows:
            print("%-*s %18s %11s  %s" % (w, label, value, bar,
                                           {True: "PASS", False: "FAIL", None: "n/a", INFO: "info"}[ok]))
    res["bars"] = [{"bar": l, "value": v, "target": b, "pass": None if ok == INFO else ok,
                    "informational": ok == INFO} for l, v, b, ok in rows]


# ---------------------------------------------------------------------- main
class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 run of 2 s per target")
    ap.add_argument("--bench", action="append", choices=["overhead", "latency", "peer", "batching"],
                    help="sub-benchmark to run, repeatable (default: all four)")
    ap.add_argument("--orrery", type=Path, default=None,
                    help="orrery binary (default build-bench/orrery, else build/orrery)")
    ap.add_argument("--backend-direct", type=Path, default=REPO / "build-bench" / "bench" / "orrery-bench-backend",
                    help="orrery-bench-backend binary (bench/CMakeLists.txt)")
    ap.add_argument("--native-plugin", type=Path, default=None,
                    help="the linear16 native plugin, %s (target orrery-bench-linear16; default: "
                         "beside --backend-direct, build-bench/bench/%s)" % (NATIVE_LIB, NATIVE_LIB))
    ap.add_argument("--orrery-threads", default="1,2", help="comma list of `serve --threads` values")
    ap.add_argument("--runs", type=int, help="repetitions per target (default 3, quick 1)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run, 32 connections (default 10, quick 2)")
    ap.add_argument("--latency-duration", type=int, help="seconds per wrk -c1 run (default 5, quick 2)")
    ap.add_argument("--warmup", type=int, help="seconds of wrk warm-up per target (default 2, quick 1)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--direct-calls", type=int, default=20000)
    ap.add_argument("--server-cpu", default="0", help="CPU list for the servers (taskset -c)")
    ap.add_argument("--client-cpu", default="1", help="CPU list for wrk (taskset -c)")
    ap.add_argument("--nice", type=int, default=0,
                    help="run servers, peers, wrk and the direct calls under `nice -n N` (e.g. -10 on "
                         "a machine busy with other work; needs root for N < 0)")
    ap.add_argument("--no-fastapi-async", dest="fastapi_async", action="store_false",
                    help="skip the FastAPI `async def` variant of the peer")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="extra `orrery serve` argument, repeatable")
    ap.add_argument("--tmp-root", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, models, configs)")
    args = ap.parse_args()
    args.bench = args.bench or ["overhead", "latency", "peer", "batching"]
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (2 if args.quick else 10)
    args.latency_duration = args.latency_duration or (2 if args.quick else 5)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if args.quick:
        args.direct_calls = min(args.direct_calls, 5000)
    if args.orrery is None:
        args.orrery = next((p for p in (REPO / "build-bench" / "orrery", REPO / "build" / "orrery") if p.exists()),
                           REPO / "build-bench" / "orrery")
    args.orrery = args.orrery.resolve()
    if args.native_plugin is None:
        args.native_plugin = args.backend_direct.parent / NATIVE_LIB
    threads = [int(t) for t in args.orrery_threads.split(",") if t.strip()]
    NICE[0] = args.nice
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit("%s not found" % tool)
    if not args.orrery.exists():
        sys.exit("no %s: build it (ninja -C build-bench -j2 orrery)" % args.orrery)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    ctx = Ctx()
    ctx.args = args
    ctx.tmp = Path(tempfile.mkdtemp(prefix="orrery-serving-", dir=args.tmp_root))
    ctx.procs = Procs()
    ctx.checks = []
    ctx.servers, ctx.peer_procs, ctx.peer_ports = [], [], {}
    ctx.header_bytes = {}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    res = {"benchmark": "serving",
           "machine": machine_facts({"orrery_binary": args.orrery, "backend_direct_binary": args.backend_direct,
                                     "native_plugin": args.native_plugin}),
           "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "bars_config": BARS}
    t_start = time.perf_counter()
    try:
        print("making models in %s ..." % ctx.tmp, flush=True)
        r = run_cmd([PY, "-c", PREP_SCRIPT, ctx.tmp, REPO / "examples" / DIGITS, json.dumps(X16), NOBATCH],
                    timeout=300)
        if r.returncode != 0:
            raise RuntimeError("making models: " + r.stderr[-1500:])
        ctx.expected = json.loads(r.stdout)
        dg = ctx.expected["digits"]
        if not close_to(dg["output"], dg["manifest_output"], dg["tolerance"]):
            ctx.checks.append("digits: torch's answer differs from the manifest's example")
        lin = ctx.tmp / "linear16"
        (lin / "orrery.yaml").write_text(
            'name: linear16\ntitle: "Linear 16x16 (benchmark)"\ncreators: [{name: "Orrery bench"}]\n'
            'year: 2026\nbackend: torchscript\nfiles: ["model.pt"]\n'
            "signature: {inputs: [{name: x, datatype: FP32, shape: [-1, 16]}], "
            "outputs: [{name: y, datatype: FP32, shape: [-1, 16]}]}\n")
        ident = ctx.tmp / "identity16"
        ident.mkdir()
        (ident / "identity.py").write_text(IDENTITY_PY)
        (ident / "orrery.yaml").write_text(
            'name: identity16\ntitle: "Identity 16 (benchmark)"\ncreators: [{name: "Orrery bench"}]\n'
            'year: 2026\nbackend: python\nfiles: ["identity.py"]\nconfig: {entrypoint: "identity:predict"}\n'
            "signature: {inputs: [{name: x, datatype: FP32, shape: [-1, 16]}], "
            "outputs: [{name: y, datatype: FP32, shape: [-1, 16]}]}\n")
        # The same Linear as a native servable run in the server process (--trusted-native):
        # the plugin plus the weights.bin the prep step wrote.
        nat = ctx.tmp / NATIVE
        if args.native_plugin.is_file():
            shutil.copyfile(args.native_plugin, nat / NATIVE_LIB)
            (nat / "orrery.yaml").write_text(
                'name: %s\ntitle: "Linear 16x16, native in-process plugin (benchmark)"\n'
                'creators: [{name: "Orrery bench"}]\nyear: 2026\nbackend: native\n'
                'files: ["%s", "weights.bin"]\nconfig: {library: "%s", weights: "weights.bin"}\n'
                "signature: {inputs: [{name: x, datatype: FP32, shape: [-1, 16]}], "
                "outputs: [{name: y, datatype: FP32, shape: [-1, 16]}]}\n" % (NATIVE, NATIVE_LIB, NATIVE_LIB))
        else:
            nat = None
            ctx.checks.append("%s: no plugin %s (build target orrery-bench-linear16, or pass --native-plugin)"
                              % (NATIVE, args.native_plugin))
        digits_dir = ctx.tmp / DIGITS
        shutil.copytree(REPO / "examples" / DIGITS, digits_dir)
        # The same MLP without batching (part 4): the prep step wrote its manifest; the files.
        nobatch_dir = ctx.tmp / NOBATCH
        for f in digits_dir.iterdir():
            if f.name != "orrery.yaml":
                shutil.copyfile(f, nobatch_dir / f.name)
        ctx.native_pkg = nat

        ctx.linear_req = v2_body("x", X16, [1, 16])
        ctx.identity_req = v2_body("x", X16, [1, 16])
        ctx.digits_req = v2_body("input", dg["input"], [1, 64])
        ctx.v2_headers = lambda s: {"Content-Type": "application/json",
                                    "Authorization": "Bearer " + (s.reader if s else ctx.servers[0].reader)}
        # The native linear16 is checked against torch's answer, like the TorchScript one.
        packages = [("linear16", lin, "y", ctx.expected["linear16"]["output"], ctx.linear_req),
                    (NATIVE, nat, "y", ctx.expected["linear16"]["output"], ctx.linear_req),
                    ("identity16", ident, "y", X16, ctx.identity_req),
                    (DIGITS, digits_dir, "logits", dg["output"], ctx.digits_req),
                    (NOBATCH, nobatch_dir, "logits", dg["output"], ctx.digits_req)]
        packages = [p for p in packages if p[1] is not None]
        answers = {}
        server_args = ["--trusted-native", "%s/%s" % (TENANT, NATIVE)] + list(args.server_arg)
        for t in threads:
            s = Orrery(ctx.procs, args.orrery, ctx.tmp, t, args.server_cpu, server_args)
            s.ready = set()
            ctx.servers.append(s)
            print("orrery --threads %d: pid %d, port %d" % (t, s.proc.pid, s.port), flush=True)
            for name, pkg, out_name, want, req in packages:
                short = SHORT.get(name, name)
                try:
                    load_s = s.publish_and_load(name, pkg)
                    data, head = check_v2(s, name, req, out_name, want)
                    s.ready.add(short)
                    answers[short] = data.decode()
                    ctx.header_bytes["orrery " + short] = head
                    print("  %s: loaded in %.2f s, answer checked (%d B)" % (name, load_s, len(data)), flush=True)
                except RuntimeError as e:
                    ctx.checks.append("orrery --threads %d %s: %s" % (t, name, e))
                    print("  %s: FAILED %s" % (name, str(e)[:300]), flush=True)
        # nginx answers with Orrery's exact answer bytes for the same request.
        ctx.linear_answer = answers.get("linear16")
        ctx.native_answer = answers.get(NATIVE)
        ctx.identity_answer = answers.get("identity16")
        if ("overhead" in args.bench or "latency" in args.bench) and ctx.linear_answer:
            bodies = {"/linear16": ctx.linear_answer}
            if ctx.native_answer:
                bodies["/" + NATIVE] = ctx.native_answer
            if ctx.identity_answer:
                bodies["/identity16"] = ctx.identity_answer
            ctx.nginx_proc, ctx.nginx_port = start_nginx(ctx.procs, ctx.tmp, args.server_cpu, bodies)
            for path, body in bodies.items():
                ctx.header_bytes["nginx " + path] = check_nginx(ctx.nginx_port, path, body)
            print("nginx: pid %d, port %d" % (ctx.nginx_proc.pid, ctx.nginx_port), flush=True)
        for part, run in (("overhead", bench_overhead), ("latency", bench_latency)):
            if part in args.bench:
                if ctx.linear_answer:
                    res[part] = run(ctx)
                else:
                    ctx.checks.append("%s: skipped, linear16 did not load" % part)
        if "peer" in args.bench:
            res["peer"] = bench_peer(ctx)
        if "batching" in args.bench:
            res["batching"] = bench_batching(ctx)
    except KeyboardInterrupt:
        ctx.checks.append("interrupted")
    except Exception as e:
        ctx.checks.append("aborted: %r" % e)
        raise
    finally:
        res["server_log_tails"] = {"t%d" % s.threads: s.log_tail() for s in ctx.servers}
        ctx.procs.stop_all()
        res["checks_failed"] = ctx.checks
        res["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        res["machine"]["loadavg_at_end"] = os.getloadavg()
        try:
            print_table(res)
        except Exception as e:  # the JSON still gets written
            print("table: %r" % e)
        out_path = write_results("serving", stamp, res)
        if args.keep:
            print("kept", ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    print("\nchecks: %s" % ("all passed" if not ctx.checks else "%d FAILED" % len(ctx.checks)))
    for c in ctx.checks:
        print("  - " + c[:300])
    print("results: %s  (%.0f s)" % (out_path, res["elapsed_s"]))
    return 1 if ctx.checks else 0


if __name__ == "__main__":
    sys.exit(main())
