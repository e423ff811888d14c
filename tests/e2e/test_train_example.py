"""The training job example (examples/train-digits, docs/jobs.md) as the README tour runs it:
the digits dataset published as run-hub.sh publishes it, the job submitted by the CLI from its
spec file, halted after some epochs, resumed from its checkpoint, completed, and its model
published with lineage and served. A run halted and resumed ends with the uninterrupted run's
loss and accuracy to the last digit (one thread, a fixed seed, the optimizer's state in the
checkpoint); the held-out accuracy is that of a real classifier."""

import json
import os
import re
import shutil
import tempfile
import time
import unittest

import hub
from hub import HubTestCase, run_cli

EXAMPLE = os.path.join(hub.SOURCE_DIR, "examples", "train-digits")
DATASET = os.path.join(hub.SOURCE_DIR, "examples", "digits-dataset")


class TrainExampleTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        s.create_tenant("examples")
        publisher = s.create_token("examples", "publisher")["token"]
        r = run_cli(["publish", DATASET, "--public"],
                    env={"ORRERY_URL": s.url, "ORRERY_TOKEN": publisher})
        assert r.returncode == 0, r.stderr
        cls.lab = s.new_tenant(("publisher", "reader"))
        cls.env = {"ORRERY_URL": s.url, "ORRERY_TOKEN": cls.lab["publisher"]}

    def cli(self, *args):
        r = run_cli(list(args), env=self.env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        return r.stdout

    def spec_copy(self, epoch_delay):
        """The example's spec and code in a temp dir, with another pause after each epoch."""
        work = tempfile.mkdtemp(prefix="orrery-train-")
        self.addCleanup(shutil.rmtree, work, True)
        shutil.copytree(os.path.join(EXAMPLE, "code"), os.path.join(work, "code"))
        with open(os.path.join(EXAMPLE, "job.yaml")) as f:
            text = f.read()
        text = re.sub(r"--epoch-delay, \d+", "--epoch-delay, %s" % epoch_delay, text)
        path = os.path.join(work, "job.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def job(self, job_id):
        return json.loads(self.cli("job", "show", str(job_id), "--json"))

    def wait(self, job_id, states, timeout=240):
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            self.assertLess(time.monotonic(), deadline, job)
            time.sleep(0.2)

    def test_halted_and_resumed_training_equals_the_uninterrupted_run(self):
        straight = int(self.cli("job", "submit", self.spec_copy(0)).strip())
        out = self.cli("job", "logs", "-f", str(straight))
        self.assertIn("saved the TorchScript model", out)
        self.wait(straight, ("COMPLETED",))

        halted = int(self.cli("job", "submit", os.path.join(EXAMPLE, "job.yaml")).strip())
        deadline = time.monotonic() + 240
        while "epoch 2:" not in self.cli("job", "logs", str(halted)):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
        self.cli("job", "halt", str(halted))
        self.wait(halted, ("HALTED",))
        self.cli("job", "resume", str(halted))
        log = self.cli("job", "logs", "-f", str(halted))
        self.assertRegex(log, r"resumed after epoch [2-5]")
        done = self.wait(halted, ("COMPLETED",))
        self.assertEqual(done["attempts"], 2)
        shown = self.cli("job", "show", str(halted))  # the human view, inputs and all
        self.assertIn("input:     digits = dataset examples/digits-dataset:1 (", shown)
        self.assertIn("HALTED", shown)

        metrics = lambda job_id: json.loads(self.cli("job", "metrics", str(job_id), "--json"))["metrics"]
        a, b = metrics(straight), metrics(halted)
        self.assertEqual([m["epoch"] for m in a], [1, 2, 3, 4, 5, 6])
        self.assertEqual(a[-1], b[-1])  # loss and accuracy, to the last digit
        self.assertGreater(a[-1]["accuracy"], 0.85)

        # Both were published, with their lineage; the model serves.
        done = self.wait_published(halted)
        ref = done["published"]
        self.assertRegex(ref, r"^%s/digits-mlp-trained:\d$" % self.lab.name)
        shown = self.cli("show", ref)
        self.assertIn("job %d (train-digits)" % halted, shown)
        self.assertIn("examples/digits-dataset:1", shown)
        status, version = self.server.get("/api/v1/servables/%s/versions/%s"
                                          % (ref.split(":")[0], ref.split(":")[1]),
                                          self.lab["reader"])
        self.assertEqual(version["lineage"]["made_from"]["metrics"], b[-1])
        self.assertIn("accuracy %s after 6 epochs" % b[-1]["accuracy"],
                      " ".join(version["manifest"]["description"].split()))
        status, answer = self.server.post(
            "/v2/models/%s/infer" % ref.split(":")[0], self.lab["reader"],
            {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64],
                         "data": [0, 0, 11, 16, 15, 3, 0, 0, 0, 5, 16, 12, 11, 13, 0, 0, 0, 3,
                                  13, 1, 5, 15, 0, 0, 0, 0, 0, 0, 12, 11, 0, 0, 0, 0, 0, 1, 16,
                                  7, 0, 0, 0, 0, 0, 10, 15, 0, 0, 0, 0, 0, 12, 16, 16, 11, 1, 0,
                                  0, 0, 13, 13, 8, 13, 16, 8]}]})
        self.assertEqual(status, 200, answer)
        logits = answer["outputs"][0]["data"]
        self.assertEqual(logits.index(max(logits)), 2)  # the manifest example of the MLP: a 2

    def wait_published(self, job_id):
        deadline = time.monotonic() + 120
        while True:
            job = self.job(job_id)
            if job["published"] or "publish refused" in job["reason"]:
                self.assertTrue(job["published"], job["reason"])
                return job
            self.assertLess(time.monotonic(), deadline, job)
            time.sleep(0.2)


if __name__ == "__main__":
    unittest.main()
