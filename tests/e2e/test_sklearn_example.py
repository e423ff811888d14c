"""The scikit-learn example: a pickled model served from a Python environment made of Debian
packages, as a scientist would publish their own.

Proves, through the real server and CLI:
- examples/digits-svm-sklearn publishes with its check (the pickle loaded and the manifest's
  examples run in the sandboxed worker, scikit-learn from the environment `sklearn` that
  scripts/example-envs.sh makes), `orrery verify` passes, and a batch of real digits answers
  exactly what the same pickle answers when loaded with that environment outside the hub;
- `orrery env list` shows the environment's distributions (scikit-learn, scipy);
- a pin the environment does not meet (python.requires sklearn==1.3.0) is a 422 naming the
  installed version, and a hub without the environment refuses the package naming the
  environment; neither publishes anything.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import hub
import oip
from hub import HubTestCase, run_cli

EXAMPLE = os.path.join(hub.SOURCE_DIR, "examples", "digits-svm-sklearn")
DIGITS_CSV = os.path.join(hub.SOURCE_DIR, "examples", "digits-dataset", "digits.csv")
NAME = "digits-svm-sklearn"


def digits_rows(count):
    """The last `count` images of the digits data set: (pixel rows, labels)."""
    with open(DIGITS_CSV) as f:
        rows = list(csv.DictReader(f))[-count:]
    pixels = [[float(r["pixel_%d" % i]) for i in range(64)] for r in rows]
    return pixels, [int(r["label"]) for r in rows]


class SklearnExampleTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server_args = hub.example_env_args()
        cls.env_dir = cls.server_args[1].split("=", 1)[1]
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        cls.cli_env = {"ORRERY_URL": cls.server.url, "ORRERY_TOKEN": cls.t["publisher"]}

    def cli(self, *args, env=None):
        return run_cli(list(args), env=env or self.cli_env)

    def copy_with_manifest(self, edit):
        """A copy of the example package whose orrery.yaml is edit(text)."""
        tmp = tempfile.mkdtemp(prefix="orrery-sklearn-")
        self.addCleanup(shutil.rmtree, tmp, True)
        dst = os.path.join(tmp, NAME)
        shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("__pycache__"))
        path = os.path.join(dst, "orrery.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(edit(text))
        return dst

    def expected_probabilities(self, pixels):
        """predict.py's answer for `pixels`, computed outside the hub with the environment."""
        code = ("import json, sys; sys.path.insert(0, %r); import predict, numpy as np; "
                "x = np.array(json.load(sys.stdin), np.float32); "
                "print(json.dumps(predict.predict({'input': x})['probabilities'].tolist()))"
                % EXAMPLE)
        r = subprocess.run(["/usr/bin/python3", "-B", "-c", code], input=json.dumps(pixels),
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=self.env_dir))
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_published_checked_and_served_from_the_environment(self):
        r = self.cli("publish", EXAMPLE, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        version = json.loads(r.stdout)
        self.assertIs(version["checked"], True)
        r = self.cli("verify", "%s/%s" % (self.t.name, NAME))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        pixels, labels = digits_rows(64)
        request = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [64, 64],
                               "data": [v for row in pixels for v in row]}]}
        status, answer, _ = oip.infer_json(self.server, self.t["publisher"],
                                           "%s/%s" % (self.t.name, NAME), request)
        self.assertEqual(status, 200, answer)
        got = oip.output_values(answer, {}, "probabilities")
        want = [v for row in self.expected_probabilities(pixels) for v in row]
        self.assertEqual(len(got), 64 * 10)
        for g, w in zip(got, want):
            self.assertAlmostEqual(g, w, places=6)
        predicted = [max(range(10), key=lambda k: got[10 * i + k]) for i in range(64)]
        correct = sum(p == y for p, y in zip(predicted, labels))
        self.assertGreaterEqual(correct, 58, (predicted, labels))

    def test_env_list_shows_the_environment(self):
        r = self.cli("env", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        envs = {e["name"]: e for e in json.loads(r.stdout)["environments"]}
        packages = {p["name"]: p["version"] for p in envs["sklearn"]["packages"]}
        self.assertEqual(packages.get("scikit_learn") or packages.get("scikit-learn"), "1.2.1")
        self.assertIn("scipy", packages)

    def test_a_pin_the_environment_does_not_meet(self):
        blobs = self.server.blob_digests()
        src = self.copy_with_manifest(lambda text: text.replace(
            "requires: [sklearn==1.2.1]", "requires: [sklearn==1.3.0]").replace(
            "name: %s" % NAME, "name: pinned-too-new"))
        r = self.cli("publish", src)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("python.requires not met: sklearn==1.3.0 (1.2.1 installed)", r.stderr)
        self.assertEqual(self.server.describe(self.t.name, "pinned-too-new",
                                              self.t["publisher"])[0], 404)
        self.assertEqual(self.server.blob_digests(), blobs)

    def test_a_hub_without_the_environment(self):
        bare = self.start_server()
        t = bare.new_tenant(("publisher",))
        r = self.cli("publish", EXAMPLE, env={"ORRERY_URL": bare.url,
                                              "ORRERY_TOKEN": t["publisher"]})
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, re.escape("python.environment 'sklearn' is not an "
                                             "environment of this hub (it has none;"))
        self.assertEqual(bare.describe(t.name, NAME, t["publisher"])[0], 404)


if __name__ == "__main__":
    unittest.main()
