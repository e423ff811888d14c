"""REST and gRPC decide alike (docs/grpc.md): one matrix of the Open Inference Protocol's
operations x credentials (none, a wrong token, a revoked one, a reader and a publisher of the
owner, a publisher of another tenant) runs over both transports against one real server, and
every cell must get the same decision: HTTP 200 / 400 / 401 / 403 / 404 / 413 / 503 and the gRPC
codes OK / INVALID_ARGUMENT / UNAUTHENTICATED / PERMISSION_DENIED / NOT_FOUND /
RESOURCE_EXHAUSTED / UNAVAILABLE, with the same error message. A model that is not ready is a 503
over REST and `ready: false` over gRPC (the protocol's two forms of the same answer). The model is
private, so the other tenant must get exactly what a model that does not exist gets. The same
matrix runs again with public read on, where callers without a token may use the open routes.
"""
import unittest

import numpy as np

import oip
import oip_grpc
from hub import HubTestCase

DOUBLE_CODE = '''
import numpy as np
def predict(inputs):
    return {"y": (inputs["x"] * 2).astype(np.float32)}
'''

GRPC_CODE = {200: "OK", 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
             404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


class TransportMatrixTest(HubTestCase):
    server_args = ()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.t = s.new_tenant(("publisher", "reader"))
        cls.other = s.new_tenant(("publisher",))
        s.publish_ok(cls.t.name, "double", oip.py_package(
            "double", DOUBLE_CODE, [("x", "FP32", [-1])], [("y", "FP32", [-1])]), cls.t["publisher"])
        revoked = s.create_token(cls.t.name, "reader")
        status, _ = s.delete("/api/v1/tokens/%s" % revoked["id"], s.admin)
        assert status == 200
        cls.credentials = {
            "none": None, "wrong": "orr_" + "0" * 40, "revoked": revoked["token"],
            "reader": cls.t["reader"], "publisher": cls.t["publisher"],
            "other tenant": cls.other["publisher"]}
        cls.client = oip_grpc.Client(s.grpc_port)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        super().tearDownClass()

    def operations(self, model):
        """name -> (REST call, gRPC call), each returning (decision, message)."""
        pb, s, c = self.client.pb, self.server, self.client
        path = "/v2/models/" + model

        def rest(method, url, body=None, ready_form=False):
            def call(token):
                status, data = s.request(method, url, token, json_body=body)
                if ready_form and status == 503 and "not ready" in str(data.get("error", "")):
                    return "ready: false", ""
                return status, (data.get("error", "") if isinstance(data, dict) else "")
            return call

        def grpc(rpc, request, ready_field=None):
            def call(token):
                code, answer = c.call(rpc, request, token)
                if code == "OK" and ready_field and not getattr(answer, ready_field):
                    return "ready: false", ""
                return code, (answer if code != "OK" else "")
            return call

        infer = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2]}]}
        return {
            "live": (rest("GET", "/v2/health/live"), grpc("ServerLive", pb.ServerLiveRequest())),
            "ready": (rest("GET", "/v2/health/ready"), grpc("ServerReady", pb.ServerReadyRequest())),
            "server metadata": (rest("GET", "/v2"), grpc("ServerMetadata", pb.ServerMetadataRequest())),
            "model metadata": (rest("GET", path),
                               grpc("ModelMetadata", pb.ModelMetadataRequest(name=model))),
            "model ready": (rest("GET", path + "/ready", ready_form=True),
                            grpc("ModelReady", pb.ModelReadyRequest(name=model), "ready")),
            "config": (rest("GET", path + "/config"),
                       grpc("ModelConfig", pb.ModelConfigRequest(name=model))),
            "model stats": (rest("GET", path + "/stats"),
                            grpc("ModelStatistics", pb.ModelStatisticsRequest(name=model))),
            "all stats": (rest("GET", "/v2/models/stats"),
                          grpc("ModelStatistics", pb.ModelStatisticsRequest())),
            "index": (rest("POST", "/v2/repository/index", {}),
                      grpc("RepositoryIndex", pb.RepositoryIndexRequest())),
            "infer": (rest("POST", path + "/infer", infer),
                      grpc("ModelInfer", c.infer_request(model, {"x": ("FP32", np.array([1, 2], np.float32))}))),
            "bad infer": (rest("POST", path + "/infer", {"inputs": [{"name": "q", "datatype": "FP32",
                                                                     "shape": [1], "data": [1]}]}),
                          grpc("ModelInfer", c.infer_request(model, {"q": ("FP32", np.ones(1, np.float32))}))),
            "load": (rest("POST", "/v2/repository/models/%s/load" % model),
                     grpc("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name=model))),
            "unload": (rest("POST", "/v2/repository/models/%s/unload" % model),
                       grpc("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name=model))),
        }

    def run_matrix(self, model):
        """{(operation, credential): (REST decision, gRPC decision)} with REST's mapped to gRPC."""
        cells = {}
        for operation, (rest, grpc) in self.operations(model).items():
            for credential, token in self.credentials.items():
                status, rest_message = rest(token)
                code, grpc_message = grpc(token)
                rest_decision = GRPC_CODE.get(status, status)
                cells[(operation, credential)] = ((rest_decision, rest_message), (code, grpc_message))
        return cells

    def assertSameDecisions(self, cells):
        differ = {cell: pair for cell, pair in cells.items() if pair[0] != pair[1]}
        self.assertEqual(differ, {}, "REST and gRPC decided differently")

    def test_every_operation_and_credential_decides_alike(self):
        model = "%s/double" % self.t.name
        self.assertEqual(self.server.post("/v2/models/%s/infer" % model, self.t["reader"],
                                          json_body={"inputs": [{"name": "x", "datatype": "FP32",
                                                                 "shape": [1], "data": [1]}]})[0], 200)
        cells = self.run_matrix(model)
        self.assertSameDecisions(cells)
        decision = {cell: pair[1][0] for cell, pair in cells.items()}
        # The matrix is not vacuous: the decisions REST is known to make.
        self.assertEqual(decision[("live", "none")], "OK")
        self.assertEqual(decision[("infer", "none")], "UNAUTHENTICATED")
        self.assertEqual(decision[("infer", "wrong")], "UNAUTHENTICATED")
        self.assertEqual(decision[("infer", "revoked")], "UNAUTHENTICATED")
        self.assertEqual(decision[("infer", "reader")], "OK")
        self.assertEqual(decision[("infer", "other tenant")], "NOT_FOUND")
        self.assertEqual(decision[("bad infer", "reader")], "INVALID_ARGUMENT")
        self.assertEqual(decision[("bad infer", "other tenant")], "NOT_FOUND")
        self.assertEqual(decision[("unload", "reader")], "PERMISSION_DENIED")
        self.assertEqual(decision[("unload", "publisher")], "OK")
        self.assertEqual(decision[("config", "other tenant")], "NOT_FOUND")
        # Invisible is absent: the other tenant's answers are those of a model that does not exist.
        absent = self.run_matrix("%s/nothing" % self.t.name)
        for operation in ("model metadata", "config", "infer", "model stats", "load", "unload"):
            self.assertEqual(cells[(operation, "other tenant")][1][0], absent[(operation, "reader")][1][0])


class PublicReadMatrixTest(TransportMatrixTest):
    server_args = ("--public-read",)

    def test_every_operation_and_credential_decides_alike(self):
        model = "%s/double" % self.t.name
        status, _ = self.server.put("/api/v1/servables/%s/visibility" % model, self.t["publisher"],
                                    {"visibility": "public"})
        self.assertEqual(status, 200)
        cells = self.run_matrix(model)
        self.assertSameDecisions(cells)
        decision = {cell: pair[1][0] for cell, pair in cells.items()}
        self.assertEqual(decision[("infer", "none")], "OK")
        self.assertEqual(decision[("model metadata", "none")], "OK")
        self.assertEqual(decision[("index", "none")], "UNAUTHENTICATED")
        self.assertEqual(decision[("unload", "none")], "UNAUTHENTICATED")
        self.assertEqual(decision[("infer", "other tenant")], "OK")


if __name__ == "__main__":
    unittest.main()
