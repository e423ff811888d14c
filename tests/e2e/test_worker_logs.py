"""Worker output for its owner: `orrery logs tenant/name[:version]` and GET .../logs.

Proves, through the real server and CLI: what a Python servable prints at import and per
request (stdout and stderr) is there, newest last, for the version asked (latest without
one), bounded by ?tail; the owner's readers get 403, another tenant 404 as for an absent
servable; a bad tail is a 400; the output of a deleted version goes with it.
"""

import json
import os
import subprocess
import unittest

import hub
import oip
from hub import HubTestCase

CODE = '''
import sys

print("loading version %d")

def predict(inputs):
    print("predict got", inputs["x"].tolist())
    print("a warning on stderr", file=sys.stderr)
    return {"y": inputs["x"]}
'''
IO = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])


class WorkerLogsTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher", "reader"))
        cls.other = cls.server.new_tenant(("publisher",))
        for version in (1, 2):
            tar = oip.py_package("chatty", CODE % version, *IO)
            cls.server.publish_ok(cls.t.name, "chatty", tar, cls.t["publisher"])

    def logs(self, path="/logs", token=None):
        return self.server.request("GET", self.server.obj_path(self.t.name, "chatty") + path,
                                   token or self.t["publisher"])

    def infer(self, x, version):
        req = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [x]}]}
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], self.t.name + "/chatty",
                                         req, version=version)
        self.assertEqual(status, 200, data)

    def lines(self, path):
        status, data = self.logs(path)
        self.assertEqual(status, 200, data)
        return [line["line"] for line in data["lines"]]

    def test_output_per_version_for_the_owner(self):
        self.infer(1.5, 1)
        self.infer(2.5, 2)
        self.assertTrue(oip.wait_for(
            lambda: "a warning on stderr" in self.lines("/versions/1/logs"), 20))
        ones = self.lines("/versions/1/logs")
        self.assertEqual(ones[0], "loading version 1")
        self.assertIn("predict got [1.5]", ones)
        self.assertTrue(oip.wait_for(lambda: "predict got [2.5]" in self.lines("/logs"), 20))
        self.assertNotIn("predict got [1.5]", self.lines("/logs"))  # latest is version 2
        self.assertEqual(self.lines("/versions/1/logs?tail=1"), ["a warning on stderr"])
        env = dict(os.environ, ORRERY_URL=self.server.url, ORRERY_TOKEN=self.t["publisher"])
        r = subprocess.run([hub.BIN, "logs", "chatty:1", "--tail", "2"], capture_output=True,
                           text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.rstrip("\n").endswith("  a warning on stderr"), r.stdout)
        self.assertEqual(len(r.stdout.splitlines()), 2)
        r = subprocess.run([hub.BIN, "logs", "chatty:1", "--json"], capture_output=True,
                           text=True, env=env, timeout=60)
        self.assertEqual(json.loads(r.stdout)["servable"], self.t.name + "/chatty:1")

    def test_who_may_read_it_and_bad_tails(self):
        self.assertError(self.logs(token=self.t["reader"]), 403,
                         message="worker output is for the publishers and admins of %s"
                         % self.t.name)
        hidden = self.logs(token=self.other["publisher"])
        self.assertEqual(hidden, (404, {"error": "servable %s/chatty not found" % self.t.name}))
        for tail in ("0", "1001", "x"):
            with self.subTest(tail=tail):
                self.assertError(self.logs("/logs?tail=" + tail), 400,
                                 message="tail must be 1..1000, not '%s'" % tail)

    def test_a_deleted_version_takes_its_output(self):
        tar = oip.py_package("gone", CODE % 9, *IO)
        self.server.publish_ok(self.t.name, "gone", tar, self.t["publisher"])
        req = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}
        oip.infer_json(self.server, self.t["publisher"], self.t.name + "/gone", req)
        path = self.server.obj_path(self.t.name, "gone")
        self.assertTrue(oip.wait_for(lambda: self.server.request(
            "GET", path + "/logs", self.t["publisher"])[1]["lines"], 20))
        self.assertEqual(self.server.delete(path, self.t["publisher"])[0], 200)
        tar = oip.py_package("gone", CODE % 10, *IO)
        self.server.publish_ok(self.t.name, "gone", tar, self.t["publisher"])  # version 2
        status, data = self.server.request("GET", path + "/versions/2/logs", self.t["publisher"])
        self.assertEqual((status, data["lines"]), (200, []))
        self.assertEqual(self.server.request("GET", path + "/versions/1/logs",
                                             self.t["publisher"])[0], 404)


if __name__ == "__main__":
    unittest.main()
