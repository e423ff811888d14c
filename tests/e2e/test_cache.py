"""The response cache through the real server: servables whose manifest says `cache: true`.

The servable counts its own calls and returns the count as an output, so a hit is seen not to
run it (the count does not move) while every other answer is compared with what it must be.
Proves: a repeated request is answered from the cache (`"parameters": {"cache_hit": true}`)
with the miss's outputs, a different input misses; /metrics and /v2/models/{m}/stats count the
hits and misses; the cache's totals are the hub admin's only; a new version answers with its own
outputs (a miss) while the old version still hits; another tenant gets 404 for a private
servable, and the same package published by that tenant misses; a servable without `cache`
never carries the parameter; a hit honours requested outputs and binary_data_output; LRU
eviction within --cache-bytes; --cache-bytes 0 turns caching off.
"""

import re
import unittest

import oip
from hub import HubTestCase

CODE = '''
import numpy as np

CALLS = [0]

def predict(inputs):
    CALLS[0] += 1
    return {"y": inputs["x"] * %d, "calls": np.array([CALLS[0]], dtype=np.int64)}
'''
IO = ([("x", "FP32", [-1])], [("y", "FP32", [-1]), ("calls", "INT64", [1])])
CAPACITY = 1 << 20


def package(name, factor=2, cache=True):
    fields = {"cache": True} if cache else {}
    return oip.py_package(name, CODE % factor, *IO, **fields)


def request(values, **extra):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [len(values)],
                        "data": [float(v) for v in values]}]}
    body.update(extra)
    return body


def total(text, metric):
    """The value of an unlabelled metric line, or None."""
    match = re.search(r"(?m)^%s (\S+)$" % re.escape(metric), text)
    return float(match.group(1)) if match else None


class CacheTest(HubTestCase):

    server_args = ("--cache-bytes", str(CAPACITY))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.server.new_tenant(("publisher",))
        cls.b = cls.server.new_tenant(("publisher",))
        cls.server.publish_ok(cls.a.name, "memo", package("memo"), cls.a["publisher"])
        cls.server.publish_ok(cls.a.name, "plain", package("plain", cache=False),
                              cls.a["publisher"])
        cls.memo = cls.a.name + "/memo"

    def infer(self, model, body, token=None, version=None):
        status, data, headers = oip.infer_json(self.server, token or self.a["publisher"], model,
                                               body, version=version)
        self.assertEqual(status, 200, data)
        return oip.split_answer(data, headers)[0] if not isinstance(data, dict) else data

    def hit(self, data):
        return data["parameters"]["cache_hit"]

    def calls(self, data):
        return oip.output_values(data, {}, "calls")[0]

    def metrics(self, token):
        return self.server.get("/metrics", token)[1].decode()

    def test_repeated_request_hits_with_equal_outputs(self):
        first = self.infer(self.memo, request([1, 2, 3]))
        self.assertIs(self.hit(first), False)
        self.assertEqual(oip.output_values(first, {}, "y"), [2.0, 4.0, 6.0])
        second = self.infer(self.memo, request([1, 2, 3]))
        self.assertIs(self.hit(second), True)
        self.assertEqual(second["outputs"], first["outputs"])  # the count did not move: no call
        other = self.infer(self.memo, request([1, 2, 4]))
        self.assertIs(self.hit(other), False)
        self.assertEqual(oip.output_values(other, {}, "y"), [2.0, 4.0, 8.0])
        self.assertEqual(self.calls(other), self.calls(first) + 1)  # one run since: this one
        longer = self.infer(self.memo, request([1, 2, 3, 0]))  # the same values and one more
        self.assertIs(self.hit(longer), False)

    def test_metrics_and_stats_count_hits_and_misses(self):
        token = self.a["publisher"]
        self.infer(self.memo, request([39]))  # loaded, so that every metric is there
        before = self.metrics(token)
        admin_before = self.metrics(self.server.admin)
        hits0 = oip.metric_value(before, "orrery_cache_hits_total", self.memo)
        misses0 = oip.metric_value(before, "orrery_cache_misses_total", self.memo)
        requests0 = oip.metric_value(before, "orrery_inference_requests_total", self.memo)
        for _ in range(3):
            self.infer(self.memo, request([40, 41]))
        after = self.metrics(token)
        hits = oip.metric_value(after, "orrery_cache_hits_total", self.memo)
        misses = oip.metric_value(after, "orrery_cache_misses_total", self.memo)
        self.assertEqual((hits - hits0, misses - misses0), (2, 1))
        requests = oip.metric_value(after, "orrery_inference_requests_total", self.memo)
        self.assertEqual(requests - requests0, 3)  # hits are requests too
        status, stats = self.server.get(oip.model_path(self.memo, route="stats"), token)
        self.assertEqual(status, 200, stats)
        inference = stats["model_stats"][0]["inference_stats"]
        self.assertEqual(inference["cache_hit"]["count"], hits)
        self.assertEqual(inference["cache_miss"]["count"], misses)
        self.assertEqual(stats["model_stats"][0]["execution_count"], misses)  # hits never ran
        # The cache's totals hold every tenant's entries: the hub admin's view only.
        self.assertIsNone(total(after, "orrery_cache_entries"))
        self.assertIsNone(oip.metric_value(after, "orrery_cache_hits_total",
                                           self.a.name + "/plain"))
        admin = self.metrics(self.server.admin)
        self.assertEqual(total(admin, "orrery_cache_capacity_bytes"), CAPACITY)
        # The one miss stored one entry; nothing was evicted (the capacity is far from full).
        self.assertEqual(total(admin, "orrery_cache_entries")
                         - total(admin_before, "orrery_cache_entries"), 1)
        self.assertGreater(total(admin, "orrery_cache_bytes"),
                           total(admin_before, "orrery_cache_bytes"))
        self.assertLessEqual(total(admin, "orrery_cache_bytes"), CAPACITY)
        self.assertEqual(total(admin, "orrery_cache_evictions_total"),
                         total(admin_before, "orrery_cache_evictions_total"))

    def test_new_version_answers_itself_while_the_old_one_still_hits(self):
        token = self.a["publisher"]
        model = self.a.name + "/versioned"
        self.server.publish_ok(self.a.name, "versioned", package("versioned", 2), token)
        self.assertIs(self.hit(self.infer(model, request([5]))), False)
        self.assertIs(self.hit(self.infer(model, request([5]))), True)
        self.server.publish_ok(self.a.name, "versioned", package("versioned", 3), token)
        v2 = self.infer(model, request([5]))
        self.assertEqual(v2["model_version"], "2")
        self.assertIs(self.hit(v2), False)
        self.assertEqual(oip.output_values(v2, {}, "y"), [15.0])
        self.assertIs(self.hit(self.infer(model, request([5]))), True)
        v1 = self.infer(model, request([5]), version=1)
        self.assertEqual(v1["model_version"], "1")
        self.assertIs(self.hit(v1), True)
        self.assertEqual(oip.output_values(v1, {}, "y"), [10.0])

    def test_other_tenant_never_gets_a_private_servables_answers(self):
        body = request([7, 8])
        self.infer(self.memo, body)
        self.assertIs(self.hit(self.infer(self.memo, body)), True)
        status, data, _ = oip.infer_json(self.server, self.b["publisher"], self.memo, body)
        self.assertError((status, data), 404, message="servable %s not found" % self.memo)
        # The very same package (same files, same digest) under the other tenant: its own entries.
        self.server.publish_ok(self.b.name, "memo", package("memo"), self.b["publisher"])
        own = self.infer(self.b.name + "/memo", body, token=self.b["publisher"])
        self.assertIs(self.hit(own), False)
        self.assertEqual(self.calls(own), 1)  # its own worker ran
        self.assertIs(self.hit(self.infer(self.b.name + "/memo", body, token=self.b["publisher"])),
                      True)

    def test_servable_without_cache_never_carries_the_parameter(self):
        model = self.a.name + "/plain"
        first = self.infer(model, request([9]))
        second = self.infer(model, request([9]))
        for data in (first, second):
            self.assertNotIn("cache_hit", data.get("parameters", {}))
        self.assertEqual(self.calls(second), self.calls(first) + 1)  # ran twice

    def test_hit_honours_requested_outputs_and_binary_data_output(self):
        first = self.infer(self.memo, request([11, 12]))
        self.assertIs(self.hit(first), False)
        status, data, headers = oip.infer_json(
            self.server, self.a["publisher"], self.memo,
            request([11, 12], outputs=[{"name": "y"}], parameters={"binary_data_output": True}))
        self.assertEqual(status, 200, data)
        head, binaries = oip.split_answer(data, headers)
        self.assertIs(self.hit(head), True)
        self.assertEqual([o["name"] for o in head["outputs"]], ["y"])
        self.assertIn("y", binaries)
        self.assertEqual(oip.output_values(head, binaries, "y"), [22.0, 24.0])
        calls_only = self.infer(self.memo, request([11, 12], outputs=[{"name": "calls"}]))
        self.assertIs(self.hit(calls_only), True)
        self.assertEqual([o["name"] for o in calls_only["outputs"]], ["calls"])
        self.assertEqual(self.calls(calls_only), self.calls(first))

    def test_least_recently_used_entries_are_evicted_within_the_capacity(self):
        capacity = 8192
        server = self.start_server(("--cache-bytes", str(capacity)))
        t = server.new_tenant(("publisher",))
        server.publish_ok(t.name, "memo", package("memo"), t["publisher"])
        model = t.name + "/memo"

        def infer(values):
            status, data, _ = oip.infer_json(server, t["publisher"], model, request(values))
            self.assertEqual(status, 200, data)
            return data

        self.assertIs(self.hit(infer([0])), False)
        entry = total(self.metrics_of(server), "orrery_cache_bytes")
        fits = int(capacity // entry)
        self.assertGreaterEqual(fits, 8)  # an entry over 1/8 of the capacity is not stored
        for i in range(1, fits + 2):  # two more entries than fit, all of one size
            self.assertIs(self.hit(infer([i])), False)
        admin = self.metrics_of(server)
        self.assertEqual(total(admin, "orrery_cache_evictions_total"), 2)
        self.assertEqual(total(admin, "orrery_cache_entries"), fits)
        self.assertLessEqual(total(admin, "orrery_cache_bytes"), capacity)
        self.assertIs(self.hit(infer([fits + 1])), True)  # the newest stayed
        self.assertIs(self.hit(infer([0])), False)  # the oldest went

    def metrics_of(self, server):
        return server.get("/metrics", server.admin)[1].decode()

    def test_cache_bytes_zero_turns_caching_off(self):
        server = self.start_server(("--cache-bytes", "0"))
        t = server.new_tenant(("publisher",))
        server.publish_ok(t.name, "memo", package("memo"), t["publisher"])
        answers = []
        for _ in range(2):
            status, data, _ = oip.infer_json(server, t["publisher"], t.name + "/memo", request([3]))
            self.assertEqual(status, 200, data)
            self.assertNotIn("cache_hit", data.get("parameters", {}))
            answers.append(self.calls(data))
        self.assertEqual(answers, [1, 2])
        self.assertEqual(total(self.metrics_of(server), "orrery_cache_capacity_bytes"), 0)


if __name__ == "__main__":
    unittest.main()
