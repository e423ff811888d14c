"""The Open Inference Protocol over gRPC (docs/grpc.md), end to end through a real server, with
grpcio and messages generated from proto/ by protoc. Proves:
- health (grpc.health.v1 Check, no token; an unknown service NOT_FOUND), liveness, readiness
  and the server's, a model's metadata, configuration and statistics as REST gives them;
- ModelInfer with typed contents and with raw contents, the id echoed, a subset of outputs,
  parameters (pipeline_timings on a plain model is ignored as over REST); errors are REST's
  message with the gRPC code of its status; a message over --max-infer-bytes is
  RESOURCE_EXHAUSTED and the server answers on;
- the response cache and priorities are those of REST (a gRPC answer is a cache hit for REST, a
  priority above the servable's levels runs at its default level);
- a gRPC deadline only shortens the server's timeout (a worker still running at the call's
  deadline is killed then; a long deadline does not lengthen --timeout-ms);
- ModelStreamInfer answers out of order, each with its id, a failed request with its
  error_message while the stream goes on;
- the repository extension (index, load, unload) and its permissions;
- the sample client examples/grpc-client/client.py runs against the hub (the README's tour);
- `--grpc-port off` turns the listener off, and a bad value is refused at start.
The decisions of every operation x credential over REST and gRPC: test_transport_matrix.py.
"""
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

import numpy as np

import hub
import oip
import oip_grpc
from hub import HubTestCase

DOUBLE_CODE = '''
import numpy as np
def predict(inputs):
    x = inputs["x"]
    return {"y": (x * 2).astype(np.float32), "z": (-x).astype(np.float32)}
'''
COUNTER_CODE = '''
import numpy as np
CALLS = [0]
def predict(inputs):
    CALLS[0] += 1
    return {"y": inputs["x"] * 2, "calls": np.array([CALLS[0]], dtype=np.int64)}
'''
SLEEPER_CODE = '''
import time
def predict(inputs):
    time.sleep(float(inputs["s"][0]))
    return {"y": inputs["s"]}
'''


class GrpcTest(HubTestCase):
    server_args = ("--max-infer-bytes", "1048576", "--timeout-ms", "1500")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher", "reader"))
        for name, code, inputs, outputs in (
                ("double", DOUBLE_CODE, [("x", "FP32", [-1])], [("y", "FP32", [-1]), ("z", "FP32", [-1])]),
                ("sleeper", SLEEPER_CODE, [("s", "FP32", [1])], [("y", "FP32", [1])])):
            cls.server.publish_ok(cls.t.name, name, oip.py_package(name, code, inputs, outputs),
                                  cls.t["publisher"])
        # Memoized, and with two priority levels: the cache and the queue reached over gRPC.
        cls.server.publish_ok(cls.t.name, "memo", oip.py_package(
            "memo", COUNTER_CODE, [("x", "FP32", [-1])], [("y", "FP32", [-1]), ("calls", "INT64", [1])],
            cache=True, queue={"priority_levels": 2}), cls.t["publisher"])
        cls.client = oip_grpc.Client(cls.server.grpc_port)
        cls.pb = cls.client.pb

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        super().tearDownClass()

    def model(self, name):
        return "%s/%s" % (self.t.name, name)

    def infer(self, name, x, **kw):
        request = self.client.infer_request(self.model(name), {"x": ("FP32", np.array(x, np.float32))},
                                            **kw)
        return self.client.call("ModelInfer", request, self.t["reader"])

    def test_health_needs_no_token_and_names_the_service(self):
        self.assertEqual(self.client.check_health(), ("OK", "SERVING"))
        self.assertEqual(self.client.check_health("inference.GRPCInferenceService"), ("OK", "SERVING"))
        self.assertEqual(self.client.check_health("other.Service")[0], "NOT_FOUND")
        code, live = self.client.call("ServerLive", self.pb.ServerLiveRequest())
        self.assertEqual((code, live.live), ("OK", True))
        self.assertEqual(self.client.call("ServerReady", self.pb.ServerReadyRequest())[0],
                         "UNAUTHENTICATED")
        code, ready = self.client.call("ServerReady", self.pb.ServerReadyRequest(), self.t["reader"])
        self.assertEqual((code, ready.ready), ("OK", True))

    def test_metadata_config_and_statistics_are_rests(self):
        reader = self.t["reader"]
        code, server = self.client.call("ServerMetadata", self.pb.ServerMetadataRequest(), reader)
        status, rest = self.server.get("/v2", reader)
        self.assertEqual(code, "OK")
        self.assertEqual([server.name, server.version, list(server.extensions)],
                         [rest["name"], rest["version"], rest["extensions"]])
        code, model = self.client.call("ModelMetadata", self.pb.ModelMetadataRequest(
            name=self.model("double")), reader)
        status, rest = self.server.get("/v2/models/%s" % self.model("double"), reader)
        self.assertEqual(code, "OK", model)
        self.assertEqual(model.name, rest["name"])
        self.assertEqual(list(model.versions), rest["versions"])
        self.assertEqual(model.platform, "python")
        self.assertEqual([[t.name, t.datatype, list(t.shape)] for t in model.outputs],
                         [[t["name"], t["datatype"], t["shape"]] for t in rest["outputs"]])
        code, config = self.client.call("ModelConfig", self.pb.ModelConfigRequest(
            name=self.model("double"), version="1"), reader)
        self.assertEqual(code, "OK", config)
        self.assertEqual(config.config.name, self.model("double"))
        self.assertEqual(config.config.backend, "python")
        self.assertEqual([(i.name, self.pb.DataType.Name(i.data_type), list(i.dims))
                          for i in config.config.input], [("x", "TYPE_FP32", [-1])])
        self.assertEqual(config.config.instance_group[0].count, 1)
        self.assertEqual(list(config.config.version_policy.specific.versions), [1])
        self.assertEqual(self.infer("double", [1, 2])[0], "OK")
        code, stats = self.client.call("ModelStatistics", self.pb.ModelStatisticsRequest(
            name=self.model("double")), reader)
        status, rest = self.server.get("/v2/models/%s/stats" % self.model("double"), reader)
        self.assertEqual(code, "OK", stats)
        self.assertEqual(len(stats.model_stats), 1)
        self.assertEqual(stats.model_stats[0].inference_count, rest["model_stats"][0]["inference_count"])
        self.assertGreaterEqual(stats.model_stats[0].inference_stats.success.count, 1)
        code, every = self.client.call("ModelStatistics", self.pb.ModelStatisticsRequest(), reader)
        self.assertIn(self.model("double"), [s.name for s in every.model_stats])

    def grpc_calls(self):
        status, text = self.server.get("/metrics", self.server.admin)
        self.assertEqual(status, 200)
        text = text.decode() if isinstance(text, bytes) else text
        return float(re.search(r'^orrery_inference_calls_total\{transport="grpc"\} (\S+)$',
                               text, re.M).group(1))

    def test_infer_typed_and_raw_contents(self):
        calls = self.grpc_calls()
        code, answer = self.infer("double", [1.5, -2], request_id="r-1", raw=False)
        self.assertEqual(code, "OK", answer)
        self.assertEqual((answer.model_name, answer.model_version, answer.id),
                         (self.model("double"), "1", "r-1"))
        self.assertEqual([o.name for o in answer.outputs], ["y", "z"])
        self.assertEqual(np.frombuffer(answer.raw_output_contents[0], np.float32).tolist(), [3, -4])
        code, answer = self.infer("double", [[1, 2], [3, 4]][0], outputs=["z"])
        self.assertEqual(code, "OK", answer)
        self.assertEqual([o.name for o in answer.outputs], ["z"])
        self.assertEqual(list(answer.outputs[0].shape), [2])
        self.assertEqual(np.frombuffer(answer.raw_output_contents[0], np.float32).tolist(), [-1, -2])
        self.assertEqual(answer.id, "")  # none sent, none echoed
        self.assertEqual(self.grpc_calls(), calls + 2)  # what an operator sees on /metrics

    def test_cache_and_priorities_as_over_rest(self):
        first = self.infer("memo", [1, 2], parameters={"priority": 1})
        again = self.infer("memo", [1, 2], parameters={"priority": 9})  # no level 9: the default
        self.assertEqual(first[0], "OK", first[1])
        self.assertEqual(again[0], "OK", again[1])
        self.assertFalse(first[1].parameters["cache_hit"].bool_param)
        self.assertTrue(again[1].parameters["cache_hit"].bool_param)
        # The hit ran nothing: the servable's own call count is the first answer's.
        calls = [np.frombuffer(a[1].raw_output_contents[1], np.int64).tolist() for a in (first, again)]
        self.assertEqual(calls[0], calls[1])
        # REST's request hits the entry gRPC's made: one cache, one path.
        status, data = self.server.post("/v2/models/%s/infer" % self.model("memo"), self.t["reader"],
                                        json_body={"inputs": [{"name": "x", "datatype": "FP32",
                                                               "shape": [2], "data": [1, 2]}]})
        self.assertEqual(status, 200, data)
        self.assertTrue(data["parameters"]["cache_hit"])

    def test_errors_are_rests_messages_with_grpc_codes(self):
        reader = self.t["reader"]
        code, message = self.infer("nothing", [1])
        status, rest = self.server.post("/v2/models/%s/infer" % self.model("nothing"), reader,
                                        json_body={"inputs": []})
        self.assertEqual((code, message), ("NOT_FOUND", rest["error"]))
        request = self.client.infer_request(self.model("double"), {"q": ("FP32", np.ones(2, np.float32))})
        code, message = self.client.call("ModelInfer", request, reader)
        status, rest = self.server.post("/v2/models/%s/infer" % self.model("double"), reader,
                                        json_body={"inputs": [{"name": "q", "datatype": "FP32",
                                                               "shape": [2], "data": [1, 1]}]})
        self.assertEqual((code, message), ("INVALID_ARGUMENT", rest["error"]))
        self.assertEqual(self.infer("double", [1], parameters={"priority": -1}),
                         ("INVALID_ARGUMENT", "parameter 'priority' must be a non-negative integer"))
        code, message = self.infer("double", np.ones(300000))  # 1.2 MB > --max-infer-bytes 1 MiB
        self.assertEqual(code, "RESOURCE_EXHAUSTED", message)
        self.assertEqual(self.infer("double", [1])[0], "OK")
        code, message = self.client.call("ModelInfer", request, metadata=[
            ("authorization", "Bearer " + reader), ("authorization", "Bearer " + reader)])
        self.assertEqual(code, "INVALID_ARGUMENT", message)

    def test_grpc_deadline_only_shortens_the_servers_timeout(self):
        def sleep(seconds, timeout):
            request = self.client.infer_request(self.model("sleeper"),
                                                {"s": ("FP32", np.array([seconds], np.float32))})
            return self.client.call("ModelInfer", request, self.t["reader"], timeout=timeout)
        self.assertTrue(oip.wait_for(lambda: sleep(0, 30)[0] == "OK", timeout=30))
        # A 30 s deadline does not lengthen the server's 1.5 s.
        code, message = sleep(10, 30)
        self.assertEqual(code, "UNAVAILABLE", message)
        self.assertWorkerTimeout(message, "%s:1" % self.model("sleeper"), 1500)
        self.assertTrue(oip.wait_for(lambda: sleep(0, 30)[0] == "OK", timeout=30))
        # A 0.4 s deadline shortens it: the server kills the worker then, not at 1.5 s.
        self.assertEqual(sleep(10, 0.4)[0], "DEADLINE_EXCEEDED")
        shortened = re.compile(r"sleeper:1: worker timed out after (3[5-9]\d|4[0-4]\d) ms")
        self.assertTrue(oip.wait_for(lambda: shortened.search(self.server.log_tail(20000)),
                                     timeout=10), self.server.log_tail(3000))

    def test_stream_answers_out_of_order_with_ids_and_errors_inline(self):
        reader = self.t["reader"]
        self.assertTrue(oip.wait_for(lambda: self.infer("double", [0])[0] == "OK"))
        # The sleeper's worker may still be restarting after the deadline test killed it.
        ready = self.client.infer_request(self.model("sleeper"), {"s": ("FP32", np.zeros(1, np.float32))})
        self.assertTrue(oip.wait_for(
            lambda: self.client.call("ModelInfer", ready, reader)[0] == "OK", timeout=30))
        slow = self.client.infer_request(self.model("sleeper"),
                                         {"s": ("FP32", np.array([0.8], np.float32))}, request_id="slow")
        fast = [self.client.infer_request(self.model("double"), {"x": ("FP32", np.array([i], np.float32))},
                                          request_id="fast-%d" % i) for i in range(3)]
        bad = self.client.infer_request(self.model("missing"), {"x": ("FP32", np.ones(1, np.float32))},
                                        request_id="bad")
        answers = self.client.stream([slow] + fast + [bad], reader)
        ids = [a.infer_response.id for a in answers]
        self.assertEqual(sorted(ids), sorted(["slow", "fast-0", "fast-1", "fast-2", "bad"]))
        self.assertEqual(ids[-1], "slow")  # sent first, answered last
        by_id = {a.infer_response.id: a for a in answers}
        self.assertEqual(by_id["bad"].error_message, "servable %s not found" % self.model("missing"))
        self.assertEqual(by_id["fast-2"].error_message, "")
        self.assertEqual(by_id["slow"].error_message, "")
        self.assertEqual(np.frombuffer(by_id["fast-2"].infer_response.raw_output_contents[0],
                                       np.float32).tolist(), [4])
        self.assertEqual(np.frombuffer(by_id["slow"].infer_response.raw_output_contents[0],
                                       np.float32).tolist(), [np.float32(0.8)])

    def test_stream_needs_a_token(self):
        import grpc
        with self.assertRaises(grpc.RpcError) as refused:
            self.client.stream([self.client.infer_request(self.model("double"),
                                                          {"x": ("FP32", np.ones(1, np.float32))})])
        self.assertEqual(refused.exception.code().name, "UNAUTHENTICATED")

    def test_repository_index_load_and_unload(self):
        reader, publisher = self.t["reader"], self.t["publisher"]
        code, index = self.client.call("RepositoryIndex", self.pb.RepositoryIndexRequest(), reader)
        self.assertEqual(code, "OK")
        names = {m.name: m for m in index.models}
        self.assertIn(self.model("double"), names)
        status, rest = self.server.post("/v2/repository/index", reader, json_body={})
        self.assertEqual(sorted(m.name for m in index.models), sorted(m["name"] for m in rest))
        load = self.pb.RepositoryModelLoadRequest(model_name=self.model("double"))
        self.assertEqual(self.client.call("RepositoryModelLoad", load, reader)[0], "OK")
        code, ready = self.client.call("ModelReady", self.pb.ModelReadyRequest(
            name=self.model("double")), reader)
        self.assertEqual((code, ready.ready), ("OK", True))
        unload = self.pb.RepositoryModelUnloadRequest(model_name=self.model("double"))
        self.assertEqual(self.client.call("RepositoryModelUnload", unload, reader)[0], "PERMISSION_DENIED")
        self.assertEqual(self.client.call("RepositoryModelUnload", unload, publisher)[0], "OK")
        code, ready = self.client.call("ModelReady", self.pb.ModelReadyRequest(
            name=self.model("double")), reader)
        self.assertEqual((code, ready.ready), ("OK", False))
        code, index = self.client.call("RepositoryIndex", self.pb.RepositoryIndexRequest(ready=True),
                                       reader)
        self.assertNotIn(self.model("double"), [m.name for m in index.models])

    def test_the_sample_client(self):
        script = os.path.join(hub.SOURCE_DIR, "examples", "grpc-client", "client.py")
        with tempfile.TemporaryDirectory() as tmp:
            npy = os.path.join(tmp, "x.npy")
            np.save(npy, np.array([1, 2, 3], np.float32))
            env = dict(os.environ, ORRERY_TOKEN=self.t["reader"])
            url = "127.0.0.1:%d" % self.server.grpc_port
            one = subprocess.run(["/usr/bin/python3", script, "--url", url, "--model",
                                  self.model("double"), "--input", "x=" + npy],
                                 capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(one.returncode, 0, one.stderr)
            lines = [json.loads(line) for line in one.stdout.splitlines()]
            self.assertEqual(lines[0], {"health": "SERVING"})
            self.assertEqual(lines[1]["server"], "orrery")
            self.assertEqual(lines[2]["inputs"], [["x", "FP32", [-1]]])
            self.assertEqual(lines[3]["outputs"], {"y": [2, 4, 6], "z": [-1, -2, -3]})
            many = subprocess.run(["/usr/bin/python3", script, "--url", url, "--model",
                                   self.model("double"), "--stream", "5"],
                                  capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(many.returncode, 0, many.stderr)
            answers = [json.loads(line) for line in many.stdout.splitlines()[3:]]
            self.assertEqual(sorted(a["id"] for a in answers), ["0", "1", "2", "3", "4"])
            self.assertEqual(answers[0]["outputs"], {"y": [0], "z": [0]})
            env.pop("ORRERY_TOKEN")
            refused = subprocess.run(["/usr/bin/python3", script, "--url", url, "--model",
                                      self.model("double")], capture_output=True, text=True,
                                     timeout=60, env=env)
            self.assertEqual(refused.returncode, 1)
            self.assertIn("UNAUTHENTICATED", refused.stderr)


class GrpcPortTest(HubTestCase):
    server_args = ("--grpc-port", "off")

    def test_off_means_no_listener_and_bad_values_are_refused(self):
        self.assertNotIn("gRPC listening", self.server.log_tail(20000))
        self.assertIsNone(self.server.grpc_port)
        r = subprocess.run([hub.BIN, "serve", "--port", "0", "--grpc-port", "70000"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--grpc-port: must be a port 0..65535 or off, not '70000'", r.stderr)
        busy = self.start_server(args=["--grpc-port", "0"])
        self.assertRegex(busy.log_tail(20000), r"orrery gRPC listening on 127\.0\.0\.1:\d+")


if __name__ == "__main__":
    unittest.main()
