"""Python servables that misbehave fail cleanly, stay isolated and leave the server serving.

Proves, each time checking that another servable answers correctly right after:
- an exception is a 422 naming it ("ValueError: ...") and the next request succeeds;
- os._exit (503 "worker crashed (exit code 3)"), a segfault (503 "worker crashed (signal
  11)") and an infinite loop past the request timeout (503 "worker timed out after 300 ms;
  killed") fail the request, mark the servable not ready with the reason, and the worker is
  restarted (it answers again); unbounded allocation under --worker-memory-bytes is the
  servable's MemoryError (422);
- a servable whose worker fails every start after its first life is given up on after 5
  restarts: ready stays 503 "...; gave up after 6 consecutive failures";
- the sandbox: a worker cannot read the catalog, the admin token or another tenant's blob
  (FileNotFoundError/PermissionError, the bytes never come back), and cannot open a TCP
  connection to the server unless the servable asks (config.network) and the operator allows
  it (--allow-network tenant/name);
- kill -9 of one servable's worker processes under load costs another servable no request,
  and the killed one comes back after exactly one restart.

Events are ordered by what the test observes (answers, counts, a gate the servable connects
to), never by sleeping.
"""

import os
import re
import secrets
import signal
import threading
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
# The seccomp filter refuses the socket (EACCES), with or without bubblewrap.
NET_BLOCKED = "PermissionError: [Errno 13] Permission denied"

# A worker that starts only when the test's gate (oip.Gate) lets it: at import it connects to
# the gate and waits there; a closed gate (connection refused) makes the start fail. Input x ==
# %(x)d makes predict() exit with status %(code)d.
GATED_START_CODE = '''
import os
import socket

try:
    with socket.create_connection(("127.0.0.1", %(port)d)) as gate:
        gate.sendall(b"s")
        if gate.recv(1) != b"g":
            os._exit(1)
except OSError:
    os._exit(1)

def predict(inputs):
    if inputs["x"][0] == %(x)d:
        os._exit(%(code)d)
    return {"y": inputs["x"]}
'''
GATED = ("exiter", "crashloop")  # they reach the gate: the operator allows them the network


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

    def isolation(self):
        """How the server isolates workers: its log line at start (README, "Where model code
        runs")."""
        with open(self.server.log_path, errors="replace") as f:
            found = re.search(r"run in workers: (.*)", f.read())
        self.assertIsNotNone(found, "the server did not log its worker isolation")
        return found.group(1)

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
                self.assertError((status, data), 422, "reading " + path,
                                 message="%s/reader:1: %s" % (self.a.name,
                                                              self.read_error() % path))
                for secret in (self.secret.decode(), admin, "SQLite format"):
                    self.assertNotIn(secret, str(data))
        self.assert_good()

    def test_network_is_blocked_unless_allowed(self):
        for name in ("net-plain", "net-asks"):
            with self.subTest(name):
                self.assertError(self.net(name, self.a), 422,
                                 message="%s/%s:1: %s" % (self.a.name, name, NET_BLOCKED))
        self.assert_good()


class WorkersTest(IsolationChecks, WorkerCase):

    @classmethod
    def setUpClass(cls):
        cls.tenant_name = hub.unique("w")
        cls.server_args = ("--worker-memory-bytes", "536870912")
        for name in GATED:
            cls.server_args += ("--allow-network", "%s/%s" % (cls.tenant_name, name))
        super().setUpClass()
        cls.a = cls.server.new_tenant(("publisher",), name=cls.tenant_name)
        cls.c = cls.server.new_tenant(("publisher",))
        for name, code in CODE.items():
            if name != "good":
                cls.publish_py(cls.a, name, code, module=name if name == "victim" else "model")
        cls.publish_isolation()

    def read_error(self):
        isolation = self.isolation()
        if not isolation.startswith("bubblewrap ("):
            self.skipTest("bubblewrap cannot run on this host: " + isolation)
        return "FileNotFoundError: [Errno 2] No such file or directory: %r"  # not mounted

    def test_exception_is_422_and_next_request_succeeds(self):
        self.assertError(self.x("raiser", -2), 422,
                         message="%s/raiser:1: ValueError: negative input -2.0" % self.a.name)
        status, data = self.x("raiser", 5)
        self.assertEqual((status, data["outputs"][0]["data"]), (200, [5]), data)
        self.assert_good()

    def gated(self, name, x, code):
        """Publishes GATED_START_CODE as `name` and loads it through the gate; returns it."""
        gate = oip.Gate()
        self.addCleanup(gate.close)
        self.publish_py(self.a, name, GATED_START_CODE % {"port": gate.port, "x": x,
                                                          "code": code}, network=True)
        model = "%s/%s" % (self.a.name, name)
        loaded = []
        loader = threading.Thread(target=lambda: loaded.append(self.server.post(
            "/v2/repository/models/%s/load" % model, self.a["publisher"])))
        loader.start()
        gate.arrivals(1)  # the first start waits at the gate
        gate.release()
        loader.join(60)
        self.assertEqual(loaded, [(200, {"name": model + ":1", "state": "READY"})])
        return gate

    def test_exit_is_503_not_ready_then_restarted(self):
        gate = self.gated("exiter", 3, 3)
        self.wait_answers("exiter", 1)
        self.assertError(self.x("exiter", 3), 503,
                         message="%s/exiter:1: worker crashed (exit code 3)" % self.a.name)
        gate.arrivals(1)  # the restart has begun: it waits at the gate
        self.assertEqual(self.ready("exiter"), (503, {
            "name": "%s/exiter:1" % self.a.name, "ready": False,
            "error": "not ready: worker crashed (exit code 3); restarting"}))
        self.assert_good()
        gate.release()
        self.wait_answers("exiter", 1)
        self.assertEqual(self.ready("exiter"), (200, {"name": "%s/exiter:1" % self.a.name,
                                                      "ready": True}))
        self.assertEqual(self.restarts("exiter"), 1)

    def test_segfault_is_503_signal_11(self):
        self.wait_answers("segv", 1)
        self.assertError(self.x("segv", 11), 503,
                         message="%s/segv:1: worker crashed (signal 11)" % self.a.name)
        self.assert_good()
        self.wait_answers("segv", 2)

    def test_infinite_loop_is_killed_at_the_timeout(self):
        self.wait_answers("looper", 1)
        # The server reports the deadline it enforced (the request's 300 ms), not a guess.
        resp = self.x("looper", 0, timeout=300000)
        self.assertError(resp, 503)
        self.assertWorkerTimeout(resp[1]["error"], "%s/looper:1" % self.a.name, 300)
        self.assert_good()
        self.wait_answers("looper", 7)

    def test_unbounded_allocation_fails_under_the_memory_limit(self):
        self.wait_answers("hog", 2)
        self.assertError(self.x("hog", 1), 422, message="%s/hog:1: MemoryError" % self.a.name)
        self.assert_good()
        self.wait_answers("hog", 2)

    def test_crash_loop_gives_up(self):
        gate = self.gated("crashloop", 13, 1)
        gate.close()  # every later start fails
        model = "%s/crashloop" % self.a.name
        self.wait_answers("crashloop", 1)
        self.assertError(self.x("crashloop", 13), 503,
                         message="%s:1: worker crashed (exit code 1)" % model)
        # Each restart now dies before it is ready; after 5 restarts the server gives up.
        gave_up = ("worker exited before it was ready (exit code 1); gave up after 6 "
                   "consecutive failures")
        last = []

        def given_up():
            last[:] = [self.ready("crashloop")]
            return last[0][0] == 503 and "gave up" in last[0][1]["error"]
        self.assertTrue(oip.wait_for(given_up, 60), "last ready answer: %r" % last)
        self.assertEqual(last[0], (503, {"name": model + ":1", "ready": False,
                                         "error": "not ready: " + gave_up}))
        self.assertEqual(self.restarts("crashloop"), 5)
        self.assertError(self.x("crashloop", 1), 503,
                         message="%s:1: worker is dead: %s" % (model, gave_up))
        # It stays down: no further restart, the same reason.
        self.assertEqual(self.restarts("crashloop"), 5)
        self.assertError(self.ready("crashloop"), 503, message="not ready: " + gave_up)
        self.assert_good()

    def restarts(self, name):
        text = self.server.get("/metrics", self.a["publisher"])[1].decode()
        return oip.metric_value(text, "orrery_worker_restarts_total",
                                "%s/%s" % (self.a.name, name))

    def test_kill_9_under_load(self):
        self.wait_answers("victim", 0)
        self.assert_good()
        before = self.restarts("victim")
        results, stop = [], threading.Event()

        def load():
            while not stop.is_set():
                status, data = self.x("good", 1)
                results.append((status, data if status != 200 else data["outputs"][0]["data"]))

        th = threading.Thread(target=load)
        th.start()
        try:
            # Phases by count: the load runs, the victim's workers are killed, the victim
            # answers again, and the load goes on after that.
            self.assertTrue(oip.wait_for(lambda: len(results) >= 20, 60), "the load is stuck")
            pids = [p for p in oip.descendants(self.server.proc.pid)
                    if "orrery_worker.py" in oip.cmdline(p) and "victim" in oip.cmdline(p)]
            self.assertTrue(pids, "no worker of victim among: %r" % [
                oip.cmdline(p) for p in oip.descendants(self.server.proc.pid)])
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed_at = len(results)
            self.wait_answers("victim", 0)
            back_at = max(len(results), killed_at + 20)
            self.assertTrue(oip.wait_for(lambda: len(results) >= back_at + 20, 60),
                            "the load is stuck")
        finally:
            stop.set()
            th.join()
        self.assertEqual([r for r in results if r != (200, [2])], [])
        status, data = self.x("victim", 21)
        self.assertEqual((status, data["outputs"][0]["data"]), (200, [42]), data)
        # One life ended, one restart (counted per worker instance).
        self.assertEqual(self.restarts("victim"), before + 1)
        text = self.server.get("/metrics", self.a["publisher"])[1].decode()
        self.assertIn('orrery_worker_restarts_total{servable="%s/victim",version="1",'
                      'instance="0"} %d\n' % (self.a.name, before + 1), text)


class FallbackSandboxTest(IsolationChecks, WorkerCase):
    """--no-bubblewrap: uid 65534, the data directory's modes and seccomp still isolate."""

    server_args = ("--no-bubblewrap",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.server.new_tenant(("publisher",))
        cls.c = cls.server.new_tenant(("publisher",))
        cls.publish_isolation()

    def read_error(self):
        isolation = self.isolation()
        self.assertTrue(isolation.startswith("no namespaces (bwrap unusable: "), isolation)
        if "separate uid 65534" not in isolation:
            self.skipTest("the server is not root, so the fallback keeps its uid: " + isolation)
        return "PermissionError: [Errno 13] Permission denied: %r"  # 0700/0600, uid 65534


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
        self.assertError(self.net("net-other", self.a), 422,
                         message="%s/net-other:1: %s" % (self.a.name, NET_BLOCKED))
        self.assert_good()


if __name__ == "__main__":
    unittest.main()
