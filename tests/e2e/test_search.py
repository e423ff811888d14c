"""Lists, filters, pagination and full-text search (docs/api.md, "List page")."""

import secrets
import unittest
import urllib.parse

import hub
from hub import HubTestCase


def rand_word(prefix):
    # Letters only after the prefix, so FTS sees one token with no digits split-off issues.
    return prefix + "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(8))


class SearchTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.t = s.new_tenant(("publisher", "reader"))
        cls.tok = cls.t["reader"]
        cls.zeph = rand_word("zeph")
        cls.quok = rand_word("quok")
        cls.quill = rand_word("Quill")
        specs = {
            "s1": dict(backend="torchscript", task="digits", domain="vision", tags=["digits", "mlp"]),
            "s2": dict(backend="onnx", task="digits", domain="vision", tags=["digits", "cnn"]),
            "s3": dict(backend="xgboost", task="iris", domain="botany", tags=["tabular"]),
            "s4": dict(backend="torchscript", task="iris", domain="botany", tags=["mlp"]),
            "zeph-a": dict(title="%s classifier" % cls.zeph, tags=[cls.zeph, "misc"],
                           description="A small model."),
            "zeph-b": dict(title="Another classifier", tags=["misc"],
                           description="This model was trained on many things, one of which "
                                       "is the %s corpus, among others like birds, trees, "
                                       "rivers, clouds, cars, roads, bridges and mountains."
                                       % cls.zeph),
            "quokka": dict(title="%snets for marsupials" % cls.quok),
            "hypatia": dict(creators=[{"name": "%s, Hypatia" % cls.quill}]),
        }
        for name, fields in specs.items():
            tar, _ = hub.package(name, {"m.bin": name.encode()}, **fields)
            s.publish_ok(cls.t.name, name, tar, cls.t["publisher"])
        tar, _ = hub.package("d1", {"x.csv": b"1\n"}, "dataset", domain="vision", tags=["digits"])
        s.publish_ok(cls.t.name, "d1", tar, cls.t["publisher"], "datasets")

    def names(self, query, kind="servables", path=None):
        path = path or "/api/v1/%s" % kind
        data = self.assertStatus(self.server.get(
            "%s?tenant=%s&per_page=100&%s" % (path, self.t.name, query), self.tok), 200)
        return [i["name"] for i in data["items"]]

    def search(self, words, extra=""):
        return self.names("q=%s%s" % (urllib.parse.quote(words), extra), path="/api/v1/search")

    def test_list_item_fields(self):
        data = self.assertStatus(self.server.get("/api/v1/servables?tenant=%s&tag=cnn"
                                                 % self.t.name, self.tok), 200)
        self.assertEqual(data["total"], 1)
        self.assertEqual((data["page"], data["per_page"]), (1, 20))
        item = data["items"][0]
        expected = {"tenant": self.t.name, "name": "s2", "kind": "servable",
                    "visibility": "private", "latest_version": 1, "backend": "onnx",
                    "task": "digits", "domain": "vision", "tags": ["digits", "cnn"],
                    "creators": ["Lovelace, Ada"]}
        item["tags"] = sorted(item["tags"])
        expected["tags"] = sorted(expected["tags"])
        for k, v in expected.items():
            self.assertEqual(item[k], v, k)
        for k in ("title", "description", "updated_at"):
            self.assertIn(k, item)

    def test_filters(self):
        n = lambda q: sorted(self.names(q))
        self.assertEqual(n("backend=torchscript&task=digits"), ["s1"])
        self.assertEqual(n("backend=onnx"), ["s2"])
        self.assertEqual(n("task=digits"), ["s1", "s2"])
        self.assertEqual(n("domain=botany"), ["s3", "s4"])
        self.assertEqual(n("tag=mlp"), ["s1", "s4"])
        self.assertEqual(n("tag=digits"), ["s1", "s2"])
        self.assertEqual(n("tag=digits&domain=vision&backend=torchscript"), ["s1"])
        self.assertEqual(n("backend=nonexistent"), [])
        self.assertEqual(sorted(self.names("tag=digits", "datasets")), ["d1"])
        self.assertEqual(sorted(self.names("domain=vision", "datasets")), ["d1"])
        self.assertEqual(len(self.names("")), 8)
        other = self.server.new_tenant(("reader",))
        data = self.server.get("/api/v1/servables?tenant=" + self.t.name, other["reader"])[1]
        self.assertEqual(data["items"], [])
        self.assertEqual(data["total"], 0)

    def test_filters_follow_latest_live_version(self):
        s, pub, t = self.server, self.t["publisher"], self.t.name
        old, new = rand_word("old"), rand_word("new")
        for tag in (old, new):
            tar, _ = hub.package("moving", {"m.bin": tag.encode()}, tags=[tag])
            s.publish_ok(t, "moving", tar, pub)
        self.assertEqual(self.names("tag=" + old), [])
        self.assertEqual(self.names("tag=" + new), ["moving"])
        self.assertEqual(self.search(old), [])
        self.assertEqual(self.search(new), ["moving"])
        self.assertStatus(s.delete(s.obj_path(t, "moving") + "/versions/2", pub), 200)
        self.assertEqual(self.names("tag=" + old), ["moving"])
        self.assertEqual(self.names("tag=" + new), [])
        self.assertEqual(self.search(new), [])
        self.assertEqual(self.search(old), ["moving"])
        self.assertStatus(s.delete(s.obj_path(t, "moving"), pub), 200)

    def test_pagination(self):
        s = self.server
        t = s.new_tenant(("publisher",))
        for i in range(7):
            s.publish_ok(t.name, "p%d" % i, hub.simple_package("p%d" % i)[0], t["publisher"])
        seen = []
        for page, count in ((1, 3), (2, 3), (3, 1), (4, 0)):
            data = self.assertStatus(s.get("/api/v1/servables?tenant=%s&page=%d&per_page=3"
                                           % (t.name, page), t["publisher"]), 200)
            self.assertEqual((data["page"], data["per_page"], data["total"]), (page, 3, 7))
            self.assertEqual(len(data["items"]), count)
            seen += [i["name"] for i in data["items"]]
        self.assertEqual(sorted(seen), ["p%d" % i for i in range(7)])
        data = s.get("/api/v1/servables?tenant=%s&per_page=100" % t.name, t["publisher"])[1]
        self.assertEqual((len(data["items"]), data["total"], data["per_page"]), (7, 7, 100))
        data = s.get("/api/v1/servables?tenant=%s&per_page=1" % t.name, t["publisher"])[1]
        self.assertEqual((len(data["items"]), data["total"]), (1, 7))
        per_page = "per_page must be between 1 and 100"
        for bad, message in (("per_page=0", per_page), ("per_page=101", per_page),
                             ("per_page=-1", per_page),
                             ("per_page=abc", "per_page must be an integer, got 'abc'"),
                             ("page=0", "page must be >= 1"), ("page=-2", "page must be >= 1"),
                             ("page=x", "page must be an integer, got 'x'")):
            with self.subTest(bad):
                self.assertError(s.get("/api/v1/servables?" + bad, t["publisher"]), 400,
                                 message=message)
                self.assertError(s.get("/api/v1/search?q=p&" + bad, t["publisher"]), 400,
                                 message=message)
        data = s.get("/api/v1/search?q=Test&tenant=%s&per_page=2&page=2" % t.name,
                     t["publisher"])[1]
        self.assertEqual((data["total"], len(data["items"]), data["page"]), (7, 2, 2))

    def test_ranking(self):
        self.assertEqual(self.search(self.zeph), ["zeph-a", "zeph-b"])
        data = self.server.get("/api/v1/search?q=%s&tenant=%s" % (self.zeph, self.t.name),
                               self.tok)[1]
        self.assertEqual(data["total"], 2)
        self.assertEqual(self.search(self.zeph.upper()), ["zeph-a", "zeph-b"])
        self.assertEqual(self.search(self.zeph, "&backend=onnx"), [])
        self.assertEqual(self.search("classifier " + self.zeph), ["zeph-a", "zeph-b"])

    def test_prefix_match(self):
        self.assertEqual(self.search(self.quok), ["quokka"])
        self.assertEqual(self.search(self.quok + "nets"), ["quokka"])
        self.assertEqual(self.search(self.quok[:-2]), ["quokka"])
        self.assertEqual(self.search(self.quok + "x"), [])

    def test_name_and_creators_are_searchable(self):
        self.assertEqual(self.search(self.quill), ["hypatia"])
        self.assertEqual(self.search(self.quill.lower() + " hypatia"), ["hypatia"])
        self.assertIn("hypatia", self.search("hypatia"))

    def test_punctuation_is_harmless(self):
        s = self.server
        # With words left after punctuation goes: a normal (empty) result.
        for text in ('"; DROP TABLE', "'; DROP TABLE servables; --", "a AND", "OR", "NOT",
                     "NEAR(", "x:y", '"unterminated', "col:value*", "\u00e9\u00e8",
                     "AND OR NOT", "a -b", "a OR b*", "{a b}:c"):
            with self.subTest(q=text):
                data = self.assertStatus(s.get("/api/v1/search?q=" + urllib.parse.quote(text),
                                               self.tok), 200)
                self.assertIn("items", data)
        # Nothing but punctuation: no word to search for (docs/api.md: 400).
        for text in ('"', "'", "*", "(", ")", "^", "-", "%", "_", "\\", "{}", ";--", '"*"', ""):
            with self.subTest(q=text):
                self.assertError(s.get("/api/v1/search?q=" + urllib.parse.quote(text), self.tok),
                                 400, message="search text has no words")
        # A snowman is not punctuation: a word, which nothing here matches.
        data = self.assertStatus(s.get("/api/v1/search?q=" + urllib.parse.quote("\u2603"),
                                       self.tok), 200)
        self.assertEqual((data["items"], data["total"]), ([], 0))
        for text in (self.zeph + "!!!", '"' + self.zeph, "(" + self.zeph + ")",
                     "-" + self.zeph, self.zeph + "*", self.zeph + ";", "'" + self.zeph + "'"):
            with self.subTest(q=text):
                self.assertEqual(self.search(text), ["zeph-a", "zeph-b"])
        self.assertEqual(len(self.names("")), 8)
        self.assertCheckOk(s)

    def test_search_kind(self):
        self.assertEqual(self.names("q=digits&kind=dataset", path="/api/v1/search"), ["d1"])
        found = self.names("q=digits&kind=servable", path="/api/v1/search")
        self.assertEqual(sorted(found), ["s1", "s2"])
        self.assertEqual(sorted(self.names("q=digits", path="/api/v1/search")),
                         ["d1", "s1", "s2"])

    def test_search_is_scoped_to_visible(self):
        other = self.server.new_tenant(("reader",))
        data = self.assertStatus(self.server.get("/api/v1/search?q=" + self.zeph,
                                                 other["reader"]), 200)
        self.assertEqual((data["items"], data["total"]), ([], 0))


if __name__ == "__main__":
    unittest.main()
