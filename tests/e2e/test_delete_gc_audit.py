"""Tombstones, blob removal, garbage collection, consistency check and the audit log."""

import http.client
import os
import stat
import time
import unittest

import hub
from hub import HubTestCase


def version_rows(db, version, deleted_by):
    """Rows of the versions table (the one with version/deleted_at/deleted_by columns)."""
    rows = []
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        cols = [r[1] for r in db.execute('PRAGMA table_info("%s")' % table)]
        vcol = next((c for c in ("version", "number", "version_number") if c in cols), None)
        if vcol and "deleted_at" in cols and "deleted_by" in cols:
            rows += db.execute('SELECT deleted_at, deleted_by FROM "%s" WHERE "%s" = ? AND '
                               'CAST(deleted_by AS TEXT) = ?' % (table, vcol),
                               (version, str(deleted_by))).fetchall()
    return rows


class DeleteTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher", "reader"))
        cls.tok = cls.t["publisher"]

    def pub(self, name, files, query=""):
        tar, expected = hub.package(name, files)
        return self.server.publish_ok(self.t.name, name, tar, self.tok, query=query), expected

    def test_delete_version(self):
        s, t, name = self.server, self.t.name, "dv"
        shared, a, b, c = (os.urandom(4000) for _ in range(4))
        self.pub(name, {"shared.bin": shared, "a.bin": a})
        v2, exp2 = self.pub(name, {"shared.bin": shared, "b.bin": b})
        v3, exp3 = self.pub(name, {"shared.bin": shared, "c.bin": c})
        obj = s.obj_path(t, name)
        self.assertStatus(s.put(obj + "/aliases/prod", self.tok, {"version": 3}), 200)
        self.assertStatus(s.put(obj + "/aliases/stage", self.tok, {"version": 2}), 200)
        digests3 = {f["sha256"] for f in v3["files"]}
        unique3 = digests3 - {f["sha256"] for f in v2["files"]}
        self.assertIn(hub.sha256(c), unique3)
        for d in digests3:
            self.assertIsNotNone(s.blob_path(d), "blob %s not on disk" % d)

        data = self.assertStatus(s.delete(obj + "/versions/3", self.tok), 200)
        self.assertEqual(data, {"deleted": "%s/%s:3" % (t, name)})

        desc = self.assertStatus(s.describe(t, name, self.t["reader"]), 200)
        self.assertEqual([v["version"] for v in desc["versions"]], [1, 2])
        self.assertEqual(desc["latest_version"], 2)
        self.assertEqual(desc["aliases"], {"latest": 2, "stage": 2})
        gone = "version 3 of %s/%s not found" % (t, name)
        self.assertError(s.version(t, name, 3, self.tok), 404, message=gone)
        self.assertError(s.version(t, name, "prod", self.tok), 404,
                         message="version prod of %s/%s not found" % (t, name))
        self.assertError(s.archive(t, name, 3, self.tok), 404, message=gone)
        self.assertError(s.delete(obj + "/versions/3", self.tok), 404, message=gone)
        self.assertEqual(s.version(t, name, "latest", self.tok)[1]["version"], 2)
        self.assertEqual(s.download_files(t, name, "latest", self.tok), exp2)
        items = s.get("/api/v1/servables?tenant=%s&per_page=100" % t, self.tok)[1]["items"]
        self.assertEqual([i["latest_version"] for i in items if i["name"] == name], [2])

        # Blobs only version 3 used are gone; shared ones stay.
        for d in unique3:
            self.assertIsNone(s.blob_path(d), "blob %s of the deleted version is still there" % d)
        self.assertIsNotNone(s.blob_path(hub.sha256(shared)))
        self.assertIsNotNone(s.blob_path(hub.sha256(a)))
        self.assertIsNotNone(s.blob_path(hub.sha256(b)))
        self.assertCheckOk(s)

        # The row stays, with who deleted it.
        db = s.catalog()
        try:
            rows = version_rows(db, 3, self.t.ids["publisher"])
        finally:
            db.close()
        self.assertEqual(len(rows), 1, "version 3's tombstone row (deleted_by = token id)")
        self.assertIsNotNone(rows[0][0])

        # Numbers are never reused.
        v4, exp4 = self.pub(name, {"shared.bin": shared, "c.bin": c})
        self.assertEqual(v4["version"], 4)
        self.assertEqual(s.download_files(t, name, 4, self.tok), exp4)
        self.assertIsNotNone(s.blob_path(hub.sha256(c)))

    def test_delete_latest_only_version_left(self):
        s, t, name = self.server, self.t.name, "dv-last"
        self.pub(name, {"x": b"1"})
        self.pub(name, {"x": b"2"})
        obj = s.obj_path(t, name)
        self.assertStatus(s.delete(obj + "/versions/1", self.tok), 200)
        self.assertStatus(s.delete(obj + "/versions/2", self.tok), 200)
        # The object is not deleted: it stays, with no version, no alias and no latest.
        desc = self.assertStatus(s.describe(t, name, self.tok), 200)
        self.assertEqual((desc["versions"], desc["aliases"], desc["latest_version"]),
                         ([], {}, None), desc)
        self.assertError(s.version(t, name, "latest", self.tok), 404,
                         message="version latest of %s/%s not found" % (t, name))
        v, _ = self.pub(name, {"x": b"3"})
        self.assertEqual(v["version"], 3)

    def test_delete_object(self):
        s, t, name = self.server, self.t.name, "dobj"
        keep = os.urandom(3000)
        mine = os.urandom(3000)
        w = "dobjword" + os.urandom(3).hex()
        tar, _ = hub.package(name, {"keep.bin": keep, "mine.bin": mine}, title="Gone " + w)
        s.publish_ok(t, name, tar, self.tok)
        self.pub(name, {"keep.bin": keep, "mine.bin": mine, "more": b"m"})
        self.pub("dobj-other", {"keep.bin": keep})
        obj = s.obj_path(t, name)
        data = self.assertStatus(s.delete(obj, self.tok), 200)
        self.assertEqual(data, {"deleted": "%s/%s" % (t, name)})
        gone = "servable %s/%s not found" % (t, name)
        self.assertError(s.describe(t, name, self.tok), 404, message=gone)
        for ver in (1, 2, "latest"):
            self.assertError(s.version(t, name, ver, self.tok), 404, message=gone)
            self.assertError(s.archive(t, name, ver, self.tok), 404, message=gone)
        self.assertError(s.put(obj + "/aliases/prod", self.tok, {"version": 1}), 404,
                         message=gone)
        self.assertError(s.delete(obj, self.tok), 404, message=gone)
        items = s.get("/api/v1/servables?tenant=%s&per_page=100" % t, self.tok)[1]["items"]
        self.assertNotIn(name, [i["name"] for i in items])
        self.assertIn("dobj-other", [i["name"] for i in items])
        found = s.get("/api/v1/search?q=" + w, self.tok)[1]["items"]
        self.assertEqual(found, [])
        self.assertIsNone(s.blob_path(hub.sha256(mine)))
        self.assertIsNotNone(s.blob_path(hub.sha256(keep)))
        self.assertCheckOk(s)
        # Republishing revives it with the next number, as a new object (visibility, no shares).
        v, exp = self.pub(name, {"mine.bin": mine}, query="visibility=public")
        self.assertEqual(v["version"], 3)
        desc = self.assertStatus(s.describe(t, name, self.tok), 200)
        self.assertEqual(desc["latest_version"], 3)
        self.assertEqual([x["version"] for x in desc["versions"]], [3])
        self.assertEqual(desc["visibility"], "public")
        self.assertEqual(desc["aliases"], {"latest": 3})
        self.assertEqual(s.download_files(t, name, 3, self.tok), exp)

    def test_if_changed_after_deleting_latest(self):
        s, t, name = self.server, self.t.name, "ifdel"
        tar1, _ = hub.package(name, {"x": b"one"})
        tar2, _ = hub.package(name, {"x": b"two"})
        s.publish_ok(t, name, tar1, self.tok)
        s.publish_ok(t, name, tar2, self.tok)
        self.assertStatus(s.delete(s.obj_path(t, name) + "/versions/2", self.tok), 200)
        status, v = s.publish(t, name, tar1, self.tok, query="if_changed=true")
        self.assertEqual((status, v.get("unchanged"), v["version"]), (200, True, 1))
        status, v = s.publish(t, name, tar2, self.tok, query="if_changed=true")
        self.assertEqual((status, v["version"]), (201, 3))


class AuditTest(HubTestCase):

    def test_every_action_is_audited(self):
        s = self.server
        hub_id = s.get("/api/v1/whoami", s.admin)[1]["token_id"]
        t = s.create_tenant()
        other = s.new_tenant(("reader",))
        admin = s.create_token(t, "admin")
        pub = s.create_token(t, "publisher", as_token=admin["token"])
        spare = s.create_token(t, "reader", as_token=admin["token"])
        self.assertStatus(s.delete("/api/v1/tokens/%s" % spare["id"], admin["token"]), 200)
        tok, name = pub["token"], "audited"
        obj = s.obj_path(t, name)
        for _ in range(2):
            s.publish_ok(t, name, hub.simple_package(name)[0], tok)
        for method, path, body in (
                ("PUT", obj + "/aliases/prod", {"version": 1}),
                ("DELETE", obj + "/aliases/prod", None),
                ("PUT", obj + "/visibility", {"visibility": "public"}),
                ("POST", obj + "/shares", {"tenant": other.name}),
                ("DELETE", obj + "/shares/" + other.name, None),
                ("DELETE", obj + "/versions/1", None),
                ("DELETE", obj, None)):
            self.assertStatus(s.request(method, path, tok, json_body=body), 200, path)
        entries = s.audit()
        for e in entries:
            for k in ("id", "at", "tenant", "token_id", "action", "object", "detail"):
                self.assertIn(k, e)
        mine = [e for e in entries
                if e["tenant"] == t or t in str(e["object"]) or t in str(e["detail"])]
        by_action = {}
        for e in mine:
            by_action.setdefault(e["action"], []).append(e)
        expected = {
            "tenant.create": ("hub", hub_id, 1),
            "token.create": (None, None, 3),
            "token.revoke": (t, admin["id"], 1),
            "publish": (t, pub["id"], 2),
            "alias.set": (t, pub["id"], 1),
            "alias.delete": (t, pub["id"], 1),
            "visibility.set": (t, pub["id"], 1),
            "share.add": (t, pub["id"], 1),
            "share.remove": (t, pub["id"], 1),
            "delete.version": (t, pub["id"], 1),
            "delete.object": (t, pub["id"], 1),
        }
        for action, (actor, token_id, count) in expected.items():
            with self.subTest(action=action):
                got = by_action.get(action, [])
                self.assertEqual(len(got), count, "entries for %s: %r" % (action, got))
                for e in got:
                    self.assertRegex(e["at"], hub.TIME_RE)
                    if actor is not None:
                        self.assertEqual(e["tenant"], actor)
                        self.assertEqual(str(e["token_id"]), str(token_id))
                    if action not in ("token.create", "token.revoke", "tenant.create"):
                        self.assertIn("%s/%s" % (t, name), str(e["object"]))
        creators = sorted((e["tenant"], str(e["token_id"])) for e in by_action["token.create"])
        self.assertEqual(creators, sorted([("hub", str(hub_id)), (t, str(admin["id"])),
                                           (t, str(admin["id"]))]))
        # The tenant admin reads its own tenant's entries only.
        own = s.audit(admin["token"])
        self.assertTrue(own)
        self.assertEqual({e["tenant"] for e in own}, {t})
        self.assertIn("delete.object", {e["action"] for e in own})
        # limit=2: the two newest entries, newest first (the last two actions above).
        newest = s.audit(limit=2)
        self.assertEqual([(e["action"], e["object"]) for e in newest],
                         [("delete.object", "%s/%s" % (t, name)),
                          ("delete.version", "%s/%s" % (t, name))])
        self.assertEqual(newest, s.audit()[:2])
        self.assertError(s.get("/api/v1/audit", pub["token"]), 403,
                         message="the audit log needs an admin token")


class GcCheckTest(HubTestCase):

    def plant(self, server, like_digest, content):
        """Writes `content` into the blob dir under its digest, laid out like an existing blob
        (blobs/<first two hex digits>/<digest>)."""
        digest = hub.sha256(content)
        rel = os.path.relpath(server.blob_path(like_digest), server.blob_root)
        self.assertEqual(rel.split(os.sep), [like_digest[:2], like_digest])
        path = os.path.join(server.blob_root, digest[:2], digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        return digest, path

    def test_gc(self):
        s = self.start_server()
        t = s.new_tenant(("publisher",))
        tar, files = hub.simple_package("kept")
        v = s.publish_ok(t.name, "kept", tar, t["publisher"])
        referenced = s.blob_files()
        some = v["files"][0]["sha256"]
        stray = os.urandom(12345)
        digest, path = self.plant(s, some, stray)
        # Young strays survive a GC with the default grace period.
        data = self.assertStatus(s.post("/api/v1/admin/gc", s.admin), 200)
        self.assertEqual(data, {"removed": 0, "bytes": 0})
        self.assertTrue(os.path.exists(path))
        data = self.assertStatus(s.post("/api/v1/admin/gc?min_age_s=0", s.admin), 200)
        self.assertEqual(data, {"removed": 1, "bytes": len(stray)})
        self.assertFalse(os.path.exists(path))
        self.assertEqual(s.blob_files(), referenced)
        self.assertEqual(s.download_files(t.name, "kept", 1, t["publisher"]), files)
        self.assertCheckOk(s)
        # Old strays go with the default grace period too.
        digest, path = self.plant(s, some, os.urandom(100))
        old = time.time() - 7200
        os.utime(path, (old, old))
        data = self.assertStatus(s.post("/api/v1/admin/gc", s.admin), 200)
        self.assertEqual(data, {"removed": 1, "bytes": 100})
        self.assertEqual(s.blob_files(), referenced)
        self.assertError(s.post("/api/v1/admin/gc?min_age_s=-5", s.admin), 400,
                         message="min_age_s must be >= 0")
        self.assertError(s.post("/api/v1/admin/gc?min_age_s=soon", s.admin), 400,
                         message="min_age_s must be an integer, got 'soon'")

    def download_status(self, s, t, name, ver, token):
        try:
            status, body, _ = s.archive(t, name, ver, token)
        except (http.client.IncompleteRead, ConnectionError) as e:
            self.fail("download of a corrupt version started with 200 and was cut: %r" % e)
        return status, body

    def fragile(self):
        """A server with fragile:1 (one unique 200 KB blob) and fragile:2."""
        s = self.start_server()
        t = s.new_tenant(("publisher",))
        unique1 = os.urandom(200000)
        tar1, _ = hub.package("fragile", {"model.bin": unique1})
        s.publish_ok(t.name, "fragile", tar1, t["publisher"])
        tar2, files2 = hub.package("fragile", {"model.bin": os.urandom(1000)})
        s.publish_ok(t.name, "fragile", tar2, t["publisher"])
        self.assertCheckOk(s)
        digest = hub.sha256(unique1)
        path = s.blob_path(digest)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        return s, t, unique1, digest, path, files2

    def test_check_finds_corrupt_blob(self):
        s, t, unique1, digest, path, files2 = self.fragile()
        bad = bytearray(unique1)
        bad[100000] ^= 0xFF
        with open(path, "r+b") as f:
            f.write(bad)
        report = s.check()
        self.assertIs(report["ok"], False)
        self.assertTrue(report["problems"])
        self.assertIn(digest, str(report["problems"]))
        # docs/api.md: a corrupt blob is a 500, never bad bytes.
        self.assertError(self.download_status(s, t.name, "fragile", 1, t["publisher"]), 500,
                         message="exporting %s/fragile:1: archive entry 'model.bin': blob %s is "
                         "corrupt: content hashes to %s" % (t.name, digest, hub.sha256(bad)))
        self.assertEqual(self.leftovers(s)["staging"], [], "a failed export left its file")
        self.assertEqual(s.download_files(t.name, "fragile", 2, t["publisher"]), files2)
        # Restored, all is well again.
        with open(path, "wb") as f:
            f.write(unique1)
        self.assertCheckOk(s)
        self.assertStatus(s.archive(t.name, "fragile", 1, t["publisher"]), 200)

    def test_check_finds_missing_blob(self):
        s, t, unique1, digest, path, files2 = self.fragile()
        os.remove(path)
        report = s.check()
        self.assertIs(report["ok"], False)
        self.assertIn(digest, str(report["problems"]))
        # The version exists: a lost blob is the server's failure (5xx), not a 404.
        self.assertError(self.download_status(s, t.name, "fragile", 1, t["publisher"]), 500,
                         message="exporting %s/fragile:1: archive entry 'model.bin': stored "
                         "blob %s is missing" % (t.name, digest))
        self.assertEqual(self.leftovers(s)["staging"], [], "a failed export left its file")
        self.assertEqual(s.download_files(t.name, "fragile", 2, t["publisher"]), files2)
        self.assertStatus(s.describe(t.name, "fragile", t["publisher"]), 200)

if __name__ == "__main__":
    unittest.main()
