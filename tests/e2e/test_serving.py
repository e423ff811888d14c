"""Serving the packages under examples/ over /v2 (docs/inference.md), end to end.

Proves: every example publishes with `orrery publish DIR`; every servable example answers each
of its manifest examples within the manifest's tolerance (torchscript, xgboost, onnx, python);
`orrery verify` and the REST verify route agree (ok true; ok false for a wrong example);
`orrery infer --input FILE` prints the outputs; GET /v2 lists exactly the documented
extensions; model metadata mirrors the manifest signature under every name form (raw, %2F,
bare, /versions/N, alias); readiness, stats, repository index, unload and reload follow the
model's life; /metrics counts requests per servable; another tenant cannot tell a private
servable from a missing one but can use a public one; a reader may infer but not unload;
corrupt model files fail to load cleanly (503 on infer, 422 from the load route) while the
good servables keep answering.
"""

import json
import os
import re
import shutil
import tempfile
import unittest

import hub
import oip
from hub import HubTestCase, run_cli

EXAMPLES = os.path.join(hub.SOURCE_DIR, "examples")
CORRUPT = {"bad-torchscript": ("digits-mlp-torchscript", "model.pt"),
           "bad-onnx": ("digits-cnn-onnx", "model.onnx"),
           "bad-xgboost": ("digits-xgboost", "model.ubj")}
ADD_ONE = '''
def predict(inputs):
    return {"y": inputs["x"] + 1}
'''


def example_tar(example, name=None, replace=None):
    """Tar of examples/<example> renamed to `name`, with files replaced (and their
    sha256 in the manifest updated)."""
    src = os.path.join(EXAMPLES, example)
    files = {}
    for fn in sorted(os.listdir(src)):
        p = os.path.join(src, fn)
        if os.path.isfile(p) and fn != "orrery.yaml":
            with open(p, "rb") as f:
                files[fn] = f.read()
    with open(os.path.join(src, "orrery.yaml")) as f:
        text = f.read()
    if name:
        text = re.sub(r"(?m)^name: .*$", "name: " + name, text, count=1)
    for path, data in (replace or {}).items():
        text = text.replace(hub.sha256(files[path]), hub.sha256(data))
        files[path] = data
    return hub.make_tar(files, text)


def request_of(example):
    return {"inputs": [dict(t, name=n) for n, t in example["inputs"].items()]}


class ServingTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server_args = hub.example_env_args()
        super().setUpClass()
        s = cls.server
        cls.a = s.new_tenant(("publisher", "reader"))
        cls.b = s.new_tenant(("publisher", "reader"))
        cls.tok = cls.a["publisher"]
        cls.env = {"ORRERY_URL": s.url, "ORRERY_TOKEN": cls.tok}
        cls.tmp = tempfile.mkdtemp(prefix="orrery-serving-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.published, cls.servables = {}, {}
        for d in hub.example_dirs():
            dst = os.path.join(cls.tmp, os.path.basename(d))
            shutil.copytree(d, dst, ignore=shutil.ignore_patterns("__pycache__"))
            r = run_cli(["publish", dst, "--json"], env=cls.env)
            if r.returncode != 0:
                raise AssertionError("orrery publish %s: %s" % (dst, r.stderr))
            v = json.loads(r.stdout)
            cls.published[v["name"]] = v
            if v["kind"] == "servable":
                cls.servables[v["name"]] = v["manifest"]
        if not cls.servables:  # examples/ is part of the repository: never a skip
            raise AssertionError("no servable under %s/*/orrery.yaml" % EXAMPLES)
        s.publish_ok(cls.a.name, "life", example_tar("digits-mlp-torchscript", "life"), cls.tok)
        for bad, (example, path) in CORRUPT.items():
            s.publish_ok(cls.a.name, bad, example_tar(example, bad, {path: os.urandom(4096)}),
                         cls.tok)

    # -- helpers

    def m(self, name):
        return "%s/%s" % (self.a.name, name)

    def infer(self, model, request, token=None, version=None):
        status, data, headers = oip.infer_json(self.server, token or self.tok, model, request,
                                               version=version)
        return status, data

    def assert_example_answer(self, name, example, data, version="1"):
        self.assertEqual(data["model_name"], self.m(name))
        self.assertEqual(data["model_version"], version)
        tol = example.get("tolerance", 0.0)
        outs = {o["name"]: o for o in data["outputs"]}
        for out_name, want in example["outputs"].items():
            got = outs[out_name]
            self.assertEqual((got["datatype"], got["shape"]), (want["datatype"], want["shape"]))
            values = oip.flatten(got["data"])
            self.assertEqual(len(values), len(want["data"]))
            err = max(abs(g - w) for g, w in zip(values, want["data"]))
            self.assertLessEqual(err, tol, "%s %s: %r vs %r" % (name, out_name, values,
                                                                 want["data"]))

    def example_ok(self, name, token=None, model=None, version=None):
        example = self.servables[name]["examples"][0]
        status, data = self.infer(model or self.m(name), request_of(example), token, version)
        self.assertEqual(status, 200, "%s: %r" % (name, data))
        self.assert_example_answer(name, example, data)

    def metrics(self, token):
        status, text = self.server.get("/metrics", token)
        self.assertEqual(status, 200, text)
        return text.decode() if isinstance(text, bytes) else text

    # -- tests

    def test_server_metadata(self):
        status, data = self.server.get("/v2", self.tok)
        self.assertEqual(status, 200, data)
        self.assertEqual(data["name"], "orrery")
        self.assertIsInstance(data["version"], str)
        self.assertTrue(data["version"])
        self.assertEqual(sorted(data["extensions"]), ["binary_tensor_data", "model_configuration",
                                                      "model_repository", "schedule_policy",
                                                      "statistics"])
        self.assertError(self.server.get("/v2"), 401,
                         message="missing token (send Authorization: Bearer <token>)")
        self.assertEqual(self.server.get("/v2/health/ready", self.tok), (200, {"ready": True}))

    def test_every_example_published(self):
        names = {os.path.basename(d) for d in hub.example_dirs()}
        self.assertEqual(set(self.published), names)
        for name, v in self.published.items():
            self.assertEqual((v["tenant"], v["version"]), (self.a.name, 1), name)

    def test_triton_model_config(self):
        # The MLP batches (max_batch_size 32): Triton's dims leave the batch dimension out.
        status, config = self.server.get("/v2/models/%s/config" % self.m("digits-mlp-torchscript"),
                                         self.tok)
        self.assertEqual(status, 200, config)
        self.assertEqual(config, {
            "name": self.m("digits-mlp-torchscript"), "platform": "pytorch_torchscript",
            "backend": "torchscript", "version_policy": {"specific": {"versions": ["1"]}},
            "max_batch_size": 32,
            "input": [{"name": "input", "data_type": "TYPE_FP32", "dims": [64]}],
            "output": [{"name": "logits", "data_type": "TYPE_FP32", "dims": [10]}],
            "instance_group": [{"name": self.m("digits-mlp-torchscript") + ":1",
                                "kind": "KIND_CPU", "count": 1}],
            "dynamic_batching": {"preferred_batch_size": [], "max_queue_delay_microseconds": 200},
            "response_cache": {"enable": False}})
        # Kepler does not batch: max_batch_size 0, whole shapes; it memoizes.
        status, config = self.server.get(
            "/v2/models/%s/versions/1/config" % self.m("kepler-python"), self.tok)
        self.assertEqual(status, 200, config)
        self.assertEqual((config["max_batch_size"], config["input"][0], config["response_cache"]),
                         (0, {"name": "semi_major_axis_au", "data_type": "TYPE_FP64",
                              "dims": [-1]}, {"enable": True}))
        self.assertNotIn("dynamic_batching", config)
        status, config = self.server.get(
            "/v2/models/%s/config" % self.m("digits-label-python"), self.tok)
        self.assertEqual([o["data_type"] for o in config["output"]], ["TYPE_INT64", "TYPE_FP32"])
        self.assertError(self.server.get("/v2/models/%s/versions/9/config"
                                         % self.m("kepler-python"), self.tok), 404)

    def test_examples_infer_within_tolerance(self):
        for name, manifest in sorted(self.servables.items()):
            self.assertTrue(manifest.get("examples"), name)
            for i, example in enumerate(manifest["examples"]):
                with self.subTest(servable=name, example=i):
                    status, data = self.infer(self.m(name), request_of(example))
                    self.assertEqual(status, 200, "%s: %r" % (name, data))
                    self.assert_example_answer(name, example, data)

    def test_verify_rest_and_cli(self):
        for name, manifest in sorted(self.servables.items()):
            with self.subTest(servable=name):
                status, data = self.server.post(
                    "/api/v1/servables/%s/%s/verify" % (self.a.name, name), self.tok)
                self.assertEqual(status, 200, data)
                self.assertEqual((data["servable"], data["ok"]), ("%s:1" % self.m(name), True),
                                 data)
                self.assertEqual([e["index"] for e in data["examples"]],
                                 list(range(len(manifest["examples"]))))
                for e, ex in zip(data["examples"], manifest["examples"]):
                    self.assertIs(e["ok"], True, e)
                    self.assertEqual([o["name"] for o in e["outputs"]], list(ex["outputs"]))
                    for o in e["outputs"]:
                        self.assertIs(o["ok"], True, o)
                        # Numbers are compared within the tolerance; BYTES only for equality.
                        if ex["outputs"][o["name"]]["datatype"] == "BYTES":
                            self.assertNotIn("max_abs_error", o)
                        else:
                            self.assertLessEqual(o["max_abs_error"], ex.get("tolerance", 0))
                r = run_cli(["verify", self.m(name)], env=self.env)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_verify_failures(self):
        ex = lambda x, y: {"inputs": {"x": {"datatype": "FP64", "shape": [1], "data": [x]}},
                           "outputs": {"y": {"datatype": "FP64", "shape": [1], "data": [y]}},
                           "tolerance": 1e-6}
        sig = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])
        self.server.publish_ok(self.a.name, "wrong-ex", oip.py_package(
            "wrong-ex", ADD_ONE, *sig, examples=[ex(1.0, 2.0), ex(1.0, 3.0)]), self.tok)
        self.server.publish_ok(self.a.name, "no-ex", oip.py_package("no-ex", ADD_ONE, *sig),
                               self.tok)
        status, data = self.server.post("/api/v1/servables/%s/wrong-ex/versions/1/verify"
                                        % self.a.name, self.tok)
        self.assertEqual(status, 200, data)
        self.assertIs(data["ok"], False)
        self.assertEqual([e["ok"] for e in data["examples"]], [True, False], data)
        # FP64: compared as numbers, so the error is there.
        self.assertEqual(data["examples"][1]["outputs"],
                         [{"name": "y", "ok": False, "max_abs_error": 1.0,
                           "message": "values differ beyond tolerance 0.000001"}])
        r = run_cli(["verify", self.m("wrong-ex")], env=self.env)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(r.stderr, "orrery: %s:1: 1 of 2 examples do not reproduce\n"
                         % self.m("wrong-ex"))
        self.assertError(self.server.post("/api/v1/servables/%s/no-ex/verify" % self.a.name,
                                          self.tok), 422,
                         message="servable %s:1 has no examples to verify" % self.m("no-ex"))

    def test_cli_infer(self):
        for name, manifest in sorted(self.servables.items()):
            with self.subTest(servable=name):
                example = manifest["examples"][0]
                path = os.path.join(self.tmp, name + ".json")
                with open(path, "w") as f:
                    json.dump(request_of(example), f)
                r = run_cli(["infer", self.m(name), "--input", path], env=self.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                for out_name in example["outputs"]:
                    self.assertIn(out_name, r.stdout)
                self.assert_example_answer(name, example, json.loads(r.stdout))

    def test_model_metadata_and_names(self):
        name = "kepler-python"
        sig = self.servables[name]["signature"]
        status, data = self.server.put("/api/v1/servables/%s/%s/aliases/prod" % (self.a.name, name),
                                       self.tok, {"version": 1})
        self.assertEqual(status, 200, data)
        forms = {"raw": (self.m(name), None), "encoded": ("%s%%2F%s" % (self.a.name, name), None),
                 "bare": (name, None), "version": (self.m(name), "1"),
                 "alias": (self.m(name), "prod"), "latest": (self.m(name), "latest")}
        for form, (model, version) in forms.items():
            with self.subTest(form):
                status, data = self.server.get(oip.model_path(model, version, route=""), self.tok)
                self.assertEqual(status, 200, data)
                self.assertEqual(data["name"], self.m(name))
                self.assertEqual(data["versions"], ["1"])
                self.assertIsInstance(data["platform"], str)
                self.assertTrue(data["platform"])
                self.assertEqual(data["inputs"], sig["inputs"])
                self.assertEqual(data["outputs"], sig["outputs"])
                self.example_ok(name, model=model, version=version)
        no_such = "servable %s not found" % self.m("no-such")
        for model, version, message in (
                (self.m(name), "2", "version 2 of %s not found" % self.m(name)),
                (self.m(name), "nope", "version nope of %s not found" % self.m(name)),
                (self.m("no-such"), None, no_such), (self.a.name + "%2Fno-such", None, no_such)):
            with self.subTest(missing=(model, version)):
                self.assertError(self.server.get(oip.model_path(model, version, ""), self.tok), 404,
                                 message=message)
                self.assertError(self.infer(model, request_of(
                    self.servables[name]["examples"][0]), version=version), 404, message=message)

    def test_ready_stats_index_unload_reload(self):
        life = self.m("life")
        example = self.servables["digits-mlp-torchscript"]["examples"][0]
        status, data = self.server.get(oip.model_path(life, route="ready"), self.tok)
        self.assertError((status, data), 503, "ready before load", message="not ready: not loaded")
        self.assertIs(data.get("ready"), False)
        # The index lists it all the same, as the repository extension says: unavailable.
        status, index = self.server.post("/v2/repository/index", self.tok, {})
        self.assertEqual(status, 200, index)
        self.assertIn({"name": life, "version": "1", "state": "UNAVAILABLE",
                       "reason": "not loaded"}, index)
        status, index = self.server.post("/v2/repository/index", self.tok, {"ready": True})
        self.assertNotIn(life, [e["name"] for e in index])
        for round_ in range(2):
            status, data = self.infer(life, request_of(example))
            self.assertEqual(status, 200, data)
            self.assertEqual(self.server.get(oip.model_path(life, route="ready"), self.tok),
                             (200, {"name": life + ":1", "ready": True}))
            status, index = self.server.post("/v2/repository/index", self.tok, {"ready": True})
            self.assertEqual(status, 200, index)
            entry = [e for e in index if e["name"] == life]
            self.assertEqual([(e["version"], e["state"]) for e in entry], [("1", "READY")], index)
            status, stats = self.server.get(oip.model_path(life, route="stats"), self.tok)
            self.assertEqual(status, 200, stats)
            self.assertEqual(len(stats["model_stats"]), 1, stats)
            st = stats["model_stats"][0]
            self.assertEqual((st["name"], st["version"], st["state"]), (life, "1", "READY"))
            # Statistics belong to the loaded model: each load starts from the one request.
            self.assertEqual((st["inference_count"], st["inference_stats"]["success"]["count"]),
                             (1, 1), st)
            status, all_stats = self.server.get("/v2/models/stats", self.tok)
            self.assertEqual(status, 200, all_stats)
            self.assertIn(life, [m["name"] for m in all_stats["model_stats"]])
            status, data = self.server.post("/v2/repository/models/%s/unload" % life, self.tok)
            self.assertEqual((status, data), (200, {"unloaded": 1}), "round %d" % round_)
            self.assertError(self.server.get(oip.model_path(life, route="ready"), self.tok), 503,
                             message="not ready: not loaded")
            # Unloading what is not loaded succeeds, as in Triton.
            self.assertEqual(self.server.post("/v2/repository/models/%s/unload" % life,
                                              self.tok), (200, {"unloaded": 0}))
        status, data = self.server.post("/v2/repository/models/%s/load" % life, self.tok)
        self.assertEqual((status, data.get("state")), (200, "READY"), data)

    def test_metrics_count_requests(self):
        name = "digits-logreg-python"
        self.example_ok(name)
        servable = self.m(name)
        before = self.metrics(self.tok)
        n0 = oip.metric_value(before, "orrery_inference_requests_total", servable)
        self.assertIsNotNone(n0, before)
        for metric in ("orrery_inference_failures_total", "orrery_servable_ready"):
            self.assertIsNotNone(oip.metric_value(before, metric, servable), metric)
        self.example_ok(name)
        self.example_ok(name)
        after = self.metrics(self.tok)
        self.assertEqual(oip.metric_value(after, "orrery_inference_requests_total", servable), n0 + 2)
        self.assertEqual(oip.metric_value(after, "orrery_servable_ready", servable), 1)
        self.assertIn('servable="%s"' % servable, self.metrics(self.server.admin))
        self.assertNotIn('servable="%s/' % self.a.name, self.metrics(self.b["reader"]))
        self.assertError(self.server.get("/metrics"), 401,
                         message="missing token (send Authorization: Bearer <token>)")

    def test_other_tenant_sees_404_unless_public(self):
        btok = self.b["publisher"]
        private, missing = "digits-logreg-python", "no-such-servable"
        self.example_ok(private)  # loaded: the answer must still be 404
        req = request_of(self.servables[private]["examples"][0])
        routes = {"infer": lambda m: self.infer(m, req, btok),
                  "metadata": lambda m: self.server.get(oip.model_path(m, route=""), btok),
                  "ready": lambda m: self.server.get(oip.model_path(m, route="ready"), btok),
                  "stats": lambda m: self.server.get(oip.model_path(m, route="stats"), btok),
                  "load": lambda m: self.server.post("/v2/repository/models/%s/load" % m, btok),
                  "unload": lambda m: self.server.post("/v2/repository/models/%s/unload" % m, btok)}
        for route, call in routes.items():
            with self.subTest(route):
                self.assertError(call(self.m(private)), 404,
                                 message="servable %s not found" % self.m(private))
                self.assertError(call(self.m(missing)), 404,
                                 message="servable %s not found" % self.m(missing))
        public = "kepler-python"
        status, data = self.server.put("/api/v1/servables/%s/%s/visibility" % (self.a.name, public),
                                       self.tok, {"visibility": "public"})
        self.assertEqual(status, 200, data)
        self.example_ok(public, token=btok)
        self.example_ok(public, token=self.b["reader"])
        self.assertError(self.infer(public, req, btok), 404,  # bare name = b's own tenant
                         message="servable %s/%s not found" % (self.b.name, public))
        self.assertError(self.server.post("/v2/repository/models/%s/unload" % self.m(public), btok),
                         403, message="unloading needs a publisher or admin token of %s"
                         % self.a.name)

    def test_reader_infers_but_cannot_unload(self):
        name = "digits-xgboost"
        reader = self.a["reader"]
        self.example_ok(name, token=reader)
        self.assertError(self.server.post("/v2/repository/models/%s/unload" % self.m(name), reader),
                         403, message="unloading needs a publisher or admin token of %s"
                         % self.a.name)
        self.assertEqual(self.server.get(oip.model_path(self.m(name), route="ready"), reader)[0], 200)
        self.example_ok(name, token=reader)

    def test_corrupt_model_files_fail_cleanly(self):
        for bad, (example, path) in sorted(CORRUPT.items()):
            with self.subTest(bad):
                req = request_of(self.servables[example]["examples"][0])
                # The end of the text is the runtime's (libtorch, OpenCV, XGBoost).
                failed = "servable %s:1 failed to load: " % self.m(bad)
                error = self.assertError(self.infer(self.m(bad), req), 503, "infer " + bad,
                                         message_prefix=failed + "cannot load %s: " % path)
                cause = error["error"][len(failed):]
                # The load route says the same, as a 422; readiness gives the cause.
                self.assertError(self.server.post("/v2/repository/models/%s/load" % self.m(bad),
                                                  self.tok), 422, message=failed + cause)
                status, data = self.server.get(oip.model_path(self.m(bad), route="ready"), self.tok)
                self.assertError((status, data), 503, message="not ready: " + cause)
                self.assertIs(data.get("ready"), False)
                self.example_ok(example)
        for name in sorted(self.servables):
            self.example_ok(name)


if __name__ == "__main__":
    unittest.main()
