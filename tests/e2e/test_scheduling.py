"""Scheduling through the real server: the manifest's `queue` section and the schedule_policy
request parameters `priority` and `timeout` (docs/inference.md, "Scheduling").

Every servable here has one instance whose Python worker counts its calls; a request whose
input `s` is a port holds its call at the test's gate (oip.Gate) until the test lets it go. A
"blocker" request held there keeps the instance busy while the test queues others; the
queue-length gauges of /metrics say when they wait, and each answer's call number (`seq`) says
in which order they ran.

Proves: with a queue of Q and the instance busy, N > Q concurrent requests get exactly N - Q
refusals at once (503 + Retry-After) and Q answers; higher priorities run first, FIFO within a
level, 0 meaning the servable's default (the lowest); a request whose timeout passes while it
waits is dropped (503 "timed out") without ever running; the servable's default_timeout_us
shortens the server's timeout and a request's `timeout` cannot lengthen it; bad `priority` and
`timeout` values are 400 and load nothing; /v2/models/{m}/stats has Triton's fields and
batch_stats per batch size; GET /v2 advertises schedule_policy; a bad `queue` section (or a queue
bound or priority levels on a pipeline) is 422.
"""

import re
import threading
import time
import unittest

import hub
import oip
from hub import HubTestCase

CODE = '''
import socket
import numpy as np

calls = 0

def predict(inputs):
    global calls
    calls += 1
    s = inputs["s"]
    if s[0] > 0:  # a gate's port: wait there until the test lets this call go
        with socket.create_connection(("127.0.0.1", int(s[0]))) as gate:
            gate.sendall(b"s")
            gate.recv(1)
    return {"y": s, "seq": np.full(s.shape[0], calls, dtype=np.int64)}
'''
IO = ([("s", "FP64", [-1])], [("y", "FP64", [-1]), ("seq", "INT64", [-1])])
SERVABLES = {
    "plain": {},
    "bounded": {"queue": {"max_size": 3}},
    "prio": {"queue": {"priority_levels": 3, "max_size": 16}},
    "short": {"queue": {"default_timeout_us": 300000}},
    "untouched": {"queue": {"priority_levels": 2}},
    "batched": {"batching": {"max_batch_size": 4, "max_queue_delay_us": 0}},
}


def body(port=0, rows=1, **parameters):
    """A request of `rows` rows; with a gate's port, its call waits at the gate."""
    req = {"inputs": [{"name": "s", "datatype": "FP64", "shape": [rows], "data": [port] * rows}]}
    if parameters:
        req["parameters"] = parameters
    return req


class Call(threading.Thread):
    """One inference request on its own thread; .result = (status, data, headers)."""

    def __init__(self, test, model, req, barrier=None):
        super().__init__(daemon=True)
        self.test, self.model, self.req, self.barrier, self.result = test, model, req, barrier, None
        self.start()

    def run(self):
        if self.barrier is not None:
            self.barrier.wait()
        self.result = self.test.infer(self.model, self.req)

    def answer(self):
        self.join(120)
        self.test.assertIsNotNone(self.result, "no answer")
        return self.result


class SchedulingTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        # The servables reach the test's gate: the operator allows each the network.
        tenant = hub.unique("sch")
        cls.server_args = tuple(a for name in SERVABLES
                                for a in ("--allow-network", "%s/%s" % (tenant, name)))
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",), name=tenant)
        cls.tok = cls.t["publisher"]
        for name, fields in SERVABLES.items():
            tar = oip.py_package(name, CODE, *IO, config={"network": True}, **fields)
            cls.server.publish_ok(cls.t.name, name, tar, cls.tok)

    def setUp(self):
        self.gate = oip.Gate()
        self.addCleanup(self.gate.close)

    # -- helpers

    def model(self, name):
        return self.t.name + "/" + name

    def infer(self, model, req):
        return oip.infer_json(self.server, self.tok, model, req, timeout=120)

    def ok(self, model, req):
        status, data, _ = self.infer(model, req)
        self.assertEqual(status, 200, data)
        return data

    def seq(self, data):
        return oip.output_values(data, {}, "seq")[0]

    def metrics(self):
        status, text = self.server.get("/metrics", self.tok)
        self.assertEqual(status, 200)
        return text.decode() if isinstance(text, bytes) else text

    def metric(self, name, model):
        return oip.metric_value(self.metrics(), name, model) or 0

    def queued_by_priority(self, model):
        pat = re.compile(r'^orrery_inference_queue_length_by_priority\{([^}]*)\}\s+(\S+)$', re.M)
        out = {}
        for labels, value in pat.findall(self.metrics()):
            if 'servable="%s"' % model in labels:
                out[int(re.search(r'priority="(\d+)"', labels).group(1))] = int(float(value))
        return out

    def stats(self, model):
        status, data = self.server.get(oip.model_path(model, route="stats"), self.tok)
        self.assertEqual(status, 200, data)
        self.assertEqual(len(data["model_stats"]), 1, data)
        return data["model_stats"][0]

    def block(self, model):
        """Starts a blocker on the loaded `model` and returns once the instance runs it (it
        waits at the gate until the test releases it)."""
        self.ok(model, body(0))  # loaded and answering
        blocker = Call(self, model, body(self.gate.port, priority=1) if model.endswith("prio")
                       else body(self.gate.port))
        self.gate.arrivals(1)
        return blocker

    def wait_queued(self, model, n):
        got = oip.wait_for(lambda: self.metric("orrery_inference_queue_length", model) == n)
        self.assertTrue(got, "%d requests never waited in the queue" % n)

    # -- tests

    def test_full_queue_rejects_exactly_the_requests_beyond_it(self):
        model, q, n = self.model("bounded"), 3, 8
        blocker = self.block(model)
        rejected_before = self.metric("orrery_inference_rejected_total", model)
        barrier = threading.Barrier(n)
        calls = [Call(self, model, body(0), barrier) for _ in range(n)]
        self.wait_queued(model, q)
        refused = oip.wait_for(lambda: self.metric("orrery_inference_rejected_total", model)
                               - rejected_before == n - q)
        self.assertTrue(refused, "not exactly %d refused" % (n - q))
        self.gate.release()
        results = [c.answer() for c in calls]
        self.assertEqual(blocker.answer()[0], 200)
        ok = [r for r in results if r[0] == 200]
        rejected = [r for r in results if r[0] == 503]
        self.assertEqual((len(ok), len(rejected)), (q, n - q), [r[:2] for r in results])
        for status, data, headers in rejected:
            self.assertError((status, data), 503,
                             message="servable %s:1: queue is full (3 requests waiting)" % model)
            self.assertEqual(headers.get("retry-after"), "1", headers)
        self.assertEqual(self.metric("orrery_inference_rejected_total", model) - rejected_before,
                         n - q)

    def test_higher_priorities_run_first_and_fifo_within_a_level(self):
        model = self.model("prio")
        blocker = self.block(model)
        order = [("low-a", 3), ("default", 0), ("mid-a", 2), ("high", 1), ("mid-b", 2),
                 ("low-b", 3)]
        calls = {}
        for i, (name, priority) in enumerate(order):
            calls[name] = Call(self, model, body(0, priority=priority))
            self.wait_queued(model, i + 1)  # FIFO order within a level is arrival order
        self.assertEqual(self.queued_by_priority(model), {1: 1, 2: 2, 3: 3})
        self.gate.release()
        first = self.seq(blocker.answer()[1])
        ran = {}
        for name, call in calls.items():
            status, data, _ = call.answer()
            self.assertEqual(status, 200, data)
            ran[name] = self.seq(data) - first
        self.assertEqual(sorted(ran, key=ran.get),
                         ["high", "mid-a", "mid-b", "low-a", "default", "low-b"], ran)
        self.assertEqual(sorted(ran.values()), [1, 2, 3, 4, 5, 6])

    def test_request_whose_timeout_passes_while_queued_never_runs(self):
        model = self.model("plain")
        blocker = self.block(model)
        expired_before = self.metric("orrery_inference_expired_total", model)
        fail_before = self.stats(model)["inference_stats"]["fail"]["count"]
        late = Call(self, model, body(0, timeout=100000))  # 0.1 s
        self.wait_queued(model, 1)
        # It arrived before it was seen queued, so its deadline is at most 0.1 s after that,
        # on the same monotonic clock: past that instant it has surely expired. (It is
        # answered when it would be taken off the queue, i.e. once the blocker is done.)
        queued_by = time.monotonic()
        self.assertTrue(oip.wait_for(lambda: time.monotonic() > queued_by + 0.1, 10))
        self.gate.release()
        status, data, _ = late.answer()
        self.assertError((status, data), 503,
                         message_re=r"request timed out after (\d+) ms waiting in the queue of "
                         r"%s:1 \(dropped before it ran\)" % re.escape(model))
        self.assertGreaterEqual(int(re.search(r"after (\d+) ms", data["error"]).group(1)), 100)
        first = self.seq(blocker.answer()[1])
        self.assertEqual(self.seq(self.ok(model, body(0))), first + 1, "the expired request ran")
        self.assertEqual(self.metric("orrery_inference_expired_total", model) - expired_before, 1)
        self.assertEqual(self.stats(model)["inference_stats"]["fail"]["count"] - fail_before, 1)

    def test_servable_default_timeout_shortens_and_cannot_be_lengthened(self):
        model = self.model("short")
        for parameters in ({}, {"timeout": 10000000}):
            # A worker that overruns its deadline is killed and restarted: wait for it.
            answering = oip.wait_for(lambda: self.infer(model, body(0))[0] == 200, timeout=30)
            self.assertTrue(answering, "the servable never answered")
            held = Call(self, model, body(self.gate.port, **parameters))
            self.gate.arrivals(1)  # running, and never let go: only the deadline ends it
            status, data, _ = held.answer()
            # The servable's 300 ms, also when the request asked for 10 s.
            self.assertError((status, data), 503, parameters)
            self.assertWorkerTimeout(data["error"], "%s:1" % model, 300)
            self.gate.release()  # its worker is gone: nothing to let go

    def test_bad_priority_and_timeout_are_400_and_load_nothing(self):
        untouched = self.model("untouched")
        priority = "parameter 'priority' must be a non-negative integer"
        timeout = "parameter 'timeout' must be a non-negative integer"
        timeouts = "parameter 'timeout' must be 1..3600000000 (microseconds), got %d"
        cases = {
            "negative priority": ({"priority": -1}, priority),
            "fractional priority": ({"priority": 1.5}, priority),
            "priority as a string": ({"priority": "high"}, priority),
            "zero timeout": ({"timeout": 0}, timeouts % 0),
            "negative timeout": ({"timeout": -5}, timeout),
            "fractional timeout": ({"timeout": 2.5}, timeout),
            "timeout as a string": ({"timeout": "soon"}, timeout),
            "timeout over an hour": ({"timeout": 3600000001}, timeouts % 3600000001),
        }
        for what, (parameters, message) in cases.items():
            with self.subTest(what):
                status, data, _ = self.infer(untouched, body(0, **parameters))
                self.assertError((status, data), 400, what, message=message)
        # 10**20 is out of range; the server's text calls it "not a non-negative integer",
        # which it is: only the parameter's name is checked.
        status, data, _ = self.infer(untouched, body(0, timeout=10 ** 20))
        self.assertError((status, data), 400, "absurd timeout",
                         message_prefix="parameter 'timeout' ")
        status, index = self.server.post("/v2/repository/index", self.tok, {})
        self.assertEqual(status, 200, index)
        self.assertEqual([m["state"] for m in index if m["name"] == untouched], ["UNAVAILABLE"],
                         "a refused request loaded it")
        # The bounds themselves are fine.
        status, data, _ = self.infer(untouched, body(0, priority=2, timeout=3600000000))
        self.assertEqual(status, 200, data)
        # A level the servable lacks runs at its default level, as in Triton: answered.
        for model, priority in ((self.model("plain"), 1), (untouched, 3)):
            status, data, _ = self.infer(model, body(0, priority=priority))
            self.assertEqual(status, 200, (model, priority, data))
        # 1 µs is a valid timeout, but it is over before the request reaches the queue: it
        # arrives expired and is answered at once (docs/inference.md, "Timeouts").
        status, data, _ = self.infer(untouched, body(0, priority=0, timeout=1))
        self.assertError((status, data), 503, message_re=r"request timed out after \d+ ms waiting "
                         r"in the queue of %s:1 \(dropped before it ran\)" % re.escape(untouched))

    def test_stats_have_tritons_fields_and_batch_stats(self):
        model = self.model("batched")
        self.ok(model, body(0, rows=2))
        self.ok(model, body(0, rows=1))
        self.ok(model, body(0, rows=2))
        stats = self.stats(model)
        self.assertEqual((stats["name"], stats["version"]), (model, "1"))
        inference = stats["inference_stats"]
        for field in ("success", "fail", "queue", "compute_input", "compute_infer",
                      "compute_output"):
            self.assertEqual(sorted(inference[field]), ["count", "ns"], field)
        self.assertEqual(inference["success"]["count"], 3)
        self.assertGreater(inference["success"]["ns"], 0)
        self.assertEqual(inference["fail"]["count"], 0)
        self.assertEqual(inference["queue"]["count"], 3)
        self.assertEqual(inference["compute_infer"]["count"], 3)
        self.assertEqual(stats["execution_count"], 3)
        self.assertEqual(stats["inference_count"], 5)  # rows, as Triton counts them
        batches = {b["batch_size"]: b["compute_infer"] for b in stats["batch_stats"]}
        self.assertEqual(sorted(batches), [1, 2], stats["batch_stats"])
        self.assertEqual(batches[1]["count"], 1)
        self.assertEqual(batches[2]["count"], 2)
        self.assertGreater(batches[2]["ns"], 0)
        self.ok(self.model("plain"), body(0))
        self.assertEqual(self.stats(self.model("plain"))["batch_stats"], [])

    def test_server_metadata_advertises_schedule_policy(self):
        status, data = self.server.get("/v2", self.tok)
        self.assertEqual(status, 200, data)
        self.assertIn("schedule_policy", data["extensions"])

    def test_bad_queue_section_is_refused_at_publish(self):
        for queue, message in (({"priority_levels": 17}, "queue.priority_levels: must be 0..16"),
                               ({"max_size": 0}, "queue.max_size: must be 1..65536"),
                               ({"priority_levels": 2, "default_priority_level": 3},
                                "queue.default_priority_level: must be 1..2"),
                               ({"default_timeout_us": -1},
                                "queue.default_timeout_us: must be 1..3600000000"),
                               ({"size": 3}, "queue.size: unknown key")):
            with self.subTest(queue=queue):
                tar = oip.py_package("badqueue", CODE, *IO, queue=queue)
                status, data = self.server.publish(self.t.name, "badqueue", tar, self.tok)
                self.assertError((status, data), 422, message="manifest: " + message)
        # A pipeline's steps wait in their own queues: it takes only a timeout.
        tar, _ = hub.package(
            "badqueue", {}, backend="pipeline", signature=oip.signature(*IO),
            pipeline={"steps": [{"name": "a", "servable": "plain", "version": 1,
                                 "inputs": {"s": "$inputs.s"}}],
                      "outputs": {"y": "a.y", "seq": "a.seq"}},
            queue={"priority_levels": 2})
        status, data = self.server.publish(self.t.name, "badqueue", tar, self.tok)
        self.assertError((status, data), 422, message="manifest: queue.priority_levels: a "
                         "pipeline has no queue of its own (each step waits in its servable's "
                         "queue); only default_timeout_us applies")
        self.assertError(self.server.get("/api/v1/servables/%s/badqueue" % self.t.name, self.tok),
                         404, message="servable %s/badqueue not found" % self.t.name)


if __name__ == "__main__":
    unittest.main()
