"""A publish is all-or-nothing, even when the server is SIGKILLed in the middle of it."""

import http.client
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
import unittest

import hub

FILES = 100
FILE_SIZE = 1200 * 1024  # ~120 MB in all


def list_files(root):
    out = set()
    for dirpath, _, filenames in os.walk(root):
        out.update(os.path.join(dirpath, f) for f in filenames)
    return out


class CrashTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(hub.BIN):
            raise unittest.SkipTest("no orrery binary at %s" % hub.BIN)
        cls.tmp = tempfile.mkdtemp(prefix="orrery-crash-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        pkg = os.path.join(cls.tmp, "pkg")
        cls.expected = {}
        for i in range(FILES):
            rel = "shard-%03d.bin" % i if i % 10 else "sub/dir/shard-%03d.bin" % i
            data = os.urandom(FILE_SIZE)
            os.makedirs(os.path.dirname(os.path.join(pkg, rel)), exist_ok=True)
            with open(os.path.join(pkg, rel), "wb") as f:
                f.write(data)
            cls.expected[rel] = hub.sha256(data)
        text = hub.to_yaml(hub.manifest("big", list(cls.expected), title="Big package")).encode()
        with open(os.path.join(pkg, "orrery.yaml"), "wb") as f:
            f.write(text)
        cls.expected["orrery.yaml"] = hub.sha256(text)
        cls.digest = hub.sha256("".join("%s  %s\n" % (cls.expected[p], p)
                                        for p in sorted(cls.expected)).encode())
        cls.tar_path = os.path.join(cls.tmp, "big.tar")
        with tarfile.open(cls.tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel in sorted(cls.expected):
                tar.add(os.path.join(pkg, rel), arcname=rel, recursive=False)
        cls.tar_size = os.path.getsize(cls.tar_path)
        shutil.rmtree(pkg)

    # -- helpers

    def setup_server(self):
        s = hub.Server()
        self.addCleanup(s.cleanup)
        s.start()
        self.t = s.new_tenant(("publisher",))
        small, _ = hub.package("big", {"small.bin": b"version one"})
        v1 = s.publish_ok(self.t.name, "big", small, self.t["publisher"])
        self.assertEqual(v1["version"], 1)
        return s

    def upload(self, s, result):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=300,
                                              blocksize=1 << 20)
            with open(self.tar_path, "rb") as f:
                conn.request("POST", "/api/v1/servables/%s/big/versions" % self.t.name, body=f,
                             headers={"Authorization": "Bearer " + self.t["publisher"],
                                      "Content-Type": "application/x-tar",
                                      "Content-Length": str(self.tar_size)})
                resp = conn.getresponse()
                result["status"] = resp.status
                result["body"] = resp.read()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            result["error"] = e

    def file_rows(self, s):
        """(path, digest) of every file row in the catalog."""
        db = s.catalog()
        rows = []
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                cols = [r[1] for r in db.execute('PRAGMA table_info("%s")' % table)]
                dcol = next((c for c in ("sha256", "blob_sha256", "digest", "blob_digest", "blob")
                             if c in cols), None)
                if dcol and "path" in cols:
                    rows += db.execute('SELECT path, "%s" FROM "%s"' % (dcol, table)).fetchall()
        finally:
            db.close()
        self.assertTrue(rows, "found no file rows (a table with path and sha256 columns)")
        return rows

    def verify_after_restart(self, s, before_blobs):
        """Checks the catalog and blobs after a crash; returns the next version number."""
        self.assertCheckOk(s)
        self.assertEqual(s.tmp_files(), [], "temp blob files survived the restart")
        spool = os.path.join(s.data_dir, "tmp")
        self.assertEqual(sorted(list_files(spool)), [], "upload temp files survived the restart")
        on_disk = s.blob_digests()
        for path, digest in self.file_rows(s):
            self.assertIn(digest, on_disk, "file row %s points at a missing blob" % path)
        tok = self.t["publisher"]
        desc = self.assertStatus(s.describe(self.t.name, "big", tok), 200)
        versions = [v["version"] for v in desc["versions"]]
        if versions == [1]:
            self.assertEqual(desc["latest_version"], 1)
            status, _ = s.version(self.t.name, "big", 2, tok)
            self.assertEqual(status, 404)
            return 2, False
        self.assertEqual(versions, [1, 2])
        self.assertEqual(desc["latest_version"], 2)
        v = self.assertStatus(s.version(self.t.name, "big", 2, tok), 200)
        self.assertEqual(v["digest"], self.digest)
        files = s.download_files(self.t.name, "big", 2, tok)
        self.assertEqual({p: hub.sha256(d) for p, (d, _) in files.items()}, self.expected)
        return 3, True

    def retry(self, s, want_version):
        with open(self.tar_path, "rb") as f:
            status, v = s.publish(self.t.name, "big", f.read(), self.t["publisher"])
        self.assertEqual(status, 201, v)
        self.assertEqual(v["version"], want_version)
        self.assertEqual(v["digest"], self.digest)
        self.assertEqual({f["path"]: f["sha256"] for f in v["files"]}, self.expected)
        self.assertCheckOk(s)

    def assertCheckOk(self, s):
        report = s.check()
        self.assertEqual((report.get("ok"), report.get("problems")), (True, []), report)

    def assertStatus(self, resp, want):
        self.assertEqual(resp[0], want, resp[1])
        return resp[1]

    # -- tests

    def test_kill_while_writing_blobs(self):
        hits = 0
        # A delay after the first new file under blobs/, or "last": as soon as every
        # blob of the package is in place (just before or after the commit).
        for delay in (0.0, 0.03, 0.1, "last"):
            with self.subTest(delay=delay):
                s = self.setup_server()
                before = list_files(s.blob_root)
                before_blobs = s.blob_files()
                result = {}
                th = threading.Thread(target=self.upload, args=(s, result))
                th.start()
                deadline = time.monotonic() + 180
                appeared = False
                while time.monotonic() < deadline and th.is_alive():
                    if delay == "last":
                        new = set(s.blob_files()) - set(before_blobs)
                        if len(new) >= len(self.expected):
                            appeared = True
                            break
                    elif list_files(s.blob_root) - before:
                        appeared = True
                        break
                    time.sleep(0.001)
                if delay != "last" and delay:
                    time.sleep(delay)
                finished = "status" in result
                s.kill()
                th.join(60)
                self.assertFalse(th.is_alive())
                if appeared and not finished:
                    hits += 1
                s.start()
                next_version, present = self.verify_after_restart(s, before_blobs)
                sys.stderr.write("\n  delay %s: killed %s, version 2 %s after restart"
                                 % (delay, "mid-publish" if appeared and not finished
                                    else "after the publish" if finished else "(nothing seen)",
                                    "present" if present else "absent"))
                if finished and result.get("status") == 201:
                    self.assertTrue(present, "a publish answered 201 but is gone after a crash")
                self.retry(s, next_version)
                s.cleanup()
        self.assertGreater(hits, 0, "never killed the server in the middle of a publish")

    def test_kill_during_upload(self):
        s = self.setup_server()
        before_blobs = s.blob_files()
        sock = socket.create_connection(("127.0.0.1", s.port))
        try:
            head = ("POST /api/v1/servables/%s/big/versions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Authorization: Bearer %s\r\nContent-Type: application/x-tar\r\n"
                    "Content-Length: %d\r\n\r\n" % (self.t.name, self.t["publisher"],
                                                   self.tar_size))
            sock.sendall(head.encode())
            with open(self.tar_path, "rb") as f:
                sock.sendall(f.read(self.tar_size // 3))
            time.sleep(0.2)
            s.kill()
        finally:
            sock.close()
        s.start()
        self.assertEqual(self.verify_after_restart(s, before_blobs), (2, False))
        self.assertEqual(s.blob_files(), before_blobs)
        self.retry(s, 2)

    def test_restart_after_clean_stop_keeps_everything(self):
        s = self.setup_server()
        with open(self.tar_path, "rb") as f:
            v = s.publish_ok(self.t.name, "big", f.read(), self.t["publisher"])
        self.assertEqual(v["version"], 2)
        self.assertEqual(s.stop(), 0, "orrery serve did not exit 0 on SIGTERM")
        s.start()
        self.assertEqual(self.verify_after_restart(s, None), (3, True))


if __name__ == "__main__":
    unittest.main()
