"""Pipelines (backend `pipeline`) through the real server: publish-time validation and serving.

Proves: a pipeline's steps are pinned at publish (an alias becomes the number it named, in the
stored manifest); publish refuses with 422 naming the step a cycle, an unknown step in a
reference, a missing step servable, another tenant's private servable, a deleted version, a
nested pipeline, and datatypes or shapes that disagree between connected tensors, and stores
nothing then; a published pipeline answers over /v2 (metadata, ready, infer, stats, metrics)
and its timings follow the DAG (a step starts after the steps it reads from answered); two
independent steps run at the same time (both are seen waiting at the test's gate at once);
the `pipeline_timings` parameter reports every step; a step that fails fails the request with
the step named and its status kept; a step version deleted after publish fails requests naming the
step; another tenant may run a public pipeline whose steps are its owner's private servables,
but not a private pipeline.
"""

import threading
import unittest

import hub
import oip
from hub import HubTestCase

ROW = ([("x", "FP32", [-1, 4])], [("y", "FP32", [-1, 4])])
DOUBLE = '''
def predict(inputs):
    return {"y": inputs["x"] * 2}
'''
PLUS_ONE = '''
def predict(inputs):
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

# Two independent steps, each a servable that waits at the test's gate (oip.GATE_CODE).
GATES = ("gate-l", "gate-r")
TWO_GATES = {
    "steps": [{"name": "l", "servable": "gate-l", "version": 1,
               "inputs": {"port": "$inputs.port"}},
              {"name": "r", "servable": "gate-r", "version": 1,
               "inputs": {"port": "$inputs.port"}}],
    "outputs": {"l": "l.y", "r": "r.y"},
}
TWO_GATES_SIGNATURE = oip.signature([("port", "INT64", [-1])],
                                    [("l", "FP64", [-1]), ("r", "FP64", [-1])])


def request(values, **parameters):
    body = {"inputs": [{"name": "in", "datatype": "FP32", "shape": [1, 4], "data": values}]}
    if parameters:
        body["parameters"] = parameters
    return body


class PipelineTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        tenant = hub.unique("t")  # its gate servables may use the network
        cls.server_args = tuple(a for name in GATES
                                for a in ("--allow-network", "%s/%s" % (tenant, name)))
        super().setUpClass()
        s = cls.server
        cls.a = s.new_tenant(("publisher", "reader"), name=tenant)
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
        for name in GATES:
            s.publish_ok(cls.a.name, name, oip.py_package(
                name, oip.GATE_CODE, *oip.GATE_SIGNATURE, config={"network": True}), cls.tok)
        s.publish_ok(cls.a.name, "two-gates", pipeline_tar("two-gates", TWO_GATES,
                                                           TWO_GATES_SIGNATURE), cls.tok)

    def m(self, name):
        return "%s/%s" % (self.a.name, name)

    def infer(self, name, body, token=None):
        status, data, _ = oip.infer_json(self.server, token or self.tok, self.m(name), body)
        return status, data

    def refused(self, name, pipeline, message):
        """Publishing the pipeline is refused with 422 and `message`; nothing is stored."""
        resp = self.server.publish(self.a.name, name, pipeline_tar(name, pipeline, ONE_OUT),
                                   self.tok)
        self.assertError(resp, 422, name, message=message)
        self.assertError(self.server.describe(self.a.name, name, self.tok), 404,
                         "nothing stored for " + name,
                         message="servable %s/%s not found" % (self.a.name, name))

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
        absent = "pipeline step '%s': servable %s version 1: servable %s not found"
        cases = {
            "cycle": ({"steps": [
                {"name": "p", "servable": "double", "version": 1,
                 "inputs": {"x": "q.y"}},
                {"name": "q", "servable": "double", "version": 1, "inputs": {"x": "p.y"}}],
                "outputs": {"out": "q.y"}},
                "manifest: pipeline.steps: the steps form a cycle: p -> q -> p"),
            "unknown-step": (chain(("p", "double", 1), out_step="nowhere.y"),
                             "manifest: pipeline.outputs.out: unknown step 'nowhere' in "
                             "'nowhere.y'"),
            "missing": (chain(("p", "double", 1), ("q", "no-such", 1)),
                        absent % ("q", self.m("no-such"), self.m("no-such"))),
            "no-version": (chain(("p", "double", 7)),
                           "pipeline step 'p': servable %s version 7: version 7 of %s not found"
                           % (self.m("double"), self.m("double"))),
            "datatypes": (chain(("p", "ints", 1)),
                          "pipeline step 'p': input 'x' <- $inputs.in: datatypes differ "
                          "(FP32 [-1,4] into INT64 [-1,4])"),
            "shapes": (chain(("p", "double", 1), ("q", "wide", 1)),
                       "pipeline step 'q': input 'x' <- p.y: shapes differ "
                       "(FP32 [-1,4] into FP32 [-1,8])"),
            "nested": (chain(("p", "diamond", 1), out_step="p.out"),
                       "pipeline step 'p': %s:1 is itself a pipeline; pipelines do not nest"
                       % self.m("diamond")),
            # Another tenant's private servable is refused exactly like one that does not exist.
            "invisible": (chain(("p", self.b.name + "/secret", 1)),
                          absent % ("p", self.b.name + "/secret", self.b.name + "/secret")),
            "missing2": (chain(("p", self.b.name + "/nothing", 1)),
                         absent % ("p", self.b.name + "/nothing", self.b.name + "/nothing")),
        }
        for name, (pipeline, message) in cases.items():
            with self.subTest(name):
                self.refused(name, pipeline, message)

    def test_a_deleted_version_is_refused_at_publish(self):
        s = self.server
        s.publish_ok(self.a.name, "gone", oip.py_package("gone", IDENTITY, *ROW), self.tok)
        s.publish_ok(self.a.name, "gone", oip.py_package("gone", IDENTITY, *ROW), self.tok)
        self.assertStatus(s.delete(s.obj_path(self.a.name, "gone") + "/versions/1", self.tok), 200)
        self.refused("uses-gone", chain(("p", "gone", 1)),
                     "pipeline step 'p': servable %s version 1: version 1 of %s not found"
                     % (self.m("gone"), self.m("gone")))

    # -- serving

    def test_timings_follow_the_dag_and_the_answer_is_mapped(self):
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
        (_, l1), (_, r1), (j0, j1), (c0, _) = span("left"), span("right"), span("join"), \
            span("check")
        # Causal order only: the join starts after both branches answered, check after join.
        self.assertGreaterEqual(j0, max(l1, r1))
        self.assertGreaterEqual(c0, j1)
        # Without the parameter, no timings; a non-boolean one is refused.
        status, data = self.infer("diamond", request([1, 2, 3, 4]))
        self.assertEqual(status, 200, data)
        self.assertEqual([k for k in data.get("parameters", {}) if k.startswith("pipeline.")], [])
        self.assertError(self.infer("diamond", request([1, 2, 3, 4], pipeline_timings="yes")),
                         400, message="parameter pipeline_timings must be a boolean")

    def test_independent_steps_run_at_the_same_time(self):
        gate = oip.Gate()
        self.addCleanup(gate.close)
        result = []
        call = threading.Thread(target=lambda: result.append(self.infer(
            "two-gates", {"inputs": [{"name": "port", "datatype": "INT64", "shape": [1],
                                      "data": [gate.port]}]})))
        call.start()
        gate.arrivals(2)  # both steps are inside their servables at once
        gate.release()
        call.join(60)
        self.assertEqual(len(result), 1)
        status, data = result[0]
        self.assertEqual(status, 200, data)
        self.assertEqual({o["name"]: o["data"] for o in data["outputs"]},
                         {"l": [float(gate.port)], "r": [float(gate.port)]})

    def test_v2_routes_and_metrics(self):
        # A pipeline of its own, so that its counts are this test's alone.
        s, name = self.server, "counted"
        s.publish_ok(self.a.name, name, pipeline_tar(name, DIAMOND), self.tok)
        self.assertEqual(self.infer(name, request([0, 0, 0, 0]))[0], 200)
        status, meta = s.get(oip.model_path(self.m(name), route=""), self.tok)
        self.assertEqual(status, 200, meta)
        self.assertEqual((meta["platform"], meta["inputs"], meta["outputs"]),
                         ("pipeline", SIGNATURE["inputs"], SIGNATURE["outputs"]))
        self.assertEqual(s.get(oip.model_path(self.m(name), route="ready"), self.tok),
                         (200, {"name": self.m(name) + ":1", "ready": True}))
        status, stats = s.get(oip.model_path(self.m(name), route="stats"), self.tok)
        self.assertEqual(status, 200, stats)
        self.assertEqual(stats["model_stats"][0]["inference_count"], 1)
        self.assertEqual(self.failures(name), 0)
        check = self.m("check") + ":1"
        self.assertError(self.infer(name, request([-5, 0, 0, 0])), 422,
                         message="step 'check' (%s): %s: ValueError: negative input"
                         % (check, check))
        text = s.get("/metrics", self.tok)[1].decode()
        self.assertEqual(oip.metric_value(text, "orrery_inference_requests_total",
                                          self.m(name)), 2)
        self.assertEqual(self.failures(name), 1)
        self.assertEqual(oip.metric_value(text, "orrery_inference_request_seconds_count",
                                          self.m(name)), 2)

    def failures(self, name):
        text = self.server.get("/metrics", self.tok)[1].decode()
        return oip.metric_value(text, "orrery_inference_failures_total", self.m(name))

    def test_a_failing_step_fails_the_request_naming_it(self):
        status, data = self.infer("diamond", request([-5, 0, 0, 0]))
        check = self.m("check") + ":1"
        self.assertError((status, data), 422, message="step 'check' (%s): %s: ValueError: "
                         "negative input" % (check, check))
        # Input the pipeline's own signature refuses never reaches a step.
        bad = {"inputs": [{"name": "in", "datatype": "FP64", "shape": [1, 4],
                           "data": [1, 2, 3, 4]}]}
        self.assertError(self.infer("diamond", bad), 400,
                         message="input 'in' has datatype FP64, the servable expects FP32")

    def test_a_step_deleted_after_publish_fails_requests_naming_it(self):
        s = self.server
        s.publish_ok(self.a.name, "victim", oip.py_package("victim", IDENTITY, *ROW), self.tok)
        s.publish_ok(self.a.name, "uses-victim", pipeline_tar(
            "uses-victim", chain(("v", "victim", 1)), ONE_OUT), self.tok)
        status, data = self.infer("uses-victim", request([1, 2, 3, 4]))
        self.assertEqual(status, 200, data)
        self.assertStatus(s.delete(s.obj_path(self.a.name, "victim") + "/versions/1", self.tok),
                          200)
        # The pipeline is loaded: the step's version is gone (404, naming the step).
        self.assertError(self.infer("uses-victim", request([1, 2, 3, 4])), 404,
                         message="step 'v' (%s:1): version 1 of %s not found"
                         % (self.m("victim"), self.m("victim")))

    def test_other_tenants_run_public_pipelines_with_the_owners_steps(self):
        # diamond is public; its steps are a's private servables, run in a's name.
        status, data = self.infer("diamond", request([1, 1, 1, 1]), token=self.b["reader"])
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.flatten(data["outputs"][0]["data"]), [4.0] * 4)
        self.assertError(self.infer("double", request([1, 1, 1, 1]), token=self.b["reader"]), 404,
                         message="servable %s not found" % self.m("double"))
        self.server.publish_ok(self.a.name, "private-chain", pipeline_tar(
            "private-chain", chain(("p", "double", 1)), ONE_OUT), self.tok)
        self.assertError(self.infer("private-chain", request([1, 1, 1, 1]),
                                    token=self.b["reader"]), 404,
                         message="servable %s not found" % self.m("private-chain"))
        status, data = self.infer("private-chain", request([1, 1, 1, 1]), token=self.a["reader"])
        self.assertEqual(status, 200, data)


if __name__ == "__main__":
    unittest.main()
