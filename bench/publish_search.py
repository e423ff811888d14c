#!/usr/bin/python3
"""Orrery publish-throughput and search-latency benchmark (stdlib only).

    /usr/bin/python3 bench/publish_search.py [--quick]

Starts its own `orrery serve` on a free loopback port with a fresh data dir in a
temp dir, and always stops it (by PID) at the end. Measures, in one run:

  1. Publishing a 50 MB package (5 x 10 MB random files + orrery.yaml):
       - `orrery publish DIR --name bench/big-N` (the real CLI: pack, hash, upload),
       - the server alone: POST of a pre-built tar streamed from a file,
       - baseline: `sha256sum FILES && cp FILES DEST/ && sync DEST/*` on the same files.
     Runs are interleaved (the order rotates per run); before each timed step
     every file's first bytes are rewritten so each publish stores new blobs,
     and os.sync() flushes earlier writes so no step pays for another's.
  2. Publishing N small servables from concurrent keep-alive clients, then the
     latency of search, a tag-filtered list, and /v2/health/live (the floor:
     client + HTTP overhead), sequentially and with concurrent clients.

Prints a table and writes bench/out/publish_search-<UTC timestamp>.json.
Exit status 1 when any check failed (a non-2xx answer, an empty search, a CLI error).
"""
import argparse
import datetime
import hashlib
import http.client
import io
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000  # decimal megabytes throughout
SEED = 20261122

# ---------------------------------------------------------------- vocabulary
WORDS = """
accurate adaptive aerial agricultural anomaly attention audio autoencoder batch bayesian benchmark
boosted calibrated cardiology cellular classifier climate clinical clustering compact convolutional
crop dense depth detector diffusion digits distilled ecology embedding encoder ensemble estimator
exoplanet forecasting fraud galaxy genomic gradient graph handwriting hybrid imaging inference
kepler lightweight linear lstm mammography medical microscopy mlp molecular multilingual network
neural ocean optical orbital pediatric pipeline pretrained probabilistic protein quantized radar
random recurrent regression remote residual resnet robust satellite segmentation seismic sensor
sentiment sequence solar sparse spectral speech streaming supervised surrogate survival temporal
tabular traffic transformer translation tumor turbulence uncertainty vision weather wildfire xgboost
""".split()
TAGS = """
vision nlp audio tabular timeseries medical astronomy climate genomics finance robotics
geospatial chemistry physics biology energy retail security education agriculture
onnx torchscript sklearn xgboost pytorch tensorflow small large fast baseline
benchmark experimental production calibrated quantized distilled pretrained finetuned
""".split()
TASKS = ["classification", "regression", "detection", "segmentation", "forecasting",
         "translation", "embedding", "ranking", "clustering", "anomaly-detection",
         "generation", "question-answering"]
DOMAINS = ["vision", "text", "audio", "tabular", "science", "health", "earth", "finance"]
FIRST = ("Ada Alan Grace Katherine Edsger Barbara Donald John Radia Leslie Margaret Tim Frances "
         "Claude Hedy Dorothy Ken Dennis Lynn Sophie Yann Geoffrey Fei Andrew Daphne").split()
LAST = ("Lovelace Turing Hopper Johnson Dijkstra Liskov Knuth McCarthy Perlman Lamport Hamilton "
        "Berners-Lee Allen Shannon Lamarr Vaughan Thompson Ritchie Conway Wilson LeCun Hinton "
        "Li Ng Koller").split()


# ------------------------------------------------------------------- helpers
def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def latency_stats(latencies_s, wall_s):
    v = sorted(latencies_s)
    ms = lambda x: None if x is None else round(x * 1000.0, 3)
    return {"n": len(v), "p50_ms": ms(percentile(v, 50)), "p90_ms": ms(percentile(v, 90)),
            "p99_ms": ms(percentile(v, 99)), "max_ms": ms(v[-1] if v else None),
            "mean_ms": ms(sum(v) / len(v) if v else None),
            "req_per_s": round(len(v) / wall_s, 1) if wall_s > 0 else None,
            "wall_s": round(wall_s, 3)}


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


def run_cmd(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


class CpuMeter:
    """CPU seconds spent by the server and by this client (its threads and children).

    On a shared, noisy machine wall time swings with other load; CPU time much less so."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, server_pid=None):
        self.pid = server_pid  # None: no server involved
        self.start = self._now()

    def _now(self):
        server = 0.0
        if self.pid is not None:
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            server = (int(fields[11]) + int(fields[12])) / self.TICK  # utime + stime
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return server, time.process_time(), kids.ru_utime + kids.ru_stime

    def read(self):
        now = self._now()
        return {"server_cpu_s": now[0] - self.start[0],
                "client_cpu_s": (now[1] - self.start[1]) + (now[2] - self.start[2])}


def machine_facts(tmp_root, orrery):
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
    stat = os.stat(orrery)
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(), "nproc_usable": len(os.sched_getaffinity(0)),
        "cpu": cpu, "kernel": platform.release(), "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "git_rev": out(["git", "rev-parse", "HEAD"]),
        "git_dirty_files": (out(["git", "status", "--porcelain", "--untracked-files=no"]) or "").splitlines(),
        "orrery_binary": str(orrery),
        "orrery_mtime": datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds"),
        "tmp_root_fs": out(["df", "--output=source,fstype,target", str(tmp_root)]),
        "coreutils": (out(["sync", "--version"]) or "").splitlines()[:1],
    }


# -------------------------------------------------------------------- server
class Server:
    """`orrery serve` on a free loopback port (--port 0, read from its log)."""

    def __init__(self, binary, data_dir, log_path, extra_args=()):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None

    def start(self, timeout_s=30):
        args = [str(self.binary), "serve", "--data-dir", str(self.data_dir), "--port", "0"]
        args += self.extra_args
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", Path(self.log_path).read_text())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + Path(self.log_path).read_text()[-2000:])
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not report its port in %ds" % timeout_s)
        status, _ = Client(self.port).request("GET", "/v2/health/live")
        if status != 200:
            raise RuntimeError("health check answered %d" % status)
        self.admin_token = (Path(self.data_dir) / "admin.token").read_text().strip()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    def log_tail(self, n=3000):
        try:
            return Path(self.log_path).read_text()[-n:]
        except OSError:
            return ""


class Client:
    """One keep-alive HTTP/1.1 connection (http.client reopens it if the server closes)."""

    def __init__(self, port, token=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
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
            return resp.status, resp.read()
        except (http.client.HTTPException, OSError) as e:
            self.conn.close()
            return 0, repr(e).encode()

    def json(self, method, path, body=None, expect=(200, 201)):
        status, data = self.request(method, path, body)
        if status not in expect:
            raise RuntimeError("%s %s -> %d %s" % (method, path, status, data[:300]))
        return json.loads(data)


# ------------------------------------------------------- 1. big publish bench
def manifest_yaml(name, files, title, description="", tags=(), creators=("Bench Mark",),
                  task="", domain=""):
    q = json.dumps  # a JSON string is a valid YAML scalar
    lines = ["name: " + q(name), "title: " + q(title),
             "creators: [" + ", ".join("{name: %s}" % q(c) for c in creators) + "]",
             "year: 2026", "backend: python", "files: [" + ", ".join(q(f) for f in files) + "]",
             "signature: {inputs: [{name: x, datatype: FP32, shape: [-1, 4]}], "
             "outputs: [{name: y, datatype: FP32, shape: [-1]}]}"]
    if description:
        lines.append("description: " + q(description))
    if tags:
        lines.append("tags: [" + ", ".join(q(t) for t in tags) + "]")
    if task:
        lines.append("task: " + q(task))
    if domain:
        lines.append("domain: " + q(domain))
    return "\n".join(lines) + "\n"


def make_big_package(pkg_dir, n_files, file_mb):
    pkg_dir.mkdir(parents=True)
    names = ["weights-%d.bin" % i for i in range(n_files)]
    for n in names:
        with open(pkg_dir / n, "wb") as f:
            for _ in range(file_mb):
                f.write(os.urandom(MB))
    return names


def mutate_package(pkg_dir, files, name):
    """New first bytes in every file (so every blob is new) and the manifest's name."""
    for n in files:
        with open(pkg_dir / n, "r+b") as f:
            f.write(os.urandom(32))
    (pkg_dir / "orrery.yaml").write_text(
        manifest_yaml(name, files, "Big benchmark package", "50 MB of random weights"))


def package_bytes(pkg_dir):
    return sum(p.stat().st_size for p in pkg_dir.iterdir())


def time_cli_publish(cli, pkg_dir, name, server, token, tmp_root):
    env = dict(os.environ, TMPDIR=str(tmp_root))  # the CLI packs under $TMPDIR: same file system
    cpu = CpuMeter(server.proc.pid)
    t0 = time.perf_counter()
    # --no-check: the package's files are made up (this measures storage, not the publish
    # check, which bench/client.py measures on the real examples).
    r = run_cmd([str(cli), "publish", str(pkg_dir), "--name", "bench/" + name, "--json", "--no-check",
                 "--url", "http://127.0.0.1:%d" % server.port, "--token", token], env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": "rc=%d: %s" % (r.returncode, (r.stderr or r.stdout).strip()[-500:])}
    version = json.loads(r.stdout)
    return dict(cpu.read(), s=dt, version=version.get("version"), stored_bytes=version.get("size"))


def time_server_post(pkg_dir, files, name, server, token, tmp_root):
    """POST of a tar built beforehand (its build and hash are timed apart, not in the row)."""
    tar_path = Path(tmp_root) / ("post-%s.tar" % name)
    t0 = time.perf_counter()
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for n in ["orrery.yaml"] + files:
            tar.add(pkg_dir / n, arcname=n)
    t1 = time.perf_counter()
    h = hashlib.sha256()
    with open(tar_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    t2 = time.perf_counter()
    os.sync()
    size = tar_path.stat().st_size
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    cpu = CpuMeter(server.proc.pid)
    t3 = time.perf_counter()
    try:
        conn.putrequest("POST", "/api/v1/servables/bench/%s/versions?check=false" % name)
        conn.putheader("Authorization", "Bearer " + token)
        conn.putheader("Content-Type", "application/x-tar")
        conn.putheader("Content-Length", str(size))
        conn.putheader("X-Orrery-Sha256", h.hexdigest())
        conn.endheaders()
        with open(tar_path, "rb") as f:
            for chunk in iter(lambda: f.read(256 * 1024), b""):
                conn.send(chunk)
        t4 = time.perf_counter()
        resp = conn.getresponse()
        body = resp.read()
        t5 = time.perf_counter()
        used = cpu.read()
    except (http.client.HTTPException, OSError) as e:
        return {"error": "%r after %.3f s (no answer from the server)"
                % (e, time.perf_counter() - t3)}
    finally:
        conn.close()
        tar_path.unlink()
    if resp.status != 201:
        return {"error": "HTTP %d: %s" % (resp.status, body[:300])}
    return {**used, "s": t5 - t3, "upload_s": t4 - t3, "after_body_s": t5 - t4,
            "py_tar_build_s": t1 - t0, "py_sha256_s": t2 - t1, "tar_bytes": size,
            "stored_bytes": json.loads(body).get("size")}


def time_baseline(pkg_dir, dest):
    """sha256sum FILES && cp FILES DEST/ && sync DEST/* (all files, manifest included)."""
    files = sorted(str(p) for p in pkg_dir.iterdir())
    dest.mkdir()
    cpu = CpuMeter()
    t0 = time.perf_counter()
    r1 = run_cmd(["sha256sum"] + files)
    t1 = time.perf_counter()
    r2 = run_cmd(["cp"] + files + [str(dest) + "/"])
    t2 = time.perf_counter()
    r3 = run_cmd(["sync"] + sorted(str(p) for p in dest.iterdir()))
    t3 = time.perf_counter()
    used = cpu.read()
    shutil.rmtree(dest)
    if r1.returncode or r2.returncode or r3.returncode:
        return {"error": (r1.stderr + r2.stderr + r3.stderr)[-500:]}
    return {"s": t3 - t0, "sha256sum_s": t1 - t0, "cp_s": t2 - t1, "sync_s": t3 - t2,
            **used}


def bench_big_publish(args, server, token, tmp_root, cli, checks):
    pkg = tmp_root / "big-pkg"
    files = make_big_package(pkg, args.big_files, args.big_file_mb)
    mutate_package(pkg, files, "big-0")
    payload = package_bytes(pkg)
    rows = {"cli": [], "server_post": [], "baseline": []}
    broken = {}  # step -> first error: a step that failed once is not retried
    steps = ["cli", "server_post", "baseline"]
    for run in range(args.runs):
        order = steps[run % 3:] + steps[:run % 3]  # rotate: no step always goes first
        for step in order:
            name = "big-%s-%d" % ({"cli": "cli", "server_post": "srv", "baseline": "cp"}[step], run)
            mutate_package(pkg, files, name)
            os.sync()  # nobody pays for earlier writeback
            if step in broken:
                continue
            if step == "cli":
                r = time_cli_publish(cli, pkg, name, server, token, tmp_root)
            elif step == "server_post":
                r = time_server_post(pkg, files, name, server, token, tmp_root)
            else:
                r = time_baseline(pkg, tmp_root / ("dest-%d" % run))
            r["run"] = run
            rows[step].append(r)
            if "error" in r:
                broken[step] = r["error"]
                checks.append("big publish %s run %d (not retried): %s" % (step, run, r["error"]))
            print("  run %d %-11s %s" % (run, step, "ERROR " + r["error"][:120] if "error" in r
                  else "%.3f s wall, cpu: server %.2f s, client %.2f s" % (
                      r["s"], r["server_cpu_s"], r["client_cpu_s"])), flush=True)
    result = {"payload_bytes": payload, "files": len(files) + 1, "runs": args.runs, "rows": {}}
    for step, runs in rows.items():
        ok = [r for r in runs if "error" not in r]
        entry = {"runs": runs}
        if ok:
            entry["median_s"] = median([r["s"] for r in ok])
            entry["median_MBps"] = payload / MB / entry["median_s"]
            for k in ok[0]:
                if k.endswith("_s") and k != "s":
                    entry["median_" + k] = median([r[k] for r in ok])
        else:
            entry["error"] = runs[0]["error"] if runs else "not run"
        result["rows"][step] = entry
    base = result["rows"]["baseline"].get("median_MBps")
    for step in ("cli", "server_post"):
        ours = result["rows"][step].get("median_MBps")
        result["rows"][step]["ratio_vs_baseline"] = ours / base if ours and base else None
    shutil.rmtree(pkg)
    return result


# --------------------------------------------- 2. many small servables + queries
def gen_servable(i, rng):
    title_words = rng.sample(WORDS, rng.randint(2, 4))
    name = "%s-%05d" % ("-".join(title_words[:2]), i)
    title = " ".join(w.capitalize() for w in title_words) + " " + rng.choice(["model", "net", "estimator", "baseline"])
    description = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24))).capitalize() + "."
    creators = ["%s %s" % (rng.choice(FIRST), rng.choice(LAST)) for _ in range(rng.randint(1, 3))]
    tags = sorted(set(rng.sample(TAGS, rng.randint(2, 5))))
    meta = {"name": name, "title": title, "description": description, "creators": creators,
            "tags": tags, "task": rng.choice(TASKS), "domain": rng.choice(DOMAINS)}
    code = ("# %s\nimport numpy as np\nW = np.array(%r)\n\ndef predict(x):\n    return x @ W\n"
            % (name, [round(rng.uniform(-1, 1), 4) for _ in range(4)])).encode()
    yaml = manifest_yaml(name, ["model.py"], title, description, tags, creators,
                         meta["task"], meta["domain"]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for fname, data in (("orrery.yaml", yaml), ("model.py", code)):
            info = tarfile.TarInfo(fname)
            info.size, info.mode, info.mtime = len(data), 0o644, 1795000000
            tar.addfile(info, io.BytesIO(data))
    return meta, buf.getvalue()


def publish_small(server, token, items, threads, checks):
    """POST each in-memory tar; `threads` clients, each with one keep-alive connection."""
    next_index = [0]
    lock = threading.Lock()
    latencies, failures = [], []

    def worker():
        client = Client(server.port, token)
        mine = []
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(items):
                break
            meta, tar = items[i]
            headers = {"Content-Type": "application/x-tar",
                       "X-Orrery-Sha256": hashlib.sha256(tar).hexdigest()}
            t0 = time.perf_counter()
            status, body = client.request("POST", "/api/v1/servables/bench/%s/versions?check=false"
                                          % meta["name"],
                                          tar, headers)
            mine.append(time.perf_counter() - t0)
            if status != 201:
                with lock:
                    failures.append("%s: %d %s" % (meta["name"], status, body[:200]))
        with lock:
            latencies.extend(mine)

    cpu = CpuMeter(server.proc.pid)
    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    used = cpu.read()
    if failures:
        checks.append("small publish: %d failures, first: %s" % (len(failures), failures[0]))
    stats = latency_stats(latencies, wall)
    stats.update({"published": len(items) - len(failures), "failures": len(failures),
                  "threads": threads, "per_s": round((len(items) - len(failures)) / wall, 1),
                  "server_cpu_ms_per_req": round(used["server_cpu_s"] * 1000 / len(items), 3),
                  "client_cpu_ms_per_req": round(used["client_cpu_s"] * 1000 / len(items), 3)})
    return stats


def make_queries(metas, n, rng):
    """1-2 words taken from one servable's own text, so every search has a match."""
    queries = []
    for _ in range(n):
        m = rng.choice(metas)
        pool = [w for w in re.findall(r"[a-z0-9]+", (m["title"] + " " + m["description"] + " "
                + " ".join(m["tags"]) + " " + " ".join(c.split()[-1] for c in m["creators"])).lower())
                if len(w) >= 3 and w not in ("model", "net")]
        words = rng.sample(sorted(set(pool)), rng.choice([1, 2]))
        queries.append("/api/v1/search?" + urllib.parse.urlencode({"q": " ".join(words), "per_page": 20}))
    return queries


def load_pass(server, token, paths, clients, validate):
    """Sends `paths` over `clients` keep-alive connections; returns latency stats and problems."""
    per_client = [paths[i::clients] for i in range(clients)]
    results = [None] * clients

    def worker(k):
        c = Client(server.port, token)
        for p in per_client[k][:10]:  # warm the connection and the server's caches
            c.request("GET", p)
        barrier.wait()
        lat, bodies = [], []
        for p in per_client[k]:
            t0 = time.perf_counter()
            status, body = c.request("GET", p)
            lat.append(time.perf_counter() - t0)
            bodies.append((p, status, body))
        results[k] = (lat, bodies)

    barrier = threading.Barrier(clients + 1)
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in pool:
        t.start()
    barrier.wait()
    cpu = CpuMeter(server.proc.pid)
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    used = cpu.read()
    latencies, problems, totals = [], [], []
    for lat, bodies in results:
        latencies.extend(lat)
        for p, status, body in bodies:
            problem, total = validate(status, body)
            if problem:
                problems.append("%s -> %s" % (p, problem))
            if total is not None:
                totals.append(total)
    stats = latency_stats(latencies, wall)
    stats["clients"] = clients
    stats["problems"] = len(problems)
    stats["server_cpu_ms_per_req"] = round(used["server_cpu_s"] * 1000 / len(paths), 3)
    stats["client_cpu_ms_per_req"] = round(used["client_cpu_s"] * 1000 / len(paths), 3)
    if totals:
        stats["median_total_matches"] = median(totals)
    return stats, problems


def validate_page(status, body):
    if status != 200:
        return "HTTP %d %s" % (status, body[:200]), None
    page = json.loads(body)
    if not page.get("items"):
        return "no results (total %s)" % page.get("total"), page.get("total")
    return None, page.get("total")


def validate_live(status, body):
    if status != 200 or b"live" not in body:
        return "HTTP %d %s" % (status, body[:200]), None
    return None, None


def bench_search(args, server, pub_token, checks):
    rng = random.Random(SEED)
    print("generating %d servables ..." % args.servables, flush=True)
    items = [gen_servable(i, rng) for i in range(args.servables)]
    print("publishing them with %d keep-alive clients ..." % args.publish_threads, flush=True)
    publish = publish_small(server, pub_token, items, args.publish_threads, checks)
    print("  %(published)d published in %(wall_s).1f s: %(per_s).1f/s, p50 %(p50_ms).1f ms, "
          "p99 %(p99_ms).1f ms" % publish, flush=True)
    reader = Client(server.port, server.admin_token).json("POST", "/api/v1/tokens", {"tenant": "bench", "role": "reader"})["token"]
    metas = [m for m, _ in items]
    qrng = random.Random(SEED + 1)
    workloads = {
        "health_live": (["/v2/health/live"] * args.queries, validate_live),
        "search": (make_queries(metas, args.queries, qrng), validate_page),
        "list_tag": (["/api/v1/servables?" + urllib.parse.urlencode({"tag": qrng.choice(TAGS)})
                      for _ in range(args.queries)], validate_page),
    }
    out = {"publish": publish, "queries": {}}
    for name, (paths, validate) in workloads.items():
        out["queries"][name] = {}
        for clients in (1, args.clients):
            stats, problems = load_pass(server, reader, paths, clients, validate)
            out["queries"][name]["c%d" % clients] = stats
            if problems:
                checks.append("%s c%d: %d problems, first: %s" % (name, clients, len(problems), problems[0]))
            print("  %-12s c%d  p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  %7.1f req/s%s" % (
                name, clients, stats["p50_ms"], stats["p90_ms"], stats["p99_ms"], stats["req_per_s"],
                "  %d PROBLEMS" % len(problems) if problems else ""), flush=True)
    return out


# -------------------------------------------------------------------- report
def print_table(res):
    big = res.get("big_publish")
    if big:
        print("\n== Publish %.0f MB package (%d files), median of %d runs ==" % (
            big["payload_bytes"] / MB, big["files"], big["runs"]))
        print("%-42s %8s %7s %7s %10s %10s" % ("", "median s", "MB/s", "vs base",
                                                "server cpu", "client cpu"))
        labels = {"cli": "orrery publish (CLI: pack+hash+upload)",
                  "server_post": "server only (POST pre-built tar)",
                  "baseline": "sha256sum && cp && sync (baseline)"}
        for step, label in labels.items():
            row = big["rows"][step]
            if "median_s" not in row:
                print("%-42s FAILED: %s" % (label, row.get("error", "")[:100]))
                continue
            ratio = row.get("ratio_vs_baseline")
            print("%-42s %8.3f %7.1f %7s %9.2fs %9.2fs" % (
                label, row["median_s"], row["median_MBps"], "%.2fx" % ratio if ratio else "1.00x",
                row["median_server_cpu_s"], row["median_client_cpu_s"]))
        srv, base = big["rows"]["server_post"], big["rows"]["baseline"]
        if "median_s" in srv:
            print("  server POST split: upload %.3f s, after body until 201 %.3f s "
                  "(python tar build %.3f s + sha256 %.3f s, not in the row)" % (
                      srv["median_upload_s"], srv["median_after_body_s"],
                      srv["median_py_tar_build_s"], srv["median_py_sha256_s"]))
        if "median_s" in base:
            print("  baseline split: sha256sum %.3f s, cp %.3f s, sync %.3f s" % (
                base["median_sha256sum_s"], base["median_cp_s"], base["median_sync_s"]))
    s = res.get("search")
    if s:
        p = s["publish"]
        print("\n== %d small servables: publish %.1f/s with %d clients (p50 %.1f ms, p99 %.1f ms, "
              "server cpu %.1f ms each) ==" % (p["published"], p["per_s"], p["threads"], p["p50_ms"],
                                                p["p99_ms"], p["server_cpu_ms_per_req"]))
        print("%-17s %7s %7s %7s %7s %8s %7s %12s" % ("", "p50 ms", "p90 ms", "p99 ms", "max ms",
                                                   "req/s", "matches", "srv cpu/req"))
        for name, passes in s["queries"].items():
            for c, st in passes.items():
                print("%-17s %7.2f %7.2f %7.2f %7.2f %8.1f %7s %9.3f ms" % (
                    "%s %s" % (name, c), st["p50_ms"], st["p90_ms"], st["p99_ms"], st["max_ms"],
                    st["req_per_s"], st.get("median_total_matches", ""), st["server_cpu_ms_per_req"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 servables, 3 runs, 500 queries")
    ap.add_argument("--orrery", default=str(REPO / "build" / "orrery"), help="binary for `serve`")
    ap.add_argument("--cli", default=None, help="binary for `publish` (default: --orrery)")
    ap.add_argument("--runs", type=int, help="big-publish runs per row (default 5, quick 3)")
    ap.add_argument("--servables", type=int, help="small servables (default 10000, quick 1000)")
    ap.add_argument("--queries", type=int, help="requests per pass (default 2000, quick 500)")
    ap.add_argument("--clients", type=int, default=4, help="clients in the concurrent pass")
    ap.add_argument("--publish-threads", type=int, default=4, help="clients publishing small servables")
    ap.add_argument("--big-files", type=int, default=5)
    ap.add_argument("--big-file-mb", type=int, default=10)
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="extra `orrery serve` argument, repeatable, e.g. --server-arg=--threads=8")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--tmp-root", default=None, help="parent of the temp dir (default $TMPDIR or /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data dir, server log)")
    args = ap.parse_args()
    args.runs = args.runs or (3 if args.quick else 5)
    args.servables = args.servables or (1000 if args.quick else 10000)
    args.queries = args.queries or (500 if args.quick else 2000)
    orrery = Path(args.orrery).resolve()
    cli = Path(args.cli).resolve() if args.cli else orrery
    if not orrery.exists():
        sys.exit("no %s: build it with `ninja -C build -j2 orrery`" % orrery)

    # SIGTERM/SIGHUP unwind through `finally` like Ctrl-C, so the server is always stopped.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    tmp = Path(tempfile.mkdtemp(prefix="orrery-bench-", dir=args.tmp_root))
    server = Server(orrery, tmp / "data", tmp / "server.log", args.server_arg)
    checks = []
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    res = {"benchmark": "publish_search", "machine": machine_facts(tmp, orrery),
           "config": {k: v for k, v in vars(args).items()}, "cli_binary": str(cli)}
    t_start = time.perf_counter()
    try:
        server.start()
        print("server pid %d on port %d, data dir %s" % (server.proc.pid, server.port, server.data_dir), flush=True)
        admin = Client(server.port, server.admin_token)
        admin.json("POST", "/api/v1/tenants", {"name": "bench"})
        pub_token = admin.json("POST", "/api/v1/tokens", {"tenant": "bench", "role": "publisher"})["token"]
        if not args.skip_big:
            print("big publish: %d runs x (CLI, server POST, baseline) ..." % args.runs, flush=True)
            res["big_publish"] = bench_big_publish(args, server, pub_token, tmp, cli, checks)
        if not args.skip_search:
            res["search"] = bench_search(args, server, pub_token, checks)
    except KeyboardInterrupt:
        checks.append("interrupted")
    except Exception as e:  # report what we have
        checks.append("aborted: %r" % e)
        raise
    finally:
        server.stop()
        res["server_log_tail"] = server.log_tail()
        res["checks_failed"] = checks
        res["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        res["machine"]["loadavg_at_end"] = os.getloadavg()
        out_dir = REPO / "bench" / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        out_path = out_dir / ("publish_search-%s.json" % stamp)
        out_path.write_text(json.dumps(res, indent=2, default=str) + "\n")
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(res)
    print("\nchecks: %s" % ("all passed" if not checks else "%d FAILED" % len(checks)))
    for c in checks:
        print("  - " + c[:300])
    print("results: %s  (%.0f s)" % (out_path, res["elapsed_s"]))
    return 1 if checks else 0


if __name__ == "__main__":
    sys.exit(main())
