"""A full disk (README "Serving configuration", docs/api.md "Publish").

The hub's data directory lives on a small tmpfs of its own (the tests run as root). Proves:
- a publish that would leave less than --min-free-bytes free is refused before anything is
  written: 507 with a generic message, no upload spool, temp file or blob left, check clean;
- with the file system filled to the last byte by something else, deleting versions and
  objects, creating tenants and creating and revoking tokens still succeed (the catalog gives
  up its ballast file), a publish is 507, loaded servables keep answering, and once space is
  back publishing works again;
- /metrics shows the hub admin the free space, the size and the reserve;
- no error body ever holds the data directory's path.
"""

import errno
import os
import subprocess
import tempfile
import unittest

import hub
import oip
from hub import HubTestCase

MIB = 1 << 20
RESERVE = 8 * MIB
ADD_ONE = '''
def predict(inputs):
    return {"y": inputs["x"] + 1}
'''
SIG = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])
FULL_MESSAGE = ("not enough storage space left on the server for this package (the hub keeps a "
                "reserve so that deletes still work; an operator can free space)")


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class FullDiskTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("mounting a small tmpfs needs root (the CI runs as root)")
        cls.mount = tempfile.mkdtemp(prefix="orrery-disk-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", cls.mount],
                       check=True)
        cls.addClassCleanup(lambda: subprocess.run(["umount", "-l", cls.mount]))
        cls.data_dir = os.path.join(cls.mount, "data")
        cls.server = hub.Server(data_dir=cls.data_dir, args=["--min-free-bytes", str(RESERVE)])
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.errors = []  # every error body the hub sent
        request_full = cls.server.request_full

        def recording(*args, **kw):
            answer = request_full(*args, **kw)
            if answer[0] >= 400:
                cls.errors.append(answer[1])
            return answer
        cls.server.request_full = recording
        s = cls.server
        cls.t = s.new_tenant(("publisher", "admin"))
        s.publish_ok(cls.t.name, "adder", oip.py_package("adder", ADD_ONE, *SIG), cls.t["publisher"])
        status, data = s.post("/v2/repository/models/%s/adder/load" % cls.t.name, cls.t["publisher"])
        hub.expect(status, data, 200, "load adder")

    def tearDown(self):
        self.remove_filler()
        # No error body, from any test, names a path of the server's.
        for body in self.errors:
            text = body if isinstance(body, bytes) else repr(body).encode()
            self.assertNotIn(self.mount.encode(), text)
            self.assertNotIn(b"/data/", text)

    # -- helpers

    def package(self, name, size):
        return hub.simple_package(name, seed=os.urandom(size))[0]

    def publish(self, name, size):
        return self.server.publish(self.t.name, name, self.package(name, size), self.t["publisher"])

    def fill(self):
        """Fills the file system to its last byte with a file that is not the hub's."""
        fd = os.open(os.path.join(self.mount, "filler"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (MIB, 4096, 1):
                while True:
                    try:
                        os.write(fd, b"\0" * chunk)
                    except OSError as error:
                        self.assertEqual(error.errno, errno.ENOSPC)
                        break
        finally:
            os.close(fd)
        self.assertLess(free_bytes(self.mount), 4096)

    def remove_filler(self):
        try:
            os.remove(os.path.join(self.mount, "filler"))
        except FileNotFoundError:
            pass

    def leftovers(self):
        return (sorted(os.listdir(os.path.join(self.data_dir, "tmp"))),
                sorted(os.listdir(os.path.join(self.data_dir, "blobs", "tmp"))))

    def assertNothingLeft(self, blobs_before):
        self.assertEqual(self.leftovers(), ([], []))
        self.assertEqual(self.server.blob_files(), blobs_before)
        self.assertCheckOk()

    def assertAnswers(self):
        status, data, _ = oip.infer_json(self.server, self.t["publisher"], self.t.name + "/adder",
                                         {"inputs": [{"name": "x", "datatype": "FP64",
                                                      "shape": [1], "data": [41.0]}]})
        self.assertEqual(status, 200, data)
        self.assertEqual(oip.output_values(data, {}, "y"), [42.0])

    # -- tests

    def test_1_publish_below_the_reserve_is_refused_before_writing(self):
        s = self.server
        published = []
        for i in range(20):
            blobs_before = s.blob_files()
            status, data = self.publish("big-%d" % i, 6 * MIB)
            if status == 201:
                published.append("big-%d" % i)
                continue
            self.assertError((status, data), 507)
            self.assertEqual(data, {"error": FULL_MESSAGE})
            self.assertNothingLeft(blobs_before)
            break
        else:
            self.fail("48 MiB took 20 packages of 6 MiB")
        self.assertGreater(len(published), 0)
        self.assertGreaterEqual(free_bytes(self.mount), RESERVE - MIB)
        # A package that fits the space left beyond the reserve still goes in.
        self.assertStatus(self.publish("small", 64 * 1024), 201)
        self.assertAnswers()
        for name in published:
            self.assertStatus(s.delete(s.obj_path(self.t.name, name), self.t["publisher"]), 200)

    def test_2_a_full_disk_still_takes_deletes_tokens_and_tenants(self):
        s = self.server
        for name in ("victim", "doomed"):
            s.publish_ok(self.t.name, name, self.package(name, 2 * MIB), self.t["publisher"])
        s.publish_ok(self.t.name, "victim", self.package("victim", 2 * MIB), self.t["publisher"])
        self.fill()
        blobs_before = s.blob_files()
        status, data = self.publish("no-room", 64 * 1024)
        self.assertError((status, data), 507)
        self.assertEqual(data, {"error": FULL_MESSAGE})
        self.assertNothingLeft(blobs_before)
        self.assertAnswers()

        tenant = s.create_tenant()
        token = s.create_token(tenant, "reader")
        self.assertStatus(s.delete("/api/v1/tokens/%s" % token["id"], s.admin), 200)
        self.assertStatus(s.delete(s.obj_path(self.t.name, "victim") + "/versions/1",
                                   self.t["publisher"]), 200)
        self.assertStatus(s.delete(s.obj_path(self.t.name, "doomed"), self.t["publisher"]), 200)
        self.assertEqual(s.describe(self.t.name, "doomed", self.t["publisher"])[0], 404)
        self.assertAnswers()
        self.assertCheckOk()

        self.remove_filler()
        self.assertStatus(self.publish("after", 64 * 1024), 201)
        self.assertCheckOk()

    def test_3_a_spool_that_fills_the_disk_is_507_and_leaves_nothing(self):
        """An upload bigger than the space left (chunked, so its size is not known at the
        head) fails while it is staged."""
        s = self.server
        blobs_before = s.blob_files()
        tar = self.package("huge", 64 * MIB)
        chunks = [tar[i:i + MIB] for i in range(0, len(tar), MIB)]
        status, data = s.request("POST", "/api/v1/servables/%s/huge/versions" % self.t.name,
                                 self.t["publisher"], body=iter(chunks),
                                 headers={"Content-Type": "application/x-tar"})
        self.assertError((status, data), 507)
        self.assertEqual(data, {"error": "not enough storage space left on the server"})
        self.assertNothingLeft(blobs_before)

    def test_4_metrics_show_the_hub_admin_the_free_space(self):
        s = self.server
        status, text = s.get("/metrics", s.admin)
        self.assertEqual(status, 200)
        text = text.decode() if isinstance(text, bytes) else text
        values = {}
        for line in text.splitlines():
            if line.startswith("orrery_storage_"):
                name, value = line.split()
                values[name] = int(value)
        self.assertEqual(set(values), {"orrery_storage_free_bytes", "orrery_storage_total_bytes",
                                       "orrery_storage_reserve_bytes"})
        self.assertEqual(values["orrery_storage_total_bytes"], 48 * MIB)
        self.assertEqual(values["orrery_storage_reserve_bytes"], RESERVE)
        self.assertLessEqual(abs(values["orrery_storage_free_bytes"] - free_bytes(self.mount)),
                             MIB)
        status, text = s.get("/metrics", self.t["admin"])
        self.assertNotIn(b"orrery_storage_", text)


if __name__ == "__main__":
    unittest.main()
