"""Training jobs against the real binary (docs/jobs.md), on the local executor: submit through
the CLI and REST, the job's contract (inputs read-only, output, checkpoint, metrics), bad specs
refused with nothing stored, failures with their reasons, a bounded log, halt and resume from the
checkpoint, restarts after `kill -9` of the job or its supervisor, jobs that run on through a
`kill -9` of the server, tenants and roles, and per-tenant limits.

The training script (jobs/toy_train.py) is deterministic: its final value depends only on how
many steps it took, so an interrupted run must end with the uninterrupted run's value."""

import json
import os
import re
import shutil
import signal
import tempfile
import time
import unittest

import hub
from hub import HubTestCase, Server, run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
TOY = open(os.path.join(HERE, "jobs", "toy_train.py"), "rb").read()


def expected_value(steps):
    """What toy_train.py computes in `steps` steps."""
    value = 1
    for step in range(steps):
        value = (value * 31 + step) % 1000003
    return value


class JobsTestCase(HubTestCase):
    server_args = ("--job-slots", "2", "--job-log-bytes", "65536")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lab = cls.server.new_tenant(("reader", "publisher", "admin"))
        cls.other = cls.server.new_tenant(("publisher", "admin"))
        cls.toy = cls.upload(cls.server, {"toy_train.py": TOY}, cls.lab["publisher"])

    # -- helpers

    @staticmethod
    def upload(server, files, token):
        status, data = server.post("/api/v1/jobs/code", token, None, body=hub.make_tar(files),
                                   headers={"Content-Type": "application/x-tar"})
        hub.expect(status, data, 201, "upload job code")
        return data["digest"]

    def spec(self, command, code=None, **fields):
        spec = {"name": "job-" + hub.unique("j"), "code": {"upload": code or self.toy},
                "command": list(command), "halt_grace": 5,
                "resources": {"memory": "512MiB", "wall_time": 120}}
        spec.update(fields)
        return spec

    def toy_spec(self, steps, delay=0.05, **fields):
        return self.spec(["python3", "toy_train.py", str(steps), str(delay)], **fields)

    def submit(self, spec, server=None, token=None):
        server = server or self.server
        status, data = server.post("/api/v1/jobs", token or self.lab["publisher"], spec)
        self.assertEqual(status, 201, data)
        return data

    def show(self, job_id, server=None):
        status, data = (server or self.server).get("/api/v1/jobs/%d" % job_id, self.lab["reader"])
        self.assertEqual(status, 200, data)
        return data

    def wait(self, job_id, states, timeout=60, server=None):
        deadline = time.monotonic() + timeout
        while True:
            job = self.show(job_id, server)
            if job["state"] in states:
                return job
            if time.monotonic() > deadline:
                self.fail("job %d is %s (%s), not %s after %ss\n%s" % (
                    job_id, job["state"], job["reason"], states, timeout, self.log(job_id, server)))
            time.sleep(0.05)

    def log(self, job_id, server=None):
        status, data = (server or self.server).get("/api/v1/jobs/%d/logs" % job_id,
                                                   self.lab["reader"])
        self.assertEqual(status, 200, data)
        return data.decode() if isinstance(data, bytes) else str(data)

    def metrics(self, job_id, server=None):
        status, data = (server or self.server).get("/api/v1/jobs/%d/metrics" % job_id,
                                                   self.lab["reader"])
        self.assertEqual(status, 200, data)
        return data["metrics"]

    def wait_steps(self, job_id, steps, server=None, timeout=60):
        deadline = time.monotonic() + timeout
        while len(self.metrics(job_id, server)) < steps:
            self.assertLess(time.monotonic(), deadline, "job %d made no progress" % job_id)
            time.sleep(0.05)

    def states(self, job):
        return [event["state"] for event in job["history"]]

    def process_of(self, marker):
        """The pid of the (only) Python process whose argv holds `marker`."""
        pids = hub.processes(lambda argv: marker.encode() in argv and b"python3" in argv[0])
        return pids[0] if pids else None


class SubmitAndRunTest(JobsTestCase):

    def test_cli_submit_follow_show_list(self):
        workdir = tempfile.mkdtemp(prefix="orrery-job-")
        self.addCleanup(shutil.rmtree, workdir, True)
        os.mkdir(os.path.join(workdir, "train"))
        with open(os.path.join(workdir, "train", "toy_train.py"), "wb") as f:
            f.write(TOY)
        with open(os.path.join(workdir, "job.yaml"), "w") as f:
            f.write("name: toy\ncode: ./train\ncommand: [python3, toy_train.py, '3', '0.05']\n"
                    "resources: {memory: 512MiB}\n")
        env = {"ORRERY_URL": self.server.url, "ORRERY_TOKEN": self.lab["publisher"]}
        r = run_cli(["job", "submit", "--follow", os.path.join(workdir, "job.yaml")], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("step 3\ndone\n", r.stdout)
        self.assertRegex(r.stderr, r"job (\d+): COMPLETED \(exit code 0\)")
        job_id = int(re.search(r"job (\d+)", r.stderr).group(1))
        job = self.show(job_id)
        self.assertEqual(self.states(job), ["QUEUED", "STARTING", "RUNNING", "COMPLETED"])
        self.assertEqual(job["metrics"]["count"], 3)
        self.assertEqual(job["metrics"]["last"], {"step": 3, "value": expected_value(3)})
        self.assertEqual(len(job["attempt_list"]), 1)
        self.assertEqual(job["attempt_list"][0]["outcome"], "completed: exit code 0")
        # The code is the uploaded directory, by its digest: the same as a REST upload.
        self.assertEqual(job["code_digest"], self.toy)
        r = run_cli(["job", "show", str(job_id)], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("state:     COMPLETED (exit code 0)", r.stdout)
        r = run_cli(["job", "list", "--json"], env=env)
        self.assertIn(job_id, [j["id"] for j in json.loads(r.stdout)["jobs"]])
        r = run_cli(["job", "logs", str(job_id)], env=env)
        self.assertIn("[orrery] attempt 1 starts", r.stdout)

    def test_inputs_are_pinned_and_read_only(self):
        name = hub.unique("d")
        archive = hub.make_tar({"data.txt": b"the data\n"},
                               hub.to_yaml(hub.manifest(name, ["data.txt"], "dataset")))
        self.server.publish_ok(self.lab.name, name, archive, self.lab["publisher"],
                               kind="datasets")
        script = ("cat $ORRERY_INPUTS/data/data.txt; "
                  "(echo x > $ORRERY_INPUTS/data/data.txt) 2>/dev/null && exit 3; "
                  "(echo x > ./planted) 2>/dev/null && exit 4; "
                  "(echo x > %s/planted) 2>/dev/null && exit 5; exit 0" % self.server.data_dir)
        job = self.submit(self.spec(["sh", "-c", script],
                                    inputs={"data": {"dataset": "%s/%s" % (self.lab.name, name)}}))
        self.assertEqual(job["resolved"]["inputs"]["data"]["ref"], "%s/%s:1" % (self.lab.name, name))
        self.assertEqual(len(job["resolved"]["inputs"]["data"]["digest"]), 64)
        done = self.wait(job["id"], ("COMPLETED", "FAILED"))
        self.assertEqual(done["state"], "COMPLETED", self.log(job["id"]))
        self.assertIn("the data\n", self.log(job["id"]))
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "planted")))


class BadInputTest(JobsTestCase):

    def job_count(self):
        status, data = self.server.get("/api/v1/jobs?limit=10000", self.server.admin)
        return len(data["jobs"])

    def test_bad_specs_are_refused_and_store_nothing(self):
        before = self.job_count()
        good = self.spec(["true"])
        cases = [
            ("{{{", 422, "job spec: not YAML or JSON"),
            ({"name": "x", "code": {"upload": self.toy}}, 422, "job spec: command: required"),
            (dict(good, epochs=3), 422, "job spec: epochs: unknown key"),
            (dict(good, command="python3 train.py"), 422, "job spec: command: must be a list"),
            (dict(good, code="./train"), 422, "job spec: code: './train' is a directory"),
            (dict(good, network=True), 422, "job spec: network: this hub does not let jobs"),
            (dict(good, resources={"cpus": 1000}), 422, "job spec: resources.cpus: asks for 1000"),
            (dict(good, resources={"gpus": 1}), 422, "job spec: resources.gpus: asks for 1"),
            (dict(good, executor="slurm"), 422, "job spec: executor: slurm is not configured"),
            (dict(good, code={"upload": "0" * 64}), 404, "no uploaded files with digest"),
        ]
        for body, status, prefix in cases:
            with self.subTest(body=body):
                if isinstance(body, str):
                    resp = self.server.request("POST", "/api/v1/jobs", self.lab["publisher"],
                                               body=body.encode())
                else:
                    resp = self.server.post("/api/v1/jobs", self.lab["publisher"], body)
                self.assertError(resp, status, message_prefix=prefix)
        # A reader may not submit.
        self.assertError(self.server.post("/api/v1/jobs", self.lab["reader"], good), 403)
        self.assertEqual(self.job_count(), before)

    def test_an_invisible_input_is_absent(self):
        private = hub.unique("d")
        archive = hub.make_tar({"a.txt": b"a"},
                               hub.to_yaml(hub.manifest(private, ["a.txt"], "dataset")))
        self.server.publish_ok(self.other.name, private, archive, self.other["publisher"],
                               kind="datasets")
        ghost = "g" * len(private)
        answers = []
        for name in (private, ghost):
            spec = self.spec(["true"], inputs={"d": {"dataset": "%s/%s" % (self.other.name, name)}})
            answers.append(self.server.post("/api/v1/jobs", self.lab["publisher"], spec))
        self.assertError(answers[0], 404)
        self.assertEqual(answers[0][1]["error"], answers[1][1]["error"].replace(ghost, private))


class FailuresTest(JobsTestCase):

    def run_job(self, command, **fields):
        job = self.submit(self.spec(command, **fields))
        return self.wait(job["id"], ("COMPLETED", "FAILED", "CANCELLED"))

    def test_failures_say_why(self):
        missing = self.run_job(["no-such-program"])
        self.assertEqual((missing["state"], missing["reason"]),
                         ("FAILED", "command not found: no-such-program"))
        failing = self.run_job(["sh", "-c", "echo about to fail; exit 3"])
        self.assertEqual((failing["state"], failing["reason"]),
                         ("FAILED", "exit code 3: about to fail"))
        slow = self.run_job(["sleep", "30"], halt_grace=1,
                            resources={"memory": "256MiB", "wall_time": 1})
        self.assertEqual(slow["state"], "FAILED")
        self.assertTrue(slow["reason"].startswith("wall time of 1 s exceeded"), slow["reason"])
        greedy = self.run_job(["python3", "-c", "x = bytearray(400 << 20)"],
                              resources={"memory": "128MiB"})
        self.assertEqual(greedy["state"], "FAILED")
        self.assertIn("MemoryError", greedy["reason"])
        # Own failures are not restarted; only faults are.
        self.assertEqual((failing["attempts"], failing["restarts"]), (1, 0))

    def test_the_network_and_unbounded_forks_are_contained(self):
        net = self.run_job(["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', %d))"
                            % self.server.port])
        self.assertEqual(net["state"], "FAILED")
        self.assertIn("PermissionError", net["reason"])
        # The shell cannot start a thousand processes: its job's pids limit stops it.
        forks = self.run_job(["sh", "-c", "for i in $(seq 1000); do sleep 5 & done; echo all started"])
        self.assertEqual(forks["state"], "FAILED")
        self.assertIn("Cannot fork", forks["reason"])
        self.assertNotIn("\nall started\n", self.log(forks["id"]))

    def test_a_metrics_file_made_a_link_is_not_followed(self):
        job = self.run_job(["sh", "-c", "rm -f $ORRERY_METRICS; ln -s /etc/passwd $ORRERY_METRICS"])
        self.assertEqual(job["state"], "COMPLETED", job["reason"])
        self.assertError(self.server.get("/api/v1/jobs/%d/metrics" % job["id"], self.lab["reader"]),
                         422, message="the job's metrics file is not a regular file")
        shown = self.show(job["id"])
        self.assertEqual(shown["metrics"]["count"], 0)
        self.assertNotIn("root:", json.dumps(shown))

    def test_a_flooding_job_keeps_a_bounded_log(self):
        job = self.run_job(["python3", "-c", "import sys\nfor i in range(200000): print('line', i)"])
        self.assertEqual(job["state"], "COMPLETED", job["reason"])
        log = self.log(job["id"])
        self.assertLess(len(log), 65536 + 70000)
        self.assertIn("[orrery] the log reached its limit of 65536 bytes", log)
        self.assertIn("line 199999\n", log)


class HaltResumeTest(JobsTestCase):

    def test_halt_and_resume_from_the_checkpoint(self):
        job = self.submit(self.toy_spec(40))
        self.wait_steps(job["id"], 5)
        status, data = self.server.post("/api/v1/jobs/%d/halt" % job["id"], self.lab["publisher"])
        self.assertEqual(status, 200, data)
        halted = self.wait(job["id"], ("HALTED",))
        self.assertTrue(halted["reason"].startswith("halted; the checkpoint is kept"), halted)
        self.assertIn("halted at step", self.log(job["id"]))
        # Halting a halted job again is fine; resuming anything but HALTED is a conflict.
        self.assertEqual(self.server.post("/api/v1/jobs/%d/halt" % job["id"],
                                          self.lab["publisher"])[0], 200)
        status, data = self.server.post("/api/v1/jobs/%d/resume" % job["id"], self.lab["publisher"])
        self.assertEqual(status, 200, data)
        done = self.wait(job["id"], ("COMPLETED", "FAILED"))
        self.assertEqual(done["state"], "COMPLETED", self.log(job["id"]))
        self.assertEqual(self.states(done), ["QUEUED", "STARTING", "RUNNING", "HALTING", "HALTED",
                                             "QUEUED", "STARTING", "RUNNING", "COMPLETED"])
        self.assertIn("resumed at step", self.log(job["id"]))
        self.assertEqual(self.metrics(job["id"])[-1]["value"], expected_value(40))
        self.assertError(self.server.post("/api/v1/jobs/%d/resume" % job["id"],
                                          self.lab["publisher"]), 409)

    def test_a_job_that_ignores_sigterm_is_killed_after_its_grace(self):
        job = self.submit(self.spec(["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.05; done"],
                                    halt_grace=1))
        self.wait(job["id"], ("RUNNING",))
        asked = time.monotonic()
        self.server.post("/api/v1/jobs/%d/halt" % job["id"], self.lab["publisher"])
        halted = self.wait(job["id"], ("HALTED",))
        self.assertGreaterEqual(time.monotonic() - asked, 0.9)
        self.assertIn("signal 9", halted["reason"])

    def test_cancel(self):
        queued_or_running = self.submit(self.spec(["sleep", "30"], halt_grace=1))
        status, data = self.server.post("/api/v1/jobs/%d/cancel" % queued_or_running["id"],
                                        self.lab["publisher"])
        self.assertEqual(status, 200, data)
        done = self.wait(queued_or_running["id"], ("CANCELLED",))
        self.assertTrue(done["reason"].startswith("cancel"), done["reason"])
        self.assertError(self.server.post("/api/v1/jobs/%d/cancel" % done["id"],
                                          self.lab["publisher"]), 409)


class FaultsTest(JobsTestCase):

    def recovery_ms(self, job):
        """From the restart's QUEUED to RUNNING again (milliseconds), from the history."""
        at = lambda e: time.mktime(time.strptime(e["at"][:19], "%Y-%m-%dT%H:%M:%S")) + \
            float(e["at"][19:-1] or 0)
        events = job["history"]
        restart = next(i for i, e in enumerate(events) if e["reason"].startswith("restarting"))
        running = next(e for e in events[restart:] if e["state"] == "RUNNING")
        return (at(running) - at(events[restart])) * 1000

    def test_kill_of_the_job_process_restarts_it_from_the_checkpoint(self):
        job = self.submit(self.toy_spec(41))
        self.wait_steps(job["id"], 5)
        os.kill(self.process_of("41"), signal.SIGKILL)
        done = self.wait(job["id"], ("COMPLETED", "FAILED"))
        self.assertEqual(done["state"], "COMPLETED", self.log(job["id"]))
        self.assertEqual((done["attempts"], done["restarts"]), (2, 1))
        self.assertTrue(any(e["reason"].startswith("restarting from the checkpoint after signal 9")
                            for e in done["history"]), done["history"])
        self.assertEqual(self.metrics(job["id"])[-1]["value"], expected_value(41))
        print("\nkill -9 of the job process: RUNNING again after %.0f ms" % self.recovery_ms(done))

    def test_kill_of_the_supervisor_restarts_the_job(self):
        job = self.submit(self.toy_spec(42))
        self.wait_steps(job["id"], 5)
        supervisors = self.server.job_supervisors()
        self.assertEqual(len(supervisors), 1)
        os.kill(supervisors[0], signal.SIGKILL)
        done = self.wait(job["id"], ("COMPLETED", "FAILED"))
        self.assertEqual(done["state"], "COMPLETED", self.log(job["id"]))
        self.assertEqual(done["attempt_list"][0]["outcome"], "lost: the supervisor was lost")
        self.assertEqual(self.metrics(job["id"])[-1]["value"], expected_value(42))
        print("\nkill -9 of the supervisor: RUNNING again after %.0f ms" % self.recovery_ms(done))

    def test_jobs_run_on_through_a_kill_of_the_server(self):
        server = self.start_server(args=("--grpc-port", "off"))
        lab = server.new_tenant(("reader", "publisher"))
        code = self.upload(server, {"toy_train.py": TOY}, lab["publisher"])
        status, running = server.post("/api/v1/jobs", lab["publisher"],
                                      dict(self.toy_spec(60), code={"upload": code}))
        self.assertEqual(status, 201, running)
        status, short = server.post("/api/v1/jobs", lab["publisher"],
                                    dict(self.spec(["sh", "-c", "sleep 1; echo finished"]),
                                         code={"upload": code}))
        self.assertEqual(status, 201, short)
        get = lambda path: server.get(path, lab["reader"])[1]
        deadline = time.monotonic() + 60
        while len(get("/api/v1/jobs/%d/metrics" % running["id"])["metrics"]) < 3:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        supervisors = server.job_supervisors()
        server.kill()
        time.sleep(1.5)  # the short job ends while the server is down
        self.assertTrue(all(os.path.exists("/proc/%d" % pid) for pid in server.job_supervisors()))
        self.assertTrue(set(server.job_supervisors()) < set(supervisors))
        server.start()
        deadline = time.monotonic() + 60
        while get("/api/v1/jobs/%d" % running["id"])["state"] != "COMPLETED":
            self.assertLess(time.monotonic(), deadline, get("/api/v1/jobs/%d" % running["id"]))
            time.sleep(0.05)
        job = get("/api/v1/jobs/%d" % running["id"])
        self.assertEqual(job["attempts"], 1)  # followed again, not restarted
        log = server.get("/api/v1/jobs/%d/logs" % running["id"], lab["reader"])[1].decode()
        self.assertEqual(re.findall(r"^step (\d+)$", log, re.M), [str(i) for i in range(1, 61)])
        values = get("/api/v1/jobs/%d/metrics" % running["id"])["metrics"]
        self.assertEqual(values[-1]["value"], expected_value(60))
        ended = get("/api/v1/jobs/%d" % short["id"])
        self.assertEqual((ended["state"], ended["attempts"]), ("COMPLETED", 1))


FIT = b'''import json, os
lines = open(os.path.join(os.environ["ORRERY_INPUTS"], "words", "words.txt")).read().split()
with open(os.path.join(os.environ["ORRERY_OUTPUT"], "model.py"), "w") as f:
    f.write("def predict(inputs):\\n    return {'y': inputs['x'] * %d}\\n" % len(lines))
with open(os.environ["ORRERY_METRICS"], "a") as f:
    f.write(json.dumps({"epoch": 1, "lines": len(lines)}) + "\\n")
'''

SCALER_MANIFEST = {
    "kind": "servable", "title": "A scaler trained by job ${job.id}",
    "description": "It learnt ${metrics.lines} from the words.",
    "creators": [{"name": "Lovelace, Ada"}], "year": 2026, "license": "CC-BY-4.0",
    "backend": "python", "files": ["model.py"], "config": {"entrypoint": "model:predict"},
    "signature": {"inputs": [{"name": "x", "datatype": "FP64", "shape": [-1]}],
                  "outputs": [{"name": "y", "datatype": "FP64", "shape": [-1]}]},
}


class PublishTest(JobsTestCase):

    def test_the_output_becomes_a_version_with_its_lineage_both_ways(self):
        words = hub.unique("w")
        archive = hub.make_tar({"words.txt": b"alpha beta gamma\n"},
                               hub.to_yaml(hub.manifest(words, ["words.txt"], "dataset")))
        self.server.publish_ok(self.lab.name, words, archive, self.lab["publisher"],
                               kind="datasets")
        code = self.upload(self.server, {"fit.py": FIT}, self.lab["publisher"])
        scaler = hub.unique("s")
        job = self.submit(self.spec(["python3", "fit.py"], code=code,
                                    inputs={"words": {"dataset": "%s/%s" % (self.lab.name, words)}},
                                    publish={"servable": scaler, "manifest": SCALER_MANIFEST}))
        self.wait(job["id"], ("COMPLETED", "FAILED"))
        done = self.wait_published(job["id"])
        ref = "%s/%s:1" % (self.lab.name, scaler)
        self.assertEqual(done["published"], ref, done["reason"])
        self.assertEqual(done["reason"], "exit code 0; published as " + ref)
        status, answer = self.server.post("/v2/models/%s/%s/infer" % (self.lab.name, scaler),
                                          self.lab["reader"],
                                          {"inputs": [{"name": "x", "datatype": "FP64",
                                                       "shape": [2], "data": [1.0, 2.0]}]})
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer["outputs"][0]["data"], [3.0, 6.0])
        status, version = self.server.get("/api/v1/servables/%s/%s/versions/1"
                                          % (self.lab.name, scaler), self.lab["reader"])
        self.assertEqual(version["manifest"]["title"], "A scaler trained by job %d" % job["id"])
        self.assertEqual(version["manifest"]["description"], "It learnt 3 from the words.")
        made = version["lineage"]["made_from"]
        self.assertEqual((made["job"], made["name"], made["command"]),
                         (job["id"], job["name"], ["python3", "fit.py"]))
        self.assertEqual(made["metrics"], {"epoch": 1, "lines": 3})
        self.assertEqual(made["code_digest"], code)
        self.assertNotIn("code", made)  # the code's ref is among the inputs, filtered by visibility
        inputs = {i["role"] + ":" + i["name"]: i for i in made["inputs"]}
        self.assertEqual(inputs["code:"]["digest"], code)
        self.assertEqual(inputs["input:words"]["ref"], "%s/%s:1" % (self.lab.name, words))
        self.assertEqual(inputs["input:words"]["digest"],
                         job["resolved"]["inputs"]["words"]["digest"])
        status, dataset = self.server.get("/api/v1/datasets/%s/%s/versions/1"
                                          % (self.lab.name, words), self.lab["reader"])
        self.assertEqual(dataset["lineage"]["derived"],
                         [{"ref": ref, "kind": "servable", "as": "input"}])
        # Another tenant sees neither the private servable made from it nor its lineage.
        self.assertError(self.server.get("/api/v1/servables/%s/%s/versions/1"
                                         % (self.lab.name, scaler), self.other["publisher"]), 404)
        r = run_cli(["show", ref], env={"ORRERY_URL": self.server.url,
                                        "ORRERY_TOKEN": self.lab["reader"]})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("job %d (%s)" % (job["id"], job["name"]), r.stdout)
        # Publishing again by hand makes version 2, with the same lineage.
        status, again = self.server.post("/api/v1/jobs/%d/publish" % job["id"],
                                         self.lab["publisher"])
        self.assertEqual((status, again["version"]["version"]), (201, 2), again)

    def wait_published(self, job_id):
        deadline = time.monotonic() + 60
        while True:
            job = self.show(job_id)
            if "; publish" in job["reason"]:  # published, or refused (not "publisher token")
                return job
            self.assertLess(time.monotonic(), deadline, job)
            time.sleep(0.05)

    def test_an_output_with_a_link_is_not_published_and_the_job_stays_completed(self):
        job = self.submit(self.spec(["sh", "-c", "echo x > $ORRERY_OUTPUT/model.py; "
                                                 "ln -s /etc/passwd $ORRERY_OUTPUT/leak"],
                                    publish={"servable": "leaky", "manifest": SCALER_MANIFEST}))
        done = self.wait_published(job["id"])
        self.assertEqual(done["state"], "COMPLETED")
        self.assertIsNone(done["published"])
        self.assertIn("publish refused: the output holds a link, leak", done["reason"])
        self.assertError(self.server.post("/api/v1/jobs/%d/publish" % job["id"],
                                          self.lab["publisher"]), 422,
                         message_prefix="the output holds a link, leak")
        self.assertError(self.server.get("/api/v1/servables/%s/leaky" % self.lab.name,
                                         self.lab["reader"]), 404)
        running = self.submit(self.spec(["sleep", "5"], halt_grace=1))
        self.assertError(self.server.post("/api/v1/jobs/%d/publish" % running["id"],
                                          self.lab["publisher"]), 409)
        self.server.post("/api/v1/jobs/%d/cancel" % running["id"], self.lab["publisher"])


class TenantsAndLimitsTest(JobsTestCase):

    def test_another_tenants_job_is_absent_and_readers_only_read(self):
        job = self.submit(self.spec(["true"]))
        self.wait(job["id"], ("COMPLETED",))
        ghost = int("9" * len(str(job["id"])))
        ghost = ghost if ghost != job["id"] else int("8" * len(str(job["id"])))
        for path in ("/api/v1/jobs/%d", "/api/v1/jobs/%d/logs", "/api/v1/jobs/%d/metrics"):
            mine = self.server.get(path % job["id"], self.other["publisher"])
            absent = self.server.get(path % ghost, self.other["publisher"])
            self.assertError(mine, 404)
            self.assertEqual(mine[1]["error"], absent[1]["error"].replace(str(ghost), str(job["id"])))
        self.assertError(self.server.post("/api/v1/jobs/%d/rerun" % job["id"],
                                          self.other["publisher"]), 404)
        self.assertError(self.server.post("/api/v1/jobs/%d/rerun" % job["id"], self.lab["reader"]),
                         403)
        status, listing = self.server.get("/api/v1/jobs", self.other["publisher"])
        self.assertNotIn(job["id"], [j["id"] for j in listing["jobs"]])
        status, rerun = self.server.post("/api/v1/jobs/%d/rerun" % job["id"], self.lab["publisher"])
        self.assertEqual(status, 201, rerun)
        self.assertEqual((rerun["rerun_of"], rerun["code_digest"]), (job["id"], job["code_digest"]))

    def test_jobs_over_a_tenants_limit_wait_queued(self):
        tenant = self.server.new_tenant(("publisher",))
        code = self.upload(self.server, {"toy_train.py": TOY}, tenant["publisher"])
        path = "/api/v1/tenants/%s/job-limits" % tenant.name
        self.assertError(self.server.put(path, tenant["publisher"], {"max_running": 1}), 403)
        status, data = self.server.put(path, self.server.admin, {"max_running": 1})
        self.assertEqual(status, 200, data)
        self.assertError(self.server.put(path, self.server.admin, {"max_runing": 1}), 400)
        jobs = [self.submit(dict(self.spec(["sleep", "1"]), code={"upload": code}),
                            token=tenant["publisher"]) for _ in range(2)]
        get = lambda job: self.server.get("/api/v1/jobs/%d" % job["id"], tenant["publisher"])[1]
        deadline = time.monotonic() + 30
        while get(jobs[0])["state"] != "RUNNING":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assertEqual(get(jobs[1])["state"], "QUEUED")
        # /metrics shows the tenant its queue; another tenant sees nothing of it.
        metrics = self.server.get("/metrics", tenant["publisher"])[1].decode()
        self.assertIn('orrery_jobs{tenant="%s",state="queued"} 1' % tenant.name, metrics)
        self.assertIn('orrery_jobs{tenant="%s",state="running"} 1' % tenant.name, metrics)
        self.assertNotIn(tenant.name, self.server.get("/metrics", self.other["publisher"])[1].decode())
        self.assertIn("orrery_job_slots 2", self.server.get("/metrics", self.server.admin)[1].decode())
        while get(jobs[1])["state"] != "COMPLETED":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        first, second = get(jobs[0]), get(jobs[1])
        started = next(e["at"] for e in second["history"] if e["state"] == "RUNNING")
        finished = next(e["at"] for e in first["history"] if e["state"] == "COMPLETED")
        self.assertGreaterEqual(started, finished)
        status, data = self.server.request("PUT", path, self.server.admin, body=b"null",
                                           headers={"Content-Type": "application/json"})
        self.assertEqual((status, data["default"]), (200, True))


if __name__ == "__main__":
    unittest.main()
