"""Visibility: private, public, shared (docs/api.md, "Visibility")."""

import secrets
import unittest

import hub
from hub import HubTestCase


def word():
    """A unique word that FTS tokenises as one token."""
    return "vis" + secrets.token_hex(5)


class VisibilityTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.a = s.new_tenant(("publisher", "reader"))
        cls.b = s.new_tenant(("publisher", "reader"))
        cls.c = s.new_tenant(("publisher",))

    def publish(self, name, title_word, query="", kind="servables"):
        mkind = "dataset" if kind == "datasets" else "servable"
        tar, files = hub.package(name, {"model.bin": b"w" + name.encode()}, mkind,
                                 title="Model %s" % title_word)
        self.server.publish_ok(self.a.name, name, tar, self.a["publisher"], kind, query)
        s = self.server
        s.put(s.obj_path(self.a.name, name, kind) + "/aliases/prod", self.a["publisher"],
              {"version": 1})
        return files

    def routes(self, name, kind="servables"):
        """(label, method, path, json body) for every route naming an object."""
        obj = self.server.obj_path(self.a.name, name, kind)
        return [
            ("describe", "GET", obj, None),
            ("version", "GET", obj + "/versions/1", None),
            ("latest", "GET", obj + "/versions/latest", None),
            ("alias ref", "GET", obj + "/versions/prod", None),
            ("archive", "GET", obj + "/versions/1/archive", None),
            ("alias set", "PUT", obj + "/aliases/stage", {"version": 1}),
            ("alias delete", "DELETE", obj + "/aliases/prod", None),
            ("visibility", "PUT", obj + "/visibility", {"visibility": "public"}),
            ("share", "POST", obj + "/shares", {"tenant": self.b.name}),
            ("unshare", "DELETE", obj + "/shares/" + self.b.name, None),
            ("delete version", "DELETE", obj + "/versions/1", None),
            ("delete", "DELETE", obj, None),
        ]

    def listed(self, token, tenant_filter=True, kind="servables"):
        path = "/api/v1/%s?per_page=100" % kind
        if tenant_filter:
            path += "&tenant=" + self.a.name
        data = self.assertStatus(self.server.get(path, token), 200)
        return {i["name"] for i in data["items"] if i["tenant"] == self.a.name}

    def found(self, token, w):
        data = self.assertStatus(self.server.get("/api/v1/search?q=" + w, token), 200)
        return {(i["tenant"], i["name"]) for i in data["items"]}

    def assert_invisible(self, name, w, token, kind="servables"):
        """Every route answers 404 exactly as for an absent name; lists and search omit it."""
        s, absent = self.server, "absent-" + secrets.token_hex(4)
        for (label, method, path, body), (_, _, apath, _) in zip(self.routes(name, kind),
                                                                 self.routes(absent, kind)):
            with self.subTest(route=label, name=name):
                got = s.request(method, path, token, json_body=body)
                want = s.request(method, apath, token, json_body=body)
                what = "%s %s/%%s not found" % (kind[:-1], self.a.name)
                self.assertError(got, 404, message=what % name)
                self.assertError(want, 404, message=what % absent)
                self.assertEqual(set(got[1]), set(want[1]))
        self.assertNotIn(name, self.listed(token, kind=kind))
        self.assertNotIn(name, self.listed(token, tenant_filter=False, kind=kind))
        self.assertNotIn((self.a.name, name), self.found(token, w))

    def test_private_is_invisible_to_others(self):
        s, name, w = self.server, "private-one", word()
        files = self.publish(name, w)
        before = s.describe(self.a.name, name, self.a["publisher"])
        self.assertEqual(before[1]["visibility"], "private")
        for token in (self.b["publisher"], self.b["reader"], self.c["publisher"]):
            self.assert_invisible(name, w, token)
        # The hub admin is not the owner either.
        self.assert_invisible(name, w, s.admin)
        # The owner sees it everywhere, and nothing was changed.
        self.assertEqual(s.describe(self.a.name, name, self.a["publisher"]), before)
        self.assertIn(name, self.listed(self.a["reader"]))
        self.assertIn((self.a.name, name), self.found(self.a["reader"], w))
        self.assertEqual(s.download_files(self.a.name, name, 1, self.a["reader"]), files)

    def test_private_dataset_is_invisible(self):
        name, w = "private-data", word()
        self.publish(name, w, kind="datasets")
        self.assert_invisible(name, w, self.b["publisher"], kind="datasets")

    def test_public_is_readable_not_writable(self):
        s, name, w = self.server, "public-one", word()
        files = self.publish(name, w, query="visibility=public")
        desc = self.assertStatus(s.describe(self.a.name, name, self.b["reader"]), 200)
        self.assertEqual(desc["visibility"], "public")
        self.assertNotIn("shared_with", desc)
        self.assertStatus(s.version(self.a.name, name, "prod", self.b["reader"]), 200)
        self.assertEqual(s.download_files(self.a.name, name, 1, self.c["publisher"]), files)
        self.assertIn(name, self.listed(self.b["reader"]))
        self.assertIn(name, self.listed(self.b["reader"], tenant_filter=False))
        self.assertIn((self.a.name, name), self.found(self.b["reader"], w))
        before = s.describe(self.a.name, name, self.a["publisher"])
        tar, _ = hub.package(name, {"model.bin": b"hijack"})
        self.assertError(s.publish(self.a.name, name, tar, self.b["publisher"]), 403,
                         message="a token of tenant %s cannot publish into %s"
                         % (self.b.name, self.a.name))
        for label, method, path, body in self.routes(name)[5:]:
            with self.subTest(route=label):
                self.assertError(s.request(method, path, self.b["publisher"], json_body=body), 403,
                                 message="servable %s/%s belongs to tenant %s"
                                 % (self.a.name, name, self.a.name))
        self.assertEqual(s.describe(self.a.name, name, self.a["publisher"]), before)

    def test_shared_with_one_tenant(self):
        s, name, w = self.server, "shared-one", word()
        obj = s.obj_path(self.a.name, name)
        files = self.publish(name, w)
        data = self.assertStatus(s.post(obj + "/shares", self.a["publisher"],
                                        {"tenant": self.b.name}), 200)
        self.assertEqual(data, {"visibility": "shared", "shared_with": [self.b.name]})
        own = s.describe(self.a.name, name, self.a["publisher"])[1]
        self.assertEqual((own["visibility"], own["shared_with"]), ("shared", [self.b.name]))
        # B sees it (read only), C does not.
        desc = self.assertStatus(s.describe(self.a.name, name, self.b["reader"]), 200)
        self.assertNotIn("shared_with", desc)
        self.assertEqual(s.download_files(self.a.name, name, 1, self.b["reader"]), files)
        self.assertIn(name, self.listed(self.b["reader"]))
        self.assertIn((self.a.name, name), self.found(self.b["reader"], w))
        theirs = "servable %s/%s belongs to tenant %s" % (self.a.name, name, self.a.name)
        self.assertError(s.put(obj + "/aliases/x", self.b["publisher"], {"version": 1}), 403,
                         message=theirs)
        self.assertError(s.post(obj + "/shares", self.b["publisher"], {"tenant": self.c.name}),
                         403, message=theirs)
        self.assert_invisible(name, w, self.c["publisher"])
        # Sharing twice keeps one entry.
        data = self.assertStatus(s.post(obj + "/shares", self.a["publisher"],
                                        {"tenant": self.b.name}), 200)
        self.assertEqual(data["shared_with"], [self.b.name])
        # Unshare.
        data = self.assertStatus(s.delete(obj + "/shares/" + self.b.name, self.a["publisher"]),
                                 200)
        self.assertEqual(data["shared_with"], [])
        self.assert_invisible(name, w, self.b["publisher"])
        self.assertError(s.post(obj + "/shares", self.a["publisher"],
                                {"tenant": "no-such-tenant-x"}), 404,
                         message="tenant no-such-tenant-x not found")

    def test_private_clears_shares(self):
        s, name, w = self.server, "shared-two", word()
        obj = s.obj_path(self.a.name, name)
        self.publish(name, w)
        for other in (self.b.name, self.c.name):
            self.assertStatus(s.post(obj + "/shares", self.a["publisher"], {"tenant": other}), 200)
        self.assertEqual(sorted(s.describe(self.a.name, name, self.a["publisher"])[1]
                                ["shared_with"]), sorted([self.b.name, self.c.name]))
        self.assertStatus(s.describe(self.a.name, name, self.c["publisher"]), 200)
        data = self.assertStatus(s.put(obj + "/visibility", self.a["publisher"],
                                       {"visibility": "private"}), 200)
        self.assertEqual(data, {"visibility": "private", "shared_with": []})
        self.assert_invisible(name, w, self.b["publisher"])
        self.assert_invisible(name, w, self.c["publisher"])
        # Back to shared: the list stays empty.
        data = self.assertStatus(s.put(obj + "/visibility", self.a["publisher"],
                                       {"visibility": "shared"}), 200)
        self.assertEqual(data, {"visibility": "shared", "shared_with": []})
        self.assert_invisible(name, w, self.b["publisher"])

    def test_public_stays_public_when_shared(self):
        s, name, w = self.server, "public-two", word()
        obj = s.obj_path(self.a.name, name)
        self.publish(name, w, query="visibility=public")
        data = self.assertStatus(s.post(obj + "/shares", self.a["publisher"],
                                        {"tenant": self.b.name}), 200)
        self.assertEqual(data["visibility"], "public")
        self.assertStatus(s.describe(self.a.name, name, self.c["publisher"]), 200)
        data = self.assertStatus(s.put(obj + "/visibility", self.a["publisher"],
                                       {"visibility": "private"}), 200)
        self.assertEqual(data, {"visibility": "private", "shared_with": []})
        self.assert_invisible(name, w, self.b["publisher"])


if __name__ == "__main__":
    unittest.main()
