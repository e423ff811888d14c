"""Public read (`orrery serve --public-read`, off by default): anyone without a token may
read, download, cite, search and run public objects, as public model hubs allow.

Proves, through the real server:
- without a token, a public servable is described, listed, searched, downloaded, cited, its
  model card read, its v2 metadata and readiness read, and it answers inferences and verify;
- a private servable answers 404 on every one of those routes, byte for byte like an absent
  one, and never appears in lists or search;
- every other route still needs a token (401), and a bad token is a 401, never anonymous;
- without the flag, every route but liveness needs a token.
"""

import unittest

import oip
from hub import HubTestCase

CODE = "def predict(inputs):\n    return {'y': inputs['x'] * 3}\n"
IO = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])
EXAMPLE = {"inputs": {"x": {"datatype": "FP64", "shape": [1], "data": [2.0]}},
           "outputs": {"y": {"datatype": "FP64", "shape": [1], "data": [6.0]}}}
REQUEST = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.5]}]}


class PublicReadTest(HubTestCase):

    server_args = ("--public-read",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        for name, query in (("open", "visibility=public"), ("closed", "")):
            tar = oip.py_package(name, CODE, *IO, examples=[EXAMPLE],
                                 files={"README.md": b"# card\n"}, tags=["publicread"])
            cls.server.publish_ok(cls.t.name, name, tar, cls.t["publisher"], query=query)

    def anon(self, method, path, body=None):
        kw = {"json_body": body} if body is not None else {}
        return self.server.request(method, path, None, **kw)

    def reads(self, name):
        obj = "/api/v1/servables/%s/%s" % (self.t.name, name)
        model = "/v2/models/%s/%s" % (self.t.name, name)
        return [("GET", obj, None), ("GET", obj + "/versions/1", None),
                ("GET", obj + "/versions/1/archive", None), ("GET", obj + "/cite", None),
                ("GET", obj + "/versions/1/cite?format=ris", None), ("GET", obj + "/readme", None),
                ("GET", model, None), ("POST", model + "/infer", REQUEST),
                ("GET", model + "/ready", None), ("POST", obj + "/verify", {})]

    def test_public_objects_are_open_without_a_token(self):
        for method, path, body in self.reads("open"):
            with self.subTest(path=path):
                status, data = self.anon(method, path, body)
                self.assertEqual(status, 200, data)
        status, data = self.anon("POST", "/v2/models/%s/open/infer" % self.t.name, REQUEST)
        self.assertEqual(data["outputs"][0]["data"], [4.5])
        status, data = self.anon("GET", "/api/v1/search?q=publicread")
        self.assertEqual([i["name"] for i in data["items"]], ["open"])
        status, data = self.anon("GET", "/api/v1/servables?tenant=" + self.t.name)
        self.assertEqual([i["name"] for i in data["items"]], ["open"])

    def test_private_objects_answer_like_absent_ones(self):
        for (method, path, body), (_, absent_path, _) in zip(self.reads("closed"),
                                                              self.reads("no-such")):
            with self.subTest(path=path):
                hidden = self.anon(method, path, body)
                absent = self.anon(method, absent_path, body)
                self.assertEqual(hidden[0], 404, hidden)
                self.assertEqual(str(hidden[1]).replace("closed", "no-such"), str(absent[1]))

    def test_everything_else_still_needs_a_token(self):
        obj = "/api/v1/servables/%s/open" % self.t.name
        for method, path in (("GET", "/metrics"), ("GET", "/api/v1/whoami"),
                             ("GET", "/api/v1/audit"), ("DELETE", obj),
                             ("POST", obj + "/versions"), ("PUT", obj + "/aliases/prod"),
                             ("POST", "/v2/repository/models/%s/open/load" % self.t.name)):
            with self.subTest(path=path):
                self.assertError(self.anon(method, path), 401,
                                 message="missing token (send Authorization: Bearer <token>)")
        status, data = self.server.request("GET", obj, "orr_" + "0" * 64)
        self.assertEqual(status, 401, data)


class PublicReadOffTest(HubTestCase):

    def test_off_by_default(self):
        t = self.server.new_tenant(("publisher",))
        tar = oip.py_package("open", CODE, *IO, examples=[EXAMPLE])
        self.server.publish_ok(t.name, "open", tar, t["publisher"], query="visibility=public")
        for path in ("/api/v1/servables/%s/open" % t.name, "/api/v1/search?q=open"):
            self.assertError(self.server.request("GET", path, None), 401,
                             message="missing token (send Authorization: Bearer <token>)")


if __name__ == "__main__":
    unittest.main()
