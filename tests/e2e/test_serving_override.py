"""Admin overrides of a servable version's serving settings (docs/api.md, "Serving overrides").

Proves, through the real server: only admins of the owning tenant may read, set or clear an
override (403 otherwise, 404 for what they cannot see); bad settings are refused with 422 naming
the field, and change nothing; batching set on a servable published without it takes effect on
the next requests (the batch-size metric appears, a request over the new max_batch_size is
refused, requests queued behind a busy instance share backend calls, exactly as the batch
limit cuts them) and clearing the override brings the
manifest's settings back; `cache: true` is stored and shown as effective; every change is audited
and the catalog check stays clean, also after the version is deleted with its override.
"""

import json
import os
import tempfile
import threading
import unittest

import hub
import oip
from hub import HubTestCase, q, run_cli

# Adds 1; every answer also carries, per row, the row count of the backend call it was part of.
CODE = '''
import numpy as np

def predict(inputs):
    x = inputs["x"]
    return {"y": x + 1, "rows": np.full((x.shape[0], 1), x.shape[0], dtype=np.int64)}
'''
IO = ([("x", "FP32", [-1, 4])], [("y", "FP32", [-1, 4]), ("rows", "INT64", [-1, 1])])
# The same with an input `port`: a call whose first row has a port waits at the test's gate
# (oip.Gate) until the test lets it go, so the instance is busy for as long as the test says.
GATED_IO = ([("x", "FP32", [-1, 4]), ("port", "INT64", [-1])], IO[1])
FIXED_IO = ([("x", "FP32", [4])], [("y", "FP32", [4]), ("rows", "INT64", [1])])
MAX = 8
BATCHING = {"max_batch_size": MAX, "max_queue_delay_us": 200000}
MANIFEST_SETTINGS = {"batching": {"max_batch_size": 0, "max_queue_delay_us": 0,
                                  "preferred_batch_sizes": []}, "cache": False,
                     "queue": {"max_size": 0, "priority_levels": 0, "default_priority_level": 0,
                               "default_timeout_us": 0}}


class ServingOverrideTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        tenant = hub.unique("t")  # "tuned" reaches the test's gate: it may use the network
        cls.server_args = ("--allow-network", tenant + "/tuned")
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher", "admin", "reader"), name=tenant)
        cls.other = cls.server.new_tenant(("admin",))
        for name in ("plain", "cached", "queued", "audited", "shortlived", "viacli"):
            cls.publish(name, IO)
        cls.publish("fixed", FIXED_IO)
        cls.publish("tuned", GATED_IO, oip.GATED_ROWS_CODE, config={"network": True})

    @classmethod
    def publish(cls, name, io, code=CODE, **fields):
        tar = oip.py_package(name, code, *io, **fields)
        cls.server.publish_ok(cls.t.name, name, tar, cls.t["publisher"])

    def path(self, name, version=1, tenant=None):
        return "/api/v1/admin/serving/%s/%s/versions/%s" % (q(tenant or self.t.name), q(name),
                                                            q(version))

    def admin(self, method, name, body=None, version=1):
        return self.server.request(method, self.path(name, version), self.t["admin"],
                                   json_body=body)

    def infer(self, name, body):
        status, data, _ = oip.infer_json(self.server, self.t["publisher"],
                                         "%s/%s" % (self.t.name, name), body)
        return status, data

    def batch_count(self, name):
        text = self.server.get("/metrics", self.t["publisher"])[1].decode()
        return oip.metric_value(text, "orrery_inference_batch_size_count",
                                "%s/%s" % (self.t.name, name))

    def assertNoOverride(self, name):
        data = self.assertStatus(self.admin("GET", name), 200)
        self.assertEqual(data["override"], {})
        self.assertEqual(data["effective"], MANIFEST_SETTINGS)

    def test_non_admins_are_refused(self):
        for role in ("publisher", "reader"):
            for method, body in (("GET", None), ("PUT", {"cache": True}), ("DELETE", None)):
                resp = self.server.request(method, self.path("plain"), self.t[role],
                                           json_body=body)
                self.assertError(resp, 403, "%s %s" % (role, method), message="serving "
                                 "overrides need an admin token (role %s)" % role)
        self.assertNoOverride("plain")
        self.assertError(self.server.get(self.path("plain")), 401,
                         message="missing token (send Authorization: Bearer <token>)")

    def test_unknown_servable_or_version_is_not_found(self):
        t = self.t.name
        for name, version, message in (
                ("nothing", 1, "servable %s/nothing not found" % t),
                ("plain", 9, "version 9 of %s/plain not found" % t),
                ("plain", "prod", "version prod of %s/plain not found" % t)):
            for method, body in (("GET", None), ("PUT", {"cache": True}), ("DELETE", None)):
                self.assertError(self.admin(method, name, body, version), 404,
                                 "%s %s:%s" % (method, name, version), message=message)
        # Another tenant's admin does not see a private servable.
        resp = self.server.put(self.path("plain"), self.other["admin"], {"cache": True})
        self.assertError(resp, 404, message="servable %s/plain not found" % t)
        # No override to clear.
        self.assertError(self.admin("DELETE", "plain"), 404,
                         message="servable %s/plain:1 has no serving override" % t)
        self.assertError(self.admin("GET", "plain", version="0"), 400,
                         message="version number must be positive, without leading zeros")

    def test_bad_settings_are_refused_naming_the_field(self):
        cases = [
            ("fixed", {"batching": {"max_batch_size": 4}},
             "batching: signature.inputs[0] 'x' must have -1 as its first dimension (the batch "
             "dimension) to be batched"),
            ("plain", {"batching": {"max_batch_size": 4, "timeout_us": 5}},
             "batching.timeout_us: unknown key"),
            ("plain", {"queue_size": 3}, "queue_size: unknown key"),
            ("plain", {"batching": {"max_batch_size": 5000}}, "batching.max_batch_size: must be 0..4096"),
            ("plain", {"batching": {"max_batch_size": -1}}, "batching.max_batch_size: must be 0..4096"),
            ("plain", {"batching": {"max_batch_size": 4, "max_queue_delay_us": 2000000}},
             "batching.max_queue_delay_us: must be 0..1000000"),
            ("plain", {"batching": {"max_batch_size": 4, "preferred_batch_sizes": [8]}},
             "batching.preferred_batch_sizes[0]: must be 1..max_batch_size (4)"),
            ("plain", {"batching": {"max_batch_size": "8"}},
             "batching.max_batch_size: must be an integer"),
            ("plain", {"cache": "yes"}, "cache: must be true or false"),
            ("plain", {"queue": {"priority_levels": 17}}, "queue.priority_levels: must be 0..16"),
            ("plain", {"queue": {"max_size": 0}}, "queue.max_size: must be 1..65536"),
            ("plain", {"queue": {"default_priority_level": 2}},
             "queue.default_priority_level: only allowed when priority_levels > 0"),
        ]
        for name, body, message in cases:
            self.assertError(self.admin("PUT", name, body), 422, repr(body),
                             message="serving override: " + message)
        resp = self.server.request("PUT", self.path("plain"), self.t["admin"], body=b"[1]",
                                   headers={"Content-Type": "application/json"})
        self.assertError(resp, 400, message="request body must be a JSON object")
        for name in ("plain", "fixed"):
            self.assertNoOverride(name)

    def tuned(self, rows, base, port=0):
        req = oip.rows_request(rows, base)
        req["inputs"].append({"name": "port", "datatype": "INT64", "shape": [rows],
                              "data": [port] * rows})
        return self.infer("tuned", req)

    def test_batching_override_applies_to_the_next_requests(self):
        status, data = self.tuned(MAX + 1, 0)  # loads it; not batched
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.output_values(data, {}, "rows"), [MAX + 1] * (MAX + 1))
        self.assertIsNone(self.batch_count("tuned"))

        data = self.assertStatus(self.admin("PUT", "tuned", {"batching": BATCHING}), 200)
        self.assertEqual(data["servable"], "%s/tuned:1" % self.t.name)
        self.assertEqual(data["override"], {"batching": BATCHING})
        self.assertEqual(data["manifest"], MANIFEST_SETTINGS)
        effective = dict(BATCHING, preferred_batch_sizes=[])
        self.assertEqual(data["effective"], dict(MANIFEST_SETTINGS, batching=effective))
        self.assertEqual(self.assertStatus(self.admin("GET", "tuned"), 200), data)

        self.assertError(self.tuned(MAX + 1, 0), 400, message="the request's batch of %d rows is "
                         "over the servable's max_batch_size %d" % (MAX + 1, MAX))
        status, data = self.tuned(2, 0)
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.output_values(data, {}, "rows"), [2, 2])
        self.assertEqual(self.batch_count("tuned"), 1)  # the batch-size histogram appeared

        # The instance is busy (a call held at the gate); 8 clients queue behind it in order.
        gate = oip.Gate()
        self.addCleanup(gate.close)
        results = {}

        def infer(i, *args):
            results[i] = self.tuned(*args)
        threads = [threading.Thread(target=infer, args=("held", 1, 0, gate.port))]
        threads[0].start()
        gate.arrivals(1)
        model = "%s/tuned" % self.t.name
        for i in range(8):
            threads.append(threading.Thread(target=infer, args=(i, 1 + i % 2, 100 * i)))
            threads[-1].start()
            self.assertTrue(oip.wait_for(lambda: oip.metric_value(
                self.server.get("/metrics", self.t["publisher"])[1].decode(),
                "orrery_inference_queue_length", model) == i + 1), "client %d not queued" % i)
        gate.release()
        for th in threads:
            th.join(60)
        self.assertEqual(results["held"][0], 200, results["held"])
        # Up to 8 rows, oldest first, a request that does not fit waiting for the next batch:
        # clients 0-4 and 6 (1+2+1+2+1+1), then 5 and 7 (2+2).
        batch_of = {0: 8, 1: 8, 2: 8, 3: 8, 4: 8, 5: 4, 6: 8, 7: 4}
        for i in range(8):
            status, data = results[i]
            self.assertEqual(status, 200, data)
            self.assertEqual(oip.output_values(data, {}, "y"),
                             [100 * i + k + 1.0 for k in range((1 + i % 2) * 4)])
            self.assertEqual(oip.output_values(data, {}, "rows"), [batch_of[i]] * (1 + i % 2),
                             "client %d" % i)
        self.assertEqual(self.batch_count("tuned"), 4)  # + the held call and two batches

        data = self.assertStatus(self.admin("DELETE", "tuned"), 200)
        self.assertEqual(data["override"], {})
        self.assertEqual(data["effective"], MANIFEST_SETTINGS)
        self.assertNoOverride("tuned")
        status, data = self.tuned(MAX + 1, 0)  # the manifest's again
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.output_values(data, {}, "rows"), [MAX + 1] * (MAX + 1))
        self.assertIsNone(self.batch_count("tuned"))

    def test_cache_override_is_stored_and_effective(self):
        data = self.assertStatus(self.admin("PUT", "cached", {"cache": True, "batching": None}),
                                 200)
        self.assertEqual(data["override"], {"cache": True})
        self.assertEqual(data["effective"], dict(MANIFEST_SETTINGS, cache=True))
        self.assertEqual(data["manifest"], MANIFEST_SETTINGS)
        self.assertEqual(self.assertStatus(self.admin("GET", "cached"), 200), data)
        for hit in (False, True):  # the response cache answers the repeat
            status, answer = self.infer("cached", oip.rows_request(1, 5))
            self.assertEqual(status, 200, answer)
            self.assertEqual(oip.output_values(answer, {}, "y"), [6.0, 7.0, 8.0, 9.0])
            self.assertEqual(answer["parameters"]["cache_hit"], hit, answer)
        # All sections null: no override left.
        data = self.assertStatus(self.admin("PUT", "cached", {"cache": None}), 200)
        self.assertEqual(data["override"], {})
        self.assertNoOverride("cached")

    def test_queue_override_sets_priority_levels(self):
        body = {"inputs": oip.rows_request(1, 0)["inputs"], "parameters": {"priority": 2}}
        # No priority levels in the manifest: any priority runs at the one level (as in Triton).
        self.assertStatus(self.infer("queued", body), 200)
        queue = {"priority_levels": 3, "max_size": 7}
        data = self.assertStatus(self.admin("PUT", "queued", {"queue": queue}), 200)
        self.assertEqual(data["effective"]["queue"], dict(queue, default_priority_level=0,
                                                          default_timeout_us=0))
        self.assertEqual(data["manifest"], MANIFEST_SETTINGS)
        status, data = self.infer("queued", body)
        self.assertEqual(status, 200, data)
        self.assertStatus(self.infer("queued", dict(body, parameters={"priority": 4})), 200)
        self.assertStatus(self.admin("DELETE", "queued"), 200)
        # The manifest's again: no levels.
        self.assertStatus(self.infer("queued", body), 200)

    def test_changes_are_audited_and_the_catalog_stays_clean(self):
        self.assertStatus(self.admin("PUT", "audited", {"cache": True}), 200)
        self.assertStatus(self.admin("DELETE", "audited"), 200)
        entries = [e for e in self.server.audit(self.t["admin"])
                   if e["object"] == "%s/audited" % self.t.name and e["action"] != "publish"]
        self.assertEqual([(e["action"], e["detail"]) for e in entries],
                         [("serving.clear", "version 1"),
                          ("serving.set", 'version 1: {"cache":true}')])
        self.assertCheckOk()

    def test_override_goes_with_its_version(self):
        self.assertStatus(self.admin("PUT", "shortlived", {"batching": BATCHING}), 200)
        obj = self.server.obj_path(self.t.name, "shortlived")
        self.assertStatus(self.server.delete(obj + "/versions/1", self.t["publisher"]), 200)
        self.assertError(self.admin("GET", "shortlived"), 404,
                         message="version 1 of %s/shortlived not found" % self.t.name)
        with self.server.catalog() as db:
            left = db.execute("SELECT count(*) FROM serving_overrides s JOIN versions v "
                              "ON v.id = s.version_id WHERE v.deleted_at IS NOT NULL").fetchone()
        self.assertEqual(left, (0,))
        self.assertCheckOk()

    def test_cli_sets_reads_and_clears(self):
        ref = "%s/viacli:1" % self.t.name
        env = {"ORRERY_URL": self.server.url, "ORRERY_TOKEN": self.t["admin"]}
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "override.json")
            with open(path, "w") as f:
                json.dump({"batching": {"max_batch_size": 4, "max_queue_delay_us": 100}}, f)
            r = run_cli(["admin", "serving", "set", ref, "--file", path, "--cache", "true"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("effective: batching: up to 4 rows, 100 us delay; cache: on", r.stdout)
        self.assertIn("manifest:  batching: off; cache: off", r.stdout)
        r = run_cli(["admin", "serving", "get", ref, "--json"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["override"],
                         {"batching": {"max_batch_size": 4, "max_queue_delay_us": 100},
                          "cache": True})
        r = run_cli(["admin", "serving", "set", ref, "--cache", "maybe"], env)
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (2, "", "orrery: --cache: maybe not in {true,false,manifest}\n"
                                 "Run with --help for more information.\n"))
        r = run_cli(["admin", "serving", "get", "%s/viacli" % self.t.name], env)
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (2, "", "orrery: give the version: %s/viacli:VERSION\n" % self.t.name))
        publisher = dict(env, ORRERY_TOKEN=self.t["publisher"])
        r = run_cli(["admin", "serving", "clear", ref], publisher)
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (1, "", "orrery: serving overrides need an admin token (role "
                                 "publisher) (HTTP 403)\n"))
        r = run_cli(["admin", "serving", "clear", ref], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("override:  none", r.stdout)
        self.assertNoOverride("viacli")


if __name__ == "__main__":
    unittest.main()
