"""Worker restarts (README "Where model code runs"): exponential backoff, the default limit of 5
restarts, the exact not-ready reasons, and an explicit load after giving up.

The servable asks the test, each time its worker starts (at import), whether to start or to
crash: so the test decides, start by start, and nothing depends on timing. It crashes once on a
request (exit code 3), then each of its 5 restarts fails (exit code 1): the server waits 100,
200, 400, 800 and 1600 ms before them, then gives up, and only an explicit load starts it again.
"""

import re
import socket
import threading
import unittest

import hub
import oip
from hub import HubTestCase

MODULE = '''
import os, socket
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "port.txt")) as f:
    port = int(f.read())
with socket.create_connection(("127.0.0.1", port)) as s:
    s.sendall(b"?")
    if s.recv(1) == b"c":
        os._exit(1)

def predict(inputs):
    if inputs["x"][0] < 0:
        os._exit(3)
    return {"y": inputs["x"] + 1}
'''
SIG = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])


class Control:
    """Answers each worker start with the next of `answers` ("o" start, "c" crash)."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.answers = []
        self.starts = 0
        self.cond = threading.Condition()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, self.cond:
                conn.recv(1)
                self.starts += 1
                conn.sendall(self.answers.pop(0).encode() if self.answers else b"c")
                self.cond.notify_all()

    def plan(self, answers):
        with self.cond:
            self.answers.extend(answers)

    def wait_starts(self, n, timeout=60):
        with self.cond:
            return self.cond.wait_for(lambda: self.starts >= n, timeout)


class WorkerRestartTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tenant_name = hub.unique("wr")
        cls.server_args = ("--allow-network", cls.tenant_name + "/flaky")
        super().setUpClass()
        cls.control = Control()
        cls.addClassCleanup(cls.control.listener.close)
        s = cls.server
        s.create_tenant(cls.tenant_name)
        cls.token = s.create_token(cls.tenant_name, "publisher")["token"]
        s.publish_ok(cls.tenant_name, "flaky", oip.py_package(
            "flaky", MODULE, *SIG, config={"network": True},
            files={"port.txt": str(cls.control.port).encode()}), cls.token)

    def infer(self, x):
        return oip.infer_json(self.server, self.token, self.tenant_name + "/flaky",
                              {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1],
                                           "data": [x]}]})[:2]

    def ready(self):
        return self.server.get("/v2/models/%s/flaky/ready" % self.tenant_name, self.token)

    def restarts_metric(self):
        status, text = self.server.get("/metrics", self.server.admin)
        return oip.metric_value(text.decode(), "orrery_worker_restarts_total",
                                self.tenant_name + "/flaky")

    def test_backoff_limit_reasons_and_reload(self):
        key = self.tenant_name + "/flaky:1"
        self.control.plan(["o"])
        status, data = self.server.post("/v2/repository/models/%s/flaky/load" % self.tenant_name,
                                        self.token)
        self.assertEqual((status, data), (200, {"name": key, "state": "READY"}))
        self.assertEqual(self.control.starts, 1)

        self.control.plan(["c"] * 5)
        self.assertEqual(self.infer(-1.0), (503, {"error": key + ": worker crashed (exit code 3)"}))
        self.assertTrue(self.control.wait_starts(6), "the worker was not restarted 5 times")
        gave_up = "worker exited before it was ready (exit code 1); gave up after 6 consecutive " \
                  "failures"
        answer = oip.wait_for(lambda: (lambda r: r if "gave up" in str(r[1]) else None)(
            self.ready()), timeout=30)
        self.assertEqual(answer, (503, {"name": key, "ready": False,
                                        "error": "not ready: " + gave_up}))
        self.assertEqual(self.infer(1.0), (503, {"error": key + ": worker is dead: " + gave_up}))
        self.assertEqual(self.control.starts, 6)  # it stays down
        self.assertEqual(self.restarts_metric(), 5)
        delays = [int(ms) for ms in re.findall(
            r"worker %s: [^\n]*; restarting in (\d+) ms" % re.escape(key), self.server.log_tail(20000))]
        self.assertEqual(delays, [100, 200, 400, 800, 1600])

        # An explicit load starts it afresh.
        self.control.plan(["o"])
        status, data = self.server.post("/v2/repository/models/%s/flaky/load" % self.tenant_name,
                                        self.token)
        self.assertEqual((status, data), (200, {"name": key, "state": "READY"}))
        self.assertEqual(self.control.starts, 7)
        self.assertEqual(self.ready(), (200, {"name": key, "ready": True}))
        status, data = self.infer(1.0)
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.output_values(data, {}, "y"), [2.0])


if __name__ == "__main__":
    unittest.main()
