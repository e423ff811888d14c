"""Every package under examples/ publishes with the CLI and downloads byte-identical."""

import json
import os
import shutil
import tempfile
import unittest

import hub
from hub import HubTestCase, run_cli


def read_dir(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = (f.read(), os.access(p, os.X_OK))
    return out


class ExamplesTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server_args = hub.example_env_args()
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        cls.env = {"ORRERY_URL": cls.server.url, "ORRERY_TOKEN": cls.t["publisher"]}

    def cli(self, *args):
        r = run_cli(list(args) + ["--json"], env=self.env)
        self.assertEqual(r.returncode, 0, "orrery %s: %s" % (" ".join(args), r.stderr))
        return json.loads(r.stdout)

    def test_examples_round_trip(self):
        dirs = hub.example_dirs()
        # examples/ is part of the repository: none found is a broken checkout, not a skip.
        self.assertTrue(dirs, "no %s/examples/*/orrery.yaml" % hub.SOURCE_DIR)
        tmp = tempfile.mkdtemp(prefix="orrery-examples-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for d in dirs:
            name = os.path.basename(d)
            with self.subTest(example=name):
                # Publish a copy, so that nothing (e.g. __pycache__) is written into the tree.
                src = os.path.join(tmp, "src", name)
                shutil.copytree(d, src, ignore=shutil.ignore_patterns("__pycache__"))
                files = read_dir(src)
                v = self.cli("publish", src)
                self.assertEqual(v["version"], 1)
                self.assertEqual(v["tenant"], self.t.name)
                self.assertEqual(v["digest"], hub.package_digest(files))
                kind = v["kind"]
                out = os.path.join(tmp, "out", name)
                self.cli("download", "%s/%s:1" % (self.t.name, v["name"]), "-o", out)
                self.assertEqual(read_dir(out), files)
                # And over plain HTTP, byte-identical too.
                got = self.server.download_files(self.t.name, v["name"], 1, self.t["publisher"],
                                                 kind + "s")
                self.assertEqual(got, files)
                # Publishing it again with --if-changed changes nothing.
                again = self.cli("publish", src, "--if-changed")
                self.assertIs(again.get("unchanged"), True)
        self.assertCheckOk()


if __name__ == "__main__":
    unittest.main()
