"""Where model code runs, proven in the mode that runs (README "Where model code runs").

Each class starts a server in one isolation mode and first asserts that this is the mode the
server reports (/metrics orrery_worker_isolation): bubblewrap where it can run here (the class
skips, saying why, only where bwrap truly cannot run on this host), and the fallback with
--no-bubblewrap. A probe servable then reports, from inside its worker, what the sandbox
promises in both modes:
- the uid switch: uid, euid, gid, egid 65534, no supplementary groups;
- seccomp: socket() of every family but AF_UNIX fails with EACCES (TCP, UDP, IPv6, netlink,
  packet, vsock), AF_UNIX works, io_uring_setup fails with EPERM; with the network allowed, IP
  and netlink sockets work, AF_VSOCK is still refused by the filter and raw packet sockets by
  the missing capability;
- rlimits: address space, CPU time and open files as configured (--worker-memory-bytes,
  --worker-cpu-seconds, --worker-open-files), no core dumps; opening files stops at the limit
  with EMFILE; a worker that uses up its CPU time is killed (and restarted);
- the worker dies with the server: after SIGKILL of the server no worker process is left
  (under bubblewrap not even a process the servable started).
"""

import json
import os
import re
import signal
import subprocess
import unittest

import hub
import oip
from hub import HubTestCase

PROBE = r'''
import ctypes, errno, json, os, resource, socket
import numpy as np

FAMILIES = {"AF_UNIX": (socket.AF_UNIX, socket.SOCK_STREAM),
            "AF_INET": (socket.AF_INET, socket.SOCK_STREAM),
            "AF_INET_UDP": (socket.AF_INET, socket.SOCK_DGRAM),
            "AF_INET6": (socket.AF_INET6, socket.SOCK_STREAM),
            "AF_NETLINK": (socket.AF_NETLINK, socket.SOCK_RAW),
            "AF_PACKET": (socket.AF_PACKET, socket.SOCK_RAW),
            "AF_VSOCK": (40, socket.SOCK_STREAM)}

def try_socket(family, kind):
    try:
        socket.socket(family, kind).close()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def io_uring():
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(425, 4, params)  # io_uring_setup
    if fd >= 0:
        os.close(fd)
        return "ok"
    return errno.errorcode.get(ctypes.get_errno(), "?")

def open_until_refused():
    fds = []
    try:
        while len(fds) < 100000:
            fds.append(os.open("/dev/null", os.O_RDONLY))
        return None, len(fds)
    except OSError as e:
        return errno.errorcode.get(e.errno, "?"), len(fds)
    finally:
        for fd in fds:
            os.close(fd)

def predict(inputs):
    what = inputs["what"][0].decode()
    if what == "spin":
        while True:
            pass
    if what == "child":
        import subprocess
        subprocess.Popen(["/usr/bin/sleep", "300"])
        return {"report": np.array([b"{}"], dtype=object)}
    refused, opened = open_until_refused()
    report = {
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
        "sockets": {name: try_socket(*args) for name, args in FAMILIES.items()},
        "io_uring": io_uring(),
        "limits": {name: list(resource.getrlimit(getattr(resource, name)))
                   for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_CORE")},
        "open_refused": refused, "opened": opened,
    }
    return {"report": np.array([json.dumps(report).encode()], dtype=object)}
'''
SIG = ([("what", "BYTES", [1])], [("report", "BYTES", [1])])
MEMORY = 1 << 30
CPU_SECONDS = 2
OPEN_FILES = 64
REFUSED = {"AF_INET": "EACCES", "AF_INET_UDP": "EACCES", "AF_INET6": "EACCES",
           "AF_NETLINK": "EACCES", "AF_PACKET": "EACCES", "AF_VSOCK": "EACCES", "AF_UNIX": "ok"}
# With the network allowed only AF_VSOCK is filtered; raw packet sockets still need a
# capability the worker does not have (EPERM, from the kernel, not the filter).
NETWORKED = dict(REFUSED, AF_INET="ok", AF_INET_UDP="ok", AF_INET6="ok", AF_NETLINK="ok",
                 AF_PACKET="EPERM")


def bwrap_problem():
    """Why bubblewrap cannot run on this host ("" when it can): the server's own probe, by hand."""
    if not os.access("/usr/bin/bwrap", os.X_OK):
        return "/usr/bin/bwrap is not installed"
    args = ["/usr/bin/bwrap", "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--ro-bind", "/usr", "/usr"]
    for d in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + d):
            args += ["--symlink", os.readlink("/" + d), "/" + d]
    r = subprocess.run(args + ["--", "/usr/bin/true"], capture_output=True, text=True, timeout=30)
    return "" if r.returncode == 0 else "bwrap failed here: " + (r.stderr.strip() or str(r.returncode))


class SandboxCase:
    """The tests, run by each mode's class below."""

    mode = None
    extra_args = ()

    @classmethod
    def setUpClass(cls):
        cls.tenant_name = hub.unique("sb")
        cls.server_args = tuple(cls.extra_args) + (
            "--allow-network", cls.tenant_name + "/probe-net",
            "--worker-memory-bytes", str(MEMORY), "--worker-cpu-seconds", str(CPU_SECONDS),
            "--worker-open-files", str(OPEN_FILES))
        super().setUpClass()
        s = cls.server
        s.create_tenant(cls.tenant_name)
        cls.token = s.create_token(cls.tenant_name, "publisher")["token"]
        for name, network in (("probe", False), ("probe-net", True)):
            s.publish_ok(cls.tenant_name, name, oip.py_package(
                name, PROBE, *SIG, config={"network": True} if network else {}), cls.token)

    def report(self, name):
        status, data, _ = oip.infer_json(self.server, self.token, "%s/%s" % (self.tenant_name, name),
                                         {"inputs": [{"name": "what", "datatype": "BYTES",
                                                      "shape": [1], "data": ["report"]}]})
        self.assertEqual(status, 200, data)
        return json.loads(oip.output_values(data, {}, "report")[0])

    def test_the_server_reports_the_mode_that_runs(self):
        status, text = self.server.get("/metrics", self.server.admin)
        self.assertEqual(status, 200)
        modes = re.findall(r'^orrery_worker_isolation\{mode="(\w+)"\} 1$', text.decode(), re.M)
        self.assertEqual(modes, [self.mode])

    def test_uid_switch(self):
        self.assertEqual(self.report("probe")["ids"], [65534, 65534, 65534, 65534, []])

    def test_seccomp_refuses_io_uring_and_every_socket_family_but_unix(self):
        r = self.report("probe")
        self.assertEqual(r["sockets"], REFUSED)
        self.assertEqual(r["io_uring"], "EPERM")

    def test_network_allowed_opens_ip_but_not_vsock_or_io_uring(self):
        r = self.report("probe-net")
        self.assertEqual(r["sockets"], NETWORKED)
        self.assertEqual(r["io_uring"], "EPERM")

    def test_rlimits_are_set_and_bind(self):
        r = self.report("probe")
        self.assertEqual(r["limits"], {"RLIMIT_AS": [MEMORY, MEMORY],
                                       "RLIMIT_CPU": [CPU_SECONDS, CPU_SECONDS],
                                       "RLIMIT_NOFILE": [OPEN_FILES, OPEN_FILES],
                                       "RLIMIT_CORE": [0, 0]})
        self.assertEqual(r["open_refused"], "EMFILE")
        self.assertLess(r["opened"], OPEN_FILES)

    def test_a_worker_that_uses_up_its_cpu_time_is_killed(self):
        status, data, _ = oip.infer_json(self.server, self.token, self.tenant_name + "/probe",
                                         {"inputs": [{"name": "what", "datatype": "BYTES",
                                                      "shape": [1], "data": ["spin"]}]})
        self.assertError((status, data), 503)
        self.assertEqual(data["error"], "%s/probe:1: worker crashed (signal 9)" % self.tenant_name)
        # It is restarted, and answers again.
        self.assertTrue(oip.wait_for(lambda: self.server.get(
            "/v2/models/%s/probe/ready" % self.tenant_name, self.token)[0] == 200, timeout=30))
        self.report("probe")

    def test_workers_die_with_the_server(self):
        s = self.start_server(self.server_args)
        s.create_tenant(self.tenant_name)
        token = s.create_token(self.tenant_name, "publisher")["token"]
        s.publish_ok(self.tenant_name, "probe", oip.py_package("probe", PROBE, *SIG), token)
        status, data, _ = oip.infer_json(s, token, self.tenant_name + "/probe",
                                         {"inputs": [{"name": "what", "datatype": "BYTES",
                                                      "shape": [1], "data": ["child"]}]})
        self.assertEqual(status, 200, data)
        # The servable's child may still be between fork and exec when predict() returns.
        sleeping = lambda: [p for p in oip.descendants(s.proc.pid)
                            if oip.cmdline(p).startswith("/usr/bin/sleep 300")]
        sleeper = oip.wait_for(sleeping, timeout=20)
        tree = oip.descendants(s.proc.pid)
        workers = [p for p in tree if "orrery_worker" in oip.cmdline(p)]
        self.assertTrue(workers and sleeper, [oip.cmdline(p) for p in tree])
        self.addCleanup(lambda: [os.kill(p, signal.SIGKILL) for p in sleeper if oip.alive(p)])
        s.kill()
        gone = oip.wait_for(lambda: not any(oip.alive(p) for p in workers), timeout=20)
        self.assertTrue(gone, "a worker outlived the server")
        if self.mode == "bubblewrap":
            # The worker is pid 1 of its namespace: everything it started goes with it.
            self.assertTrue(oip.wait_for(lambda: not any(oip.alive(p) for p in tree), timeout=20),
                            [oip.cmdline(p) for p in tree if oip.alive(p)])


class BubblewrapSandboxTest(SandboxCase, HubTestCase):
    mode = "bubblewrap"

    @classmethod
    def setUpClass(cls):
        problem = bwrap_problem()
        if problem:
            raise unittest.SkipTest("bubblewrap cannot run on this host: " + problem)
        super().setUpClass()


class FallbackSandboxTest(SandboxCase, HubTestCase):
    mode = "fallback"
    extra_args = ("--no-bubblewrap",)

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("the fallback switches workers to uid 65534 only when the "
                                    "server runs as root (the CI runs as root)")
        super().setUpClass()


if __name__ == "__main__":
    unittest.main()
