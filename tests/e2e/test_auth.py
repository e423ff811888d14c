"""Authentication and roles (docs/api.md, "Authentication"). Every route x every credential
is test_route_matrix.py; this module covers tokens themselves (creation, listing, revocation,
storage, the admin token file) and what each role may do."""

import hashlib
import http.client
import json
import os
import stat
import unittest

import hub
from hub import HubTestCase, TOKEN_RE


class AuthTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.acme = s.new_tenant(("reader", "publisher", "admin"))
        cls.other = s.new_tenant(("publisher", "admin"))
        tar, cls.files = hub.simple_package("model")
        s.publish_ok(cls.acme.name, "model", tar, cls.acme["publisher"])
        s.put(s.obj_path(cls.acme.name, "model") + "/aliases/prod", cls.acme["publisher"],
              {"version": 1})

    def test_liveness_needs_no_token(self):
        status, data = self.server.get("/v2/health/live")
        self.assertEqual(status, 200)
        self.assertEqual(data, {"live": True})

    def test_ready_with_token(self):
        data = self.assertStatus(self.server.get("/v2/health/ready", self.acme["reader"]), 200)
        self.assertEqual(data, {"ready": True})

    def test_whoami(self):
        for role in ("reader", "publisher", "admin"):
            data = self.assertStatus(self.server.get("/api/v1/whoami", self.acme[role]), 200)
            self.assertEqual(data["tenant"], self.acme.name)
            self.assertEqual(data["role"], role)
            self.assertEqual(str(data["token_id"]), str(self.acme.ids[role]))

    def test_reader_cannot_change_anything(self):
        s, t, tok = self.server, self.acme.name, self.acme["reader"]
        obj = s.obj_path(t, "model")
        self.assertStatus(s.describe(t, "model", tok), 200)
        self.assertStatus(s.archive(t, "model", 1, tok), 200)
        before = s.describe(t, "model", tok)
        tar, _ = hub.simple_package("model")
        no_publish = "role reader cannot publish (publisher needed)"
        self.assertError(s.publish(t, "model", tar, tok), 403, "reader publish:",
                         message=no_publish)
        tar, _ = hub.simple_package("fresh")
        self.assertError(s.publish(t, "fresh", tar, tok), 403, "reader publish new:",
                         message=no_publish)
        no_change = "role reader cannot change objects (publisher needed)"
        self.assertError(s.put(obj + "/aliases/x", tok, {"version": 1}), 403, message=no_change)
        self.assertError(s.delete(obj + "/aliases/prod", tok), 403, message=no_change)
        self.assertError(s.put(obj + "/visibility", tok, {"visibility": "public"}), 403,
                         message=no_change)
        self.assertError(s.post(obj + "/shares", tok, {"tenant": self.other.name}), 403,
                         message=no_change)
        self.assertError(s.delete(obj + "/versions/1", tok), 403, message=no_change)
        self.assertError(s.delete(obj, tok), 403, message=no_change)
        self.assertError(s.post("/api/v1/tokens", tok, {"role": "reader"}), 403,
                         message="creating tokens needs an admin token")
        self.assertError(s.get("/api/v1/audit", tok), 403,
                         message="the audit log needs an admin token")
        self.assertEqual(s.describe(t, "model", tok), before)
        self.assertError(s.describe(t, "fresh", self.acme["publisher"]), 404,
                         message="servable %s/fresh not found" % t)

    def test_publisher_cannot_manage_tokens(self):
        s, tok = self.server, self.acme["publisher"]
        create = "creating tokens needs an admin token"
        self.assertError(s.post("/api/v1/tokens", tok, {"role": "reader"}), 403, message=create)
        self.assertError(s.post("/api/v1/tokens", tok,
                                {"tenant": self.acme.name, "role": "publisher"}), 403,
                         message=create)
        self.assertError(s.get("/api/v1/tokens", tok), 403,
                         message="listing tokens needs an admin token")
        self.assertError(s.delete("/api/v1/tokens/%s" % self.acme.ids["reader"], tok), 403,
                         message="revoking tokens needs an admin token")
        self.assertStatus(s.get("/api/v1/whoami", self.acme["reader"]), 200)
        self.assertError(s.get("/api/v1/audit", tok), 403,
                         message="the audit log needs an admin token")

    def test_tenant_admin_is_not_hub_admin(self):
        s, tok = self.server, self.acme["admin"]
        name = hub.unique("nope")
        self.assertError(s.post("/api/v1/tenants", tok, {"name": name}), 403,
                         message="creating tenants needs the hub admin")
        self.assertNotIn(name, [t["name"] for t in s.get("/api/v1/tenants", s.admin)[1]["tenants"]])
        self.assertError(s.get("/api/v1/tenants", tok), 403,
                         message="listing tenants needs the hub admin")
        self.assertError(s.post("/api/v1/admin/gc?min_age_s=0", tok), 403,
                         message="garbage collection needs the hub admin")
        self.assertError(s.get("/api/v1/admin/check", tok), 403,
                         message="the consistency check needs the hub admin")
        # Tokens of its own tenant: yes; of another tenant: no.
        data = self.assertStatus(s.post("/api/v1/tokens", tok, {"role": "reader"}), 201)
        self.assertEqual(data["tenant"], self.acme.name)
        self.assertEqual(data["role"], "reader")
        self.assertTrue(TOKEN_RE.match(data["token"]))
        self.assertError(s.post("/api/v1/tokens", tok,
                                {"tenant": self.other.name, "role": "admin"}), 403,
                         message="an admin of %s cannot create tokens for %s"
                         % (self.acme.name, self.other.name))
        # Another tenant's token is not there for it: the same answer as an unknown id.
        self.assertError(s.delete("/api/v1/tokens/%s" % self.other.ids["publisher"], tok), 404,
                         "revoking another tenant's token",
                         message="token %s not found" % self.other.ids["publisher"])
        self.assertStatus(s.get("/api/v1/whoami", self.other["publisher"]), 200)
        # Its token list shows its own tokens, and never token text.
        status, listing = s.get("/api/v1/tokens", tok)
        self.assertEqual(status, 200)
        ids = {str(t["id"]) for t in listing["tokens"]}
        self.assertIn(str(self.acme.ids["reader"]), ids)
        self.assertNotIn(str(self.other.ids["publisher"]), ids)
        self.assertTrue(all(t["tenant"] == self.acme.name for t in listing["tokens"]))
        for t in listing["tokens"]:
            self.assertNotIn("token", t)
            for k in ("id", "tenant", "role", "created_at", "expires_at", "revoked_at"):
                self.assertIn(k, t)
        self.assertNotIn(self.acme["reader"][4:], str(listing))
        # Revoking its own tenant's token works, and the list shows when.
        victim = s.create_token(self.acme.name, "reader", as_token=tok)
        self.assertStatus(s.delete("/api/v1/tokens/%s" % victim["id"], tok), 200)
        self.assertError(s.get("/api/v1/whoami", victim["token"]), 401, message="token revoked")
        rows = {str(t["id"]): t for t in s.get("/api/v1/tokens", tok)[1]["tokens"]}
        self.assertRegex(rows[str(victim["id"])]["revoked_at"], hub.TIME_RE)
        self.assertIsNone(rows[str(self.acme.ids["reader"])]["revoked_at"])
        self.assertError(s.delete("/api/v1/tokens/999999", tok), 404,
                         message="token 999999 not found")
        # An admin may also do what a publisher does in its tenant.
        tar, _ = hub.simple_package("by-admin")
        self.assertStatus(s.publish(self.acme.name, "by-admin", tar, tok), 201)

    def test_hub_admin_manages_tenants_and_tokens(self):
        s = self.server
        name = hub.unique("lab")
        data = self.assertStatus(s.post("/api/v1/tenants", s.admin, {"name": name}), 201)
        self.assertEqual(data["name"], name)
        self.assertRegex(data["created_at"], hub.TIME_RE)
        self.assertError(s.post("/api/v1/tenants", s.admin, {"name": name}), 409,
                         message="tenant %s already exists" % name)
        self.assertError(s.post("/api/v1/tenants", s.admin, {"name": "Bad_Name"}), 400,
                         message="tenant name must start with a lowercase letter or digit")
        names = [t["name"] for t in s.get("/api/v1/tenants", s.admin)[1]["tenants"]]
        self.assertIn(name, names)
        self.assertIn("hub", names)
        self.assertEqual(names.count(name), 1)
        tok = s.create_token(name, "publisher", description="ci")
        self.assertEqual(tok["tenant"], name)
        self.assertEqual(tok["role"], "publisher")
        self.assertIn("expires_at", tok)
        who = self.assertStatus(s.get("/api/v1/whoami", tok["token"]), 200)
        self.assertEqual((who["tenant"], who["role"]), (name, "publisher"))
        listing = self.assertStatus(s.get("/api/v1/tokens?tenant=" + name, s.admin), 200)
        self.assertEqual([str(t["id"]) for t in listing["tokens"]], [str(tok["id"])])
        self.assertEqual(listing["tokens"][0]["description"], "ci")
        self.assertError(s.post("/api/v1/tokens", s.admin,
                                {"tenant": "no-such-tenant", "role": "reader"}), 404,
                         message="tenant no-such-tenant not found")
        self.assertError(s.post("/api/v1/tokens", s.admin, {"tenant": name, "role": "god"}), 400,
                         message="unknown role 'god' (expected reader, publisher or admin)")
        self.assertError(s.post("/api/v1/tokens", s.admin,
                                {"tenant": name, "role": "reader", "expires_in_s": -5}), 400,
                         message="expires_in_s must be between 0 (never) and 3153600000 "
                         "(100 years)")
        self.assertError(s.post("/api/v1/tokens", s.admin, {"tenant": name}), 400,
                         message="field 'role' must be a string")
        # Only the hub admin lists other tenants' tokens.
        for other in (name, "hub"):
            self.assertError(s.get("/api/v1/tokens?tenant=" + other, self.acme["admin"]), 403,
                             message="an admin of %s cannot list tokens of %s"
                             % (self.acme.name, other))

    def test_admin_token_file(self):
        s = self.server
        path = os.path.join(s.data_dir, "admin.token")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        self.assertEqual(mode, 0o600, "admin.token mode is %o" % mode)
        with open(path) as f:
            text = f.read()
        self.assertTrue(TOKEN_RE.match(text.strip()), repr(text))
        who = self.assertStatus(s.get("/api/v1/whoami", text.strip()), 200)
        self.assertEqual((who["tenant"], who["role"]), ("hub", "admin"))

    def test_admin_token_survives_restart(self):
        s = self.start_server()
        first = s.admin
        tenant = s.new_tenant(("publisher",))
        s.restart()
        self.assertEqual(s.read_admin_token(), first)
        self.assertStatus(s.get("/api/v1/whoami", first), 200)
        self.assertStatus(s.get("/api/v1/whoami", tenant["publisher"]), 200)

    def test_reset_admin_token_after_losing_it(self):
        s = self.start_server()
        first = s.admin
        os.remove(os.path.join(s.data_dir, "admin.token"))
        s.stop()
        s.args = ["--reset-admin-token"]
        s.start()
        second = s.read_admin_token()
        self.assertNotEqual(second, first)
        self.assertTrue(TOKEN_RE.match(second), second)
        self.assertEqual(os.stat(os.path.join(s.data_dir, "admin.token")).st_mode & 0o777, 0o600)
        status, who = s.get("/api/v1/whoami", second)
        self.assertEqual((status, who["tenant"], who["role"]), (200, "hub", "admin"))
        # The lost token stays valid until revoked; the reset is in the audit log.
        self.assertStatus(s.get("/api/v1/whoami", first), 200)
        status, audit = s.get("/api/v1/audit", second)
        self.assertEqual(status, 200)
        self.assertIn("hub admin (reset at start)", [e["detail"] for e in audit["entries"]])
        # Without the flag a restart keeps the token file as it is.
        s.args = []
        s.restart()
        self.assertEqual(s.read_admin_token(), second)

    def test_catalog_holds_only_token_hashes(self):
        s = self.server
        tokens = [s.admin] + [tok for t in (self.acme, self.other) for tok in t.tokens.values()]
        for tok in tokens:
            self.assertTrue(TOKEN_RE.match(tok), tok)
        # Raw bytes of every catalog file (database, WAL, journal).
        for fn in os.listdir(s.data_dir):
            if not fn.startswith("catalog.db"):
                continue
            with open(os.path.join(s.data_dir, fn), "rb") as f:
                raw = f.read()
            for tok in tokens:
                self.assertNotIn(tok[4:].encode(), raw, "token text in %s" % fn)
                self.assertNotIn(tok[4:].upper().encode(), raw, "token text in %s" % fn)
        # Every cell of every table.
        db = s.catalog()
        try:
            cells = []
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                for row in db.execute('SELECT * FROM "%s"' % table.replace('"', '""')):
                    cells.extend(row)
        finally:
            db.close()
        texts = [c if isinstance(c, str) else c.hex() if isinstance(c, bytes) else ""
                 for c in cells]
        blob = "\n".join(texts)
        for tok in tokens:
            self.assertNotIn(tok[4:], blob.lower())
            # docs/api.md: the hub stores the SHA-256 of the whole token text ("orr_...").
            self.assertIn(hashlib.sha256(tok.encode()).hexdigest(), blob.lower(),
                          "no SHA-256 of token %s... in the catalog" % tok[:8])


class KeepAliveTest(HubTestCase):

    def test_many_requests_on_one_connection(self):
        s = self.server
        t = s.new_tenant(("publisher",))
        tar, files = hub.simple_package("ka")
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        self.addCleanup(conn.close)

        def call(method, path, body=None, token=t["publisher"], ctype="application/json"):
            headers = {"Authorization": "Bearer " + token} if token else {}
            if body is not None:
                headers["Content-Type"] = ctype
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()

        obj = "/api/v1/servables/%s/ka" % t.name
        self.assertEqual(call("GET", "/v2/health/live", token=None)[0], 200)
        self.assertEqual(call("GET", obj)[0], 404)
        self.assertEqual(call("GET", "/api/v1/whoami", token="orr_" + "0" * 64)[0], 401)
        self.assertEqual(call("POST", obj + "/versions?check=false", tar,
                              ctype="application/x-tar")[0], 201)
        self.assertEqual(call("PUT", obj + "/aliases/prod", b'{"version": 1}')[0], 200)
        self.assertEqual(call("PUT", obj + "/aliases/prod", b"{bad json")[0], 400)
        status, body = call("GET", obj + "/versions/prod/archive")
        self.assertEqual(status, 200)
        self.assertEqual(hub.read_tar(body), files)
        status, body = call("GET", obj)
        self.assertEqual((status, json.loads(body)["aliases"]), (200, {"latest": 1, "prod": 1}))


if __name__ == "__main__":
    unittest.main()
