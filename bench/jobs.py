#!/usr/bin/python3
"""Training jobs on the local executor (docs/jobs.md): the bars of issue 14.

    /usr/bin/python3 bench/jobs.py [--quick] [--only submit,overhead,fairness,recovery]

Each part starts its own `orrery serve` (build/orrery, a private data dir, free loopback ports)
through the end-to-end tests' server helper (tests/e2e/hub.py).

  submit     50 no-op jobs (`true`), one at a time: from the POST's start (client clock) to the
             RUNNING event in the job's history (server clock, same machine). Bar: p50 <= 100 ms.
  overhead   a CPU-bound training run (examples/train-digits, --hidden 1024 --epochs 90: 1.1M
             parameters, about 60 s here; --hidden 512 --epochs 4 with --quick)
             through Orrery (submit to COMPLETED, polled every 50 ms)
             and the same command run directly with the same environment contract, interleaved,
             3 of each (1 with --quick); medians. Bar: Orrery <= 1.02 x direct.
  fairness   4 tenants each submit 25 short jobs (0.3 s) at once, one tenant after the other,
             under --job-slots 2; the run is cut into four quarters by time, and each tenant's
             share of the jobs completed in each quarter is reported. Bar: within 25% +- 10
             points (15..35%) in every quarter; the relative deviation is printed too.
  recovery   kill -9 of the job's process, of its supervisor, and of the server in the middle
             of a run: the time from the kill to RUNNING again (job, supervisor: a restart from
             the checkpoint; server: the restarted server reporting the job RUNNING, re-attached),
             and whether the final value equals an uninterrupted run's.

Prints a table with PASS/FAIL and writes bench/out/jobs-<UTC timestamp>.json; exit status 1 when
a bar failed.
"""
import argparse
import calendar
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
os.environ.setdefault("ORRERY_BIN", str(REPO / "build" / "orrery"))
os.environ.setdefault("ORRERY_SOURCE_DIR", str(REPO))
import hub  # noqa: E402  (the e2e tests' server helper)

TOY = (REPO / "tests" / "e2e" / "jobs" / "toy_train.py").read_bytes()
TRAIN = (REPO / "examples" / "train-digits" / "code" / "train.py").read_bytes()
DATASET = REPO / "examples" / "digits-dataset"


def at_s(text):
    """Seconds since the epoch of an RFC 3339 UTC time with milliseconds."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + float(text[19:-1] or 0)


class Hub:
    def __init__(self, args=()):
        self.server = hub.Server(args=("--grpc-port", "off") + tuple(args)).start()
        self.lab = self.server.new_tenant(("publisher", "reader"))

    def upload(self, files, token=None):
        status, data = self.server.post("/api/v1/jobs/code", token or self.lab["publisher"], None,
                                        body=hub.make_tar(files),
                                        headers={"Content-Type": "application/x-tar"})
        assert status == 201, data
        return data["digest"]

    def submit(self, spec, token=None):
        status, data = self.server.post("/api/v1/jobs", token or self.lab["publisher"], spec)
        assert status == 201, data
        return data

    def job(self, job_id):
        return self.server.get("/api/v1/jobs/%d" % job_id, self.server.admin)[1]

    def wait(self, job_id, states, timeout=600, interval=0.05):
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            if time.monotonic() > deadline:
                raise RuntimeError("job %d stuck in %s" % (job_id, job["state"]))
            time.sleep(interval)

    def close(self):
        self.server.cleanup()


def spec(code, command, **fields):
    out = {"name": "bench", "code": {"upload": code}, "command": command, "halt_grace": 5,
           "resources": {"memory": "1GiB", "wall_time": 3600}}
    out.update(fields)
    return out


# ---------------------------------------------------------------- submit -> RUNNING

def bench_submit(runs):
    h = Hub()
    try:
        code = h.upload({"noop.sh": b"true\n"})
        latencies = []
        for _ in range(runs):
            start = time.time()
            job = h.submit(spec(code, ["true"]))
            done = h.wait(job["id"], ("COMPLETED", "FAILED"), interval=0.01)
            running = next(e for e in done["history"] if e["state"] == "RUNNING")
            latencies.append((at_s(running["at"]) - start) * 1000)
        latencies.sort()
        return {"runs": runs, "p50_ms": statistics.median(latencies),
                "p90_ms": latencies[int(len(latencies) * 0.9) - 1], "max_ms": latencies[-1]}
    finally:
        h.close()


# ---------------------------------------------------------------- overhead

def bench_overhead(runs, epochs, hidden):
    h = Hub()
    tmp = Path(tempfile.mkdtemp(prefix="orrery-bench-jobs-"))
    try:
        examples = h.server.create_tenant("examples")
        token = h.server.create_token("examples", "publisher")["token"]
        r = hub.run_cli(["publish", str(DATASET), "--public"],
                        env={"ORRERY_URL": h.server.url, "ORRERY_TOKEN": token})
        assert r.returncode == 0, r.stderr
        code = h.upload({"train.py": TRAIN})
        command = ["python3", "train.py", "--epochs", str(epochs), "--hidden", str(hidden)]

        def through_orrery():
            start = time.monotonic()
            job = h.submit(spec(code, command, inputs={"digits": {"dataset": "examples/digits-dataset:1"}}))
            h.wait(job["id"], ("COMPLETED",), interval=0.05)
            return time.monotonic() - start

        def direct():
            for d in ("inputs/digits", "output", "checkpoint", "metrics"):
                shutil.rmtree(tmp / d, ignore_errors=True)
                (tmp / d).mkdir(parents=True)
            shutil.copy(DATASET / "digits.csv", tmp / "inputs" / "digits")
            (tmp / "train.py").write_bytes(TRAIN)
            env = dict(os.environ, ORRERY_INPUTS=str(tmp / "inputs"), ORRERY_OUTPUT=str(tmp / "output"),
                       ORRERY_CHECKPOINT=str(tmp / "checkpoint"),
                       ORRERY_METRICS=str(tmp / "metrics" / "metrics.jsonl"), OMP_NUM_THREADS="1")
            start = time.monotonic()
            subprocess.run(["/usr/bin/python3", "train.py"] + command[2:], cwd=tmp, env=env,
                           check=True, stdout=subprocess.DEVNULL)
            return time.monotonic() - start

        orrery, plain = [], []
        for i in range(runs):
            for name, fn, out in ((("orrery", through_orrery, orrery), ("direct", direct, plain))
                                  if i % 2 == 0 else
                                  (("direct", direct, plain), ("orrery", through_orrery, orrery))):
                out.append(fn())
                print("  overhead run %d %s: %.2f s" % (i + 1, name, out[-1]), flush=True)
        return {"runs": runs, "epochs": epochs, "hidden": hidden, "orrery_s": orrery, "direct_s": plain,
                "ratio": statistics.median(orrery) / statistics.median(plain)}
    finally:
        h.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- fairness

def bench_fairness(per_tenant, duration):
    h = Hub(("--job-slots", "2"))
    try:
        tenants = [h.server.new_tenant(("publisher",)) for _ in range(4)]
        codes = [h.upload({"noop.sh": b"true\n"}, t["publisher"]) for t in tenants]
        jobs = {}
        for tenant, code in zip(tenants, codes):  # tenant after tenant, all at once
            for _ in range(per_tenant):
                job = h.submit(spec(code, ["sleep", str(duration)]), tenant["publisher"])
                jobs[job["id"]] = tenant.name
        ends = []
        for job_id, tenant in jobs.items():
            done = h.wait(job_id, ("COMPLETED", "FAILED"), interval=0.1)
            ends.append((at_s(done["updated_at"]), tenant))
        ends.sort()
        first, last = ends[0][0], ends[-1][0]
        quarters = []
        for q in range(4):
            lo = first + (last - first) * q / 4
            hi = first + (last - first) * (q + 1) / 4
            inside = [t for when, t in ends if lo <= when < hi or (q == 3 and when == hi)]
            shares = {t.name: inside.count(t.name) / len(inside) for t in tenants}
            quarters.append({"jobs": len(inside), "shares": shares})
        worst = max(abs(s - 0.25) for q in quarters for s in q["shares"].values())
        return {"tenants": 4, "jobs_each": per_tenant, "slots": 2, "quarters": quarters,
                "worst_deviation_points": worst * 100, "worst_relative": worst / 0.25}
    finally:
        h.close()


# ---------------------------------------------------------------- recovery

def process_with(marker):
    pids = hub.processes(lambda argv: marker.encode() in argv and b"python3" in argv[0])
    return pids[0] if pids else None


def toy_value(steps):
    value = 1
    for step in range(steps):
        value = (value * 31 + step) % 1000003
    return value


def bench_recovery():
    out = {}
    h = Hub()
    try:
        code = h.upload({"toy_train.py": TOY})
        for what, steps in (("job process", 61), ("supervisor", 62)):
            job = h.submit(spec(code, ["python3", "toy_train.py", str(steps), "0.05"]))
            while len(h.server.get("/api/v1/jobs/%d/metrics" % job["id"], h.server.admin)[1]["metrics"]) < 10:
                time.sleep(0.02)
            killed = time.time()
            if what == "job process":
                os.kill(process_with(str(steps)), signal.SIGKILL)
            else:
                os.kill(h.server.job_supervisors()[0], signal.SIGKILL)
            done = h.wait(job["id"], ("COMPLETED", "FAILED"))
            restart = [e for e in done["history"] if e["state"] == "RUNNING"][-1]
            metrics = h.server.get("/api/v1/jobs/%d/metrics" % job["id"], h.server.admin)[1]["metrics"]
            out[what] = {"kill_to_running_ms": (at_s(restart["at"]) - killed) * 1000,
                         "attempts": done["attempts"], "state": done["state"],
                         "same_result": metrics[-1]["value"] == toy_value(steps)}
        job = h.submit(spec(code, ["python3", "toy_train.py", "63", "0.05"]))
        while len(h.server.get("/api/v1/jobs/%d/metrics" % job["id"], h.server.admin)[1]["metrics"]) < 10:
            time.sleep(0.02)
        killed = time.monotonic()
        h.server.kill()
        h.server.start()
        while h.job(job["id"])["state"] != "RUNNING":
            time.sleep(0.01)
        back = (time.monotonic() - killed) * 1000
        done = h.wait(job["id"], ("COMPLETED", "FAILED"))
        metrics = h.server.get("/api/v1/jobs/%d/metrics" % job["id"], h.server.admin)[1]["metrics"]
        out["server"] = {"kill_to_running_ms": back, "attempts": done["attempts"],
                         "state": done["state"], "same_result": metrics[-1]["value"] == toy_value(63)}
        return out
    finally:
        h.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="submit,overhead,fairness,recovery")
    args = parser.parse_args()
    parts = args.only.split(",")
    results, checks = {}, []
    if "submit" in parts:
        results["submit"] = r = bench_submit(50)
        checks.append(("submit -> RUNNING p50 <= 100 ms", r["p50_ms"] <= 100,
                       "p50 %.1f ms, p90 %.1f, max %.1f" % (r["p50_ms"], r["p90_ms"], r["max_ms"])))
    if "overhead" in parts:
        results["overhead"] = r = bench_overhead(1 if args.quick else 3, *((4, 512) if args.quick else (90, 1024)))
        checks.append(("overhead <= 1.02 x direct", r["ratio"] <= 1.02,
                       "%.4f (orrery %s s, direct %s s)" % (
                           r["ratio"], ", ".join("%.2f" % x for x in r["orrery_s"]),
                           ", ".join("%.2f" % x for x in r["direct_s"]))))
    if "fairness" in parts:
        results["fairness"] = r = bench_fairness(25, 0.3)
        checks.append(("fairness: every quarter within 25% +- 10 points",
                       r["worst_deviation_points"] <= 10,
                       "worst %.1f points (%.0f%% relative); quarters: %s" % (
                           r["worst_deviation_points"], r["worst_relative"] * 100,
                           "; ".join(" ".join("%.0f%%" % (s * 100) for s in q["shares"].values())
                                     for q in r["quarters"]))))
    if "recovery" in parts:
        results["recovery"] = r = bench_recovery()
        for what, figures in r.items():
            checks.append(("recovery after kill -9 of the %s" % what,
                           figures["state"] == "COMPLETED" and figures["same_result"],
                           "RUNNING again after %.0f ms, %d attempts, same result: %s" % (
                               figures["kill_to_running_ms"], figures["attempts"],
                               figures["same_result"])))
    width = max(len(c[0]) for c in checks)
    for name, ok, detail in checks:
        print("%-*s  %s  %s" % (width, name, "PASS" if ok else "FAIL", detail))
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    (out_dir / ("jobs-%s.json" % stamp)).write_text(json.dumps(
        {"results": results, "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in checks]},
        indent=2))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
