"""The front door: hostile requests a browser or a confused client can send, refused before
they reach a route, each with a clear error and nothing changed.

Proves, through the real server:
- a repeated Authorization (or Host, Content-Type, ...) header is a 400, not "the first wins";
- every JSON body has a nesting limit (a 500,000-deep body on a non-inference route is a 400,
  answered at once, and the server keeps answering);
- Host is checked against the names the hub answers to (a DNS-rebinding page's name is a 400;
  localhost, the listen address and the operator's --allowed-host names pass; "*" turns the
  check off);
- routes that take JSON refuse other content types (text/plain and form posts a web page may
  send cross-site) with 415, inference routes also take application/octet-stream;
- "//" in a path is refused, not collapsed into another route;
- compressed bodies: a request sent with Content-Encoding gzip or deflate is decoded (JSON
  routes and inference), the decoded size counts against the body limit (a small gzip bomb is a
  413, the server unharmed), another coding is 415; an answer is gzip-compressed for a client
  whose Accept-Encoding asks for it, and only then.
"""

import gzip
import json
import socket
import unittest
import zlib

import hub
import oip
from hub import HubTestCase

ALLOWED = "hub.lab.example"


def raw_request(port, head_lines, body=b""):
    """Sends a request made of `head_lines` (no CRLFs) and `body`; returns (status, JSON)."""
    text = "\r\n".join(head_lines) + "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(
        body)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(text.encode() + body)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload) if payload else None


class FrontDoorTest(HubTestCase):
    server_args = ("--allowed-host", ALLOWED)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.server.admin
        cls.t = cls.server.new_tenant(("publisher", "reader"))

    def raw(self, head_lines, body=b""):
        return raw_request(self.server.port, head_lines, body)

    def tenant_absent(self, name):
        status, data = self.server.get("/api/v1/tenants", self.admin)
        self.assertEqual(status, 200, data)
        self.assertNotIn(name, [t["name"] for t in data["tenants"]])

    def test_a_repeated_header_is_refused(self):
        status, data = self.raw(["GET /api/v1/whoami HTTP/1.1", "Host: 127.0.0.1",
                                 "Authorization: Bearer " + self.t["reader"],
                                 "Authorization: Bearer " + self.admin])
        self.assertEqual((status, data), (400, {
            "error": "bad request: repeated header field 'Authorization': it may be sent once"}))
        for field in ("Host: 127.0.0.1", "Content-Type: application/json"):
            status, _ = self.raw(["POST /api/v1/tenants HTTP/1.1", "Host: 127.0.0.1", field,
                                  "Authorization: Bearer " + self.admin, field],
                                 b'{"name": "twice"}')
            self.assertEqual(status, 400, field)
        self.tenant_absent("twice")

    def test_json_bodies_have_a_depth_limit(self):
        deep = b"[" * 500_000 + b"]" * 500_000
        for path in ("/api/v1/tenants", "/api/v1/servables/%s/x/shares" % self.t.name):
            status, data, _ = self.server.request_full(
                "POST", path, self.admin, body=deep, headers={"Content-Type": "application/json"})
            self.assertEqual((status, data), (400, {
                "error": "request body nests deeper than 64 levels"}), path)
        # 64 levels are fine for the parser (and then the route says what it wants).
        status, data, _ = self.server.request_full(
            "POST", "/api/v1/tenants", self.admin, body=b"[" * 64 + b"]" * 64,
            headers={"Content-Type": "application/json"})
        self.assertEqual((status, data), (400, {"error": "request body must be a JSON object"}))
        self.assertEqual(self.server.get("/v2/health/live")[0], 200)

    def test_host_is_checked(self):
        port = self.server.port
        for host in ("attacker.example:%d" % port, "127.0.0.1.attacker.example", "[::1]:%d" % port):
            status, data = self.raw(["GET /api/v1/whoami HTTP/1.1", "Host: " + host,
                                     "Authorization: Bearer " + self.admin])
            self.assertEqual(status, 400, host)
            self.assertTrue(data["error"].startswith("Host '%s' is not a name of this hub" % host),
                            data)
        for host in ("127.0.0.1:%d" % port, "localhost:%d" % port, "LocalHost", ALLOWED,
                     ALLOWED + ":443"):
            status, data = self.raw(["GET /api/v1/whoami HTTP/1.1", "Host: " + host,
                                     "Authorization: Bearer " + self.admin])
            self.assertEqual(status, 200, (host, data))
        # No Host at all (HTTP/1.0 tools; browsers always send one).
        status, _ = self.raw(["GET /v2/health/live HTTP/1.0"])
        self.assertEqual(status, 200)
        # A rebinding page may not even post: refused before the route, nothing created.
        status, _ = self.raw(["POST /api/v1/tenants HTTP/1.1", "Host: attacker.example",
                              "Authorization: Bearer " + self.admin,
                              "Content-Type: application/json"], b'{"name": "rebound"}')
        self.assertEqual(status, 400)
        self.tenant_absent("rebound")

    def test_any_host_when_the_operator_says_so(self):
        server = self.start_server(args=("--allowed-host", "*"))
        status, _ = raw_request(server.port, ["GET /v2/health/live HTTP/1.1",
                                              "Host: anything.example"])
        self.assertEqual(status, 200)

    def test_json_routes_refuse_other_content_types(self):
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", "application/octet-stream"):
            status, data, _ = self.server.request_full(
                "POST", "/api/v1/tenants", self.admin, body=b'{"name": "typed"}',
                headers={"Content-Type": content_type})
            self.assertEqual((status, data), (415, {
                "error": "this route takes a JSON body (Content-Type: application/json), not "
                         "'%s'" % content_type}))
        self.tenant_absent("typed")
        # No Content-Type is taken as JSON, as before.
        status, data, _ = self.server.request_full("POST", "/api/v1/tenants", self.admin,
                                                   body=b'{"name": "%s"}' % hub.unique("u").encode())
        self.assertEqual(status, 201, data)

    def test_inference_takes_json_or_binary_only(self):
        model = "/v2/models/%s/absent/infer" % self.t.name
        status, data, _ = self.server.request_full(
            "POST", model, self.t["reader"], body=b'{"inputs": []}',
            headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415, data)
        self.assertIn("or application/octet-stream for binary tensors", data["error"])
        for content_type in ("application/json", "application/octet-stream"):
            status, data, _ = self.server.request_full(
                "POST", model, self.t["reader"], body=b'{"inputs": []}',
                headers={"Content-Type": content_type})
            self.assertEqual(status, 404, (content_type, data))  # past the door: no such model

    def test_double_slashes_are_not_collapsed(self):
        for path in ("/v2//health/live", "/api/v1//whoami", "//api/v1/whoami"):
            status, data = self.server.get(path, self.admin)
            self.assertEqual((status, data), (400, {
                "error": "the request path has an empty segment ('//')"}), path)
        self.assertEqual(self.server.get("/api/v1/whoami/", self.admin)[0], 200)


ADD_ONE = "def predict(inputs):\n    return {'y': inputs['x'] + 1}\n"
LIMIT = 200_000


class CompressionTest(HubTestCase):
    server_args = ("--max-json-bytes", str(LIMIT), "--max-infer-bytes", str(LIMIT))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        cls.tok = cls.t["publisher"]
        tar = oip.py_package("add-one", ADD_ONE, [("x", "FP64", [-1])], [("y", "FP64", [-1])])
        cls.server.publish_ok(cls.t.name, "add-one", tar, cls.tok)

    def post(self, path, body, coding, token=None, content_type="application/json"):
        return self.server.request_full("POST", path, token or self.server.admin, body=body,
                                        headers={"Content-Type": content_type,
                                                 "Content-Encoding": coding})

    def test_compressed_requests_are_decoded(self):
        name = hub.unique("z")
        status, data, _ = self.post("/api/v1/tenants", gzip.compress(
            json.dumps({"name": name}).encode()), "gzip")
        self.assertEqual((status, data.get("name")), (201, name), data)
        request = json.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [3],
                                          "data": [1.0, 2.0, 3.0]}]}).encode()
        model = "/v2/models/%s/add-one/infer" % self.t.name
        for coding, body in (("gzip", gzip.compress(request)), ("deflate", zlib.compress(request))):
            status, data, _ = self.post(model, body, coding, self.tok)
            self.assertEqual(status, 200, (coding, data))
            self.assertEqual(oip.output_values(data, {}, "y"), [2.0, 3.0, 4.0])

    def test_a_gzip_bomb_is_refused_at_the_limit(self):
        bomb = gzip.compress(b" " * (64 << 20))  # 64 MiB of spaces in ~64 kB
        self.assertLess(len(bomb), LIMIT)
        for path, token in (("/api/v1/tenants", None),
                            ("/v2/models/%s/add-one/infer" % self.t.name, self.tok)):
            status, data, _ = self.post(path, bomb, "gzip", token)
            self.assertEqual((status, data), (413, {
                "error": "request body is over the %d-byte limit once decompressed" % LIMIT}), path)
        self.assertEqual(self.server.get("/v2/health/live")[0], 200)

    def test_other_codings_and_bad_data(self):
        status, data, _ = self.post("/api/v1/tenants", b"x", "br")
        self.assertEqual((status, data), (415, {
            "error": "Content-Encoding 'br' is not supported (gzip, deflate or identity)"}))
        status, data, _ = self.post("/api/v1/tenants", b"not gzip at all", "gzip")
        self.assertEqual((status, data), (400, {
            "error": "the request body is not valid data of its Content-Encoding"}))
        tar, _ = hub.package("zipped", {"a.bin": b"1"})
        status, data, _ = self.server.request_full(
            "POST", "/api/v1/servables/%s/zipped/versions" % self.t.name, self.tok,
            body=gzip.compress(tar), headers={"Content-Type": "application/x-tar",
                                              "Content-Encoding": "gzip"})
        self.assertEqual(status, 415, data)
        self.assertEqual(self.server.describe(self.t.name, "zipped", self.tok)[0], 404)

    def test_answers_are_compressed_when_asked(self):
        plain_status, plain, plain_headers = self.server.request_full(
            "GET", "/api/v1/environments", self.server.admin)
        self.assertEqual(plain_status, 200)
        self.assertNotIn("content-encoding", plain_headers)
        conn = __import__("http.client").client.HTTPConnection("127.0.0.1", self.server.port)
        conn.request("GET", "/api/v1/environments", headers={
            "Authorization": "Bearer " + self.server.admin, "Accept-Encoding": "br, gzip"})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        self.assertEqual((resp.status, resp.getheader("Content-Encoding"),
                          resp.getheader("Vary")), (200, "gzip", "Accept-Encoding"))
        self.assertEqual(int(resp.getheader("Content-Length")), len(raw))
        self.assertLess(len(raw), len(json.dumps(plain)))
        self.assertEqual(json.loads(gzip.decompress(raw)), plain)


if __name__ == "__main__":
    unittest.main()
