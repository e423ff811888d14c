"""Dynamic batching through the real server: a servable whose manifest has `batching`.

Proves that concurrent requests share backend calls (the servable reports the rows of the call
each answer came from, and /metrics' batch-size histogram agrees) while every client gets exactly
its own rows back; that a request over max_batch_size is refused with 400; that a manifest
asking for batching without a batch dimension first is refused at publish (422); and that
max_batch_size 0 leaves requests unbatched (a multi-row one runs alone or gets 400 by shape).
"""

import unittest

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


class BatchingTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        tar = oip.py_package("batched", CODE, *IO,
                             batching={"max_batch_size": MAX, "max_queue_delay_us": 200000})
        cls.server.publish_ok(cls.t.name, "batched", tar, cls.t["publisher"])
        cls.model = cls.t.name + "/batched"

    def infer(self, body):
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], self.model, body)
        return status, data

    def batch_metrics(self):
        text = self.server.get("/metrics", self.t["publisher"])[1].decode()
        return (oip.metric_value(text, "orrery_inference_batch_size_count", self.model) or 0,
                oip.metric_value(text, "orrery_inference_batch_size_sum", self.model) or 0)

    def test_concurrent_requests_share_calls_and_get_their_own_rows(self):
        status, _ = self.infer(oip.rows_request(1, 0))  # loads the servable
        self.assertEqual(status, 200)
        calls_before, rows_before = self.batch_metrics()
        results = oip.concurrently(lambda i: self.infer(oip.rows_request(1 + i % 2, 100 * i)), 8)
        biggest = 0
        for i, (status, data) in results.items():
            self.assertEqual(status, 200, data)
            rows = 1 + i % 2
            y = oip.output_values(data, {}, "y")
            self.assertEqual(y, [100 * i + k + 1.0 for k in range(rows * 4)], "client %d" % i)
            call_rows = oip.output_values(data, {}, "rows")
            self.assertEqual(len(call_rows), rows)
            biggest = max(biggest, call_rows[0])
            self.assertLessEqual(call_rows[0], MAX)
        self.assertGreater(biggest, 2, "no call held more than one request's rows")
        calls, rows = self.batch_metrics()
        self.assertEqual(rows - rows_before, 12)  # 4 clients x 1 row + 4 x 2 rows
        self.assertLess(calls - calls_before, 8)

    def test_request_over_max_batch_size_is_refused(self):
        status, data = self.infer(oip.rows_request(MAX + 1, 0))
        self.assertEqual(status, 400, data)
        self.assertIn("max_batch_size %d" % MAX, data["error"])
        status, data = self.infer(oip.rows_request(MAX, 0))  # at the limit: served
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.output_values(data, {}, "rows"), [MAX] * MAX)

    def test_manifest_needs_the_batch_dimension_first(self):
        tar = oip.py_package("unbatchable", CODE, [("x", "FP32", [4])], [("y", "FP32", [4])],
                             batching={"max_batch_size": 4})
        status, data = self.server.publish(self.t.name, "unbatchable", tar, self.t["publisher"])
        self.assertEqual(status, 422, data)
        self.assertIn("batch dimension", data["error"])
        status, data = self.server.get("/api/v1/servables/%s/unbatchable" % self.t.name,
                                       self.t["publisher"])
        self.assertEqual(status, 404, data)

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
        self.assertEqual(status, 400, data)
        self.assertIn("shape", data["error"])
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], self.t.name + "/offfixed",
                                         oip.rows_request(1, 0))
        self.assertEqual(status, 200, data)
        text = self.server.get("/metrics", self.t["publisher"])[1].decode()
        self.assertIsNone(oip.metric_value(text, "orrery_inference_batch_size_count", model))


if __name__ == "__main__":
    unittest.main()
