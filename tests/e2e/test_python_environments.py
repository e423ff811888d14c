"""Python environments and python.requires: a Python servable says what it needs, the hub
gives it an operator's environment, and publishing checks the needs in the sandbox.

Proves, through the real server and CLI:
- an environment registered with `orrery serve --python-env NAME=DIR` is importable by a
  servable whose manifest names it (python.environment), read-only, and `orrery env list`
  (GET /api/v1/environments) shows its packages beside the host's ("system");
- python.requires is checked at publish: a module no environment provides, or one of the wrong
  version, is a 422 listing each (and how the operator provides them); nothing is published;
- a package's own modules come first (vendored ahead of the environment);
- an unknown environment, a malformed requires entry, a python section on another backend,
  and a --python-env that is not a directory are refused with a clear error.
"""

import json
import os
import subprocess
import tempfile
import unittest

import hub
import oip
from hub import HubTestCase

CODE = '''
import mylib

def predict(inputs):
    return {"y": mylib.triple(inputs["x"]), "v": inputs["x"] * 0 + float(mylib.__version__[0])}
'''
IO = ([("x", "FP64", [-1])], [("y", "FP64", [-1]), ("v", "FP64", [-1])])


def example(version):
    return {"inputs": {"x": {"datatype": "FP64", "shape": [1], "data": [2.0]}},
            "outputs": {"y": {"datatype": "FP64", "shape": [1], "data": [6.0]},
                        "v": {"datatype": "FP64", "shape": [1], "data": [float(version)]}}}


def write(root, files):
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)


MYLIB = "__version__ = '%s'\n\ndef triple(x):\n    return x * 3\n"


class PythonEnvironmentsTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        cls.env_dir = tempfile.mkdtemp(prefix="orrery-env-")
        os.chmod(cls.env_dir, 0o755)
        write(cls.env_dir, {"mylib/__init__.py": MYLIB % "1.2.0",
                            "mylib-1.2.0.dist-info/METADATA": "Name: mylib\nVersion: 1.2.0\n"})
        cls.server_args = ("--python-env", "labenv=" + cls.env_dir)
        super().setUpClass()
        cls.addClassCleanup(lambda: __import__("shutil").rmtree(cls.env_dir, True))
        cls.t = cls.server.new_tenant(("publisher",))

    def publish(self, name, python=None, files=None, version=1, **fields):
        tar = oip.py_package(name, CODE, *IO, examples=[example(version)], files=files,
                             python=python, **fields)
        return self.server.publish(self.t.name, name, tar, self.t["publisher"], check=True)

    def test_an_environment_provides_what_a_servable_requires(self):
        status, data = self.publish("uses-env", {"environment": "labenv",
                                                 "requires": ["mylib>=1.0", "numpy"]})
        self.assertEqual(status, 201, data)
        self.assertIs(data["checked"], True)
        req = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]}]}
        status, answer, _ = oip.infer_json(self.server, self.t["publisher"],
                                           self.t.name + "/uses-env", req)
        self.assertEqual(status, 200, answer)
        self.assertEqual(oip.output_values(answer, {}, "y"), [3.0, 6.0])

    def test_unmet_requirements_are_listed_and_nothing_is_published(self):
        blobs = self.server.blob_digests()
        status, data = self.publish("too-new", {"environment": "labenv",
                                                "requires": ["mylib>=2", "nosuchmodule"]})
        self.assertEqual(status, 422, data)
        self.assertTrue(data["error"].startswith(
            "the servable does not load: python.requires not met: mylib>=2 (1.2.0 installed); "
            "nosuchmodule (not installed). The hub's operator provides modules as Debian "
            "python3-* packages on its host, or as a Python environment (orrery serve "
            "--python-env NAME=DIR)"), data["error"])
        status, data = self.publish("no-env", {"requires": ["mylib"]})
        self.assertEqual(status, 422, data)
        self.assertIn("python.requires not met: mylib (not installed)", data["error"])
        self.assertEqual(self.server.blob_digests(), blobs)
        for name in ("too-new", "no-env"):
            self.assertEqual(self.server.describe(self.t.name, name, self.t["publisher"])[0], 404)

    def test_the_package_own_modules_come_first(self):
        status, data = self.publish("vendored", {"environment": "labenv",
                                                 "requires": ["mylib>=9"]},
                                    files={"mylib/__init__.py": (MYLIB % "9.9").encode()},
                                    version=9)
        self.assertEqual(status, 201, data)

    def test_refusals(self):
        status, data = self.publish("unknown-env", {"environment": "nosuch"})
        self.assertEqual(status, 422, data)
        self.assertEqual(data["error"], "the servable does not load: python.environment 'nosuch' "
                         "is not an environment of this hub (it has labenv; orrery env list "
                         "shows what each provides)")
        status, data = self.publish("malformed", {"requires": ["my lib"]})
        self.assertEqual((status, data["error"]), (422, "manifest: python.requires[0]: 'my lib' "
                         "is not an import name with an optional version, e.g. 'numpy' or "
                         "'sklearn>=1.2'"))
        tar, _ = hub.package("not-python", {"model.bin": b"w"}, python={"requires": ["numpy"]})
        self.assertError(self.server.publish(self.t.name, "not-python", tar, self.t["publisher"]),
                         422, message="manifest: python: only for backend python")
        r = subprocess.run([hub.BIN, "serve", "--port", "0", "--python-env",
                            "x=/no/such/dir"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("/no/such/dir is not a directory", r.stderr)

    def test_env_list(self):
        status, data = self.server.get("/api/v1/environments", self.t["publisher"])
        self.assertEqual(status, 200, data)
        envs = {e["name"]: e for e in data["environments"]}
        self.assertEqual(list(envs)[0], "system")
        self.assertIn("numpy", [p["name"] for p in envs["system"]["packages"]])
        self.assertEqual(envs["labenv"]["packages"], [{"name": "mylib", "version": "1.2.0"}])
        env = dict(os.environ, ORRERY_URL=self.server.url, ORRERY_TOKEN=self.t["publisher"])
        r = subprocess.run([hub.BIN, "env", "list"], capture_output=True, text=True, env=env,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("labenv (1 packages)\n  mylib 1.2.0\n", r.stdout)
        r = subprocess.run([hub.BIN, "env", "list", "--json"], capture_output=True, text=True,
                           env=env, timeout=30)
        self.assertEqual(json.loads(r.stdout), data)


if __name__ == "__main__":
    unittest.main()
