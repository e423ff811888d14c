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
- "//" in a path is refused, not collapsed into another route.
"""

import json
import socket
import unittest

import hub
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


if __name__ == "__main__":
    unittest.main()
