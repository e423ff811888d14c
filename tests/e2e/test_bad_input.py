"""Bad input gets its clear 4xx with {"error": ...} and changes nothing."""

import http.client
import io
import json
import os
import tarfile
import unittest

import hub
from hub import HubTestCase

MAX_UPLOAD = 300000
MAX_ENTRIES = 20
MAX_UNPACKED = 200000
MAX_JSON = 4096


def entry(name, typ, linkname="", size=0, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type = typ
    ti.linkname = linkname
    ti.size = size
    ti.mode = mode
    ti.mtime = 1700000000
    if typ in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = 1, 3
    return ti


class BadInputTest(HubTestCase):
    server_args = ("--max-upload-bytes", MAX_UPLOAD, "--max-archive-entries", MAX_ENTRIES,
                   "--max-unpacked-bytes", MAX_UNPACKED, "--max-json-bytes", MAX_JSON)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.t = s.new_tenant(("publisher", "admin"))
        cls.other = s.new_tenant(("publisher",))
        cls.tok = cls.t["publisher"]
        tar, _ = hub.simple_package("existing")
        s.publish_ok(cls.t.name, "existing", tar, cls.tok)
        s.put(s.obj_path(cls.t.name, "existing") + "/aliases/prod", cls.tok, {"version": 1})

    # -- helpers

    def snapshot(self):
        s, t = self.server, self.t.name
        return {
            "servables": s.get("/api/v1/servables?tenant=%s&per_page=100" % t, self.tok),
            "datasets": s.get("/api/v1/datasets?tenant=%s&per_page=100" % t, self.tok),
            "other": s.get("/api/v1/servables?tenant=%s&per_page=100" % self.other.name,
                           self.other["publisher"]),
            "existing": s.describe(t, "existing", self.tok),
            "tenants": s.get("/api/v1/tenants", s.admin),
            "audit": len(s.audit()),
        }

    def refused(self, status, fn, *args, message=None, message_prefix=None, message_re=None,
                hostile=(), **kw):
        """Runs fn(*args, **kw) and checks the error status and text, that nothing changed
        through the API, and that nothing was left on disk: no staging file, the same blobs,
        no new path next to the data directory or in the server's working directory, and
        none of the paths the `hostile` archive entry names would reach."""
        before = self.snapshot()
        files = self.leftovers(hostile=hostile)
        self.assertError(fn(*args, **kw), status, message=message, message_prefix=message_prefix,
                         message_re=message_re)
        self.assertLeavesNothing(files, hostile=hostile)
        after = self.snapshot()
        self.assertEqual(after, before, "state changed")
        self.assertCheckOk()

    def publish(self, archive, name="pkg", tenant=None, kind="servables", token=None,
                headers=None):
        return self.server.publish(tenant or self.t.name, name, archive, token or self.tok, kind,
                                   headers=headers)

    def manifest_tar(self, name="pkg", contents=None, **fields):
        """A tar of `contents` (default one small file) with a manifest; `fields`
        override manifest fields (None removes one)."""
        contents = contents if contents is not None else {"model.bin": b"weights"}
        m = hub.manifest(name, list(contents), **fields)
        return hub.make_tar(contents, hub.to_yaml(m))

    # -- archive entries

    def test_sanity_a_good_package_is_accepted(self):
        tar = self.manifest_tar("good")
        self.assertStatus(self.publish(tar, "good"), 201)

    def test_unsafe_entries(self):
        base = {"model.bin": b"weights"}
        text = hub.to_yaml(hub.manifest("pkg", ["model.bin"]))
        cases = {
            "dotdot": ([entry("../evil", tarfile.REGTYPE)],
                       "archive entry: invalid path '../evil': '..' component"),
            "dotdot inside": ([entry("a/../../evil", tarfile.REGTYPE)],
                              "archive entry: invalid path 'a/../../evil': '..' component"),
            "dotdot dir": ([entry("..", tarfile.DIRTYPE, mode=0o755)],
                           "archive entry: invalid path '..': '..' component"),
            "absolute": ([entry("/etc/evil", tarfile.REGTYPE)],
                         "archive entry: invalid path '/etc/evil': absolute"),
            "symlink": ([entry("link", tarfile.SYMTYPE, linkname="model.bin")],
                        "archive entry 'link': symbolic links are not allowed"),
            "symlink out": ([entry("link", tarfile.SYMTYPE, linkname="/etc/passwd")],
                            "archive entry 'link': symbolic links are not allowed"),
            "hard link": ([entry("hard", tarfile.LNKTYPE, linkname="model.bin")],
                          "archive entry 'hard': hard links are not allowed"),
            "char device": ([entry("dev", tarfile.CHRTYPE)],
                            "archive entry 'dev': character devices are not allowed"),
            "block device": ([entry("blk", tarfile.BLKTYPE)],
                             "archive entry 'blk': block devices are not allowed"),
            "fifo": ([entry("fifo", tarfile.FIFOTYPE)],
                     "archive entry 'fifo': FIFOs are not allowed"),
        }
        # Every path an entry names, wherever the server might have resolved it.
        hostile = [ti.name for extra, _ in cases.values() for ti in extra]
        for label, (extra, message) in cases.items():
            with self.subTest(label):
                tar = hub.make_tar(base, text, extra=extra)
                self.refused(400, self.publish, tar, hostile=hostile, message=message)
                self.refused(400, self.publish, hub.zstd(tar), hostile=hostile, message=message)

    def test_entries_the_reader_would_misread(self):
        """A name holding a NUL (cut there by a lenient reader), sparse entries and entries of
        an unknown type (stored as regular files by a lenient reader) are refused."""
        text = hub.to_yaml(hub.manifest("pkg", ["model.bin"]))
        cut = entry("model.bin", tarfile.REGTYPE)
        cut.pax_headers = {"path": "model.bin\0../../evil"}
        gnu_cut = entry("x" * 120 + "\0../../evil", tarfile.REGTYPE)
        cases = {
            "pax NUL": ([cut], tarfile.PAX_FORMAT,
                        "archive entry 'model.bin\\x00../../evil': its PAX path holds a NUL byte"),
            "gnu long name NUL": ([gnu_cut], tarfile.GNU_FORMAT,
                                  "archive entry '%s\\x00../../evil': its GNU long name holds a "
                                  "NUL byte" % ("x" * 120)),
            "sparse": ([entry("holes", tarfile.GNUTYPE_SPARSE)], tarfile.GNU_FORMAT,
                       "archive entry 'holes': sparse files are not allowed"),
            "unknown type": ([entry("volume", b"V")], tarfile.GNU_FORMAT,
                             "archive entry 'volume': unsupported entry type 'V'"),
        }
        for label, (extra, fmt, message) in cases.items():
            with self.subTest(label):
                tar = hub.make_tar({"model.bin": b"weights"}, text, extra=extra, fmt=fmt)
                self.refused(400, self.publish, tar, message=message)
                self.refused(400, self.publish, hub.zstd(tar), message=message)

    def test_duplicate_paths(self):
        text = hub.to_yaml(hub.manifest("pkg", ["model.bin"])).encode()
        duplicate = "archive entry 'model.bin': duplicate path"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, data in (("orrery.yaml", text), ("model.bin", b"one"),
                               ("model.bin", b"two")):
                tar.addfile(entry(path, tarfile.REGTYPE, size=len(data)), io.BytesIO(data))
        self.refused(400, self.publish, buf.getvalue(), message=duplicate)
        # "./model.bin" and "model.bin" are the same path.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, data in (("orrery.yaml", text), ("model.bin", b"one"),
                               ("./model.bin", b"two")):
                tar.addfile(entry(path, tarfile.REGTYPE, size=len(data)), io.BytesIO(data))
        self.refused(400, self.publish, buf.getvalue(), message=duplicate)

    def test_not_a_tar(self):
        for body in (os.urandom(4096), b"", b"hello, world\n" * 100,
                     hub.zstd(b"not a tar at all\n" * 100)):
            self.refused(400, self.publish, body, message="not a tar archive")
        # Cut short: the rest of the text is libarchive's.
        tar = self.manifest_tar(contents={"model.bin": os.urandom(5000)})
        self.refused(400, self.publish, tar[:1024 + 512 + 2000],  # truncated inside model.bin
                     message_prefix="corrupt archive: ")
        self.refused(400, self.publish, tar[:1024 + 300],  # inside a header
                     message_prefix="corrupt archive: ")

    # -- limits

    def test_upload_over_limit(self):
        big = os.urandom(MAX_UPLOAD)  # the tar around it is bigger than the limit
        tar = self.manifest_tar(contents={"model.bin": big})
        self.assertGreater(len(tar), MAX_UPLOAD)
        self.refused(413, self.publish, tar,
                     message="package is over the %d-byte upload limit" % MAX_UPLOAD)

    def test_too_many_entries(self):
        message = "archive has more than %d entries" % MAX_ENTRIES
        files = {"f%02d" % i: b"x" for i in range(MAX_ENTRIES + 5)}
        self.refused(413, self.publish, self.manifest_tar(contents=files), message=message)
        # Directories count too.
        files = {"d%02d/f" % i: b"x" for i in range(MAX_ENTRIES // 2 + 2)}
        text = hub.to_yaml(hub.manifest("pkg", list(files)))
        tar = hub.make_tar(files, text, dirs=["d%02d" % i for i in range(MAX_ENTRIES // 2 + 2)])
        self.refused(413, self.publish, tar, message=message)

    def test_unpacked_over_limit(self):
        message = "archive unpacks to more than %d bytes" % MAX_UNPACKED
        # Small upload, big content: raw and zstd.
        files = {"a.bin": os.urandom(MAX_UNPACKED // 2 + 1000),
                 "b.bin": os.urandom(MAX_UNPACKED // 2 + 1000)}
        tar = self.manifest_tar(contents=files)
        self.assertLess(len(tar), MAX_UPLOAD)
        self.refused(413, self.publish, tar, message=message)
        bomb = hub.zstd(self.manifest_tar(contents={"zeros.bin": bytes(50 * MAX_UNPACKED)}))
        self.assertLess(len(bomb), MAX_UPLOAD)
        self.refused(413, self.publish, bomb, message=message)

    # -- manifests

    def test_manifest_problems(self):
        bad_yaml = hub.make_tar({"model.bin": b"w"}, "name: [unclosed\n  title: {\n")
        # The rest of the text is the YAML parser's.
        self.refused(422, self.publish, bad_yaml, message_prefix="manifest is not valid YAML: ")
        self.refused(422, self.publish, hub.make_tar({"model.bin": b"w"}, None),  # no manifest
                     message="package has no orrery.yaml at its root")
        self.refused(422, self.publish, hub.make_tar({"model.bin": b"w"}, "- just\n- a list\n"),
                     message="manifest: document: must be a mapping")
        for field in ("name", "title", "creators", "year", "files", "backend", "signature"):
            with self.subTest(missing=field):
                self.refused(422, self.publish, self.manifest_tar(**{field: None}),
                             message="manifest: %s: required" % field)
        cases = {
            "empty creators": ({"creators": []}, "manifest: creators: must not be empty"),
            "creator without name": ({"creators": [{"affiliation": "x"}]},
                                     "manifest: creators[0].name: required"),
            "year too small": ({"year": 999}, "manifest: year: must be 1000..9999"),
            "year text": ({"year": "soon"}, "manifest: year: must be an integer"),
            "unknown backend": ({"backend": "tensorflow-magic"},
                                "manifest: backend: unknown backend 'tensorflow-magic' (one of "
                                "torchscript, xgboost, onnx, python, native, pipeline)"),
            "unknown datatype": ({"signature": {
                "inputs": [{"name": "x", "datatype": "FP8", "shape": [-1, 4]}],
                "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]}},
                "manifest: signature.inputs[0].datatype: unknown datatype 'FP8' (one of BOOL, "
                "UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, "
                "BYTES)"),
            "lists a missing file": ({"files": ["model.bin", "weights/missing.bin"]},
                                     "manifest: files[1]: 'weights/missing.bin' is not in the "
                                     "package"),
            "unsafe file path": ({"files": ["model.bin", "../x"]},
                                 "manifest: files[1]: invalid path '../x': '..' component"),
            "name differs": ({"name": "something-else"},
                             "manifest name 'something-else' does not match 'pkg' in the URL"),
            "kind dataset on servables": ({"kind": "dataset"},
                                          "manifest kind is dataset, but the URL publishes a "
                                          "servable"),
            "kind unknown": ({"kind": "spaceship"},
                             "manifest: kind: must be 'servable' or 'dataset'"),
            "metrics not numbers": ({"metrics": {"accuracy": "high"}},
                                    "manifest: metrics.accuracy: must be a number"),
        }
        for label, (fields, message) in cases.items():
            with self.subTest(label):
                self.refused(422, self.publish, self.manifest_tar(**fields), message=message)

    # -- names

    def test_bad_names(self):
        t = self.t.name
        xtar = {"Content-Type": "application/x-tar"}
        charset = "object name may only contain letters, digits, '.', '_' and '-'"
        start = "object name must start with a letter or digit"
        # An invalid object name in the path (with a package of that name): 400.
        for name, message in (("bad name", charset), ("..x", start),
                              ("a..b", "object name must not contain '..'"), ("-x", start),
                              (".hidden", start),
                              ("x" * 129, "object name is longer than 128 characters"),
                              ("\u00fcn\u00ef", start), ("a*b", charset)):
            with self.subTest(name=name):
                path = "/api/v1/servables/%s/%s/versions" % (t, hub.q(name))
                self.refused(400, self.server.request, "POST", path, self.tok,
                             body=self.manifest_tar(name=name), headers=xtar, message=message)
        # Names that are not one path segment. Encoded, they are still one segment: a bad
        # name (400). Raw, they are other paths: no route matches (404, after the token is
        # checked; sent without a body, which an unknown route would take as JSON), but for
        # "..", which is a segment of its own and so a bad name.
        for name, message in (("a/b", charset), ("../x", start), ("..", start)):
            with self.subTest(name=name, encoded=True):
                path = "/api/v1/servables/%s/%s/versions" % (t, hub.q(name))
                self.refused(400, self.server.request, "POST", path, self.tok,
                             body=self.manifest_tar(), headers=xtar, message=message)
        for name, status, message in (
                # "//" is refused, not collapsed into ".../{tenant}/versions".
                ("", 400, "the request path has an empty segment ('//')"),
                ("a/b", 404, "no route for POST /api/v1/servables/%s/a/b/versions" % t),
                ("../x", 404, "no route for POST /api/v1/servables/%s/../x/versions" % t),
                ("..", 400, start)):
            with self.subTest(name=name, encoded=False):
                path = "/api/v1/servables/%s/%s/versions" % (t, name)
                self.refused(status, self.server.request, "POST", path, self.tok,
                             message=message)
        # An unknown route with a package body: the body is over the JSON limit first.
        self.refused(413, self.server.request, "POST", "/api/v1/servables/%s/a/b/versions" % t,
                     self.tok, body=self.manifest_tar(), headers=xtar,
                     message="request body is over the %d-byte limit" % MAX_JSON)
        for tenant, message in (
                ("Bad_Tenant", "tenant name must start with a lowercase letter or digit"),
                ("x" * 64, "tenant name is longer than 63 characters"),
                ("a b", "tenant name may only contain lowercase letters, digits and '-'")):
            with self.subTest(tenant=tenant):
                path = "/api/v1/servables/%s/pkg/versions" % hub.q(tenant)
                self.refused(400, self.server.request, "POST", path, self.tok,
                             body=self.manifest_tar(), headers=xtar, message=message)
        obj = self.server.obj_path(t, "existing")
        for alias, message in (
                ("bad alias", "alias name may only contain letters, digits, '.', '_' and '-'"),
                ("a..b", "alias name must not contain '..'"),
                ("latest", "alias 'latest' is maintained by the hub"),
                ("007", "alias name must not be all digits"),
                ("a" * 65, "alias name is longer than 64 characters"),
                ("-a", "alias name must start with a letter or digit")):
            with self.subTest(alias=alias):
                self.refused(400, self.server.put, obj + "/aliases/" + hub.q(alias), self.tok,
                             {"version": 1}, message=message)
        # A version is a number (positive, no leading zeros) or an alias name.
        number = "version number must be positive, without leading zeros"
        for ver, status, message in (
                ("0", 400, number), ("01", 400, number),
                ("-1", 400, "alias name must start with a letter or digit"),
                ("a..b", 400, "alias name must not contain '..'"),
                ("x" * 200, 400, "alias name is longer than 64 characters"),
                ("1.5", 404, "version 1.5 of %s/existing not found" % t)):
            with self.subTest(version=ver):
                self.assertError(self.server.version(t, "existing", ver, self.tok), status,
                                 message=message)

    def test_other_tenants(self):
        tar = self.manifest_tar()
        s, o, t = self.server, self.other, self.t.name
        self.refused(403, self.publish, tar, tenant=o.name,
                     message="a token of tenant %s cannot publish into %s" % (t, o.name))
        self.refused(404, self.publish, tar, tenant="no-such-tenant-here",
                     message="tenant no-such-tenant-here not found")
        # Another tenant's public object: visible, so changing it is 403.
        tar, _ = hub.simple_package("shown")
        s.publish_ok(o.name, "shown", tar, o["publisher"], query="visibility=public")
        obj = s.obj_path(o.name, "shown")
        self.refused(403, self.publish, tar, name="shown", tenant=o.name,
                     message="a token of tenant %s cannot publish into %s" % (t, o.name))
        theirs = "servable %s/shown belongs to tenant %s" % (o.name, o.name)
        self.refused(403, s.put, obj + "/visibility", self.tok, {"visibility": "private"},
                     message=theirs)
        self.refused(403, s.put, obj + "/aliases/mine", self.tok, {"version": 1}, message=theirs)
        self.refused(403, s.delete, obj + "/versions/1", self.tok, message=theirs)
        self.refused(403, s.delete, obj, self.tok, message=theirs)

    # -- JSON bodies

    def test_json_over_limit(self):
        s, obj = self.server, self.server.obj_path(self.t.name, "existing")
        pad = "x" * (MAX_JSON + 100)
        over = "request body is over the %d-byte limit" % MAX_JSON
        self.refused(413, s.put, obj + "/aliases/big", self.tok, {"version": 1, "pad": pad},
                     message=over)
        self.refused(413, s.post, "/api/v1/tenants", s.admin, {"name": "biggie", "pad": pad},
                     message=over)
        self.refused(413, s.post, obj + "/shares", self.tok, {"tenant": self.other.name,
                                                                "pad": pad}, message=over)

    def test_malformed_json(self):
        s, obj = self.server, self.server.obj_path(self.t.name, "existing")
        jh = {"Content-Type": "application/json"}
        invalid = "request body is not valid JSON"
        for body, message in ((b"{version: ", invalid), (b"not json", invalid), (b"", invalid),
                              (b"[1, 2]", "request body must be a JSON object"),
                              (b'{"version": "two"}', "field 'version' must be an integer"),
                              (b'{"version": 1.5}', "field 'version' must be an integer"),
                              (b"\xff\xfe{}", invalid)):
            with self.subTest(body=body):
                self.refused(400, s.request, "PUT", obj + "/aliases/stage", self.tok, body=body,
                             headers=jh, message=message)
        self.refused(400, s.request, "POST", "/api/v1/tenants", s.admin, body=b'{"name": ',
                     headers=jh, message=invalid)
        self.refused(400, s.request, "POST", "/api/v1/tenants", s.admin, body=b'{"name": 5}',
                     headers=jh, message="field 'name' must be a string")
        self.refused(400, s.request, "PUT", obj + "/visibility", self.tok,
                     body=b'{"visibility": "galactic"}', headers=jh,
                     message="visibility must be private, public or shared")
        self.refused(400, s.request, "POST", "/api/v1/tokens", self.t["admin"], body=b"{",
                     headers=jh, message=invalid)
        self.refused(400, s.request, "POST", obj + "/shares", self.tok, body=b'{"tenant": []}',
                     headers=jh, message="field 'tenant' must be a string")

    # -- chunked bodies have no Content-Length: the limits still hold

    def chunked(self, method, path, body, token, ctype):
        def send():
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
            try:
                chunks = [body[i:i + 8192] for i in range(0, len(body), 8192)]
                try:
                    conn.request(method, path, body=iter(chunks), encode_chunked=True,
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": ctype})
                except (BrokenPipeError, ConnectionResetError):
                    pass
                resp = conn.getresponse()
                return resp.status, hub.decode_body(resp.read(), resp.getheader("Content-Type",
                                                                                ""))
            finally:
                conn.close()
        return send

    def test_chunked_bodies_over_limits(self):
        tar = self.manifest_tar(contents={"model.bin": os.urandom(MAX_UPLOAD)})
        path = "/api/v1/servables/%s/pkg/versions" % self.t.name
        self.refused(413, self.chunked("POST", path, tar, self.tok, "application/x-tar"),
                     message="package is over the %d-byte upload limit" % MAX_UPLOAD)
        obj = self.server.obj_path(self.t.name, "existing")
        body = json.dumps({"version": 1, "pad": "x" * (MAX_JSON * 3)}).encode()
        self.refused(413, self.chunked("PUT", obj + "/aliases/big", body, self.tok,
                                       "application/json"),
                     message="request body is over the %d-byte limit" % MAX_JSON)


if __name__ == "__main__":
    unittest.main()
