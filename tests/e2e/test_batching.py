"""Dynamic batching through the real server: a servable whose manifest has `batching`.

Proves that requests queued behind a busy instance share backend calls, filled oldest first up
to max_batch_size (a request that does not fit waits for the next batch; the servable reports
the rows of the call each answer came from, and /metrics' batch-size histogram agrees), while
every client gets exactly its own rows back; that a request over max_batch_size is refused with
400; that a manifest asking for batching without a batch dimension first is refused at publish
(422); and that max_batch_size 0 leaves requests unbatched (a multi-row one runs alone or gets
400 by shape).
"""

import threading
import unittest

import hub
import oip
from hub import HubTestCase

# Adds 1; every answer also carries, per row, the row count of the backend call it was part of.
CODE = '''
import numpy as np

def predict(inputs):
    x = inputs["x"]
    return {"y": x + 1, "rows": np.full((x.shape[0], 1), x.shape[0], dtype=np.int64)}
'''
IO = ([("x", "FP32", [-1, 4])], [("y", "FP32", [-1, 4]), ("rows", "INT64", [-1, 1])])
MAX = 8

# The same, with an input `port`: a call whose first row has a port waits at the test's gate
# (oip.Gate) until the test lets it go, so the instance is busy for as long as the test says.
GATED_IO = ([("x", "FP32", [-1, 4]), ("port", "INT64", [-1])], IO[1])


def gated_request(rows, base, port=0):
    req = oip.rows_request(rows, base)
    req["inputs"].append({"name": "port", "datatype": "INT64", "shape": [rows],
                          "data": [port] * rows})
    return req


class BatchingTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        tenant = hub.unique("b")  # its gated servable may use the network
        cls.server_args = ("--allow-network", tenant + "/gated")
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",), name=tenant)
        tar = oip.py_package("batched", CODE, *IO,
                             batching={"max_batch_size": MAX, "max_queue_delay_us": 200000})
        cls.server.publish_ok(cls.t.name, "batched", tar, cls.t["publisher"])
        cls.model = cls.t.name + "/batched"
        tar = oip.py_package("gated", oip.GATED_ROWS_CODE, *GATED_IO, config={"network": True},
                             batching={"max_batch_size": MAX, "max_queue_delay_us": 200000})
        cls.server.publish_ok(cls.t.name, "gated", tar, cls.t["publisher"])
        cls.gated = cls.t.name + "/gated"

    def infer(self, body, model=None):
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], model or self.model,
                                         body)
        return status, data

    def metric(self, name, model):
        text = self.server.get("/metrics", self.t["publisher"])[1].decode()
        return oip.metric_value(text, name, model) or 0

    def test_queued_requests_share_calls_and_get_their_own_rows(self):
        status, data = self.infer(gated_request(1, 0), self.gated)  # loads the servable
        self.assertEqual(status, 200, data)
        calls_before = self.metric("orrery_inference_batch_size_count", self.gated)
        rows_before = self.metric("orrery_inference_batch_size_sum", self.gated)
        gate = oip.Gate()
        self.addCleanup(gate.close)
        results = {}

        def infer(i, req):
            results[i] = self.infer(req, self.gated)

        # The instance is busy: a one-row call waits at the gate.
        threads = [threading.Thread(target=infer, args=("held", gated_request(1, 0, gate.port)))]
        threads[0].start()
        gate.arrivals(1)
        # 8 clients queue behind it, one after the other: 1, 2, 1, 2, ... rows (12 in all).
        for i in range(8):
            threads.append(threading.Thread(target=infer, args=(i, gated_request(1 + i % 2,
                                                                                 100 * i))))
            threads[-1].start()
            self.assertTrue(oip.wait_for(lambda: self.metric(
                "orrery_inference_queue_length", self.gated) == i + 1), "client %d not queued" % i)
        gate.release()
        for th in threads:
            th.join(60)
        self.assertEqual(results["held"][0], 200, results["held"])
        self.assertEqual(oip.output_values(results["held"][1], {}, "rows"), [1])
        # Oldest first, up to 8 rows, a request that does not fit waiting for the next batch:
        # clients 0-4 (1+2+1+2+1 = 7), not 5 (2 rows: 9), 6 (8); then clients 5 and 7 (4).
        batch_of = {0: 8, 1: 8, 2: 8, 3: 8, 4: 8, 5: 4, 6: 8, 7: 4}
        for i in range(8):
            status, data = results[i]
            self.assertEqual(status, 200, data)
            rows = 1 + i % 2
            y = oip.output_values(data, {}, "y")
            self.assertEqual(y, [100 * i + k + 1.0 for k in range(rows * 4)], "client %d" % i)
            self.assertEqual(oip.output_values(data, {}, "rows"), [batch_of[i]] * rows,
                             "client %d" % i)
        calls = self.metric("orrery_inference_batch_size_count", self.gated)
        rows = self.metric("orrery_inference_batch_size_sum", self.gated)
        self.assertEqual((calls - calls_before, rows - rows_before), (3, 13))

    def test_request_over_max_batch_size_is_refused(self):
        self.assertError(self.infer(oip.rows_request(MAX + 1, 0)), 400,
                         message="the request's batch of %d rows is over the servable's "
                         "max_batch_size %d" % (MAX + 1, MAX))
        status, data = self.infer(oip.rows_request(MAX, 0))  # at the limit: served
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.output_values(data, {}, "rows"), [MAX] * MAX)

    def test_manifest_needs_the_batch_dimension_first(self):
        tar = oip.py_package("unbatchable", CODE, [("x", "FP32", [4])], [("y", "FP32", [4])],
                             batching={"max_batch_size": 4})
        self.assertError(self.server.publish(self.t.name, "unbatchable", tar, self.t["publisher"]),
                         422, message="manifest: batching: signature.inputs[0] 'x' must have -1 "
                         "as its first dimension (the batch dimension) to be batched")
        self.assertError(self.server.get("/api/v1/servables/%s/unbatchable" % self.t.name,
                                         self.t["publisher"]), 404,
                         message="servable %s/unbatchable not found" % self.t.name)

    def test_max_batch_size_zero_runs_requests_as_they_come(self):
        """`max_batch_size: 0` turns batching off: a multi-row request runs alone, as its
        signature allows; one against a fixed first dimension is refused (400, naming it)."""
        off = {"max_batch_size": 0, "max_queue_delay_us": 500}
        for name, io in (("off", IO), ("offfixed", ([("x", "FP32", [1, 4])],
                                                   [("y", "FP32", [1, 4]), ("rows", "INT64", [1, 1])]))):
            tar = oip.py_package(name, CODE, *io, batching=off)
            self.server.publish_ok(self.t.name, name, tar, self.t["publisher"])
        model = self.t.name + "/off"
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], model,
                                         oip.rows_request(3, 0))
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.output_values(data, {}, "rows"), [3, 3, 3])  # one call, its own rows
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], self.t.name + "/offfixed",
                                         oip.rows_request(3, 0))
        self.assertError((status, data), 400,
                         message="input 'x' has shape [3,4], the servable expects [1,4]")
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], self.t.name + "/offfixed",
                                         oip.rows_request(1, 0))
        self.assertEqual(status, 200, data)
        text = self.server.get("/metrics", self.t["publisher"])[1].decode()
        self.assertIsNone(oip.metric_value(text, "orrery_inference_batch_size_count", model))
        self.assertIsNotNone(oip.metric_value(text, "orrery_inference_requests_total", model))


if __name__ == "__main__":
    unittest.main()
