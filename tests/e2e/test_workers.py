"""Python servables that misbehave fail cleanly, stay isolated and leave the server serving.

Proves, each time checking that another servable answers correctly right after:
- an exception is a 422 naming it ("ValueError: ...") and the next request succeeds;
- os._exit, a segfault (503 "signal 11"), an infinite loop past the request timeout (503
  "timed out"/"killed") and unbounded allocation under --worker-memory-bytes fail the request,
  mark the servable not ready with a reason, and the worker is restarted (it answers again);
- a servable whose worker always dies is given up on: ready stays 503 naming the crash loop;
- the sandbox: a worker cannot read the catalog, the admin token or another tenant's blob
  (FileNotFoundError/PermissionError, the bytes never come back), and cannot open a TCP
  connection to the server unless the servable asks (config.network) and the operator allows
  it (--allow-network tenant/name);
- kill -9 of one servable's worker processes under load costs another servable no request,
  and the killed one comes back.
"""

import os
import re
import secrets
import signal
import threading
import time
import unittest

import hub
import oip
from hub import HubTestCase

FP64_IO = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])

CODE = {
    "good": "def predict(inputs):\n    return {'y': inputs['x'] + 1}\n",
    "raiser": '''
def predict(inputs):
    if inputs["x"][0] < 0:
        raise ValueError("negative input %r" % float(inputs["x"][0]))
    return {"y": inputs["x"]}
''',
    "exiter": '''
import os

def predict(inputs):
    if inputs["x"][0] == 3:
        os._exit(3)
    return {"y": inputs["x"]}
''',
    "segv": '''
import ctypes

def predict(inputs):
    if inputs["x"][0] == 11:
        ctypes.string_at(0)
    return {"y": inputs["x"]}
''',
    "looper": '''
def predict(inputs):
    while inputs["x"][0] == 0:
        pass
    return {"y": inputs["x"]}
''',
    "hog": '''
def predict(inputs):
    if inputs["x"][0] == 1:
        hoard = []
        for _ in range(32):  # 2 GiB at most: past that the limit did not work
            hoard.append(b"\\x01" * (64 << 20))
    return {"y": inputs["x"]}
''',
    "crashloop": '''
import os
import threading

threading.Timer(0.3, lambda: os._exit(1)).start()

def predict(inputs):
    return {"y": inputs["x"]}
''',
    "victim": "def predict(inputs):\n    return {'y': inputs['x'] * 2}\n",
}

READER_CODE = '''
import os
import numpy as np

def predict(inputs):
    p = inputs["path"][0]
    p = p.decode() if isinstance(p, bytes) else str(p)
    if not p:
        p = os.path.abspath(__file__)
    with open(p, "rb") as f:
        data = f.read()
    return {"content": np.array([data], dtype=object)}
'''

NET_CODE = '''
import socket
import numpy as np

def predict(inputs):
    s = socket.create_connection(("127.0.0.1", int(inputs["port"][0])), timeout=5)
    s.sendall(b"GET /v2/health/live HTTP/1.0\\r\\n\\r\\n")
    data = s.recv(64)
    s.close()
    return {"ok": np.array([1 if data.startswith(b"HTTP/") else 0], dtype=np.int32)}
'''
NET_IO = ([("port", "INT32", [-1])], [("ok", "INT32", [-1])])
NET_BLOCKED = r"refused|unreachable|permission|not permitted|denied|errno"


class WorkerCase(HubTestCase):

    @classmethod
    def publish_py(cls, tenant, name, code, io=FP64_IO, module="model", **config):
        tar = oip.py_package(name, code, *io, module=module, config=config or None)
        cls.server.publish_ok(tenant.name, name, tar, tenant["publisher"])

    @classmethod
    def publish_isolation(cls):
        """good, reader, net-asks, net-plain in tenant a; a secret file in tenant c.
        The test's temp dir is opened up (0755) so that only the server keeps files out of reach."""
        os.chmod(cls.server.tmp, 0o755)
        cls.publish_py(cls.a, "good", CODE["good"])
        cls.publish_py(cls.a, "reader", READER_CODE,
                       ([("path", "BYTES", [-1])], [("content", "BYTES", [-1])]))
        cls.publish_py(cls.a, "net-asks", NET_CODE, NET_IO, network=True)
        cls.publish_py(cls.a, "net-plain", NET_CODE, NET_IO)
        cls.secret = ("secret-" + secrets.token_hex(16)).encode()
        cls.server.publish_ok(cls.c.name, "secret", hub.package("secret", {
            "secret.txt": cls.secret})[0], cls.c["publisher"])

    def x(self, name, x, tenant=None, token=None, **params):
        req = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [x]}]}
        if params:
            req["parameters"] = params
        tenant = tenant or self.a
        status, data, _ = oip.infer_json(self.server, token or tenant["publisher"],
                                         "%s/%s" % (tenant.name, name), req, timeout=60)
        return status, data

    def assert_good(self):
        status, data = self.x("good", 41)
        self.assertEqual(status, 200, data)
        self.assertEqual(data["outputs"][0]["data"], [42])

    def wait_answers(self, name, x, timeout=20):
        last = []

        def answers():
            last[:] = [self.x(name, x)]
            return last[0][0] == 200
        self.assertTrue(oip.wait_for(answers, timeout, 0.1), "%s never answered again: %r"
                        % (name, last))
        self.assertEqual(last[0][1]["outputs"][0]["data"], [x])

    def ready(self, name, tenant=None):
        return self.server.get(oip.model_path("%s/%s" % ((tenant or self.a).name, name),
                                              route="ready"), (tenant or self.a)["publisher"])

    def net(self, name, tenant):
        req = {"inputs": [{"name": "port", "datatype": "INT32", "shape": [1],
                           "data": [self.server.port]}]}
        status, data, _ = oip.infer_json(self.server, tenant["publisher"],
                                         "%s/%s" % (tenant.name, name), req, timeout=60)
        return status, data


class IsolationChecks:
    """Sandbox checks, run under bubblewrap (WorkersTest) and without it (FallbackSandboxTest)."""

    def test_worker_cannot_read_server_or_other_tenant_files(self):
        def read(path):
            req = {"inputs": [{"name": "path", "datatype": "BYTES", "shape": [1], "data": [path]}]}
            status, data, _ = oip.infer_json(self.server, self.a["publisher"],
                                             self.a.name + "/reader", req, timeout=60)
            return status, data

        status, data = read("")
        self.assertEqual(status, 200, data)  # the servable can read its own file
        self.assertIn("def predict", oip.output_values(data, {}, "content")[0])
        blob = self.server.blob_path(hub.sha256(self.secret))
        self.assertIsNotNone(blob, "no blob for the other tenant's file")
        admin = self.server.read_admin_token()
        for path in (os.path.join(self.server.data_dir, "catalog.db"),
                     os.path.join(self.server.data_dir, "admin.token"), blob):
            with self.subTest(path=path):
                status, data = read(path)
                self.assertError((status, data), 422, "reading " + path)
                self.assertRegex(data["error"], r"FileNotFoundError|PermissionError")
                for secret in (self.secret.decode(), admin, "SQLite format"):
                    self.assertNotIn(secret, str(data))
        self.assert_good()

    def test_network_is_blocked_unless_allowed(self):
        for name in ("net-plain", "net-asks"):
            with self.subTest(name):
                data = self.assertError(self.net(name, self.a), 422)
                self.assertRegex(data["error"].lower(), NET_BLOCKED)
        self.assert_good()


class WorkersTest(IsolationChecks, WorkerCase):

    server_args = ("--worker-memory-bytes", "536870912")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.server.new_tenant(("publisher",))
        cls.c = cls.server.new_tenant(("publisher",))
        for name, code in CODE.items():
            if name != "good":
                cls.publish_py(cls.a, name, code, module=name if name == "victim" else "model")
        cls.publish_isolation()

    def test_exception_is_422_and_next_request_succeeds(self):
        data = self.assertError(self.x("raiser", -2), 422)
        self.assertIn("ValueError", data["error"])
        self.assertIn("negative input -2.0", data["error"])
        status, data = self.x("raiser", 5)
        self.assertEqual((status, data["outputs"][0]["data"]), (200, [5]), data)
        self.assert_good()

    def test_exit_is_503_not_ready_then_restarted(self):
        self.wait_answers("exiter", 1)
        data = self.assertError(self.x("exiter", 3), 503)
        self.assertRegex(data["error"].lower(), r"crash|exit")
        status, ready = self.ready("exiter")
        self.assertError((status, ready), 503, "ready right after the crash")
        self.assertIs(ready.get("ready"), False)
        self.assertRegex(ready["error"], r"^not ready: .+")
        self.assert_good()
        self.wait_answers("exiter", 1)
        self.assertEqual(self.ready("exiter")[0], 200)

    def test_segfault_is_503_signal_11(self):
        self.wait_answers("segv", 1)
        data = self.assertError(self.x("segv", 11), 503)
        self.assertIn("signal 11", data["error"])
        self.assert_good()
        self.wait_answers("segv", 2)

    def test_infinite_loop_is_killed_at_the_timeout(self):
        self.wait_answers("looper", 1)
        t0 = time.monotonic()
        data = self.assertError(self.x("looper", 0, timeout=300000), 503)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertRegex(data["error"].lower(), r"timed out|killed")
        self.assert_good()
        self.wait_answers("looper", 7)

    def test_unbounded_allocation_fails_under_the_memory_limit(self):
        self.wait_answers("hog", 2)
        self.assertError(self.x("hog", 1), 422, message="%s/hog:1: MemoryError" % self.a.name)
        self.assert_good()
        self.wait_answers("hog", 2)

    def test_crash_loop_gives_up(self):
        self.server.post("/v2/repository/models/%s/crashloop/load" % self.a.name, self.a["publisher"])
        last = []

        def gave_up():
            last[:] = [self.ready("crashloop")]
            return last[0][0] == 503 and re.search(r"gave up|giving up|crash.?loop",
                                                   str(last[0][1].get("error")), re.I)
        self.assertTrue(oip.wait_for(gave_up, 40, 0.2), "last ready answer: %r" % last)
        time.sleep(1.5)
        status, data = self.ready("crashloop")
        self.assertError((status, data), 503, "still given up")
        self.assertRegex(data["error"], r"(?i)gave up|giving up|crash.?loop")
        self.assertError(self.x("crashloop", 1), 503)
        self.assert_good()

    def test_kill_9_under_load(self):
        self.wait_answers("victim", 0)
        self.assert_good()
        restarts = lambda: oip.metric_value(self.server.get("/metrics", self.a["publisher"])[1]
                                            .decode(), "orrery_worker_restarts_total",
                                            self.a.name + "/victim") or 0
        before = restarts()
        results, stop = [], threading.Event()

        def load():
            while not stop.is_set():
                status, data = self.x("good", 1)
                results.append((status, data if status != 200 else data["outputs"][0]["data"]))

        th = threading.Thread(target=load)
        th.start()
        try:
            time.sleep(1.0)
            pids = [p for p in oip.descendants(self.server.proc.pid)
                    if "orrery_worker.py" in oip.cmdline(p) and "victim" in oip.cmdline(p)]
            self.assertTrue(pids, "no worker of victim among: %r" % [
                oip.cmdline(p) for p in oip.descendants(self.server.proc.pid)])
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(2.0)
        finally:
            stop.set()
            th.join()
        self.assertGreater(len(results), 10)
        self.assertEqual([r for r in results if r != (200, [2])], [])
        self.wait_answers("victim", 0)
        status, data = self.x("victim", 21)
        self.assertEqual((status, data["outputs"][0]["data"]), (200, [42]), data)
        self.assertGreater(restarts(), before)
        # Restarts are counted per worker (instance), in-process servables have none.
        text = self.server.get("/metrics", self.a["publisher"])[1].decode()
        self.assertRegex(text, r'(?m)^orrery_worker_restarts_total\{servable="%s/victim",'
                               r'version="1",instance="0"\} [1-9]' % re.escape(self.a.name))


class FallbackSandboxTest(IsolationChecks, WorkerCase):
    """--no-bubblewrap: uid 65534, the data directory's modes and seccomp still isolate."""

    server_args = ("--no-bubblewrap",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.server.new_tenant(("publisher",))
        cls.c = cls.server.new_tenant(("publisher",))
        cls.publish_isolation()


class NetworkAllowedTest(WorkerCase):
    """--allow-network tenant/name plus config.network: true lets that servable connect."""

    @classmethod
    def setUpClass(cls):
        cls.tenant_name = hub.unique("net")
        cls.server_args = ("--allow-network", cls.tenant_name + "/net-allowed")
        super().setUpClass()
        cls.a = cls.server.new_tenant(("publisher",), name=cls.tenant_name)
        cls.publish_py(cls.a, "good", CODE["good"])
        cls.publish_py(cls.a, "net-allowed", NET_CODE, NET_IO, network=True)
        cls.publish_py(cls.a, "net-other", NET_CODE, NET_IO, network=True)

    def test_allowed_servable_connects(self):
        status, data = self.net("net-allowed", self.a)
        self.assertEqual(status, 200, data)
        self.assertEqual(data["outputs"][0]["data"], [1])

    def test_other_servable_still_blocked(self):
        data = self.assertError(self.net("net-other", self.a), 422)
        self.assertRegex(data["error"].lower(), NET_BLOCKED)
        self.assert_good()


if __name__ == "__main__":
    unittest.main()
