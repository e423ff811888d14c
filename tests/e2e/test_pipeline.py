"""Pipelines (backend `pipeline`) through the real server: publish-time validation and serving.

Proves: a pipeline's steps are pinned at publish (an alias becomes the number it named, in the
stored manifest); publish refuses with 422 naming the step a cycle, an unknown step in a
reference, a missing step servable, another tenant's private servable, a deleted version, a
nested pipeline, and datatypes or shapes that disagree between connected tensors, and stores
nothing then; a published pipeline answers over /v2 (metadata, ready, infer, stats, metrics)
with its two independent branches running at the same time (their timings overlap); the
`pipeline_timings` parameter reports every step; a step that fails fails the request with the
step named and its status kept; a step version deleted after publish fails requests naming the
step; another tenant may run a public pipeline whose steps are its owner's private servables,
but not a private pipeline.
"""

import unittest

import hub
import oip
from hub import HubTestCase

ROW = ([("x", "FP32", [-1, 4])], [("y", "FP32", [-1, 4])])
DOUBLE = '''
import time

def predict(inputs):
    time.sleep(0.2)  # long enough that two branches run at once or visibly not
    return {"y": inputs["x"] * 2}
'''
PLUS_ONE = '''
import time

def predict(inputs):
    time.sleep(0.2)
    return {"y": inputs["x"] + 1}
'''
SUM = '''
def predict(inputs):
    return {"y": inputs["a"] + inputs["b"]}
'''
CHECK = '''
def predict(inputs):
    if (inputs["x"] < 0).any():
        raise ValueError("negative input")
    return {"y": inputs["x"]}
'''
IDENTITY = '''
def predict(inputs):
    return {"y": inputs["x"]}
'''

# in -> {left: double, right: plus-one} -> join: sum -> check -> out (3x + 1, refused if < 0).
DIAMOND = {
    "steps": [
        {"name": "left", "servable": "double", "version": "prod", "inputs": {"x": "$inputs.in"}},
        {"name": "right", "servable": "plus-one", "version": 1, "inputs": {"x": "$inputs.in"}},
        {"name": "join", "servable": "sum", "version": 1,
         "inputs": {"a": "left.y", "b": "right.y"}},
        {"name": "check", "servable": "check", "version": 1, "inputs": {"x": "join.y"}},
    ],
    "outputs": {"out": "check.y", "doubled": "left.y"},
}
SIGNATURE = oip.signature([("in", "FP32", [-1, 4])],
                          [("out", "FP32", [-1, 4]), ("doubled", "FP32", [-1, 4])])


def pipeline_tar(name, pipeline, signature=SIGNATURE, **fields):
    tar, _ = hub.package(name, {}, backend="pipeline", signature=signature, pipeline=pipeline,
                         **fields)
    return tar


def chain(*steps, out_step=None):
    """in -> steps[0] -> steps[1] ... -> out, each step (name, servable, version) with x -> y."""
    spec, source = [], "$inputs.in"
    for name, servable, version in steps:
        spec.append({"name": name, "servable": servable, "version": version,
                     "inputs": {"x": source}})
        source = name + ".y"
    return {"steps": spec, "outputs": {"out": out_step or source}}


ONE_OUT = oip.signature([("in", "FP32", [-1, 4])], [("out", "FP32", [-1, 4])])


def request(values, **parameters):
    body = {"inputs": [{"name": "in", "datatype": "FP32", "shape": [1, 4], "data": values}]}
    if parameters:
        body["parameters"] = parameters
    return body


class PipelineTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.a = s.new_tenant(("publisher", "reader"))
        cls.b = s.new_tenant(("publisher", "reader"))
        cls.tok = cls.a["publisher"]
        for name, code in (("double", DOUBLE), ("plus-one", PLUS_ONE), ("check", CHECK)):
            s.publish_ok(cls.a.name, name, oip.py_package(name, code, *ROW), cls.tok)
        s.publish_ok(cls.a.name, "sum", oip.py_package(
            "sum", SUM, [("a", "FP32", [-1, 4]), ("b", "FP32", [-1, 4])],
            [("y", "FP32", [-1, 4])]), cls.tok)
        s.publish_ok(cls.a.name, "ints", oip.py_package(
            "ints", IDENTITY, [("x", "INT64", [-1, 4])], [("y", "INT64", [-1, 4])]), cls.tok)
        s.publish_ok(cls.a.name, "wide", oip.py_package(
            "wide", IDENTITY, [("x", "FP32", [-1, 8])], [("y", "FP32", [-1, 8])]), cls.tok)
        s.publish_ok(cls.b.name, "secret", oip.py_package("secret", IDENTITY, *ROW),
                     cls.b["publisher"])
        s.put(s.obj_path(cls.a.name, "double") + "/aliases/prod", cls.tok, {"version": 1})
        cls.diamond = s.publish_ok(cls.a.name, "diamond", pipeline_tar("diamond", DIAMOND),
                                   cls.tok, query="visibility=public")

    def m(self, name):
        return "%s/%s" % (self.a.name, name)

    def infer(self, name, body, token=None):
        status, data, _ = oip.infer_json(self.server, token or self.tok, self.m(name), body)
        return status, data

    def refused(self, name, pipeline, signature=ONE_OUT):
        """Publishing the pipeline is refused with 422; returns the error text."""
        resp = self.server.publish(self.a.name, name, pipeline_tar(name, pipeline, signature),
                                   self.tok)
        self.assertError(resp, 422, name)
        self.assertError(self.server.describe(self.a.name, name, self.tok), 404,
                         "nothing stored for " + name)
        return resp[1]["error"]

    # -- publish

    def test_steps_are_pinned_to_numbers(self):
        steps = self.diamond["manifest"]["pipeline"]["steps"]
        self.assertEqual([(s["name"], s["servable"], s["version"]) for s in steps],
                         [("left", self.m("double"), 1), ("right", self.m("plus-one"), 1),
                          ("join", self.m("sum"), 1), ("check", self.m("check"), 1)])
        self.assertEqual(self.diamond["manifest"]["pipeline"]["outputs"],
                         {"out": "check.y", "doubled": "left.y"})
        self.assertEqual(self.diamond["manifest"]["backend"], "pipeline")

    def test_publish_refusals_name_the_step(self):
        cases = {
            "cycle": ({"steps": [
                {"name": "p", "servable": "double", "version": 1,
                 "inputs": {"x": "q.y"}},
                {"name": "q", "servable": "double", "version": 1, "inputs": {"x": "p.y"}}],
                "outputs": {"out": "q.y"}}, "the steps form a cycle: p -> q -> p"),
            "unknown-step": (chain(("p", "double", 1), out_step="nowhere.y"),
                             "unknown step 'nowhere'"),
            "missing": (chain(("p", "double", 1), ("q", "no-such", 1)),
                        "pipeline step 'q': servable %s/no-such version 1: " % self.a.name),
            "invisible": (chain(("p", self.b.name + "/secret", 1)),
                          "pipeline step 'p': servable %s/secret version 1: " % self.b.name),
            "no-version": (chain(("p", "double", 7)),
                           "pipeline step 'p': servable %s version 7: " % self.m("double")),
            "datatypes": (chain(("p", "ints", 1)),
                          "pipeline step 'p': input 'x' <- $inputs.in: datatypes differ "
                          "(FP32 [-1,4] into INT64 [-1,4])"),
            "shapes": (chain(("p", "double", 1), ("q", "wide", 1)),
                       "pipeline step 'q': input 'x' <- p.y: shapes differ "
                       "(FP32 [-1,4] into FP32 [-1,8])"),
            "nested": (chain(("p", "diamond", 1), out_step="p.out"),
                       "pipeline step 'p': %s:1 is itself a pipeline" % self.m("diamond")),
        }
        for name, (pipeline, expected) in cases.items():
            with self.subTest(name):
                self.assertIn(expected, self.refused(name, pipeline))
        # The same private servable is refused exactly like one that does not exist.
        invisible = self.refused("invisible2", chain(("p", self.b.name + "/secret", 1)))
        missing = self.refused("missing2", chain(("p", self.b.name + "/nothing", 1)))
        self.assertEqual(invisible.replace("secret", "X"), missing.replace("nothing", "X"))

    def test_a_deleted_version_is_refused_at_publish(self):
        s = self.server
        s.publish_ok(self.a.name, "gone", oip.py_package("gone", IDENTITY, *ROW), self.tok)
        s.publish_ok(self.a.name, "gone", oip.py_package("gone", IDENTITY, *ROW), self.tok)
        self.assertStatus(s.delete(s.obj_path(self.a.name, "gone") + "/versions/1", self.tok), 200)
        error = self.refused("uses-gone", chain(("p", "gone", 1)))
        self.assertIn("pipeline step 'p': servable %s version 1: " % self.m("gone"), error)

    # -- serving

    def test_branches_run_at_once_and_the_answer_is_mapped(self):
        status, data = self.infer("diamond", request([1, 2, 3, 4], pipeline_timings=True))
        self.assertEqual(status, 200, data)
        self.assertEqual((data["model_name"], data["model_version"]), (self.m("diamond"), "1"))
        outs = {o["name"]: oip.flatten(o["data"]) for o in data["outputs"]}
        self.assertEqual(outs, {"out": [4.0, 7.0, 10.0, 13.0], "doubled": [2.0, 4.0, 6.0, 8.0]})
        p = data["parameters"]
        for step in ("left", "right", "join", "check"):
            for field in ("start_us", "duration_us", "queue_us", "compute_us"):
                self.assertIsInstance(p.get("pipeline.%s.%s" % (step, field)), int, (step, p))

        def span(step):
            start = p["pipeline.%s.start_us" % step]
            return start, start + p["pipeline.%s.duration_us" % step]
        (l0, l1), (r0, r1), (j0, _), (c0, _) = span("left"), span("right"), span("join"), \
            span("check")
        # The branches overlap (each sleeps in its own worker); the join waits for both.
        self.assertLess(l0, r1)
        self.assertLess(r0, l1)
        self.assertGreaterEqual(j0, max(l1, r1))
        self.assertGreaterEqual(c0, j0)
        # Without the parameter, no timings; a non-boolean one is refused.
        status, data = self.infer("diamond", request([1, 2, 3, 4]))
        self.assertEqual(status, 200, data)
        self.assertEqual([k for k in data.get("parameters", {}) if k.startswith("pipeline.")], [])
        self.assertError(self.infer("diamond", request([1, 2, 3, 4], pipeline_timings="yes")),
                         400)

    def test_v2_routes_and_metrics(self):
        s = self.server
        self.assertEqual(self.infer("diamond", request([0, 0, 0, 0]))[0], 200)
        status, meta = s.get(oip.model_path(self.m("diamond"), route=""), self.tok)
        self.assertEqual(status, 200, meta)
        self.assertEqual((meta["platform"], meta["inputs"], meta["outputs"]),
                         ("pipeline", SIGNATURE["inputs"], SIGNATURE["outputs"]))
        self.assertEqual(s.get(oip.model_path(self.m("diamond"), route="ready"), self.tok),
                         (200, {"name": self.m("diamond") + ":1", "ready": True}))
        status, stats = s.get(oip.model_path(self.m("diamond"), route="stats"), self.tok)
        self.assertEqual(status, 200, stats)
        self.assertGreaterEqual(stats["model_stats"][0]["inference_count"], 1)
        before = self.failures()
        self.assertEqual(self.infer("diamond", request([-5, 0, 0, 0]))[0], 422)
        text = s.get("/metrics", self.tok)[1].decode()
        self.assertGreaterEqual(oip.metric_value(text, "orrery_inference_requests_total",
                                                 self.m("diamond")), 2)
        self.assertEqual(self.failures(), before + 1)
        self.assertIsNotNone(oip.metric_value(text, "orrery_inference_request_seconds_count",
                                              self.m("diamond")))

    def failures(self):
        text = self.server.get("/metrics", self.tok)[1].decode()
        return oip.metric_value(text, "orrery_inference_failures_total", self.m("diamond")) or 0

    def test_a_failing_step_fails_the_request_naming_it(self):
        status, data = self.infer("diamond", request([-5, 0, 0, 0]))
        self.assertError((status, data), 422)
        self.assertTrue(data["error"].startswith("step 'check' (%s:1): " % self.m("check")),
                        data)
        self.assertIn("negative input", data["error"])
        # Input the pipeline's own signature refuses never reaches a step.
        bad = {"inputs": [{"name": "in", "datatype": "FP64", "shape": [1, 4],
                           "data": [1, 2, 3, 4]}]}
        self.assertError(self.infer("diamond", bad), 400)

    def test_a_step_deleted_after_publish_fails_requests_naming_it(self):
        s = self.server
        s.publish_ok(self.a.name, "victim", oip.py_package("victim", IDENTITY, *ROW), self.tok)
        s.publish_ok(self.a.name, "uses-victim", pipeline_tar(
            "uses-victim", chain(("v", "victim", 1)), ONE_OUT), self.tok)
        status, data = self.infer("uses-victim", request([1, 2, 3, 4]))
        self.assertEqual(status, 200, data)
        self.assertStatus(s.delete(s.obj_path(self.a.name, "victim") + "/versions/1", self.tok),
                          200)
        status, data = self.infer("uses-victim", request([1, 2, 3, 4]))
        self.assertError((status, data), 404)
        self.assertTrue(data["error"].startswith("step 'v' (%s:1): " % self.m("victim")), data)

    def test_other_tenants_run_public_pipelines_with_the_owners_steps(self):
        # diamond is public; its steps are a's private servables, run in a's name.
        status, data = self.infer("diamond", request([1, 1, 1, 1]), token=self.b["reader"])
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.flatten(data["outputs"][0]["data"]), [4.0] * 4)
        self.assertError(self.infer("double", request([1, 1, 1, 1]), token=self.b["reader"]), 404)
        self.server.publish_ok(self.a.name, "private-chain", pipeline_tar(
            "private-chain", chain(("p", "double", 1)), ONE_OUT), self.tok)
        self.assertError(self.infer("private-chain", request([1, 1, 1, 1]),
                                    token=self.b["reader"]), 404)
        status, data = self.infer("private-chain", request([1, 1, 1, 1]), token=self.a["reader"])
        self.assertEqual(status, 200, data)


if __name__ == "__main__":
    unittest.main()
