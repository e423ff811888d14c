"""Shared helpers for Orrery's end-to-end tests (Python 3 stdlib only).

A `Server` starts the real `orrery serve` binary on a private data directory
and a free loopback port, waits for `GET /v2/health/live`, reads the hub admin
token from `<data-dir>/admin.token`, and talks HTTP to it. Servers are stopped
by PID (SIGTERM, then SIGKILL) by the test's cleanups and, as a last resort,
at interpreter exit.

Package helpers build tar archives in memory from a dict of files with a
generated, valid `orrery.yaml` (docs/api.md, src/repository/manifest.h).

Environment:
  ORRERY_BIN         the orrery binary (default: <source>/build/orrery)
  ORRERY_SOURCE_DIR  the source tree (default: two levels above this file)
  ORRERY_E2E_KEEP=1  keep temp directories (data dirs, server logs)
"""

import atexit
import glob
import hashlib
import http.client
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("ORRERY_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("ORRERY_BIN") or os.path.join(SOURCE_DIR, "build", "orrery")
KEEP = os.environ.get("ORRERY_E2E_KEEP") == "1"

TOKEN_RE = re.compile(r"^orr_[0-9a-f]{64}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

_live_servers = set()


@atexit.register
def _kill_leftovers():
    for server in list(_live_servers):
        server.stop()


def free_port():
    """A loopback port that was free a moment ago (bind port 0, then close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes(match):
    """Pids of this machine's processes whose argv (a list of bytes) `match` accepts."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and match(argv):
            pids.append(int(pid))
    return pids


def unique(prefix="t"):
    """A fresh name, valid as a tenant or object name."""
    return "%s-%s" % (prefix, secrets.token_hex(4))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def q(text):
    """URL-encodes one path segment or query value."""
    return urllib.parse.quote(str(text), safe="")


# --------------------------------------------------------------------------- server


class Server:
    """One `orrery serve` process on a private data dir and a free port."""

    def __init__(self, data_dir=None, args=(), workdir=None, env=None):
        self.env = env  # extra environment variables of the server process
        self.tmp = tempfile.mkdtemp(prefix="orrery-e2e-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.args = [str(a) for a in args]
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None
        self.port = None
        self.grpc_port = None  # a free port unless `args` name --grpc-port
        self.admin = None

    # -- lifecycle

    def start(self, timeout=30):
        last = ""
        for _ in range(3):  # the ports may be taken between free_port() and bind
            self.port = free_port()
            grpc = []
            if not any(a.startswith("--grpc-port") for a in self.args):
                self.grpc_port = free_port()
                grpc = ["--grpc-port", str(self.grpc_port)]
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [BIN, "serve", "--data-dir", self.data_dir, "--host", "127.0.0.1",
                     "--port", str(self.port)] + grpc + self.args,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=dict(os.environ, **self.env) if self.env else None)
            _live_servers.add(self)
            if self._wait_live(timeout):
                self.admin = self.read_admin_token()
                return self
            last = self.log_tail()
            self.stop()
        raise RuntimeError("orrery serve did not become live; log:\n" + last)

    def _wait_live(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, data = self.request("GET", "/v2/health/live", timeout=2)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("orrery serve not live after %ss; log:\n%s" % (timeout, self.log_tail()))

    def read_admin_token(self):
        with open(os.path.join(self.data_dir, "admin.token")) as f:
            return f.read().strip()

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _live_servers.discard(self)
        return proc.returncode if proc is not None else None

    def kill(self):
        """SIGKILL now (a crash)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        _live_servers.discard(self)

    def restart(self, timeout=30):
        self.stop()
        return self.start(timeout)

    def cleanup(self):
        self.stop()
        self.kill_job_supervisors()
        if not KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def job_supervisors(self):
        """Pids of the job supervisors of this server's data dir (they outlive the server by
        design: docs/jobs.md)."""
        mark = (os.path.join(self.data_dir, "jobs") + "/").encode()
        return processes(lambda argv: argv[0].endswith(b"orrery-job-supervisor") and
                         len(argv) > 1 and argv[1].startswith(mark))

    def kill_job_supervisors(self):
        """After the tests: no job of theirs runs on (a job dies with its supervisor)."""
        for pid in self.job_supervisors():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # -- HTTP

    def request_full(self, method, path, token=None, body=None, json_body=None, headers=None,
                     timeout=120):
        """Returns (status, data, headers); data is parsed JSON when the answer is JSON."""
        hdrs = {}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            try:
                conn.request(method, path, body=body, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the whole body was read: the answer may be there
            resp = conn.getresponse()
            raw = resp.read()
            rheaders = {k.lower(): v for k, v in resp.getheaders()}
            if resp.status >= 400:
                self.assert_no_server_path(raw, sent=body or b"")
            return resp.status, decode_body(raw, rheaders.get("content-type", "")), rheaders
        finally:
            conn.close()

    def assert_no_server_path(self, body, sent=b""):
        """docs/api.md: an error body never holds a path of the server's. Checked on every
        error answer of every end-to-end test (but for a path the request itself sent, which
        a servable may echo)."""
        sent = sent if isinstance(sent, bytes) else b""
        for path in {self.data_dir, os.path.realpath(self.data_dir), self.tmp}:
            if path.encode() in body and path.encode() not in sent:
                raise AssertionError("an error body holds the server path %s: %r"
                                     % (path, body[:600]))

    def request(self, method, path, token=None, **kw):
        status, data, _ = self.request_full(method, path, token, **kw)
        return status, data

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token, **kw)

    def post(self, path, token=None, json_body=None, **kw):
        return self.request("POST", path, token, json_body=json_body, **kw)

    def put(self, path, token=None, json_body=None, **kw):
        return self.request("PUT", path, token, json_body=json_body, **kw)

    def delete(self, path, token=None, **kw):
        return self.request("DELETE", path, token, **kw)

    # -- API helpers (each asserts success)

    def create_tenant(self, name=None):
        name = name or unique("t")
        status, data = self.post("/api/v1/tenants", self.admin, {"name": name})
        expect(status, data, 201, "create tenant " + name)
        return name

    def create_token(self, tenant, role, as_token=None, **fields):
        body = {"tenant": tenant, "role": role}
        body.update(fields)
        status, data = self.post("/api/v1/tokens", as_token or self.admin, body)
        expect(status, data, 201, "create %s token for %s" % (role, tenant))
        return data

    def new_tenant(self, roles=("publisher",), name=None):
        """Creates a tenant and one token per role: Tenant(name, tokens, ids)."""
        name = self.create_tenant(name)
        t = Tenant(name)
        for role in roles:
            data = self.create_token(name, role)
            t.tokens[role] = data["token"]
            t.ids[role] = data["id"]
        return t

    def publish(self, tenant, name, archive, token, kind="servables", query="", headers=None,
                check=False):
        """Most test packages hold made-up model files that no backend loads, so the publish
        check (load + examples) is skipped unless `check`; test_publish_check.py tests it."""
        hdrs = {"Content-Type": "application/x-tar"}
        hdrs.update(headers or {})
        path = "/api/v1/%s/%s/%s/versions" % (kind, q(tenant), q(name))
        if not check and "check=" not in query:
            query = query + ("&" if query else "") + "check=false"
        if query:
            path += "?" + query
        return self.request("POST", path, token, body=archive, headers=hdrs)

    def publish_ok(self, tenant, name, archive, token, kind="servables", query="", headers=None,
                   check=False):
        status, data = self.publish(tenant, name, archive, token, kind, query, headers, check)
        expect(status, data, 201, "publish %s/%s" % (tenant, name))
        return data

    def obj_path(self, tenant, name, kind="servables"):
        return "/api/v1/%s/%s/%s" % (kind, q(tenant), q(name))

    def describe(self, tenant, name, token, kind="servables"):
        return self.get(self.obj_path(tenant, name, kind), token)

    def version(self, tenant, name, ver, token, kind="servables"):
        return self.get(self.obj_path(tenant, name, kind) + "/versions/" + q(ver), token)

    def archive(self, tenant, name, ver, token, kind="servables"):
        return self.request_full("GET", self.obj_path(tenant, name, kind) + "/versions/%s/archive"
                                 % q(ver), token)

    def download_files(self, tenant, name, ver, token, kind="servables"):
        status, data, headers = self.archive(tenant, name, ver, token, kind)
        expect(status, data, 200, "download %s/%s:%s" % (tenant, name, ver))
        return read_tar(data)

    def check(self):
        status, data = self.get("/api/v1/admin/check", self.admin)
        expect(status, data, 200, "admin/check")
        return data

    def audit(self, token=None, limit=10000):
        status, data = self.get("/api/v1/audit?limit=%d" % limit, token or self.admin)
        expect(status, data, 200, "audit")
        return data["entries"]

    def cwd(self):
        """The server's working directory."""
        return os.readlink("/proc/%d/cwd" % self.proc.pid)

    def hostile_targets(self, names):
        """Where archive entry names (e.g. '../evil', '/etc/evil') would land if the server
        wrote them relative to any directory it stages in, or as absolute paths."""
        roots = [self.data_dir, os.path.join(self.data_dir, "tmp"),
                 os.path.join(self.data_dir, "tmp", "x"), os.path.join(self.blob_root, "tmp"),
                 os.path.join(self.blob_root, "tmp", "x"), os.path.join(self.data_dir, "work"),
                 os.path.join(self.data_dir, "work", "x"), self.tmp, self.cwd()]
        out = set()
        for name in names:
            for root in roots:
                out.add(os.path.normpath(os.path.join(root, name)))  # absolute names stay
        return sorted(out)

    # -- on-disk state

    @property
    def blob_root(self):
        return os.path.join(self.data_dir, "blobs")

    def blob_files(self):
        """{relative path: size} of every file under blobs/ except blobs/tmp/."""
        out = {}
        root = self.blob_root
        for dirpath, dirnames, filenames in os.walk(root):
            if os.path.normpath(dirpath) == os.path.normpath(root) and "tmp" in dirnames:
                dirnames.remove("tmp")
            for fn in filenames:
                p = os.path.join(dirpath, fn)
                try:
                    out[os.path.relpath(p, root)] = os.path.getsize(p)
                except OSError:
                    pass
        return out

    def blob_digests(self):
        return {os.path.basename(p) for p in self.blob_files()}

    def blob_path(self, digest):
        """Path of the blob named `digest`, or None."""
        for rel in self.blob_files():
            if os.path.basename(rel) == digest:
                return os.path.join(self.blob_root, rel)
        return None

    def tmp_files(self):
        out = []
        for d in (os.path.join(self.blob_root, "tmp"),):
            for dirpath, _, filenames in os.walk(d):
                out.extend(os.path.join(dirpath, f) for f in filenames)
        return out

    def catalog(self):
        """A read-only sqlite3 connection to catalog.db."""
        path = os.path.join(self.data_dir, "catalog.db")
        return sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path), uri=True, timeout=10)


class Tenant:
    def __init__(self, name):
        self.name = name
        self.tokens = {}
        self.ids = {}

    def __getitem__(self, role):
        return self.tokens[role]


def decode_body(raw, content_type):
    if "json" in content_type or (not content_type and raw[:1] in (b"{", b"[")):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def expect(status, data, want, what=""):
    if status != want:
        raise AssertionError("%s: expected HTTP %s, got %s: %r" % (what, want, status,
                                                                   _short(data)))


def _short(data, n=600):
    text = data if isinstance(data, (bytes, str)) else json.dumps(data)
    return text[:n]


# --------------------------------------------------------------------------- packages


def example_dirs():
    """Every package directory under examples/, by name, pipelines last: their steps are other
    examples, which must be published before them."""
    dirs = sorted(os.path.dirname(p)
                  for p in glob.glob(os.path.join(SOURCE_DIR, "examples", "*", "orrery.yaml")))

    def is_pipeline(d):
        with open(os.path.join(d, "orrery.yaml")) as f:
            return re.search(r"(?m)^backend: pipeline$", f.read()) is not None
    return sorted(dirs, key=is_pipeline)

SIGNATURE = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
}


EXAMPLE_ENVIRONMENTS = ("sklearn",)  # the python.environment names examples use


def example_env_args():
    """The `--python-env` flags a server needs to load every example: the environments that
    scripts/example-envs.sh makes under the build directory (the one holding BIN)."""
    args = []
    for name in EXAMPLE_ENVIRONMENTS:
        path = os.path.join(os.path.dirname(os.path.abspath(BIN)), "python-envs", name)
        if not os.path.isdir(path):
            raise RuntimeError("no Python environment %s for the examples: run "
                               "scripts/example-envs.sh (scripts/test.sh does)" % path)
        args += ["--python-env", "%s=%s" % (name, path)]
    return tuple(args)


def manifest(name, paths, kind="servable", **fields):
    """A valid manifest dict listing `paths`; a field given as None is removed."""
    m = {
        "name": name,
        "kind": kind,
        "title": "Test package %s" % name,
        "creators": [{"name": "Lovelace, Ada", "affiliation": "Analytical Engines"}],
        "description": "A package made by Orrery's end-to-end tests.",
        "year": 2026,
        "license": "CC-BY-4.0",
        "files": sorted(paths),
    }
    if kind == "servable":
        m["backend"] = "torchscript"
        m["signature"] = SIGNATURE
    for k, v in fields.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    return m


def to_yaml(m):
    """Block mapping at the top, JSON flow values (JSON flow is valid YAML)."""
    return "".join("%s: %s\n" % (k, json.dumps(v)) for k, v in m.items())


def _info(path, size, mode=0o644, typ=tarfile.REGTYPE):
    ti = tarfile.TarInfo(path)
    ti.size = size
    ti.mode = mode
    ti.type = typ
    ti.mtime = 1700000000
    ti.uname = ti.gname = "orrery"
    return ti


def make_tar(files, manifest_text=None, extra=(), fmt=tarfile.PAX_FORMAT, dirs=()):
    """Tar bytes: orrery.yaml (when manifest_text is not None) first, then `files`
    ({path: bytes or (bytes, mode)}), directories `dirs`, then `extra`
    TarInfo entries (with no data) as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for d in dirs:
            tar.addfile(_info(d, 0, 0o755, tarfile.DIRTYPE))
        if manifest_text is not None:
            data = manifest_text.encode() if isinstance(manifest_text, str) else manifest_text
            tar.addfile(_info("orrery.yaml", len(data)), io.BytesIO(data))
        for path, content in files.items():
            data, mode = content if isinstance(content, tuple) else (content, 0o644)
            tar.addfile(_info(path, len(data), mode), io.BytesIO(data))
        for ti in extra:
            tar.addfile(ti)
    return buf.getvalue()


def package(name, contents, kind="servable", **fields):
    """(tar bytes, {path: (bytes, executable)} of everything in it incl. orrery.yaml).
    `contents` is {path: bytes or (bytes, mode)}; `fields` override manifest fields."""
    text = to_yaml(manifest(name, list(contents), kind, **fields))
    expected = {"orrery.yaml": (text.encode(), False)}
    for path, content in contents.items():
        data, mode = content if isinstance(content, tuple) else (content, 0o644)
        expected[path] = (data, bool(mode & 0o111))
    return make_tar(contents, text), expected


def simple_package(name, kind="servable", seed=None, **fields):
    seed = seed if seed is not None else secrets.token_bytes(16)
    files = {"model.bin": b"weights:" + seed, "README.md": b"# " + name.encode() + b"\n"}
    return package(name, files, kind, **fields)


def read_tar(data):
    """{path: (bytes, executable)} of the regular files of a tar."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for ti in tar:
            if ti.isdir():
                continue
            if not ti.isfile():
                raise AssertionError("download has a non-regular entry %r" % ti.name)
            name = ti.name[2:] if ti.name.startswith("./") else ti.name
            if name in out:
                raise AssertionError("download has %r twice" % name)
            out[name] = (tar.extractfile(ti).read(), bool(ti.mode & 0o111))
    return out


def package_digest(files):
    """SHA-256 of the sorted '<sha256>  <path>\\n' lines (what sha256sum prints)."""
    lines = "".join("%s  %s\n" % (sha256(files[p][0] if isinstance(files[p], tuple) else files[p]),
                                   p) for p in sorted(files))
    return sha256(lines.encode())


def digest_of_listing(file_rows):
    lines = "".join("%s  %s\n" % (f["sha256"], f["path"])
                    for f in sorted(file_rows, key=lambda f: f["path"].encode()))
    return sha256(lines.encode())


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


# --------------------------------------------------------------------------- CLI


def run_cli(args, env=None, cwd=None, timeout=120, input=None):
    """Runs the orrery CLI; ORRERY_* variables of this process are not inherited."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ORRERY_")}
    full_env.update(env or {})
    return subprocess.run([BIN] + [str(a) for a in args], env=full_env, cwd=cwd,
                          input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, text=True)


# --------------------------------------------------------------------------- test case


class HubTestCase(unittest.TestCase):
    """Starts one server per test class (class attribute `server_args` = flags)."""

    server_args = ()
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        # A missing binary is a failure, never a skip: ctest counts skipped modules as passed.
        if not os.access(BIN, os.X_OK):
            raise RuntimeError("no orrery binary at %s (build it, or set ORRERY_BIN)" % BIN)
        cls.server = Server(args=cls.server_args)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.hub = cls.server

    def start_server(self, args=(), data_dir=None):
        """A server owned by one test."""
        s = Server(data_dir=data_dir, args=args)
        self.addCleanup(s.cleanup)
        return s.start()

    def assertStatus(self, resp, want, msg=""):
        status, data = resp[0], resp[1]
        if status != want:
            self.fail("%s expected HTTP %s, got %s: %r" % (msg, want, status, _short(data)))
        return data

    def assertCheckOk(self, server=None):
        """GET /api/v1/admin/check says ok with no problems (extra fields allowed)."""
        report = (server or self.server).check()
        self.assertEqual((report.get("ok"), report.get("problems")), (True, []), report)
        return report

    def assertWorkerTimeout(self, text, label, ms):
        """`text` says the worker of `label` ("tenant/name:version") was killed at a deadline
        of `ms` ms. The figure is the time the request had left when its instance took it,
        which a busy machine can make up to 50 ms less than the timeout that applied (the
        unit tests' backends/testing/worker_timeouts.h allows the same)."""
        m = re.fullmatch(r"%s: worker timed out after (\d+) ms; killed" % re.escape(label), text)
        self.assertTrue(m, "%r is not a worker timeout of %s" % (text, label))
        self.assertTrue(ms - 50 < int(m.group(1)) <= ms, "%r: expected about %d ms" % (text, ms))

    def assertError(self, resp, want, msg="", message=None, message_prefix=None,
                    message_re=None):
        """An error answer: exactly the one status `want` (an int) with {"error": "<text>"}.
        message: the text, exactly; message_prefix: how it starts (the rest varies);
        message_re: a regular expression the whole text matches (for a measured number)."""
        if isinstance(want, bool) or not isinstance(want, int):
            raise TypeError("assertError takes one status (an int), not %r: a test asserts the "
                            "one status the docs give" % (want,))
        status, data = resp[0], resp[1]
        if status != want:
            self.fail("%s expected HTTP %s, got %s: %r" % (msg, want, status, _short(data)))
        self.assertIsInstance(data, dict, "%s: error body is not JSON: %r" % (msg, _short(data)))
        self.assertIsInstance(data.get("error"), str, "%s: no error text in %r" % (msg, data))
        self.assertTrue(data["error"].strip(), "%s: empty error text" % msg)
        if message is not None:
            self.assertEqual(data["error"], message, msg)
        if message_prefix is not None:
            self.assertTrue(data["error"].startswith(message_prefix),
                            "%s: error %r does not start with %r" % (msg, data["error"],
                                                                    message_prefix))
        if message_re is not None:
            self.assertIsNotNone(re.fullmatch(message_re, data["error"]),
                                 "%s: error %r does not match %r" % (msg, data["error"],
                                                                    message_re))
        return data

    # -- "a refusal leaves nothing" (docs/api.md: refused archives change nothing)

    def leftovers(self, server=None, hostile=()):
        """What a refused request must not change: the staging files (upload-*/export-* in
        <data-dir>/tmp, anything in <data-dir>/blobs/tmp), the blob set, every path under the
        server's temp dir (the data dir's parent) and the server's working directory, and
        whether each path an archive entry in `hostile` could reach exists."""
        server = server or self.server
        staging = [os.path.join("tmp", f) for f in _listdir(os.path.join(server.data_dir, "tmp"))
                   if f.startswith(("upload-", "export-"))]
        staging += [os.path.join("blobs", "tmp", f)
                    for f in _listdir(os.path.join(server.blob_root, "tmp"))]
        return {
            "staging": sorted(staging),
            "blobs": server.blob_files(),
            "tree": _tree(server.tmp),
            "cwd": sorted(_listdir(server.cwd())),
            "hostile": {p: os.path.lexists(p) for p in server.hostile_targets(hostile)},
        }

    def assertLeavesNothing(self, before, server=None, hostile=()):
        after = self.leftovers(server, hostile)
        self.assertEqual(after["staging"], [], "a refused request left staging files")
        self.assertEqual(after, before, "a refused request left something behind")


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _tree(root):
    """Every path under `root` (relative; directories end in '/'), links not followed."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out.add(os.path.normpath(os.path.join(rel, d)) + "/")
        for f in filenames:
            out.add(os.path.normpath(os.path.join(rel, f)))
    return out
