"""Publishing, versions, aliases, downloads (docs/api.md, "Publish", "Version object")."""

import http.client
import os
import socket
import threading
import unittest

import hub
from hub import HubTestCase, SHA256_RE, TIME_RE


class PublishTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("reader", "publisher"))
        cls.tok = cls.t["publisher"]

    def refused(self, status, fn, *args, message=None, **kw):
        """A publish refused with `status` and `message` that leaves nothing behind: no
        staging file, the same blobs, no new path next to the data directory."""
        before = self.leftovers()
        self.assertError(fn(*args, **kw), status, message=message)
        self.assertLeavesNothing(before)
        self.assertCheckOk()

    def publish(self, name, files, kind="servables", query="", headers=None, **fields):
        mkind = "dataset" if kind == "datasets" else "servable"
        tar, expected = hub.package(name, files, mkind, **fields)
        data = self.server.publish_ok(self.t.name, name, tar, self.tok, kind, query, headers)
        return data, expected

    def check_version_object(self, v, name, number, expected, kind="servable"):
        self.assertEqual(v["tenant"], self.t.name)
        self.assertEqual(v["name"], name)
        self.assertEqual(v["kind"], kind)
        self.assertEqual(v["version"], number)
        self.assertRegex(v["digest"], SHA256_RE)
        self.assertRegex(v["published_at"], TIME_RE)
        self.assertEqual(v["published_by"], self.t.name)
        self.assertEqual(v["manifest"]["name"], name)
        rows = {f["path"]: f for f in v["files"]}
        self.assertEqual(set(rows), set(expected), "files[] of the version object")
        for path, (data, executable) in expected.items():
            self.assertEqual(rows[path]["sha256"], hub.sha256(data), path)
            self.assertEqual(rows[path]["size"], len(data), path)
            self.assertEqual(rows[path]["executable"], executable, path)
        self.assertEqual(v["size"], sum(len(d) for d, _ in expected.values()))
        self.assertEqual(v["digest"], hub.package_digest(expected))
        self.assertEqual(v["digest"], hub.digest_of_listing(v["files"]))

    def test_versions_are_numbered_and_immutable(self):
        s, name = self.server, "mlp"
        published = []
        for n in (1, 2, 3):
            v, expected = self.publish(name, {"model.bin": os.urandom(1000 + n),
                                              "run.sh": (b"#!/bin/sh\necho %d\n" % n, 0o755)},
                                       title="MLP take %d" % n)
            self.check_version_object(v, name, n, expected)
            self.assertIn("latest", v["aliases"])
            published.append((v, expected))
        for n, (v, expected) in enumerate(published, 1):
            got = self.assertStatus(s.version(self.t.name, name, n, self.tok), 200)
            self.assertEqual(got["digest"], v["digest"])
            self.assertEqual(got["files"], v["files"])
            self.assertEqual(got["aliases"], ["latest"] if n == 3 else [])
            files = s.download_files(self.t.name, name, n, self.t["reader"])
            self.assertEqual(files, expected, "download of version %d" % n)
        desc = self.assertStatus(s.describe(self.t.name, name, self.t["reader"]), 200)
        self.assertEqual(desc["latest_version"], 3)
        self.assertEqual(desc["aliases"], {"latest": 3})
        self.assertEqual(desc["kind"], "servable")
        self.assertEqual(desc["visibility"], "private")
        self.assertEqual([v["version"] for v in desc["versions"]], [1, 2, 3])
        for row, (v, expected) in zip(desc["versions"], published):
            self.assertEqual(row["digest"], v["digest"])
            self.assertEqual(row["size"], v["size"])
            self.assertEqual(row["published_at"], v["published_at"])
            self.assertEqual(row["title"], "MLP take %d" % row["version"])
        latest = self.assertStatus(s.version(self.t.name, name, "latest", self.tok), 200)
        self.assertEqual(latest["version"], 3)

    def test_download_is_byte_identical(self):
        s, name = self.server, "bytes"
        files = {
            "model.bin": os.urandom(300000),
            "bin/predict": (b"#!/usr/bin/env python3\nprint(1)\n", 0o755),
            "data/empty.txt": b"",
            "data/deep/er/x.json": b'{"a": 1}\n',
            "UPPER and spaces.txt": b"ok\n",
        }
        v, expected = self.publish(name, files)
        status, body, headers = s.archive(self.t.name, name, 1, self.tok)
        self.assertEqual(status, 200)
        self.assertIn("application/x-tar", headers.get("content-type", ""))
        got = hub.read_tar(body)
        self.assertEqual(got, expected)
        self.assertTrue(got["bin/predict"][1])
        self.assertFalse(got["model.bin"][1])
        self.assertEqual(hub.package_digest(got), v["digest"])

    def test_zstd_upload(self):
        s, name = self.server, "zst"
        files = {"model.bin": os.urandom(50000) + bytes(200000),
                 "tool": (b"#!/bin/sh\n", 0o755)}
        tar, expected = hub.package(name, files)
        body = hub.zstd(tar)
        self.assertEqual(body[:4], b"\x28\xb5\x2f\xfd")
        v = s.publish_ok(self.t.name, name, body, self.tok,
                         headers={"Content-Type": "application/zstd"})
        self.check_version_object(v, name, 1, expected)
        self.assertEqual(s.download_files(self.t.name, name, 1, self.tok), expected)
        # The content is sniffed: a zstd body labelled as tar works too, and so
        # does a plain tar labelled as zstd.
        v2 = s.publish_ok(self.t.name, name, body, self.tok,
                          headers={"Content-Type": "application/x-tar"})
        self.assertEqual(v2["digest"], v["digest"])
        v3 = s.publish_ok(self.t.name, name, tar, self.tok,
                          headers={"Content-Type": "application/zstd"})
        self.assertEqual(v3["version"], 3)
        self.assertEqual(s.download_files(self.t.name, name, 3, self.tok), expected)

    def test_aliases(self):
        s, name = self.server, "aliased"
        for _ in range(3):
            self.publish(name, {"w": os.urandom(64)})
        obj = s.obj_path(self.t.name, name)
        data = self.assertStatus(s.put(obj + "/aliases/prod", self.tok, {"version": 2}), 200)
        self.assertEqual(data, {"alias": "prod", "version": 2})
        desc = s.describe(self.t.name, name, self.tok)[1]
        self.assertEqual(desc["aliases"], {"latest": 3, "prod": 2})
        v = self.assertStatus(s.version(self.t.name, name, "prod", self.tok), 200)
        self.assertEqual(v["version"], 2)
        self.assertEqual(v["aliases"], ["prod"])
        self.assertEqual(sorted(s.version(self.t.name, name, 1, self.tok)[1]["aliases"]), [])
        # Move it.
        data = self.assertStatus(s.put(obj + "/aliases/prod", self.tok, {"version": 1}), 200)
        self.assertEqual(data, {"alias": "prod", "version": 1})
        self.assertEqual(s.version(self.t.name, name, "prod", self.tok)[1]["version"], 1)
        self.assertEqual(s.version(self.t.name, name, 2, self.tok)[1]["aliases"], [])
        self.assertStatus(s.put(obj + "/aliases/stage", self.tok, {"version": 3}), 200)
        self.assertEqual(sorted(s.version(self.t.name, name, 3, self.tok)[1]["aliases"]),
                         ["latest", "stage"])
        # Publishing moves latest only.
        self.publish(name, {"w": os.urandom(64)})
        desc = s.describe(self.t.name, name, self.tok)[1]
        self.assertEqual(desc["aliases"], {"latest": 4, "prod": 1, "stage": 3})
        # Delete.
        data = self.assertStatus(s.delete(obj + "/aliases/prod", self.tok), 200)
        self.assertEqual(data, {"alias": "prod", "deleted": True})
        qn = "%s/%s" % (self.t.name, name)
        self.assertError(s.version(self.t.name, name, "prod", self.tok), 404,
                         message="version prod of %s not found" % qn)
        self.assertError(s.delete(obj + "/aliases/prod", self.tok), 404,
                         message="alias prod of %s not found" % qn)
        # Refused: latest, numbers, bad names, missing versions.
        latest = "alias 'latest' is maintained by the hub"
        self.assertError(s.put(obj + "/aliases/latest", self.tok, {"version": 1}), 400,
                         message=latest)
        self.assertError(s.delete(obj + "/aliases/latest", self.tok), 400, message=latest)
        self.assertError(s.put(obj + "/aliases/123", self.tok, {"version": 1}), 400,
                         message="alias name must not be all digits")
        self.assertError(s.put(obj + "/aliases/" + "a" * 65, self.tok, {"version": 1}), 400,
                         message="alias name is longer than 64 characters")
        self.assertError(s.put(obj + "/aliases/-x", self.tok, {"version": 1}), 400,
                         message="alias name must start with a letter or digit")
        self.assertError(s.put(obj + "/aliases/ok", self.tok, {"version": 99}), 404,
                         message="version 99 of %s not found" % qn)
        self.assertError(s.put(obj + "/aliases/ok", self.tok, {"version": 0}), 400,
                         message="version must be a positive number")
        self.assertError(s.put(obj + "/aliases/ok", self.tok, {}), 400,
                         message="field 'version' must be an integer")
        desc = s.describe(self.t.name, name, self.tok)[1]
        self.assertEqual(desc["aliases"], {"latest": 4, "stage": 3})

    def test_if_changed(self):
        s, name = self.server, "ifch"
        tar, expected = hub.package(name, {"w": b"same bytes"})
        v1 = s.publish_ok(self.t.name, name, tar, self.tok)
        status, v = s.publish(self.t.name, name, tar, self.tok, query="if_changed=true")
        self.assertEqual(status, 200, v)
        self.assertIs(v.get("unchanged"), True)
        self.assertEqual(v["version"], 1)
        self.assertEqual(v["digest"], v1["digest"])
        self.assertEqual([x["version"] for x in s.describe(self.t.name, name, self.tok)[1]
                          ["versions"]], [1])
        # Same content without if_changed: a new version.
        v2 = s.publish_ok(self.t.name, name, tar, self.tok)
        self.assertEqual(v2["version"], 2)
        self.assertEqual(v2["digest"], v1["digest"])
        self.assertFalse(v2.get("unchanged", False))
        # Different content with if_changed: a new version.
        tar3, _ = hub.package(name, {"w": b"other bytes"})
        status, v3 = s.publish(self.t.name, name, tar3, self.tok, query="if_changed=true")
        self.assertEqual(status, 201, v3)
        self.assertEqual(v3["version"], 3)
        self.assertFalse(v3.get("unchanged", False))
        # if_changed on a brand-new object publishes version 1.
        tar4, _ = hub.package("ifch-new", {"w": b"x"})
        status, v4 = s.publish(self.t.name, "ifch-new", tar4, self.tok, query="if_changed=true")
        self.assertEqual(status, 201, v4)
        self.assertEqual(v4["version"], 1)

    def test_dataset_and_servable_are_separate(self):
        s, t = self.server, self.t.name
        d, expected = self.publish("census", {"data.csv": b"a,b\n1,2\n"}, kind="datasets")
        self.check_version_object(d, "census", 1, expected, kind="dataset")
        self.publish("classifier", {"model.bin": b"w"})
        ds = self.assertStatus(s.get("/api/v1/datasets?tenant=%s&per_page=100" % t, self.tok), 200)
        sv = self.assertStatus(s.get("/api/v1/servables?tenant=%s&per_page=100" % t, self.tok),
                               200)
        ds_names = {i["name"] for i in ds["items"]}
        sv_names = {i["name"] for i in sv["items"]}
        self.assertIn("census", ds_names)
        self.assertNotIn("classifier", ds_names)
        self.assertIn("classifier", sv_names)
        self.assertNotIn("census", sv_names)
        self.assertTrue(all(i["kind"] == "dataset" for i in ds["items"]))
        self.assertTrue(all(i["kind"] == "servable" for i in sv["items"]))
        desc = self.assertStatus(s.describe(t, "census", self.tok, "datasets"), 200)
        self.assertEqual(desc["kind"], "dataset")
        self.assertError(s.describe(t, "census", self.tok, "servables"), 404,
                         message="servable %s/census not found" % t)
        self.assertError(s.describe(t, "classifier", self.tok, "datasets"), 404,
                         message="dataset %s/classifier not found" % t)
        self.assertError(s.version(t, "census", 1, self.tok, "servables"), 404,
                         message="servable %s/census not found" % t)
        self.assertEqual(s.download_files(t, "census", 1, self.tok, "datasets"), expected)
        # One namespace: a dataset cannot take a servable's name, nor the reverse.
        tar, _ = hub.package("classifier", {"x.csv": b"1\n"}, "dataset")
        self.refused(409, s.publish, t, "classifier", tar, self.tok, "datasets",
                     message="%s/classifier already exists as a servable" % t)
        tar, _ = hub.package("census", {"m": b"1"}, "servable")
        self.refused(409, s.publish, t, "census", tar, self.tok, "servables",
                     message="%s/census already exists as a dataset" % t)
        # The manifest kind must match the route.
        tar, _ = hub.package("kindless", {"m": b"1"}, "servable")
        self.refused(422, s.publish, t, "kindless", tar, self.tok, "datasets",
                     message="manifest kind is servable, but the URL publishes a dataset")
        tar, _ = hub.package("kindless", {"m": b"1"}, "dataset")
        self.refused(422, s.publish, t, "kindless", tar, self.tok, "servables",
                     message="manifest kind is dataset, but the URL publishes a servable")
        self.assertError(s.describe(t, "kindless", self.tok, "datasets"), 404,
                         message="dataset %s/kindless not found" % t)
        self.assertError(s.describe(t, "kindless", self.tok, "servables"), 404,
                         message="servable %s/kindless not found" % t)

    def test_body_sha256_header(self):
        s, t, name = self.server, self.t.name, "hdr"
        tar, expected = hub.package(name, {"w": os.urandom(5000)})
        v = s.publish_ok(t, name, tar, self.tok, headers={"X-Orrery-Sha256": hub.sha256(tar)})
        self.assertEqual(v["version"], 1)
        tar2, _ = hub.package(name, {"w": os.urandom(5000), "new-file": os.urandom(7000)})
        wrong = hub.sha256(tar2[:-1] + b"x")
        self.refused(400, s.publish, t, name, tar2, self.tok,
                     headers={"X-Orrery-Sha256": wrong},
                     message="body digest mismatch: X-Orrery-Sha256 says %s, the body has %s"
                     % (wrong, hub.sha256(tar2)))
        self.refused(400, s.publish, t, name, tar2, self.tok,
                     headers={"X-Orrery-Sha256": "not-a-digest"},
                     message="X-Orrery-Sha256 must be 64 hex characters")
        desc = s.describe(t, name, self.tok)[1]
        self.assertEqual([x["version"] for x in desc["versions"]], [1])

    def test_manifest_file_digests(self):
        s, t, name = self.server, self.t.name, "pinned"
        content = os.urandom(3000)
        files = {"model.bin": content, "extra.txt": b"x"}
        good = [{"path": "model.bin", "sha256": hub.sha256(content)}, "extra.txt"]
        tar, expected = hub.package(name, files, files=good)
        v = s.publish_ok(t, name, tar, self.tok)
        self.assertEqual(v["version"], 1)
        other = os.urandom(3000)
        tar, _ = hub.package(name, {"model.bin": other, "extra.txt": b"x"}, files=good)
        self.refused(400, s.publish, t, name, tar, self.tok,
                     message="file model.bin: content digest mismatch: expected sha256:%s, "
                     "got sha256:%s" % (hub.sha256(content), hub.sha256(other)))
        self.assertEqual(s.describe(t, name, self.tok)[1]["latest_version"], 1)

    def test_visibility_query_on_new_object(self):
        s, t = self.server, self.t.name
        tar, _ = hub.package("pubnew", {"w": b"1"})
        s.publish_ok(t, "pubnew", tar, self.tok, query="visibility=public")
        self.assertEqual(s.describe(t, "pubnew", self.tok)[1]["visibility"], "public")
        # Only applied when the object is new.
        tar, _ = hub.package("pubnew", {"w": b"2"})
        s.publish_ok(t, "pubnew", tar, self.tok, query="visibility=private")
        self.assertEqual(s.describe(t, "pubnew", self.tok)[1]["visibility"], "public")
        tar, _ = hub.package("badvis", {"w": b"1"})
        self.refused(400, s.publish, t, "badvis", tar, self.tok, query="visibility=galactic",
                     message="visibility must be private or public when publishing")
        self.assertError(s.describe(t, "badvis", self.tok), 404,
                         message="servable %s/badvis not found" % t)


    def test_concurrent_publishes(self):
        s, t = self.server, self.t.name
        n = 8
        tars = [hub.package("race", {"w": os.urandom(20000), "shared": b"same in all"})
                for _ in range(n)]
        results = [None] * n

        def go(i):
            results[i] = s.publish(t, "race", tars[i][0], self.tok)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertEqual([r[0] for r in results], [201] * n, results)
        numbers = sorted(r[1]["version"] for r in results)
        self.assertEqual(numbers, list(range(1, n + 1)))
        desc = s.describe(t, "race", self.tok)[1]
        self.assertEqual(desc["latest_version"], n)
        for status, v in results:
            self.assertEqual(s.version(t, "race", v["version"], self.tok)[1]["digest"],
                             v["digest"])
        by_digest = {hub.package_digest(exp): exp for _, exp in tars}
        for status, v in results:
            self.assertEqual(s.download_files(t, "race", v["version"], self.tok),
                             by_digest[v["digest"]])
        self.assertCheckOk()


    def test_upload_transfer_variants(self):
        s, t, name = self.server, self.t.name, "wire"
        path = "/api/v1/servables/%s/%s/versions?check=false" % (t, name)
        auth = "Bearer " + self.tok
        # Chunked transfer encoding, no Content-Length.
        tar, expected = hub.package(name, {"w": os.urandom(300000)})
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
        chunks = [tar[i:i + 65536] for i in range(0, len(tar), 65536)]
        conn.request("POST", path, body=iter(chunks), encode_chunked=True,
                     headers={"Authorization": auth, "Content-Type": "application/x-tar"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        self.assertEqual(resp.status, 201, body)
        self.assertEqual(s.download_files(t, name, 1, self.tok), expected)
        # Expect: 100-continue (as curl sends for big bodies).
        tar, expected = hub.package(name, {"w": os.urandom(2000)})
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        try:
            sock.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
                          "Content-Type: application/x-tar\r\nContent-Length: %d\r\n"
                          "Expect: 100-continue\r\n\r\n" % (path, auth, len(tar))).encode())
            first = sock.recv(4096)
            self.assertTrue(first.startswith(b"HTTP/1.1 100"), first)
            sock.sendall(tar)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(4096)
        finally:
            sock.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 201"), answer[:200])
        self.assertEqual(s.download_files(t, name, 2, self.tok), expected)
        # The Content-Type is not trusted: the content is sniffed.
        for ctype in ("application/octet-stream", "application/json", "text/plain"):
            tar, expected = hub.package(name, {"w": os.urandom(100)})
            v = s.publish_ok(t, name, tar, self.tok, headers={"Content-Type": ctype})
            self.assertEqual(s.download_files(t, name, v["version"], self.tok), expected)

    def test_json_answers(self):
        s = self.server
        for path in ("/v2/health/live", "/api/v1/whoami", "/api/v1/servables"):
            status, data, headers = s.request_full("GET", path, self.tok)
            self.assertEqual(status, 200)
            self.assertIn("application/json", headers.get("content-type", ""))
        status, data, headers = s.request_full("GET", "/api/v1/no-such-route", self.tok)
        self.assertError((status, data), 404, message="no route for GET /api/v1/no-such-route")
        self.assertIn("application/json", headers.get("content-type", ""))
        self.assertError(s.request("PATCH", s.obj_path(self.t.name, "x"), self.tok), 404,
                         message="no route for PATCH /api/v1/servables/%s/x" % self.t.name)
        self.assertError(s.get("/api/v1/servables/%zz/x", self.tok), 400,
                         message="malformed percent-encoding in URL")


if __name__ == "__main__":
    unittest.main()
