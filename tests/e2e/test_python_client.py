"""The Python client (python/orrery, stdlib + numpy) against the real server.

Proves: the token is found as the CLI finds it (ORRERY_TOKEN, else the data directory's
admin.token); search, list and describe (tables in notebooks via _repr_html_); run() with one
array or a dict of arrays, numpy in and out over the binary tensor extension, equal to what
the JSON protocol answers, on one reused connection; arrays of the wrong dtype or shape, and
unknown inputs, are refused before anything is sent (the servable's request count does not
move); error answers are OrreryError with the status and the server's message (404 for
another tenant's private servable); verify, download (every file checked), cite and readme;
publish(directory) with the publish check, dry_run and check=False; publish_function packages
a function with its signature and example and the hub checks it; a training job submitted with
its code directory, halted, resumed and followed to its end.
"""

import io
import os
import sys
import tempfile
import time
import unittest

import numpy as np

import hub
import oip
from hub import HubTestCase

sys.path.insert(0, os.path.join(hub.SOURCE_DIR, "python"))
from orrery import Client, OrreryError  # noqa: E402  (the client under test)

TWO_IN = '''
import numpy as np

def predict(inputs):
    return {"sum": inputs["a"] + inputs["b"].astype(np.float32),
            "label": np.array([b"n=%d" % len(inputs["a"])] * len(inputs["a"]), dtype=object)}
'''
TWO_IO = ([("a", "FP32", [-1, 3]), ("b", "INT64", [-1, 3])],
          [("sum", "FP32", [-1, 3]), ("label", "BYTES", [-1])])


def standardise(x, scale):
    """Scales rows of x by the per-row factor in scale."""
    return x * scale, x.sum(axis=1)


class PythonClientTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher", "reader"))
        cls.other = cls.server.new_tenant(("publisher",))
        cls.server.publish_ok(cls.t.name, "two", oip.py_package("two", TWO_IN, *TWO_IO),
                              cls.t["publisher"])
        tar = oip.py_package("private", "def predict(inputs):\n    return inputs\n",
                             [("x", "FP64", [-1])], [("x", "FP64", [-1])])
        cls.server.publish_ok(cls.other.name, "private", tar, cls.other["publisher"])
        cls.hub = Client(cls.server.url, cls.t["publisher"])

    def requests_of(self, name):
        text = self.server.get("/metrics", self.t["publisher"])[1].decode()
        return oip.metric_value(text, "orrery_inference_requests_total",
                                "%s/%s" % (self.t.name, name)) or 0

    def test_token_from_the_environment_or_the_data_dir(self):
        old = dict(os.environ)
        try:
            os.environ.pop("ORRERY_TOKEN", None)
            os.environ.pop("ORRERY_TOKEN_FILE", None)
            os.environ["ORRERY_DATA_DIR"] = self.server.data_dir
            self.assertEqual(Client(self.server.url).whoami()["tenant"], "hub")
            os.environ["ORRERY_TOKEN"] = self.t["reader"]
            os.environ["ORRERY_URL"] = self.server.url
            who = Client().whoami()
            self.assertEqual((who["tenant"], who["role"]), (self.t.name, "reader"))
        finally:
            os.environ.clear()
            os.environ.update(old)

    def test_run_numpy_in_and_out_on_one_connection(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        b = np.ones((2, 3), dtype=np.int64)
        out = self.hub.run("two", {"a": a, "b": b})
        np.testing.assert_array_equal(out["sum"], a + 1)
        self.assertEqual(out["sum"].dtype, np.float32)
        self.assertEqual(list(out["label"]), [b"n=2", b"n=2"])
        conn = self.hub._local.conn
        for _ in range(5):
            self.hub.run("%s/two:1" % self.t.name, {"a": a, "b": b})
        self.assertIs(self.hub._local.conn, conn)  # kept open and reused
        req = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 3],
                           "data": a.reshape(-1).tolist()},
                          {"name": "b", "datatype": "INT64", "shape": [2, 3], "data": [1] * 6}]}
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], self.t.name + "/two",
                                         req)
        self.assertEqual(oip.output_values(data, {}, "sum"), out["sum"].reshape(-1).tolist())
        only = self.hub.run("two", {"a": a, "b": b}, outputs=["label"])
        self.assertEqual(list(only), [b"n=2", b"n=2"])  # one output: the array itself

    def test_bad_arrays_are_refused_before_sending(self):
        a = np.zeros((2, 3), np.float32)
        b = np.zeros((2, 3), np.int64)
        self.hub.run("two", {"a": a, "b": b})
        before = self.requests_of("two")
        cases = {
            "dtype": ({"a": a.astype(np.float64), "b": b},
                      "input 'a' is FP64 (numpy float64), the servable expects FP32"),
            "shape": ({"a": np.zeros((2, 4), np.float32), "b": b},
                      "input 'a' has shape [2, 4], the servable expects [-1, 3]"),
            "rank": ({"a": np.zeros(3, np.float32), "b": b},
                     "input 'a' has shape [3], the servable expects [-1, 3]"),
            "unknown": ({"a": a, "b": b, "c": a}, "unknown input 'c' (the servable's inputs: a, b)"),
            "missing": ({"a": a}, "missing input 'b'"),
            "one array": (a, "%s/two has 2 inputs (a, b): give a dict of arrays" % self.t.name),
        }
        for label, (inputs, message) in cases.items():
            with self.subTest(label):
                with self.assertRaises(OrreryError) as caught:
                    self.hub.run("two", inputs)
                self.assertEqual((caught.exception.status, caught.exception.message),
                                 (0, message))
        self.assertEqual(self.requests_of("two"), before)

    def test_errors_carry_the_status_and_message(self):
        for name in ("%s/private" % self.other.name, "no-such-servable"):
            with self.subTest(name):
                with self.assertRaises(OrreryError) as caught:
                    self.hub.describe(name)
                self.assertEqual(caught.exception.status, 404)
                self.assertIn("not found", caught.exception.message)
        with self.assertRaises(OrreryError) as caught:
            self.hub.run("%s/private" % self.other.name, np.zeros(1))
        self.assertEqual(caught.exception.status, 404)
        with self.assertRaises(OrreryError) as caught:
            Client(self.server.url, "orr_" + "0" * 64).whoami()
        self.assertEqual((caught.exception.status, caught.exception.message),
                         (401, "invalid token"))

    def test_discover_verify_download_cite(self):
        found = self.hub.search("two", tenant=self.t.name)
        self.assertEqual([i["name"] for i in found], ["two"])
        self.assertIn("<table>", found._repr_html_())
        self.assertEqual([i["name"] for i in self.hub.list(tenant=self.t.name)], ["two"])
        servable = self.hub.describe("two")
        self.assertEqual(servable["latest"]["version"], 1)
        self.assertIn("a FP32 [-1, 3]", servable._repr_html_())
        with self.assertRaises(OrreryError) as caught:
            self.hub.verify("two")
        self.assertEqual(caught.exception.message,
                         "servable %s/two:1 has no examples to verify" % self.t.name)
        target = os.path.join(tempfile.mkdtemp(dir=self.server.tmp), "two")
        version = self.hub.download("two", target)
        self.assertEqual(sorted(os.listdir(target)), ["model.py", "orrery.yaml"])
        self.assertEqual(version["version"], 1)
        with self.assertRaises(OrreryError):
            self.hub.download("two", target)  # exists
        self.assertTrue(self.hub.cite("two").startswith("@misc{%s_two_v1," % self.t.name))
        self.assertTrue(self.hub.cite("two:1", format="ris").startswith("TY  - COMP"))

    def test_publish_a_directory_and_a_function(self):
        root = tempfile.mkdtemp(dir=self.server.tmp)
        tar = oip.py_package("dirpkg", "def predict(inputs):\n    return {'y': inputs['x']}\n",
                             [("x", "FP64", [-1])], [("y", "FP64", [-1])],
                             examples=[{"inputs": {"x": {"datatype": "FP64", "shape": [1],
                                                         "data": [1.0]}},
                                        "outputs": {"y": {"datatype": "FP64", "shape": [1],
                                                          "data": [2.0]}}}])
        for path, (data, _) in hub.read_tar(tar).items():
            with open(os.path.join(root, path), "wb") as f:
                f.write(data)
        os.makedirs(os.path.join(root, "__pycache__"))
        with open(os.path.join(root, "__pycache__", "model.cpython-311.pyc"), "wb") as f:
            f.write(b"cache")
        with open(os.path.join(root, "notes.txt"), "w") as f:  # not listed: not packed
            f.write("draft")
        with open(os.path.join(root, "README.md"), "w") as f:  # the model card: packed
            f.write("# dirpkg\n")
        with self.assertRaises(OrreryError) as caught:  # its example does not reproduce
            self.hub.publish(root)
        self.assertEqual(caught.exception.status, 422)
        self.assertIn("example 1 does not reproduce", caught.exception.message)
        dry = self.hub.publish(root, check=False, dry_run=True)
        self.assertEqual((dry["dry_run"], dry["checked"]), (True, False))
        version = self.hub.publish(root, check=False)
        self.assertEqual(sorted(f["path"] for f in version["files"]),
                         ["README.md", "model.py", "orrery.yaml"])
        self.assertIs(version["checked"], False)
        with open(os.path.join(root, "orrery.yaml"), "a") as f:
            f.write("\n# and one more\n")
        os.remove(os.path.join(root, "model.py"))
        with self.assertRaises(ValueError) as missing:  # a listed file that is not there
            self.hub.publish(root, check=False)
        self.assertIn("orrery.yaml lists 'model.py', which is not in", str(missing.exception))

        x = np.array([[1.0, 2.0], [3.0, 4.0]])
        scale = np.array([[2.0, 2.0], [0.5, 0.5]])
        version = self.hub.publish_function(standardise, "standardise", {"x": x, "scale": scale},
                                            outputs=["scaled", "total"], title="Standardise",
                                            creators=[{"name": "Lovelace, Ada"}])
        self.assertIs(version["checked"], True)
        self.assertEqual(version["manifest"]["signature"]["outputs"],
                         [{"name": "scaled", "datatype": "FP64", "shape": [-1, 2]},
                          {"name": "total", "datatype": "FP64", "shape": [-1]}])
        self.assertTrue(self.hub.verify("standardise")["ok"])
        out = self.hub.run("standardise", {"x": x * 10, "scale": scale})
        np.testing.assert_allclose(out["scaled"], x * 10 * scale)
        np.testing.assert_allclose(out["total"], (x * 10).sum(axis=1))
        with self.assertRaises(ValueError):
            self.hub.publish_function(standardise, "bad", {"x": x})  # scale missing


if __name__ == "__main__":
    unittest.main()


class PythonClientJobsTest(HubTestCase):
    """submit (a code directory uploaded), logs(follow=True), halt, resume, jobs, job,
    job_metrics, cancel, rerun from Python, as a notebook would."""

    def test_a_training_job_from_python(self):
        t = self.server.new_tenant(("publisher",))
        client = Client(self.server.url, t["publisher"])
        with tempfile.TemporaryDirectory() as work:
            os.mkdir(os.path.join(work, "train"))
            with open(os.path.join(work, "train", "loop.py"), "w") as f:
                f.write("import json, os, signal, sys, time\n"
                        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                        "n = len(os.listdir(os.environ['ORRERY_CHECKPOINT']))\n"
                        "print('resumed at', n, flush=True)\n"
                        "for i in range(n, int(sys.argv[1])):\n"
                        "    open(os.path.join(os.environ['ORRERY_CHECKPOINT'], str(i)), 'w').close()\n"
                        "    with open(os.environ['ORRERY_METRICS'], 'a') as m:\n"
                        "        m.write(json.dumps({'step': i + 1}) + '\\n')\n"
                        "    time.sleep(0.05)\n"
                        "print('done', flush=True)\n")
            spec = {"name": "loop", "code": os.path.join(work, "train"),
                    "command": ["python3", "loop.py", "60"], "halt_grace": 5}
            job = client.submit(spec)
            self.assertIn(job["state"], ("QUEUED", "STARTING", "RUNNING"))
            deadline = time.monotonic() + 60
            while len(client.job_metrics(job["id"])) < 3:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            client.halt(job["id"])
            while client.job(job["id"])["state"] != "HALTED":
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            self.assertIn(client.resume(job["id"])["state"], ("QUEUED", "STARTING", "RUNNING"))
            out = io.StringIO()
            text = client.logs(job["id"], follow=True, out=out)
            self.assertEqual(out.getvalue(), text)
            self.assertIn("done\n", text)
            self.assertRegex(text, r"resumed at [1-9]")
            done = client.job(job["id"])
            self.assertEqual(done["state"], "COMPLETED")
            self.assertEqual([m["step"] for m in client.job_metrics(job["id"])][-1], 60)
            self.assertEqual([j["id"] for j in client.jobs(state="COMPLETED")], [job["id"]])
            again = client.rerun(job["id"])
            self.assertEqual(again["rerun_of"], job["id"])
            self.assertIn(client.cancel(again["id"])["state"], ("CANCELLED", "QUEUED", "STARTING",
                                                                 "RUNNING"))
            with self.assertRaises(OrreryError) as caught:
                client.submit(dict(spec, command="python3 loop.py"))
            self.assertEqual(caught.exception.status, 422)
