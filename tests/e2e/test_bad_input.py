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
            "blobs": len(s.blob_files()),
            "audit": len(s.audit()),
        }

    def refused(self, status, fn, *args, **kw):
        """Runs fn(*args) and checks the error status, its body and that nothing changed."""
        before = self.snapshot()
        self.assertError(fn(*args, **kw), status)
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
            "dotdot": [entry("../evil", tarfile.REGTYPE)],
            "dotdot inside": [entry("a/../../evil", tarfile.REGTYPE)],
            "dotdot dir": [entry("..", tarfile.DIRTYPE, mode=0o755)],
            "absolute": [entry("/etc/evil", tarfile.REGTYPE)],
            "symlink": [entry("link", tarfile.SYMTYPE, linkname="model.bin")],
            "symlink out": [entry("link", tarfile.SYMTYPE, linkname="/etc/passwd")],
            "hard link": [entry("hard", tarfile.LNKTYPE, linkname="model.bin")],
            "char device": [entry("dev", tarfile.CHRTYPE)],
            "block device": [entry("blk", tarfile.BLKTYPE)],
            "fifo": [entry("fifo", tarfile.FIFOTYPE)],
        }
        for label, extra in cases.items():
            with self.subTest(label):
                tar = hub.make_tar(base, text, extra=extra)
                self.refused(400, self.publish, tar)
                self.refused(400, self.publish, hub.zstd(tar))

    def test_duplicate_paths(self):
        text = hub.to_yaml(hub.manifest("pkg", ["model.bin"])).encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, data in (("orrery.yaml", text), ("model.bin", b"one"),
                               ("model.bin", b"two")):
                tar.addfile(entry(path, tarfile.REGTYPE, size=len(data)), io.BytesIO(data))
        self.refused(400, self.publish, buf.getvalue())
        # "./model.bin" and "model.bin" are the same path.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, data in (("orrery.yaml", text), ("model.bin", b"one"),
                               ("./model.bin", b"two")):
                tar.addfile(entry(path, tarfile.REGTYPE, size=len(data)), io.BytesIO(data))
        self.refused(400, self.publish, buf.getvalue())

    def test_not_a_tar(self):
        self.refused(400, self.publish, os.urandom(4096))
        self.refused(400, self.publish, b"")
        self.refused(400, self.publish, b"hello, world\n" * 100)
        self.refused(400, self.publish, hub.zstd(b"not a tar at all\n" * 100))
        tar = self.manifest_tar(contents={"model.bin": os.urandom(5000)})
        self.refused(400, self.publish, tar[:1024 + 512 + 2000])  # truncated inside model.bin
        self.refused(400, self.publish, tar[:1024 + 300])  # inside a header

    # -- limits

    def test_upload_over_limit(self):
        big = os.urandom(MAX_UPLOAD)  # the tar around it is bigger than the limit
        tar = self.manifest_tar(contents={"model.bin": big})
        self.assertGreater(len(tar), MAX_UPLOAD)
        self.refused(413, self.publish, tar)

    def test_too_many_entries(self):
        files = {"f%02d" % i: b"x" for i in range(MAX_ENTRIES + 5)}
        self.refused(413, self.publish, self.manifest_tar(contents=files))
        # Directories count too.
        files = {"d%02d/f" % i: b"x" for i in range(MAX_ENTRIES // 2 + 2)}
        text = hub.to_yaml(hub.manifest("pkg", list(files)))
        tar = hub.make_tar(files, text, dirs=["d%02d" % i for i in range(MAX_ENTRIES // 2 + 2)])
        self.refused(413, self.publish, tar)

    def test_unpacked_over_limit(self):
        # Small upload, big content: raw and zstd.
        files = {"a.bin": os.urandom(MAX_UNPACKED // 2 + 1000),
                 "b.bin": os.urandom(MAX_UNPACKED // 2 + 1000)}
        tar = self.manifest_tar(contents=files)
        self.assertLess(len(tar), MAX_UPLOAD)
        self.refused(413, self.publish, tar)
        bomb = hub.zstd(self.manifest_tar(contents={"zeros.bin": bytes(50 * MAX_UNPACKED)}))
        self.assertLess(len(bomb), MAX_UPLOAD)
        self.refused(413, self.publish, bomb)

    # -- manifests

    def test_manifest_problems(self):
        bad_yaml = hub.make_tar({"model.bin": b"w"}, "name: [unclosed\n  title: {\n")
        self.refused(422, self.publish, bad_yaml)
        self.refused(422, self.publish, hub.make_tar({"model.bin": b"w"}, None))  # no manifest
        self.refused(422, self.publish, hub.make_tar({"model.bin": b"w"}, "- just\n- a list\n"))
        for field in ("name", "title", "creators", "year", "files", "backend", "signature"):
            with self.subTest(missing=field):
                self.refused(422, self.publish, self.manifest_tar(**{field: None}))
        cases = {
            "empty creators": {"creators": []},
            "creator without name": {"creators": [{"affiliation": "x"}]},
            "year too small": {"year": 999},
            "year text": {"year": "soon"},
            "unknown backend": {"backend": "tensorflow-magic"},
            "unknown datatype": {"signature": {
                "inputs": [{"name": "x", "datatype": "FP8", "shape": [-1, 4]}],
                "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]}},
            "lists a missing file": {"files": ["model.bin", "weights/missing.bin"]},
            "unsafe file path": {"files": ["model.bin", "../x"]},
            "name differs": {"name": "something-else"},
            "kind dataset on servables": {"kind": "dataset"},
            "kind unknown": {"kind": "spaceship"},
            "metrics not numbers": {"metrics": {"accuracy": "high"}},
        }
        for label, fields in cases.items():
            with self.subTest(label):
                self.refused(422, self.publish, self.manifest_tar(**fields))

    # -- names

    def test_bad_names(self):
        tar = self.manifest_tar()
        t = self.t.name
        for name in ("bad name", "..x", "a..b", "-x", ".hidden", "x" * 129, "ünï", "a*b", ""):
            with self.subTest(name=name):
                tar = self.manifest_tar(name=name) if name else tar
                path = "/api/v1/servables/%s/%s/versions" % (t, hub.q(name))
                # "" makes "//", which no route matches: a tar body there is over the
                # JSON body limit, so 413 is a clear answer too.
                want = 400 if name else (400, 404, 405, 413)
                self.refused(want, self.server.request, "POST", path, self.tok, body=tar,
                             headers={"Content-Type": "application/x-tar"})
        for name in ("a/b", "../x", ".."):
            with self.subTest(name=name, encoded=True):
                path = "/api/v1/servables/%s/%s/versions" % (t, hub.q(name))
                self.refused((400, 404), self.server.request, "POST", path, self.tok,
                             body=tar, headers={"Content-Type": "application/x-tar"})
            with self.subTest(name=name, encoded=False):
                # Not a route at all; a tar body is then also over the JSON limit (413).
                path = "/api/v1/servables/%s/%s/versions" % (t, name)
                self.refused((400, 404, 413), self.server.request, "POST", path, self.tok,
                             body=tar, headers={"Content-Type": "application/x-tar"})
        for tenant in ("Bad_Tenant", "x" * 64, "a b"):
            with self.subTest(tenant=tenant):
                path = "/api/v1/servables/%s/pkg/versions" % hub.q(tenant)
                self.refused(400, self.server.request, "POST", path, self.tok, body=tar,
                             headers={"Content-Type": "application/x-tar"})
        obj = self.server.obj_path(t, "existing")
        for alias in ("bad alias", "a..b", "latest", "007", "a" * 65, "-a"):
            with self.subTest(alias=alias):
                self.refused(400, self.server.put, obj + "/aliases/" + hub.q(alias), self.tok,
                             {"version": 1})
        for ver in ("0", "-1", "01", "1.5", "a..b", "x" * 200):
            with self.subTest(version=ver):
                self.assertError(self.server.version(t, "existing", ver, self.tok), (400, 404))

    def test_other_tenants(self):
        tar = self.manifest_tar()
        self.refused(403, self.publish, tar, tenant=self.other.name)
        self.refused(404, self.publish, tar, tenant="no-such-tenant-here")
        # Another tenant's public object: visible, so changing it is 403.
        s, o = self.server, self.other
        tar, _ = hub.simple_package("shown")
        s.publish_ok(o.name, "shown", tar, o["publisher"], query="visibility=public")
        obj = s.obj_path(o.name, "shown")
        self.refused(403, self.publish, tar, name="shown", tenant=o.name)
        self.refused(403, s.put, obj + "/visibility", self.tok, {"visibility": "private"})
        self.refused(403, s.put, obj + "/aliases/mine", self.tok, {"version": 1})
        self.refused(403, s.delete, obj + "/versions/1", self.tok)
        self.refused(403, s.delete, obj, self.tok)

    # -- JSON bodies

    def test_json_over_limit(self):
        s, obj = self.server, self.server.obj_path(self.t.name, "existing")
        pad = "x" * (MAX_JSON + 100)
        self.refused(413, s.put, obj + "/aliases/big", self.tok, {"version": 1, "pad": pad})
        self.refused(413, s.post, "/api/v1/tenants", s.admin, {"name": "biggie", "pad": pad})
        self.refused(413, s.post, obj + "/shares", self.tok, {"tenant": self.other.name,
                                                                "pad": pad})

    def test_malformed_json(self):
        s, obj = self.server, self.server.obj_path(self.t.name, "existing")
        jh = {"Content-Type": "application/json"}
        for body in (b"{version: ", b"not json", b"", b"[1, 2]", b'{"version": "two"}',
                     b'{"version": 1.5}', b"\xff\xfe{}"):
            with self.subTest(body=body):
                self.refused(400, s.request, "PUT", obj + "/aliases/stage", self.tok, body=body,
                             headers=jh)
        self.refused(400, s.request, "POST", "/api/v1/tenants", s.admin, body=b'{"name": ',
                     headers=jh)
        self.refused(400, s.request, "POST", "/api/v1/tenants", s.admin, body=b'{"name": 5}',
                     headers=jh)
        self.refused(400, s.request, "PUT", obj + "/visibility", self.tok,
                     body=b'{"visibility": "galactic"}', headers=jh)
        self.refused(400, s.request, "POST", "/api/v1/tokens", self.t["admin"], body=b"{",
                     headers=jh)
        self.refused(400, s.request, "POST", obj + "/shares", self.tok, body=b'{"tenant": []}',
                     headers=jh)


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
        self.refused(413, self.chunked("POST", path, tar, self.tok, "application/x-tar"))
        obj = self.server.obj_path(self.t.name, "existing")
        body = json.dumps({"version": 1, "pad": "x" * (MAX_JSON * 3)}).encode()
        self.refused(413, self.chunked("PUT", obj + "/aliases/big", body, self.tok,
                                       "application/json"))


if __name__ == "__main__":
    unittest.main()
