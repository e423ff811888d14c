"""A delete unloads what it deleted: workers, metrics series and cached answers go.

Proves, through the real server:
- deleting a version of a loaded Python servable ends its worker processes, drops its series
  from /metrics and its cached answers, while a request already running on it finishes with
  its answer (200); another version of the same servable keeps answering;
- deleting the whole servable unloads its remaining versions the same way, and a servable of
  another name is untouched;
- a servable published again under the deleted name starts with nothing cached.

The request in flight is held at a gate (a socket the test owns; the operator allows that
servable the network), so the delete is known to happen while it runs, without sleeping.
"""

import socket
import threading
import unittest

import hub
import oip
from hub import HubTestCase

GATED_CODE = '''
import socket

import numpy as np

def predict(inputs):
    if inputs["x"][0] < 0:  # a gated call: wait until the test opens the gate
        with socket.create_connection(("127.0.0.1", int(-inputs["x"][0]))) as gate:
            gate.sendall(b"s")
            gate.recv(1)
    return {"y": inputs["x"] * %d}
'''
IO = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])


def workers_of(server, module):
    """Pids of the worker processes (bwrap and Python) whose entrypoint is `module`:predict."""
    return [p for p in oip.descendants(server.proc.pid)
            if "orrery_worker.py" in oip.cmdline(p) and module + ":predict" in oip.cmdline(p)]


class DeleteUnloadsTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tenant_name = hub.unique("del")
        cls.server_args = ("--allow-network", cls.tenant_name + "/gated")
        super().setUpClass()
        cls.a = cls.server.new_tenant(("publisher",), name=cls.tenant_name)

    def publish(self, name, factor, module):
        tar = oip.py_package(name, GATED_CODE % factor, *IO, module=module,
                             config={"network": True}, cache=True)
        return self.server.publish_ok(self.a.name, name, tar, self.a["publisher"])

    def infer(self, name, x, version=None):
        req = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [x]}]}
        return oip.infer_json(self.server, self.a["publisher"], "%s/%s" % (self.a.name, name),
                              req, version=version, timeout=60)

    def answer(self, name, x, version=None):
        status, data, _ = self.infer(name, x, version)
        self.assertEqual(status, 200, data)
        return data["outputs"][0]["data"][0], data.get("parameters", {}).get("cache_hit", False)

    def metrics(self):
        return self.server.get("/metrics", self.server.read_admin_token())[1].decode()

    def series(self, name, version):
        return 'servable="%s/%s",version="%d"' % (self.a.name, name, version) in self.metrics()

    def test_delete_unloads_versions_and_keeps_a_running_request(self):
        self.publish("gated", 2, "gated_v1")
        self.publish("gated", 3, "gated_v2")
        self.publish("other", 5, "other_v1")
        self.assertEqual(self.answer("gated", 1, version=1), (2, False))
        self.assertEqual(self.answer("gated", 1, version=1), (2, True))  # cached
        self.assertEqual(self.answer("gated", 1, version=2), (3, False))
        self.assertEqual(self.answer("other", 1), (5, False))
        for module in ("gated_v1", "gated_v2", "other_v1"):
            self.assertTrue(workers_of(self.server, module), module + " has no worker")
        self.assertTrue(self.series("gated", 1))

        # A request held inside version 1 while version 1 is deleted.
        gate = socket.socket()
        gate.bind(("127.0.0.1", 0))
        gate.listen(1)
        port = gate.getsockname()[1]
        result = []
        held = threading.Thread(target=lambda: result.append(
            self.infer("gated", -float(port), version=1)))
        held.start()
        conn, _ = gate.accept()
        self.assertEqual(conn.recv(1), b"s")  # the request is running in the worker
        status, data = self.server.delete(self.server.obj_path(self.a.name, "gated") +
                                          "/versions/1", self.a["publisher"])
        self.assertEqual(status, 200, data)
        conn.sendall(b"g")
        held.join(60)
        conn.close()
        gate.close()
        self.assertEqual(result[0][0], 200, result[0][1])
        self.assertEqual(result[0][1]["outputs"][0]["data"], [-2.0 * port])

        self.assertTrue(oip.wait_for(lambda: not workers_of(self.server, "gated_v1"), 30),
                        "version 1's worker outlived its delete")
        self.assertTrue(oip.wait_for(lambda: not self.series("gated", 1), 30))
        self.assertTrue(workers_of(self.server, "gated_v2"))
        self.assertTrue(self.series("gated", 2))
        status, data, _ = self.infer("gated", 1, version=1)
        self.assertEqual(status, 404, data)
        self.assertEqual(self.answer("gated", 1, version=2), (3, True))  # its cache stays

        # The whole servable: version 2 goes too; "other" stays.
        status, data = self.server.delete(self.server.obj_path(self.a.name, "gated"),
                                          self.a["publisher"])
        self.assertEqual(status, 200, data)
        self.assertTrue(oip.wait_for(lambda: not workers_of(self.server, "gated_v2"), 30),
                        "a deleted servable's worker is still running")
        self.assertTrue(oip.wait_for(lambda: not self.series("gated", 2), 30))
        self.assertTrue(self.series("other", 1))
        self.assertEqual(self.answer("other", 1), (5, True))
        self.assertTrue(workers_of(self.server, "other_v1"))

        # Published again under the same name (the next number): nothing cached for it.
        self.publish("gated", 7, "gated_v3")
        self.assertEqual(self.answer("gated", 1), (7, False))


if __name__ == "__main__":
    unittest.main()
