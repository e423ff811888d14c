"""Asynchronous inference (DLHub's asynchronous run): POST .../infer-async answers 202 with a
request id; GET /api/v1/requests/{id} answers 202 while it runs, then the answer the
synchronous route would have given.

Proves, through the real server, the CLI and the Python client:
- the answer is the synchronous answer (JSON or binary), fetched as often as wanted until it
  expires (410 naming the time answers are kept);
- a request the synchronous route refuses at once (malformed, unknown servable) is refused at
  once, with no id; an error of the servable is the answer (422);
- another tenant's id is absent (404, byte for byte like an unknown id);
- a tenant's unanswered requests are bounded (503 + Retry-After beyond), and so are the bytes
  of its kept answers (507 for an answer beyond);
- an operator can allow one servable a longer timeout than --timeout-ms
  (--servable-timeout tenant/name=MS), which its requests then get, and only its;
- `orrery infer --async` and `orrery result ID --wait`, and Client.run(asynchronous=True).

A request is held inside its servable at a gate (a socket the test owns), so "pending" is
observed, never slept for.
"""

import os
import socket
import subprocess
import sys
import unittest

import numpy as np

import hub
import oip
from hub import HubTestCase

sys.path.insert(0, os.path.join(hub.SOURCE_DIR, "python"))
from orrery import Client, OrreryError  # noqa: E402

GATED = '''
import socket
import time

def predict(inputs):
    x = inputs["x"]
    if x[0] < 0:  # wait at the test's gate
        with socket.create_connection(("127.0.0.1", int(-x[0]))) as gate:
            gate.sendall(b"s")
            gate.recv(1)
    if x[0] == 13:
        raise ValueError("unlucky")
    if x[0] == 7:
        time.sleep(1.0)
    return {"y": x * 2}
'''
IO = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])
KEEP_S = 3


def body(x):
    return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [len(x)], "data": x}]}


class Gate:
    """A socket the servable connects to; it waits until release()."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []

    def wait_arrivals(self, n):
        while len(self.conns) < n:
            conn, _ = self.sock.accept()
            assert conn.recv(1) == b"s"
            self.conns.append(conn)

    def release(self):
        for conn in self.conns:
            conn.sendall(b"g")
            conn.close()
        self.conns = []
        self.sock.close()


class AsyncInferTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tenant_name = hub.unique("as")
        cls.server_args = ("--allow-network", cls.tenant_name + "/gated", "--async-keep-s",
                           str(KEEP_S), "--async-max-pending", "2", "--async-max-bytes", "4000",
                           "--timeout-ms", "600",
                           "--servable-timeout", cls.tenant_name + "/gated=5000",
                           "--instances", "3")
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",), name=cls.tenant_name)
        cls.other = cls.server.new_tenant(("publisher",))
        for name in ("gated", "plain"):
            tar = oip.py_package(name, GATED, *IO, config={"network": True, "instances": 3})
            cls.server.publish_ok(cls.t.name, name, tar, cls.t["publisher"])

    def submit(self, x, name="gated", token=None):
        return self.server.request_full("POST", "/v2/models/%s/%s/infer-async"
                                        % (self.t.name, name), token or self.t["publisher"],
                                        json_body=body(x))

    def answer(self, request_id, token=None):
        return self.server.request_full("GET", "/api/v1/requests/" + request_id,
                                        token or self.t["publisher"])

    def wait_answer(self, request_id):
        found = oip.wait_for(lambda: self.answer(request_id)[0] != 202, 30)
        self.assertTrue(found, "request %s never answered" % request_id)
        return self.answer(request_id)

    def test_pending_then_the_synchronous_answer_then_expired(self):
        gate = Gate()
        status, accepted, headers = self.submit([-float(gate.port)])
        self.assertEqual(status, 202, accepted)
        self.assertEqual(accepted["state"], "PENDING")
        self.assertEqual(headers["location"], "/api/v1/requests/" + accepted["id"])
        gate.wait_arrivals(1)
        status, pending, headers = self.answer(accepted["id"])
        self.assertEqual((status, pending["state"], headers.get("retry-after")),
                         (202, "PENDING", "1"))
        gate.release()
        status, data, _ = self.wait_answer(accepted["id"])
        self.assertEqual(status, 200, data)
        sync = oip.infer_json(self.server, self.t["publisher"], self.t.name + "/gated",
                              body([3.0]))
        status, data2, _ = self.wait_answer(self.submit([3.0])[1]["id"])
        self.assertEqual(data2, sync[1])  # the same answer as the synchronous route
        self.assertEqual(self.answer(accepted["id"])[1], data)  # fetched again
        self.assertTrue(oip.wait_for(lambda: self.answer(accepted["id"])[0] == 410, KEEP_S + 5))
        self.assertError(self.answer(accepted["id"])[:2], 410,
                         message="request %s expired: answers are kept %d s"
                         % (accepted["id"], KEEP_S))

    def test_refusals_at_once_and_errors_as_answers(self):
        status, data, _ = self.server.request_full(
            "POST", "/v2/models/%s/gated/infer-async" % self.t.name, self.t["publisher"],
            body=b"{not json", headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400, data)
        self.assertNotIn("id", data)
        status, data, _ = self.server.request_full(
            "POST", "/v2/models/%s/nothing/infer-async" % self.t.name, self.t["publisher"],
            json_body=body([1.0]))
        self.assertEqual((status, data), (404, {"error": "servable %s/nothing not found"
                                                % self.t.name}))
        status, accepted, _ = self.submit([13.0])
        self.assertEqual(status, 202, accepted)
        self.assertError(self.wait_answer(accepted["id"])[:2], 422,
                         message="%s/gated:1: ValueError: unlucky" % self.t.name)

    def test_another_tenants_id_is_absent(self):
        status, accepted, _ = self.submit([1.0])
        self.wait_answer(accepted["id"])
        hidden = self.answer(accepted["id"], self.other["publisher"])
        ghost = "req_" + "0" * 32
        absent = self.answer(ghost, self.other["publisher"])
        self.assertEqual(hidden[0], 404)
        self.assertEqual(hidden[1]["error"].replace(accepted["id"], ghost), absent[1]["error"])

    def test_bounds_on_pending_requests_and_kept_bytes(self):
        gate = Gate()
        ids = [self.submit([-float(gate.port)])[1]["id"] for _ in range(2)]
        gate.wait_arrivals(2)
        status, data, headers = self.submit([1.0])
        self.assertEqual((status, headers.get("retry-after")), (503, "1"), data)
        self.assertIn("2 asynchronous requests unanswered", data["error"])
        gate.release()
        for request_id in ids:
            self.assertEqual(self.wait_answer(request_id)[0], 200)
        big = self.submit([1.0] * 2000)[1]["id"]  # an answer of several kB, over 4000 bytes
        self.assertError(self.wait_answer(big)[:2], 507)

    def test_a_longer_timeout_for_one_servable(self):
        # 1 s of work: past --timeout-ms 600, within gated's 5000.
        for name in ("gated", "plain"):  # loaded first: only the work is timed
            status, data = self.server.post("/v2/repository/models/%s/%s/load"
                                            % (self.t.name, name), self.t["publisher"])
            self.assertEqual(status, 200, data)
        status, accepted, _ = self.submit([7.0])
        self.assertEqual(self.wait_answer(accepted["id"])[0], 200)
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], self.t.name + "/plain",
                                         body([7.0]))
        self.assertEqual(status, 503, data)
        self.assertIn("timed out after", data["error"])

    def test_cli_and_python_client(self):
        env = dict(os.environ, ORRERY_URL=self.server.url, ORRERY_TOKEN=self.t["publisher"])
        npy = os.path.join(self.server.tmp, "x.npy")
        np.save(npy, np.array([2.0]))
        r = subprocess.run([hub.BIN, "infer", "gated", "-i", npy, "--async", "--json"],
                           capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        request_id = __import__("json").loads(r.stdout)["id"]
        r = subprocess.run([hub.BIN, "result", request_id, "--wait", "30", "--json"],
                           capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("4", r.stdout)
        client = Client(self.server.url, self.t["publisher"])
        handle = client.run("gated", np.array([5.0]), asynchronous=True)
        np.testing.assert_array_equal(handle.result(timeout=30), [10.0])
        failing = client.run("gated", np.array([13.0]), asynchronous=True)
        with self.assertRaises(OrreryError) as caught:
            failing.result(timeout=30)
        self.assertEqual(caught.exception.status, 422)


if __name__ == "__main__":
    unittest.main()
