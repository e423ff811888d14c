"""Every route x every credential (docs/api.md "Authentication" and "Visibility",
docs/inference.md "Routes").

The routes come from the binary itself (`orrery routes --json`, the table the server dispatches
from): a route without an entry in ROUTES below, or an entry for a route that no longer exists,
fails test_every_route_has_an_entry. Each route is then called with each credential:
- no token, malformed ones, an unknown well-formed token, an expired and a revoked token: 401
  with the exact reason (liveness alone answers 200 to all of them);
- a reader, a publisher and an admin of the tenant that owns the objects, an admin of another
  tenant and the hub admin: the status docs/api.md gives for that role.
The objects are the owner's private servables. For every route that names one, the other
tenant's admin and the hub admin get an answer byte-identical (status, headers, body) to the
answer for a name that was never published, once the two names are swapped; routes that list
(search, lists, stats, the repository index, metrics, audit) never mention a private name to
them (the hub admin's /metrics shows every servable, as documented).
Each route's declared access (who may call it) must agree with who succeeded.
"""

import calendar
import json
import secrets
import time
import unittest

import hub
import oip
from hub import HubTestCase, run_cli

ADD_ONE = '''
def predict(inputs):
    return {"y": inputs["x"] + 1}
'''
SIG = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])
EXAMPLE = {"inputs": {"x": {"datatype": "FP64", "shape": [1], "data": [1.0]}},
           "outputs": {"y": {"datatype": "FP64", "shape": [1], "data": [2.0]}}}
INFER_BODY = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}

ROLES = ("reader", "publisher", "admin", "other_admin", "hub_admin")
# 401 with this exact message.
UNAUTHENTICATED = {
    "none": "missing token (send Authorization: Bearer <token>)",
    "garbage": "malformed token",
    "no scheme": "Authorization must be 'Bearer <token>'",
    "basic": "Authorization must be 'Bearer <token>'",
    "empty bearer": "Authorization must be 'Bearer <token>'",
    "short": "malformed token",
    "upper hex": "malformed token",
    "truncated": "malformed token",
    "wrong": "invalid token",
    "expired": "token expired",
    "revoked": "token revoked",
}


class Entry:
    """One route's case: `build(ctx, name)` -> (path, body) aimed at the owner's object `name`
    (or at nothing, for routes without an object); `expect[role]` is the status for each of
    ROLES. `fresh(ctx)` makes a new object for each call (the route changes it; default: the
    owner's loaded private servable); `prepare(ctx, name)` runs before each call; `listing`:
    the answer must not mention a private name to other_admin (nor to hub_admin, unless
    `hub_sees_all`). A body that is bytes is sent as a package (application/x-tar)."""

    def __init__(self, build, expect, named=True, fresh=None, prepare=None, listing=False,
                 hub_sees_all=False):
        self.build, self.expect, self.named, self.fresh = build, expect, named, fresh
        self.prepare, self.listing, self.hub_sees_all = prepare, listing, hub_sees_all


def statuses(reader, publisher, admin, other_admin, hub_admin):
    return dict(zip(ROLES, (reader, publisher, admin, other_admin, hub_admin)))


# Who succeeds, by declared access, for an object the owner keeps private.
READ = lambda ok: statuses(ok, ok, ok, 404, 404)
WRITE = lambda ok: statuses(403, ok, ok, 404, 404)
ADMIN = lambda ok: statuses(403, 403, ok, 404, 404)
EVERYONE = lambda ok: statuses(ok, ok, ok, ok, ok)
HUB_ONLY = lambda ok: statuses(403, 403, 403, 403, ok)


def obj(c, name, rest=""):
    return "/api/v1/servables/%s/%s%s" % (c.owner.name, name, rest)


def model(c, name, rest=""):
    return "/v2/models/%s/%s%s" % (c.owner.name, name, rest)


def publish_body(c, name):
    return oip.py_package(name, ADD_ONE, *SIG, examples=[EXAMPLE],
                          files={"README.md": b"# A model card\n"})


def new_servable(c):
    """A newly published private servable of the owner."""
    name = "m-" + secrets.token_hex(4)
    c.server.publish_ok(c.owner.name, name, publish_body(c, name), c.owner["publisher"])
    return name


def new_name(c):
    return "n-" + secrets.token_hex(4)


def new_token(c):
    return str(c.server.create_token(c.owner.name, "reader")["id"])


def new_async_request(c):
    """An answered asynchronous inference request of the owner (its id)."""
    status, data = c.server.post(model(c, c.secret, "/infer-async"), c.owner["publisher"],
                                 INFER_BODY)
    hub.expect(status, data, 202, "infer-async")
    answered = oip.wait_for(lambda: c.server.get("/api/v1/requests/" + data["id"],
                                                 c.owner["reader"])[0] == 200, 30)
    assert answered, "request %s was not answered" % data["id"]
    return data["id"]


def loaded(c, n):
    c.ensure_loaded(c.secret)


JOB_CODE = hub.make_tar({"run.sh": (b"sleep 5\n", 0o755)})


def job_spec(c, command=("sleep", "5")):
    """A job of the owner's uploaded code, named after the owner's secret (so that listings
    show whether they leak it)."""
    return {"name": c.secret + "-job", "code": {"upload": c.job_code}, "command": list(command),
            "halt_grace": 1, "resources": {"memory": "256MiB", "wall_time": 60}}


def new_job(c):
    """A halted job of the owner (its id): nothing of it runs for long."""
    status, data = c.server.post("/api/v1/jobs", c.owner["publisher"], job_spec(c))
    hub.expect(status, data, 201, "submit")
    c.as_owner("POST", "/api/v1/jobs/%d/halt" % data["id"])
    return str(data["id"])


ROUTES = {
    # Training jobs are their tenant's; the hub admin sees and changes every tenant's.
    ("POST", "/api/v1/jobs/code"):
        Entry(lambda c, n: ("/api/v1/jobs/code", JOB_CODE), statuses(403, 201, 201, 201, 201),
              named=False),
    # The code is the owner's upload: another tenant has no such upload.
    ("POST", "/api/v1/jobs"):
        Entry(lambda c, n: ("/api/v1/jobs", job_spec(c, ("true",))),
              statuses(403, 201, 201, 404, 404), named=False),
    ("GET", "/api/v1/jobs"):
        Entry(lambda c, n: ("/api/v1/jobs", None), EVERYONE(200), named=False, listing=True,
              hub_sees_all=True),
    ("GET", "/api/v1/jobs/{id}"):
        Entry(lambda c, n: ("/api/v1/jobs/" + n, None), statuses(200, 200, 200, 404, 200),
              fresh=lambda c: c.job),
    ("GET", "/api/v1/jobs/{id}/logs"):
        Entry(lambda c, n: ("/api/v1/jobs/%s/logs?offset=0" % n, None),
              statuses(200, 200, 200, 404, 200), fresh=lambda c: c.job),
    ("GET", "/api/v1/jobs/{id}/metrics"):
        Entry(lambda c, n: ("/api/v1/jobs/%s/metrics" % n, None),
              statuses(200, 200, 200, 404, 200), fresh=lambda c: c.job),
    ("POST", "/api/v1/jobs/{id}/{action:halt|resume|cancel|rerun|publish}"):
        Entry(lambda c, n: ("/api/v1/jobs/%s/cancel" % n, None), statuses(403, 200, 200, 404, 200),
              fresh=new_job),
    ("GET", "/api/v1/tenants/{tenant}/job-limits"):
        Entry(lambda c, n: ("/api/v1/tenants/%s/job-limits" % c.owner.name, None),
              statuses(200, 200, 200, 403, 200), named=False),
    ("PUT", "/api/v1/tenants/{tenant}/job-limits"):
        Entry(lambda c, n: ("/api/v1/tenants/%s/job-limits" % c.owner.name, {"max_running": 5}),
              HUB_ONLY(200), named=False),
    ("POST", "/v2/models/{model}/versions/{version}/infer"):
        Entry(lambda c, n: (model(c, n, "/versions/1/infer"), INFER_BODY), READ(200)),
    ("POST", "/v2/models/{model}/infer"):
        Entry(lambda c, n: (model(c, n, "/infer"), INFER_BODY), READ(200)),
    ("POST", "/v2/models/{model}/versions/{version}/infer-async"):
        Entry(lambda c, n: (model(c, n, "/versions/1/infer-async"), INFER_BODY), READ(202)),
    ("POST", "/v2/models/{model}/infer-async"):
        Entry(lambda c, n: (model(c, n, "/infer-async"), INFER_BODY), READ(202)),
    ("GET", "/v2/health/live"):
        Entry(lambda c, n: ("/v2/health/live", None), EVERYONE(200), named=False),
    ("GET", "/v2/health/ready"):
        Entry(lambda c, n: ("/v2/health/ready", None), EVERYONE(200), named=False),
    ("GET", "/v2"):
        Entry(lambda c, n: ("/v2", None), EVERYONE(200), named=False),
    ("GET", "/v2/models/stats"):
        Entry(lambda c, n: ("/v2/models/stats", None), EVERYONE(200), named=False,
              listing=True, prepare=loaded),
    ("GET", "/v2/models/{model}/versions/{version}/stats"):
        Entry(lambda c, n: (model(c, n, "/versions/1/stats"), None), READ(200)),
    ("GET", "/v2/models/{model}/stats"):
        Entry(lambda c, n: (model(c, n, "/stats"), None), READ(200)),
    ("GET", "/v2/models/{model}/versions/{version}/config"):
        Entry(lambda c, n: (model(c, n, "/versions/1/config"), None), READ(200)),
    ("GET", "/v2/models/{model}/config"):
        Entry(lambda c, n: (model(c, n, "/config"), None), READ(200)),
    ("GET", "/v2/models/{model}/versions/{version}/ready"):
        Entry(lambda c, n: (model(c, n, "/versions/1/ready"), None), READ(200),
              prepare=lambda c, n: c.ensure_loaded(n)),
    ("GET", "/v2/models/{model}/ready"):
        Entry(lambda c, n: (model(c, n, "/ready"), None), READ(200),
              prepare=lambda c, n: c.ensure_loaded(n)),
    ("GET", "/v2/models/{model}/versions/{version}"):
        Entry(lambda c, n: (model(c, n, "/versions/1"), None), READ(200)),
    ("GET", "/v2/models/{model}"):
        Entry(lambda c, n: (model(c, n), None), READ(200)),
    ("POST", "/v2/repository/index"):
        Entry(lambda c, n: ("/v2/repository/index", {}), EVERYONE(200), named=False,
              listing=True, prepare=loaded),
    ("POST", "/v2/repository/models/{model}/versions/{version}/load"):
        Entry(lambda c, n: ("/v2/repository/models/%s/%s/versions/1/load"
                            % (c.owner.name, n), None), READ(200)),
    ("POST", "/v2/repository/models/{model}/load"):
        Entry(lambda c, n: ("/v2/repository/models/%s/%s/load" % (c.owner.name, n), None),
              READ(200)),
    # The hub admin may unload what it can see; another tenant's private model is absent to it.
    ("POST", "/v2/repository/models/{model}/versions/{version}/unload"):
        Entry(lambda c, n: ("/v2/repository/models/%s/%s/versions/1/unload"
                            % (c.owner.name, n), None), WRITE(200),
              prepare=lambda c, n: c.ensure_loaded(n)),
    ("POST", "/v2/repository/models/{model}/unload"):
        Entry(lambda c, n: ("/v2/repository/models/%s/%s/unload" % (c.owner.name, n), None),
              WRITE(200), prepare=lambda c, n: c.ensure_loaded(n)),
    ("GET", "/metrics"):
        Entry(lambda c, n: ("/metrics", None), EVERYONE(200), named=False, listing=True,
              hub_sees_all=True, prepare=loaded),

    ("GET", "/api/v1/whoami"):
        Entry(lambda c, n: ("/api/v1/whoami", None), EVERYONE(200), named=False),
    ("GET", "/api/v1/environments"):
        Entry(lambda c, n: ("/api/v1/environments", None), EVERYONE(200), named=False),
    # An asynchronous answer is its tenant's: another tenant's id is absent, even to the hub.
    ("GET", "/api/v1/requests/{id}"):
        Entry(lambda c, n: ("/api/v1/requests/" + n, None), READ(200), fresh=new_async_request),
    ("GET", "/api/v1/tenants"):
        Entry(lambda c, n: ("/api/v1/tenants", None), HUB_ONLY(200), named=False),
    ("POST", "/api/v1/tenants"):
        Entry(lambda c, n: ("/api/v1/tenants", {"name": hub.unique("m")}), HUB_ONLY(201),
              named=False),
    # An admin lists and creates its own tenant's tokens; the owner's tokens are another
    # tenant's to other_admin.
    ("GET", "/api/v1/tokens"):
        Entry(lambda c, n: ("/api/v1/tokens", None), statuses(403, 403, 200, 200, 200),
              named=False, listing=True),
    ("POST", "/api/v1/tokens"):
        Entry(lambda c, n: ("/api/v1/tokens", {"tenant": c.owner.name, "role": "reader"}),
              statuses(403, 403, 201, 403, 201), named=False),
    ("DELETE", "/api/v1/tokens/{id}"):
        Entry(lambda c, n: ("/api/v1/tokens/%s" % n, None), statuses(403, 403, 200, 404, 200),
              fresh=new_token),
    ("GET", "/api/v1/audit"):
        Entry(lambda c, n: ("/api/v1/audit", None), statuses(403, 403, 200, 200, 200),
              named=False, listing=True, hub_sees_all=True),
    ("POST", "/api/v1/admin/gc"):
        Entry(lambda c, n: ("/api/v1/admin/gc", None), HUB_ONLY(200), named=False),
    ("GET", "/api/v1/admin/check"):
        Entry(lambda c, n: ("/api/v1/admin/check", None), HUB_ONLY(200), named=False),
    ("GET", "/api/v1/admin/serving/{tenant}/{name}/versions/{version}"):
        Entry(lambda c, n: ("/api/v1/admin/serving/%s/%s/versions/1" % (c.owner.name, n),
                            None), ADMIN(200)),
    ("PUT", "/api/v1/admin/serving/{tenant}/{name}/versions/{version}"):
        Entry(lambda c, n: ("/api/v1/admin/serving/%s/%s/versions/1" % (c.owner.name, n),
                            {"cache": True}), ADMIN(200), fresh=new_servable),
    ("DELETE", "/api/v1/admin/serving/{tenant}/{name}/versions/{version}"):
        Entry(lambda c, n: ("/api/v1/admin/serving/%s/%s/versions/1" % (c.owner.name, n),
                            None), ADMIN(200), fresh=new_servable,
              prepare=lambda c, n: c.as_owner("PUT", "/api/v1/admin/serving/%s/%s/versions/1"
                                              % (c.owner.name, n), {"cache": True}, "admin")),
    ("GET", "/api/v1/search"):
        Entry(lambda c, n: ("/api/v1/search?q=" + c.secret, None), EVERYONE(200),
              named=False, listing=True),
    ("GET", "/api/v1/{kind:servables|datasets}"):
        Entry(lambda c, n: ("/api/v1/servables?per_page=100", None), EVERYONE(200),
              named=False, listing=True),
    ("GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}"):
        Entry(lambda c, n: (obj(c, n), None), READ(200)),
    ("DELETE", "/api/v1/{kind:servables|datasets}/{tenant}/{name}"):
        Entry(lambda c, n: (obj(c, n), None), WRITE(200), fresh=new_servable),
    # Publishing into another tenant is 403 (docs/api.md, "Publish"), also for the hub admin.
    ("POST", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions"):
        Entry(lambda c, n: (obj(c, n, "/versions"), publish_body(c, n)),
              statuses(403, 201, 201, 403, 403), fresh=new_name),
    ("GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}"):
        Entry(lambda c, n: (obj(c, n, "/versions/1"), None), READ(200)),
    ("DELETE", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}"):
        Entry(lambda c, n: (obj(c, n, "/versions/1"), None), WRITE(200), fresh=new_servable),
    ("GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/archive"):
        Entry(lambda c, n: (obj(c, n, "/versions/1/archive"), None), READ(200)),
    ("GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/cite"):
        Entry(lambda c, n: (obj(c, n, "/versions/1/cite?format=ris"), None), READ(200)),
    ("GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/cite"):
        Entry(lambda c, n: (obj(c, n, "/cite"), None), READ(200)),
    ("GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/readme"):
        Entry(lambda c, n: (obj(c, n, "/versions/1/readme"), None), READ(200)),
    ("GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/readme"):
        Entry(lambda c, n: (obj(c, n, "/readme"), None), READ(200)),
    ("PUT", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/aliases/{alias}"):
        Entry(lambda c, n: (obj(c, n, "/aliases/prod"), {"version": 1}), WRITE(200),
              fresh=new_servable),
    ("DELETE", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/aliases/{alias}"):
        Entry(lambda c, n: (obj(c, n, "/aliases/prod"), None), WRITE(200), fresh=new_servable,
              prepare=lambda c, n: c.as_owner("PUT", obj(c, n, "/aliases/prod"),
                                              {"version": 1})),
    ("PUT", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/visibility"):
        Entry(lambda c, n: (obj(c, n, "/visibility"), {"visibility": "private"}), WRITE(200),
              fresh=new_servable),
    ("POST", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/shares"):
        Entry(lambda c, n: (obj(c, n, "/shares"), {"tenant": c.third}), WRITE(200),
              fresh=new_servable),
    ("DELETE", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/shares/{other}"):
        Entry(lambda c, n: (obj(c, n, "/shares/" + c.third), None), WRITE(200), fresh=new_servable,
              prepare=lambda c, n: c.as_owner("POST", obj(c, n, "/shares"),
                                              {"tenant": c.third})),
    ("POST", "/api/v1/servables/{tenant}/{name}/versions/{version}/verify"):
        Entry(lambda c, n: (obj(c, n, "/versions/1/verify"), None), READ(200)),
    ("POST", "/api/v1/servables/{tenant}/{name}/verify"):
        Entry(lambda c, n: (obj(c, n, "/verify"), None), READ(200)),
    # Worker output is the owner's: its readers may not read it, other tenants find nothing.
    ("GET", "/api/v1/servables/{tenant}/{name}/versions/{version}/logs"):
        Entry(lambda c, n: (obj(c, n, "/versions/1/logs"), None), WRITE(200)),
    ("GET", "/api/v1/servables/{tenant}/{name}/logs"):
        Entry(lambda c, n: (obj(c, n, "/logs?tail=5"), None), WRITE(200)),
}

# Declared access (orrery routes) -> the roles of the owner's tenant that must succeed.
ACCESS_SUCCEEDS = {
    "anyone": ROLES, "any token": ROLES, "reader": ("reader", "publisher", "admin"),
    "publisher": ("publisher", "admin"), "admin": ("admin",), "hub admin": ("hub_admin",),
}


class RouteMatrixTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.owner = s.new_tenant(("reader", "publisher", "admin"))
        cls.other = s.new_tenant(("admin",))
        cls.third = s.create_tenant()
        cls.secret = "secret-" + secrets.token_hex(4)
        s.publish_ok(cls.owner.name, cls.secret, publish_body(cls, cls.secret),
                     cls.owner["publisher"])
        cls.loaded = set()
        cls.ensure_loaded(cls.secret)
        status, data = s.post("/api/v1/jobs/code", cls.owner["publisher"], None, body=JOB_CODE,
                              headers={"Content-Type": "application/x-tar"})
        hub.expect(status, data, 201, "upload job code")
        cls.job_code = data["digest"]
        cls.job = new_job(cls)
        # Expires one second from now; revoked at once.
        cls.expiring = s.create_token(cls.owner.name, "admin", expires_in_s=1)
        revoked = s.create_token(cls.owner.name, "admin")
        hub.expect(*s.delete("/api/v1/tokens/%s" % revoked["id"], s.admin), 200, "revoke")
        cls.auth = {role: "Bearer " + cls.owner[role] for role in ("reader", "publisher", "admin")}
        cls.auth["other_admin"] = "Bearer " + cls.other["admin"]
        cls.auth["hub_admin"] = "Bearer " + s.admin
        admin = cls.owner["admin"]
        cls.auth.update({
            "none": None, "garbage": "Bearer garbage", "no scheme": admin, "basic": "Basic " + admin,
            "empty bearer": "Bearer ", "short": "Bearer orr_" + secrets.token_hex(8),
            "upper hex": "Bearer orr_" + admin[4:].upper(), "truncated": "Bearer " + admin[:-1],
            "wrong": "Bearer orr_" + secrets.token_hex(32),
            "expired": "Bearer " + cls.expiring["token"], "revoked": "Bearer " + revoked["token"],
        })
        cls.wait_until_expired(cls.expiring["expires_at"])

    @staticmethod
    def wait_until_expired(expires_at):
        """Expiry is a point in wall-clock time (whole seconds): wait until it has passed."""
        at = calendar.timegm(time.strptime(expires_at[:19], "%Y-%m-%dT%H:%M:%S"))
        while time.time() < at + 0.05:
            time.sleep(max(0.01, at + 0.05 - time.time()))

    # -- the owner's state

    @classmethod
    def as_owner(cls, method, path, body=None, role="publisher"):
        kw = {"json_body": body} if isinstance(body, dict) else {}
        status, data = cls.server.request(method, path, cls.owner[role], **kw)
        hub.expect(status, data, 200, "%s %s as the owner's %s" % (method, path, role))

    @classmethod
    def ensure_loaded(cls, name):
        status, data = cls.server.post("/v2/repository/models/%s/%s/load"
                                       % (cls.owner.name, name), cls.owner["reader"])
        hub.expect(status, data, 200, "load %s" % name)

    def target(self, entry):
        return entry.fresh(self) if entry.fresh else self.secret

    # -- requests

    def call(self, method, entry, name, auth):
        path, body = entry.build(self, name)
        headers = {} if auth is None else {"Authorization": auth}
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/x-tar"
            return self.server.request_full(method, path, body=body, headers=headers)
        return self.server.request_full(method, path, json_body=body, headers=headers)

    def check_route(self, key):
        entry, method = ROUTES[key], key[0]
        for cred, message in UNAUTHENTICATED.items():
            with self.subTest(credential=cred):
                status, data, _ = self.call(method, entry, self.target(entry), self.auth[cred])
                if key == ("GET", "/v2/health/live"):
                    self.assertEqual((status, data), (200, {"live": True}))
                    continue
                self.assertError((status, data), 401)
                self.assertEqual(data, {"error": message})
        for role in ROLES:
            with self.subTest(credential=role):
                name = self.target(entry)
                if entry.prepare:
                    entry.prepare(self, name)
                status, data, headers = self.call(method, entry, name, self.auth[role])
                want = entry.expect[role]
                if want >= 400:
                    self.assertError((status, data), want)
                else:
                    self.assertEqual(status, want, data)
                if entry.listing and (role == "other_admin" or
                                      (role == "hub_admin" and not entry.hub_sees_all)):
                    text = data if isinstance(data, bytes) else json.dumps(data).encode()
                    self.assertNotIn(self.secret.encode(), text,
                                     "%s shows a private name to %s" % (key, role))
                if entry.named and want == 404:
                    self.assertInvisibleIsAbsent(key, name, (status, data, headers), role)

    def assertInvisibleIsAbsent(self, key, name, answer, role):
        """The answer for a private `name` equals, byte for byte, the answer for a name never
        published (of the same length), once the names are swapped."""
        ghost = "9" * len(name) if name.isdigit() else "g" * len(name)
        absent = self.call(key[0], ROUTES[key], ghost, self.auth[role])
        swap = lambda v: json.loads(json.dumps(v).replace(ghost, name)) \
            if not isinstance(v, bytes) else v.replace(ghost.encode(), name.encode())
        self.assertEqual((answer[0], answer[1]), (absent[0], swap(absent[1])),
                         "%s: an invisible %s differs from an absent one for %s"
                         % (key, name, role))
        drop = ("content-length",)
        self.assertEqual({k: v for k, v in answer[2].items() if k not in drop},
                         {k: v for k, v in absent[2].items() if k not in drop})

    # -- the tests

    def test_every_route_has_an_entry(self):
        r = run_cli(["routes", "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        routes = {(x["method"], x["path"]): x for x in json.loads(r.stdout)["routes"]}
        self.assertEqual(sorted(set(routes) - set(ROUTES)), [], "routes without a matrix entry")
        self.assertEqual(sorted(set(ROUTES) - set(routes)), [], "entries for no route")
        for key, route in routes.items():
            with self.subTest(route=key):
                succeeding = tuple(r for r in ROLES if ROUTES[key].expect[r] < 400)
                want = ACCESS_SUCCEEDS[route["access"]]
                for role in want:
                    self.assertIn(role, succeeding, "declared access %r" % route["access"])
                # Nobody less privileged than the declared access succeeds in the owner's tenant.
                owner_roles = [r for r in ("reader", "publisher", "admin") if r in succeeding]
                if route["access"] in ("publisher", "admin", "hub admin"):
                    self.assertEqual(sorted(owner_roles),
                                     sorted(r for r in want if r != "hub_admin"))


def _add_route_tests():
    for key in ROUTES:
        name = "test_" + "_".join([key[0].lower()] + [
            p.strip("{}").split(":")[0] for p in key[1].split("/") if p]).replace("-", "_")
        setattr(RouteMatrixTest, name, lambda self, key=key: self.check_route(key))


_add_route_tests()


if __name__ == "__main__":
    unittest.main()
