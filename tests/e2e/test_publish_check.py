"""Publishing checks itself: a servable is loaded in its sandbox and its examples run first.

Proves, through the real server and CLI:
- a servable whose examples reproduce is published with "checked": true;
- an entrypoint typo, an import error (with the traceback's last frames), an example whose
  output disagrees (its index and the output it gave) and an example that raises are each a
  422 naming the problem, and nothing is published (404, no blob, the catalog check clean);
- `check=false` (`orrery publish --no-check`) publishes such a package anyway, marked
  "checked": false; datasets and pipelines are not checked ("checked": null);
- `dry_run=true` (`orrery publish --dry-run`) runs every check and stores nothing, answering
  200 with what would be published; a failing check is the same 422;
- the CLI packs exactly orrery.yaml, README.md and the files the manifest lists (a listed
  directory with its contents, never __pycache__, .ipynb_checkpoints or .git), and lists
  them with -v.
"""

import json
import os
import subprocess
import tempfile
import unittest

import hub
import oip
from hub import HubTestCase

IO = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])
GOOD = "def predict(inputs):\n    return {'y': inputs['x'] * 2}\n"
RAISES = ("def predict(inputs):\n    if inputs['x'][0] < 0:\n"
          "        raise ValueError('negative input')\n    return {'y': inputs['x'] * 2}\n")
IMPORTS = "import numpy\nimport nosuchmodule\n\ndef predict(inputs):\n    return inputs\n"


def example(x, y):
    return {"inputs": {"x": {"datatype": "FP64", "shape": [1], "data": [x]}},
            "outputs": {"y": {"datatype": "FP64", "shape": [1], "data": [y]}}}


class PublishCheckTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        cls.tok = cls.t["publisher"]

    def package(self, name, code=GOOD, examples=(example(1, 2),), entrypoint="model:predict"):
        return oip.py_package(name, code, *IO, config={"entrypoint": entrypoint},
                              examples=list(examples))

    def publish(self, name, tar, query=""):
        return self.server.publish(self.t.name, name, tar, self.tok, query=query, check=True)

    def assertNothingPublished(self, name, blobs_before):
        status, _ = self.server.describe(self.t.name, name, self.tok)
        self.assertEqual(status, 404)
        self.assertEqual(self.server.blob_digests(), blobs_before)
        self.assertCheckOk()

    def test_a_servable_whose_examples_reproduce_is_published_checked(self):
        status, data = self.publish("good", self.package("good", examples=(
            example(1, 2), example(-3.5, -7))))
        self.assertEqual(status, 201, data)
        self.assertIs(data["checked"], True)
        status, data = self.server.version(self.t.name, "good", 1, self.tok)
        self.assertIs(data["checked"], True)

    def test_failing_checks_are_422_and_publish_nothing(self):
        cases = {
            "typo": (self.package("typo", entrypoint="model:predikt"),
                     "the servable does not load: cannot load model:predikt: AttributeError: "
                     "module 'model' has no attribute 'predikt'"),
            "imports": (self.package("imports", code=IMPORTS),
                        "the servable does not load: cannot load model:predict: "
                        "ModuleNotFoundError: No module named 'nosuchmodule' "
                        "(at model.py:2 in <module>)"),
            "disagrees": (self.package("disagrees", examples=(example(1, 2), example(2, 5))),
                          "example 2 does not reproduce: output 'y': values differ beyond "
                          "tolerance 0.000001; it gave y = [4] (FP64 [1])"),
            "raises": (self.package("raises", code=RAISES, examples=(example(-1, -2),)),
                       "example 1 fails: ValueError: negative input"),
        }
        for name, (tar, message) in cases.items():
            with self.subTest(name):
                blobs = self.server.blob_digests()
                self.assertError(self.publish(name, tar), 422, message=message)
                self.assertNothingPublished(name, blobs)
                self.assertError(self.publish(name, tar, "dry_run=true"), 422, message=message)
                self.assertNothingPublished(name, blobs)
        # The publisher's choice: published anyway, marked unchecked.
        status, data = self.publish("typo", cases["typo"][0], "check=false")
        self.assertEqual(status, 201, data)
        self.assertIs(data["checked"], False)

    def test_dry_run_checks_everything_and_stores_nothing(self):
        blobs = self.server.blob_digests()
        audit = len(self.server.audit(self.server.read_admin_token()))
        status, data = self.publish("dry", self.package("dry"), "dry_run=true")
        self.assertEqual(status, 200, data)
        self.assertEqual((data["dry_run"], data["checked"], data["name"]), (True, True, "dry"))
        self.assertEqual(sorted(f["path"] for f in data["files"]), ["model.py", "orrery.yaml"])
        self.assertNothingPublished("dry", blobs)
        self.assertEqual(len(self.server.audit(self.server.read_admin_token())), audit)
        # Manifest problems are found by a dry run too.
        bad = oip.py_package("dry", GOOD, *IO, year=99)
        self.assertError(self.publish("dry", bad, "dry_run=true"), 422,
                         message="manifest: year: must be 1000..9999")

    def test_datasets_are_not_checked(self):
        tar, _ = hub.simple_package("data", kind="dataset")
        status, data = self.server.publish(self.t.name, "data", tar, self.tok, kind="datasets",
                                           check=True)
        self.assertEqual(status, 201, data)
        self.assertIsNone(data["checked"])

    def test_bad_check_parameters(self):
        for query in ("check=maybe", "dry_run=yes"):
            with self.subTest(query):
                key, value = query.split("=")
                self.assertError(self.publish("param", self.package("param"), query), 400,
                                 message="%s must be true or false, not '%s'" % (key, value))

    # -- the CLI

    def cli(self, *args):
        env = dict(os.environ, ORRERY_URL=self.server.url, ORRERY_TOKEN=self.tok)
        return subprocess.run([hub.BIN] + list(args), capture_output=True, text=True, env=env,
                              timeout=120)

    def write(self, root, files):
        for path, data in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(data)

    def test_cli_packs_what_the_manifest_lists(self):
        root = tempfile.mkdtemp(dir=self.server.tmp)
        manifest = hub.manifest("packed", ["model.py", "lib"], backend="python",
                                signature=oip.signature(*IO),
                                config={"entrypoint": "model:predict"},
                                examples=[example(1, 2)])
        code = "from lib.helper import twice\n\ndef predict(inputs):\n" \
               "    return {'y': twice(inputs['x'])}\n"
        self.write(root, {
            "orrery.yaml": hub.to_yaml(manifest), "README.md": "# Packed\n", "model.py": code,
            "lib/__init__.py": "", "lib/helper.py": "def twice(x):\n    return x * 2\n",
            "lib/__pycache__/helper.cpython-311.pyc": "cache", "lib/.git/HEAD": "ref",
            "lib/.ipynb_checkpoints/helper-checkpoint.py": "old", "notes.txt": "not listed",
            "data/big.bin": "not listed",
        })
        r = self.cli("publish", root, "--dry-run", "-v")
        self.assertEqual(r.returncode, 0, r.stderr)
        packed = ["README.md", "lib/__init__.py", "lib/helper.py", "model.py", "orrery.yaml"]
        self.assertEqual(r.stderr, "".join("packing %s\n" % p for p in packed))
        self.assertIn("dry run: %s/packed would be published (5 files" % self.t.name, r.stdout)
        self.assertIn("its checks pass; nothing was stored", r.stdout)
        self.assertEqual(self.server.describe(self.t.name, "packed", self.tok)[0], 404)
        r = self.cli("publish", root, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        version = json.loads(r.stdout)
        self.assertEqual(sorted(f["path"] for f in version["files"]), packed)
        self.assertIs(version["checked"], True)
        # A listed file that is missing is named before anything is sent.
        os.remove(os.path.join(root, "model.py"))
        r = self.cli("publish", root)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("orrery.yaml lists files that are missing: 'model.py' is not in " + root,
                      r.stderr)
        # --no-check publishes a package that would fail its check, marked unchecked.
        self.write(root, {"model.py": "def predict(inputs):\n    return {'y': inputs['x']}\n"})
        r = self.cli("publish", root)
        self.assertEqual(r.returncode, 1)
        self.assertIn("example 1 does not reproduce", r.stderr)
        r = self.cli("publish", root, "--no-check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("published %s/packed version 2" % self.t.name, r.stdout)
        self.assertIn(", unchecked)", r.stdout)


if __name__ == "__main__":
    unittest.main()
