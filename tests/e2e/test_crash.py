"""A publish is all-or-nothing (README "Durability", docs/api.md "Publish"), proven at every
step of its protocol rather than by chance.

An LD_PRELOAD shim (tests/faults/fault_shim.c) makes one chosen system call of the server
fault: it SIGKILLs the server right there, or makes the call fail with EIO or ENOSPC. The
points are the steps of a publish: the upload staged, each blob created, written, fsynced,
renamed and its directory fsynced, the catalog's WAL written and synced.
- Killed at any step, the restarted hub has the whole version or none of it (the one the test
  knows for that step), `orrery check` is clean, no temp or spool file is left, and `orrery gc`
  removes exactly the blobs the interrupted publish had put in place, nothing else.
- With a failing write or sync, the publish answers the one documented error (500 or 507,
  no server path), nothing is acknowledged or left behind (not even a blob whose directory
  sync failed after its rename), the check stays clean and the next publish succeeds.
Every case first asserts that its fault really fired.
"""

import http.client
import os
import unittest

import hub
from hub import HubTestCase

SHIM = os.environ.get("ORRERY_FAULT_SHIM") or os.path.join(
    os.path.dirname(hub.BIN), "tests", "liborrery_fault_shim.so")
FILES = 5           # plus orrery.yaml: six blobs
FILE_SIZE = 96 * 1024
# Count only from the second package upload on: the first publishes version 1.
AFTER_UPLOAD = "after=create:*/tmp/upload-*#2"
BLOB_TEMP = "*/blobs/tmp/blob-*"
SHARD = "*/blobs/[0-9a-f][0-9a-f]"
WAL = "*/catalog.db-wal"

# (what, fault, version 2 present after the restart, blobs the publish left in place)
KILL_POINTS = [
    ("upload being staged", "op=write path=*/tmp/upload-* nth=1", False, 0),
    ("upload staged", "op=close path=*/tmp/upload-* nth=1", False, 0),
    ("first blob created", "op=create path=%s nth=1" % BLOB_TEMP, False, 0),
    ("first blob written", "op=write path=%s nth=1" % BLOB_TEMP, False, 0),
    ("first blob fsynced", "op=sync path=%s nth=1" % BLOB_TEMP, False, 0),
    ("first blob renamed", "op=rename path=%s nth=1" % BLOB_TEMP, False, 0),
    ("first blob's directory fsynced", "op=sync path=%s nth=1" % SHARD, False, 1),
    ("third blob renamed", "op=rename path=%s nth=3" % BLOB_TEMP, False, 2),
    ("last blob renamed", "op=rename path=%s nth=%d" % (BLOB_TEMP, FILES + 1), False, FILES),
    ("last blob's directory fsynced", "op=sync path=%s nth=%d" % (SHARD, FILES + 1), False,
     FILES + 1),
    ("catalog transaction written", "op=write path=%s nth=1" % WAL, False, FILES + 1),
    # The commit's frames are in the WAL before it is synced: a process crash keeps them.
    ("catalog transaction synced", "op=sync path=%s nth=1" % WAL, True, 0),
]

NO_SPACE = "not enough storage space left on the server"
# (what, fault, status, error message). The archive holds orrery.yaml, then f0.bin .. f4.bin.
IO_ERRORS = [
    ("upload staging out of space", "op=write path=*/tmp/upload-* nth=1 do=ENOSPC", 507,
     NO_SPACE),
    ("blob write out of space", "op=write path=%s nth=1 do=ENOSPC" % BLOB_TEMP, 507,
     "file orrery.yaml: " + NO_SPACE),
    ("blob write EIO", "op=write path=%s nth=2 do=EIO" % BLOB_TEMP, 500,
     "file f0.bin: storage error: Input/output error"),
    ("blob fsync EIO", "op=sync path=%s nth=3 do=EIO" % BLOB_TEMP, 500,
     "file f1.bin: storage error: Input/output error"),
    ("blob rename EIO", "op=rename path=%s nth=1 do=EIO" % BLOB_TEMP, 500,
     "file orrery.yaml: storage error: Input/output error"),
    ("directory fsync EIO after the rename", "op=sync path=%s nth=2 do=EIO" % SHARD, 500,
     "file f0.bin: storage error: Input/output error"),
    ("catalog write out of space", "op=write path=%s nth=1 do=ENOSPC" % WAL, 507,
     NO_SPACE + " for the catalog"),
    ("catalog sync EIO", "op=sync path=%s nth=1 do=EIO" % WAL, 500,
     "sqlite: exec: disk I/O error"),
]


class CrashTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.exists(SHIM):
            raise RuntimeError("no fault shim at %s (build the orrery_fault_shim target, or set "
                               "ORRERY_FAULT_SHIM)" % SHIM)
        files = {"f%d.bin" % i: os.urandom(FILE_SIZE) for i in range(FILES)}
        cls.tar, cls.expected = hub.package("big", files)
        cls.digest = hub.package_digest(cls.expected)

    # -- helpers

    def faulty_server(self, fault):
        """A server of this test with `fault` armed, and a tenant with version 1 published."""
        log = os.path.join(self.server.tmp, "fault-%s.log" % hub.unique("f"))
        s = hub.Server(env={"LD_PRELOAD": SHIM, "ORRERY_FAULT": fault + " " + AFTER_UPLOAD,
                            "ORRERY_FAULT_LOG": log})
        self.addCleanup(s.cleanup)
        s.start()
        s.fault_log = log
        self.t = s.new_tenant(("publisher",))
        small, _ = hub.package("big", {"small.bin": b"version one"})
        self.assertEqual(s.publish_ok(self.t.name, "big", small, self.t["publisher"])["version"], 1)
        return s

    def assertFired(self, s, fault):
        with open(s.fault_log) as f:
            fired = f.read()
        self.assertEqual(fired.count("fired "), 1, "fault %r: %r" % (fault, fired))

    def referenced(self, s):
        db = s.catalog()
        try:
            return {row[0] for row in db.execute(
                "SELECT f.blob FROM files f JOIN versions v ON v.id = f.version_id "
                "WHERE v.deleted_at IS NULL")}
        finally:
            db.close()

    def assertNoTempFiles(self, s):
        self.assertEqual(s.tmp_files(), [], "temp blob files were left")
        self.assertEqual(os.listdir(os.path.join(s.data_dir, "tmp")), [], "spool files were left")

    def assertVersion2(self, s, present):
        tok = self.t["publisher"]
        desc = self.assertStatus(s.describe(self.t.name, "big", tok), 200)
        if not present:
            self.assertEqual([v["version"] for v in desc["versions"]], [1])
            self.assertEqual(desc["latest_version"], 1)
            return
        self.assertEqual([v["version"] for v in desc["versions"]], [1, 2])
        v = self.assertStatus(s.version(self.t.name, "big", 2, tok), 200)
        self.assertEqual(v["digest"], self.digest)
        files = s.download_files(self.t.name, "big", 2, tok)
        self.assertEqual(files, self.expected)

    def publish_again(self, s, version):
        v = s.publish_ok(self.t.name, "big", self.tar, self.t["publisher"])
        self.assertEqual((v["version"], v["digest"]), (version, self.digest))
        self.assertCheckOk(s)

    # -- tests

    def test_a_kill_at_every_step_of_a_publish(self):
        for what, fault, present, left in KILL_POINTS:
            with self.subTest(point=what):
                s = self.faulty_server(fault + " do=kill")
                try:
                    s.publish(self.t.name, "big", self.tar, self.t["publisher"])
                    self.fail("the publish was answered; the server should have died at " + what)
                except (OSError, http.client.HTTPException):
                    pass  # the server died under the request
                self.assertEqual(s.proc.wait(30), -9, "the server was not killed at " + what)
                s.proc = None
                self.assertFired(s, fault)
                s.start()
                self.assertCheckOk(s)
                self.assertNoTempFiles(s)
                self.assertVersion2(s, present)
                stray = set(s.blob_digests()) - self.referenced(s)
                self.assertEqual(len(stray), left, "blobs left by the publish killed at " + what)
                gc = self.assertStatus(s.post("/api/v1/admin/gc?min_age_s=0", s.admin), 200)
                self.assertEqual(gc["removed"], left)
                self.assertEqual(set(s.blob_digests()), self.referenced(s))
                self.publish_again(s, 3 if present else 2)

    def test_b_a_failing_write_or_sync_fails_the_publish_and_leaves_nothing(self):
        for what, fault, status, message in IO_ERRORS:
            with self.subTest(error=what):
                s = self.faulty_server(fault)
                blobs = s.blob_files()
                answer = s.publish(self.t.name, "big", self.tar, self.t["publisher"])
                self.assertFired(s, fault)
                self.assertError(answer, status)
                self.assertEqual(answer[1], {"error": message})
                self.assertVersion2(s, False)
                self.assertEqual(s.blob_files(), blobs, "a failed publish left blobs")
                self.assertNoTempFiles(s)
                self.assertCheckOk(s)
                self.publish_again(s, 2)

    def test_c_restart_after_a_clean_stop_keeps_everything(self):
        s = self.faulty_server("op=open path=/nothing nth=1 do=kill")
        s.publish_ok(self.t.name, "big", self.tar, self.t["publisher"])
        self.assertEqual(s.stop(), 0, "orrery serve did not exit 0 on SIGTERM")
        s.start()
        self.assertCheckOk(s)
        self.assertVersion2(s, True)


if __name__ == "__main__":
    unittest.main()
