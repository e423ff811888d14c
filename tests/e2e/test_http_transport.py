"""The server's HTTP/1.1 transport, over raw sockets (RFC 9112; src/api/http_parser.h).

Proves: keep-alive (several requests, one connection); pipelining (requests written at once are
answered in order, bodies with Content-Length or chunked included); `Connection: close` and
HTTP/1.0 close after the answer, HTTP/1.0 with `Connection: keep-alive` stays open; a chunked
JSON body (with a chunk extension and a trailer) is taken like a Content-Length one; an upload
with `Expect: 100-continue` gets `100 Continue` before its body is sent and is refused (401, no
100) before it when the token is bad; a chunked upload publishes; a Content-Length over
--max-json-bytes is a 413 without the body being sent, a chunked body growing over it a 413;
malformed heads (request line, bare LF/CR, obs-fold, space before the colon, control
characters, Content-Length + Transfer-Encoding, a transfer coding other than chunked, HTTP/1.0
with Transfer-Encoding, conflicting or non-numeric Content-Length, a bad chunk size) are a 400
with {"error": ...} and a close, HTTP/2.0 a 505, a head over 64 KiB a 431, while a head just
under 64 KiB and empty lines before the request line are fine; the server answers a fresh
connection after every refusal; a request dribbled in in small pieces is answered; 200
connections at once are all answered and their descriptors released; a client that leaves in
the middle of a body (JSON or upload) disturbs nothing and leaves no upload file behind; HEAD is
answered like GET without the body: the same status and Content-Length (the pipelined request
after it parses).
"""

import json
import os
import re
import socket
import time
import unittest

import hub
from hub import HubTestCase

MAX_JSON = 4096
TIMEOUT = 5
HEAD_LIMIT = 64 * 1024
STATUS_RE = re.compile(rb"^HTTP/1\.([01]) (\d{3})(?: (.*))?$")


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(lower-case name, value)]
        self.body = body

    def header(self, name, default=None):
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError("HTTP %d body is not JSON: %r" % (self.status, self.body[:300]))

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:300])


class Conn:
    """One raw client connection with a read buffer; every read has a timeout."""

    def __init__(self, port, timeout=TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def send_quietly(self, data):
        """Sends; False when the server has already closed (it may have answered first)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_slowly(self, data, step, pause=0.002):
        for i in range(0, len(data), step):
            self.sock.sendall(data[i:i + step])
            time.sleep(pause)

    def _fill(self):
        """Reads more; False at end of stream (a reset counts as one)."""
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        except socket.timeout:
            raise AssertionError("no (complete) answer within %ss; have %r"
                                 % (self.sock.gettimeout(), self.buf[:300]))
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _take(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise AssertionError("connection closed %d bytes before the end of a body"
                                     % (n - len(self.buf)))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError("connection closed inside a line: %r" % self.buf[:300])
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_response(self, head_only=False):
        """One response: status line, headers, then the body by Content-Length or chunked
        (or up to the close); no body for 1xx/204/304 or when head_only (a HEAD answer)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError("connection closed before a complete response head: %r"
                                     % self.buf[:300])
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        m = STATUS_RE.match(lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0][:300])
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise AssertionError("bad response header line %r" % line[:300])
            headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
        status = int(m.group(2))
        resp = Response(int(m.group(1)), status, (m.group(3) or b"").decode("latin-1"), headers,
                        b"")
        if head_only or status < 200 or status in (204, 304):
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None:
            if te.lower() != "chunked":
                raise AssertionError("response transfer coding %r" % te)
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._take(size)
                if self._take(2) != b"\r\n":
                    raise AssertionError("bad chunk end in a response")
            resp.body = body
        elif cl is not None:
            resp.body = self._take(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def is_closed(self, timeout=TIMEOUT):
        """True when the server closed (recv gives b"" or a reset) with nothing more sent."""
        if self.buf:
            return False
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            return not self._fill() and not self.buf
        except AssertionError:  # timed out: still open
            return False


def request(method, path, token=None, headers=(), body=None, version="1.1", length=True):
    """Request bytes; Host is always sent; Content-Length for `body` unless length=False."""
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: 127.0.0.1"]
    if token:
        lines.append("Authorization: Bearer " + token)
    for h in headers:
        lines.append(h)
    if body is not None and length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunks(data, sizes):
    """`data` cut into chunks of the given sizes (the last takes the rest), each framed."""
    out, i = [], 0
    for n in list(sizes) + [len(data)]:
        piece = data[i:i + n]
        i += len(piece)
        if piece:
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        if i >= len(data):
            break
    return out


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def unread_bytes(server_port, conn):
    """Bytes the client of `conn` sent that the server has not read yet: the receive queue of
    the server's end of the connection (/proc/net/tcp), or None while it has no such end."""
    client_port = conn.sock.getsockname()[1]
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            fields = row.split()
            local, remote = fields[1].split(":"), fields[2].split(":")
            if int(local[1], 16) == server_port and int(remote[1], 16) == client_port:
                return int(fields[4].split(":")[1], 16)
    return None


class HttpTransportTest(HubTestCase):
    server_args = ("--max-json-bytes", MAX_JSON)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        cls.tok = cls.t["publisher"]

    # -- helpers

    def conn(self, timeout=TIMEOUT):
        c = Conn(self.server.port, timeout)
        self.addCleanup(c.close)
        return c

    def assertJsonError(self, resp, status, message):
        """`status` with exactly {"error": message}."""
        self.assertEqual(resp.status, status, resp)
        self.assertIn("json", resp.header("content-type", ""), resp.headers)
        self.assertEqual(resp.json(), {"error": message})

    def assertLive(self, resp):
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json(), {"live": True})

    def assertClosed(self, c):
        self.assertTrue(c.is_closed(), "the server kept the connection open (buffer %r)"
                        % c.buf[:200])

    def assertServerHealthy(self):
        c = self.conn()
        c.send(request("GET", "/v2/health/live"))
        self.assertLive(c.read_response())

    def refused(self, raw, status, message):
        """Sends `raw`; the answer is `status` with {"error": message}, then the close; the
        server still answers a new connection."""
        c = self.conn()
        c.send_quietly(raw)
        self.assertJsonError(c.read_response(), status, message)
        self.assertClosed(c)
        self.assertServerHealthy()

    def tenant_names(self):
        status, data = self.server.get("/api/v1/tenants", self.server.admin)
        hub.expect(status, data, 200, "list tenants")
        return {t["name"] for t in data["tenants"]}

    def tenant_post(self, name, body=None, chunked=False):
        body = body if body is not None else json.dumps({"name": name}).encode()
        hdrs = ["Content-Type: application/json"]
        if chunked:
            hdrs.append("Transfer-Encoding: chunked")
            return request("POST", "/api/v1/tenants", self.server.admin, hdrs, length=False) + \
                b"".join(chunks(body, [5, 7])) + b"0\r\n\r\n"
        return request("POST", "/api/v1/tenants", self.server.admin, hdrs, body)

    def upload_path(self, name):
        return "/api/v1/servables/%s/%s/versions?check=false" % (self.t.name, name)

    def upload_files(self):
        d = os.path.join(self.server.data_dir, "tmp")
        try:
            return [f for f in os.listdir(d) if f.startswith("upload-")]
        except FileNotFoundError:
            return []

    def wait_for(self, what, predicate, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail("not within %ss: %s" % (timeout, what))
            time.sleep(0.05)

    # -- connections

    def test_keep_alive_three_requests_one_connection(self):
        c = self.conn()
        c.send(request("GET", "/v2/health/live"))
        self.assertLive(c.read_response())
        c.send(request("GET", "/v2", self.server.admin))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["name"], "orrery")
        c.send(request("GET", "/api/v1/whoami", self.server.admin))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["tenant"], "hub")
        self.assertEqual(c.buf, b"")

    def test_pipelining_answers_in_order(self):
        c = self.conn()
        c.send(request("GET", "/v2/health/live") +
               request("GET", "/no/such/route", self.server.admin) +
               request("GET", "/v2", self.server.admin))
        self.assertLive(c.read_response())
        self.assertJsonError(c.read_response(), 404, "no route for GET /no/such/route")
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["name"], "orrery")
        self.assertIn("extensions", r.json())

    def test_pipelining_with_bodies(self):
        """The transport knows where a Content-Length body and a chunked body end."""
        a, b = hub.unique("pa"), hub.unique("pb")
        c = self.conn()
        c.send(self.tenant_post(a) + self.tenant_post(b, chunked=True) +
               request("GET", "/api/v1/tenants", self.server.admin))
        for name in (a, b):
            r = c.read_response()
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["name"], name)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertLessEqual({a, b}, {t["name"] for t in r.json()["tenants"]})

    def test_connection_close(self):
        c = self.conn()
        c.send(request("GET", "/v2/health/live", headers=["Connection: close"]))
        self.assertLive(c.read_response())
        self.assertClosed(c)

    def test_http10_closes_by_default(self):
        c = self.conn()
        c.send(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
        self.assertLive(c.read_response())
        self.assertClosed(c)

    def test_http10_keep_alive_stays_open(self):
        c = self.conn()
        for _ in range(3):  # each answer leaves the connection open for the next request
            c.send(request("GET", "/v2/health/live", version="1.0",
                           headers=["Connection: keep-alive"]))
            r = c.read_response()
            self.assertLive(r)
            self.assertEqual(r.header("connection", "").lower(), "keep-alive", r.headers)

    def test_empty_lines_before_request_line_are_skipped(self):
        c = self.conn()
        c.send(b"\r\n\r\n" + request("GET", "/v2/health/live"))
        self.assertLive(c.read_response())

    # -- bodies

    def test_chunked_json_body_like_content_length(self):
        a, b = hub.unique("cl"), hub.unique("ch")
        c = self.conn()
        c.send(self.tenant_post(a))
        r = c.read_response()
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["name"], a)
        body = json.dumps({"name": b}).encode()
        c.send(request("POST", "/api/v1/tenants", self.server.admin,
                       ["Content-Type: application/json", "Transfer-Encoding: chunked"],
                       length=False))
        pieces = chunks(body, [3, 4, 6])
        pieces[1] = pieces[1].replace(b"\r\n", b";ext=1\r\n", 1)  # an ignored extension
        for p in pieces + [b"0\r\nX-Trailer: yes\r\n\r\n"]:
            time.sleep(0.02)
            c.send(p)
        r = c.read_response()
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["name"], b)
        self.assertLessEqual({a, b}, self.tenant_names())
        # The connection is still usable after a chunked body.
        c.send(request("GET", "/v2/health/live"))
        self.assertLive(c.read_response())

    def test_upload_expect_100_continue(self):
        name = hub.unique("cont")
        tar, files = hub.simple_package(name)
        c = self.conn()
        c.send(request("POST", self.upload_path(name), self.tok,
                       ["Content-Type: application/x-tar", "Expect: 100-continue",
                        "Content-Length: %d" % len(tar)]))
        r = c.read_response()  # before a byte of the body is sent
        self.assertEqual(r.status, 100, r)
        self.assertEqual(c.buf, b"")
        c.send(tar)
        r = c.read_response()
        self.assertEqual(r.status, 201, r)
        v = r.json()
        self.assertEqual((v["name"], v["version"]), (name, 1))
        self.assertEqual(v["digest"], hub.package_digest(files))
        status, data = self.server.describe(self.t.name, name, self.tok)
        hub.expect(status, data, 200, "describe")
        self.assertEqual(data["latest_version"], 1)

    def test_upload_expect_100_continue_bad_token_refused_first(self):
        name = hub.unique("nope")
        c = self.conn()
        c.send(request("POST", self.upload_path(name), "orr_" + "0" * 64,
                       ["Content-Type: application/x-tar", "Expect: 100-continue",
                        "Content-Length: 100000"]))
        self.assertJsonError(c.read_response(), 401, "invalid token")
        self.assertServerHealthy()

    def test_upload_chunked(self):
        name = hub.unique("chunky")
        tar, files = hub.simple_package(name)
        c = self.conn()
        c.send(request("POST", self.upload_path(name), self.tok,
                       ["Content-Type: application/x-tar", "Transfer-Encoding: chunked"],
                       length=False))
        for p in chunks(tar, [1000, 1, 2047, 512]) + [b"0\r\n\r\n"]:
            time.sleep(0.01)
            c.send(p)
        r = c.read_response()
        self.assertEqual(r.status, 201, r)
        v = r.json()
        self.assertEqual((v["name"], v["version"]), (name, 1))
        self.assertEqual(v["digest"], hub.package_digest(files))
        self.assertEqual(self.server.download_files(self.t.name, name, 1, self.tok), files)

    # -- limits

    def test_content_length_over_json_limit_413_without_body(self):
        for expect in (False, True):
            with self.subTest(expect_100=expect):
                hdrs = ["Content-Type: application/json",
                        "Content-Length: %d" % (MAX_JSON + 1)]
                if expect:
                    hdrs.append("Expect: 100-continue")
                c = self.conn()
                c.send(request("POST", "/api/v1/tenants", self.server.admin, hdrs))
                self.assertJsonError(c.read_response(), 413,  # the body is never sent
                                     "request body is over the %d-byte limit" % MAX_JSON)
                self.assertClosed(c)
        self.assertServerHealthy()

    def test_json_body_at_limit_is_fine(self):
        name = hub.unique("lim")
        body = json.dumps({"name": name, "pad": ""}).encode()
        body = body[:-2] + b"x" * (MAX_JSON - len(body)) + body[-2:]
        self.assertEqual(len(body), MAX_JSON)
        c = self.conn()
        c.send(self.tenant_post(name, body))
        r = c.read_response()
        self.assertEqual(r.status, 201, r)

    def test_chunked_body_growing_over_limit_413(self):
        name = hub.unique("big")
        body = json.dumps({"name": name, "pad": "x" * (MAX_JSON * 3)}).encode()
        c = self.conn()
        c.send(request("POST", "/api/v1/tenants", self.server.admin,
                       ["Content-Type: application/json", "Transfer-Encoding: chunked"],
                       length=False))
        for p in chunks(body, [1024] * 20) + [b"0\r\n\r\n"]:
            if not c.send_quietly(p):
                break
            time.sleep(0.005)
        self.assertJsonError(c.read_response(), 413,
                             "request body is over the %d-byte limit" % MAX_JSON)
        self.assertClosed(c)
        self.assertNotIn(name, self.tenant_names())
        self.assertServerHealthy()

    def test_head_just_under_64k_is_fine(self):
        c = self.conn()
        c.send(request("GET", "/v2/health/live", headers=["X-Pad: " + "a" * 60000]))
        self.assertLive(c.read_response())

    def test_head_over_64k_431(self):
        self.refused(request("GET", "/v2/health/live", headers=["X-Pad: " + "a" * 70000]), 431,
                     "request head larger than %d bytes" % HEAD_LIMIT)

    # -- malformed heads

    def test_400_garbage_request_line(self):
        self.refused(b"GARBAGE\r\n\r\n", 400, "bad request: malformed request line")

    def test_400_bare_lf(self):
        self.refused(b"GET /v2/health/live HTTP/1.1\nHost: 127.0.0.1\n\n", 400,
                     "bad request: line ends in a bare LF, not CRLF")

    def test_400_bare_cr_in_header(self):
        self.refused(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\rb\r\n\r\n", 400,
                     "bad request: bare CR in the request head")

    def test_400_control_character_in_target(self):
        self.refused(b"GET /v2/health/\x01live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400,
                     "bad request: malformed request target")

    def test_400_obs_fold(self):
        self.refused(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n b\r\n\r\n",
                     400, "bad request: header field line starts with whitespace (obsolete line "
                     "folding)")

    def test_400_space_before_colon(self):
        self.refused(b"GET /v2/health/live HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n", 400,
                     "bad request: header field 'Host' has whitespace before the colon")

    def test_400_content_length_and_transfer_encoding(self):
        self.refused(request("POST", "/api/v1/tenants", self.server.admin,
                             ["Content-Type: application/json", "Content-Length: 5",
                              "Transfer-Encoding: chunked"]), 400,
                     "bad request: both Content-Length and Transfer-Encoding")

    def test_400_transfer_encoding_gzip(self):
        self.refused(request("POST", "/api/v1/tenants", self.server.admin,
                             ["Content-Type: application/json", "Transfer-Encoding: gzip"]), 400,
                     "bad request: unsupported Transfer-Encoding 'gzip'")

    def test_400_http10_with_transfer_encoding(self):
        self.refused(request("POST", "/api/v1/tenants", self.server.admin,
                             ["Content-Type: application/json", "Transfer-Encoding: chunked"],
                             version="1.0"), 400,
                     "bad request: Transfer-Encoding in an HTTP/1.0 request")

    def test_400_conflicting_content_lengths(self):
        self.refused(request("POST", "/api/v1/tenants", self.server.admin,
                             ["Content-Type: application/json", "Content-Length: 5",
                              "Content-Length: 6"]), 400,
                     "bad request: conflicting Content-Length values")

    def test_400_non_numeric_content_length(self):
        for value, problem in (("abc", "not a number"), ("-1", "not a number"),
                               ("+5", "not a number"), ("0x10", "not a number"),
                               ("1" * 20, "too large")):
            with self.subTest(value=value):
                self.refused(request("POST", "/api/v1/tenants", self.server.admin,
                                     ["Content-Type: application/json",
                                      "Content-Length: " + value]), 400,
                             "bad request: Content-Length is " + problem)

    def test_400_bad_chunk_size(self):
        self.refused(request("POST", "/api/v1/tenants", self.server.admin,
                             ["Content-Type: application/json", "Transfer-Encoding: chunked"],
                             length=False) + b"zz\r\n{}\r\n0\r\n\r\n", 400,
                     "bad chunked body: chunk size is not a hex number")

    def test_505_http2_request_line(self):
        self.refused(b"GET /v2/health/live HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505,
                     "unsupported HTTP version 'HTTP/2.0'")

    # -- odd clients

    def test_request_split_in_small_pieces(self):
        c = self.conn()
        c.send_slowly(request("GET", "/v2", self.server.admin), 20)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["name"], "orrery")
        name = hub.unique("slow")
        c.send_slowly(self.tenant_post(name), 7, 0.001)  # CRLFs split across reads
        r = c.read_response()
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["name"], name)

    def test_200_connections_at_once(self):
        pid = self.server.proc.pid
        before = fd_count(pid)
        conns = [Conn(self.server.port, 10) for _ in range(200)]
        try:
            for c in conns:
                c.send(request("GET", "/v2/health/live"))
            for c in conns:
                self.assertLive(c.read_response())
        finally:
            for c in conns:
                c.close()
        self.assertServerHealthy()
        self.wait_for("the server releases the connections' descriptors (had %d)" % before,
                      lambda: fd_count(pid) <= before + 2)

    def test_client_leaving_mid_body(self):
        pid = self.server.proc.pid
        before = fd_count(pid)
        c = Conn(self.server.port)
        c.send(request("POST", "/api/v1/tenants", self.server.admin,
                       ["Content-Type: application/json", "Content-Length: 2000"]) + b'{"na')
        # The client leaves once the server has read everything it sent.
        self.wait_for("the server reads the head and the start of the body",
                      lambda: unread_bytes(self.server.port, c) == 0)
        c.close()
        name = hub.unique("gone")
        tar, _ = hub.simple_package(name)
        c = Conn(self.server.port)
        c.send(request("POST", self.upload_path(name), self.tok,
                       ["Content-Type: application/x-tar", "Content-Length: %d" % len(tar)]) +
               tar[:len(tar) // 2])
        # The upload is being staged (its file exists, every byte sent was read) when the
        # client leaves.
        self.wait_for("the server stages the upload", lambda: self.upload_files() and
                      unread_bytes(self.server.port, c) == 0)
        c.close()
        self.assertServerHealthy()
        c = self.conn()
        other = hub.unique("after")
        c.send(self.tenant_post(other))
        r = c.read_response()
        self.assertEqual(r.status, 201, r)
        self.wait_for("the upload's staging file is removed", lambda: not self.upload_files())
        self.wait_for("the server releases the connections' descriptors (had %d)" % before,
                      lambda: fd_count(pid) <= before + 3)  # +1: the open connection above
        self.assertError(self.server.describe(self.t.name, name, self.tok), 404,
                         message="servable %s/%s not found" % (self.t.name, name))

    def test_half_close_with_partial_request_closes_promptly(self):
        # The partial request and the client's FIN arrive together: the
        # server must still notice the end of the stream (not wait for the
        # 60 s head timeout) and release the connection.
        pid = self.server.proc.pid
        before = fd_count(pid)
        partials = [b"GET /v2/health/li",
                    request("POST", "/api/v1/tenants", self.server.admin,
                            ["Content-Type: application/json", "Content-Length: 100"]) + b'{"na']
        conns = []
        for partial in partials * 5:
            c = self.conn(timeout=3)
            c.send(partial)
            c.sock.shutdown(socket.SHUT_WR)
            conns.append(c)
        for c in conns:
            self.assertTrue(c.is_closed(timeout=3), "the server kept a half-closed connection open")
        self.wait_for("the server releases the connections' descriptors (had %d)" % before,
                      lambda: fd_count(pid) <= before)
        self.assertServerHealthy()

    def test_head_answer_has_no_body(self):
        c = self.conn()
        c.send(request("GET", "/v2/health/live"))
        get = c.read_response()
        self.assertLive(get)
        # docs/api.md: HEAD is answered like GET, without the body.
        c.send(request("HEAD", "/v2/health/live") + request("GET", "/v2/health/live"))
        head = c.read_response(head_only=True)
        self.assertEqual(head.status, 200, head)
        self.assertEqual(head.header("content-length"), str(len(get.body)), head.headers)
        self.assertEqual(head.header("content-type"), get.header("content-type"), head.headers)
        # No body follows: the next bytes are the pipelined GET's answer.
        self.assertLive(c.read_response())


if __name__ == "__main__":
    unittest.main()
