"""The real `orrery` command line against a real server."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import hub
import oip
from hub import HubTestCase, run_cli

CLIENT_FLAGS = ["--url", "--token", "--data-dir", "--json"]

# command -> options its --help must mention
HELP = {
    (): ["serve", "publish", "download", "show", "cite", "alias", "share", "delete", "list",
         "search", "tenant", "token", "whoami", "infer", "result", "verify", "logs", "env"],
    ("logs",): CLIENT_FLAGS + ["REF", "--tail"],
    ("result",): CLIENT_FLAGS + ["ID", "--wait", "--save"],
    ("serve",): ["--data-dir", "--host", "--port", "--grpc-port", "--max-upload-bytes",
                 "--max-json-bytes", "--max-archive-entries", "--max-unpacked-bytes",
                 "--gc-min-age-s"],
    ("publish",): CLIENT_FLAGS + ["DIR", "--name", "--kind", "--public", "--if-changed", "--zstd",
                                 "--no-check", "--dry-run", "--verbose"],
    ("download",): CLIENT_FLAGS + ["REF", "--output", "--kind"],
    ("show",): CLIENT_FLAGS + ["REF", "--kind", "--readme"],
    ("cite",): CLIENT_FLAGS + ["REF", "--format", "--kind"],
    ("alias",): CLIENT_FLAGS + ["NAME", "ALIAS", "VERSION", "--delete"],
    ("share",): CLIENT_FLAGS + ["--with", "--unshare", "--public", "--private"],
    ("delete",): CLIENT_FLAGS + ["REF", "--yes"],
    ("list",): CLIENT_FLAGS + ["--kind", "--tenant", "--backend", "--task", "--domain", "--tag",
                               "--page", "--per-page"],
    ("search",): CLIENT_FLAGS + ["QUERY", "--tenant", "--backend", "--tag", "--page"],
    ("tenant",): ["create", "list"],
    ("tenant", "create"): CLIENT_FLAGS + ["NAME"],
    ("tenant", "list"): CLIENT_FLAGS,
    ("token",): ["create", "revoke", "list"],
    ("token", "create"): CLIENT_FLAGS + ["--tenant", "--role", "--expires-in", "--description"],
    ("token", "revoke"): CLIENT_FLAGS + ["ID"],
    ("token", "list"): CLIENT_FLAGS + ["--tenant"],
    ("whoami",): CLIENT_FLAGS,
    ("audit",): CLIENT_FLAGS + ["--limit"],
    ("gc",): CLIENT_FLAGS + ["--min-age-s"],
    ("check",): CLIENT_FLAGS,
    ("admin",): ["serving"],
    ("admin", "serving"): ["get", "set", "clear"],
    ("admin", "serving", "get"): CLIENT_FLAGS + ["REF"],
    ("admin", "serving", "set"): CLIENT_FLAGS + ["REF", "--file", "--cache"],
    ("admin", "serving", "clear"): CLIENT_FLAGS + ["REF"],
}


def read_dir(root):
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = (f.read(), os.access(p, os.X_OK))
    return out


def write_package(root, name, files, **fields):
    """Writes a package directory; returns {path: (bytes, executable)} incl. orrery.yaml."""
    os.makedirs(root)
    m = hub.manifest(name, list(files), **fields)
    files = dict(files)
    files["orrery.yaml"] = hub.to_yaml(m).encode()
    out = {}
    for rel, content in files.items():
        data, mode = content if isinstance(content, tuple) else (content, 0o644)
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        out[rel] = (data, bool(mode & 0o111))
    return out


class CliTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.t = s.new_tenant(("publisher", "admin"))
        cls.other = s.new_tenant(("reader",))
        cls.env = {"ORRERY_URL": s.url, "ORRERY_TOKEN": cls.t["publisher"]}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="orrery-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def cli(self, *args, env=None, ok=True, cwd=None):
        r = run_cli(list(args), env=self.env if env is None else env, cwd=cwd or self.tmp)
        if ok and r.returncode != 0:
            self.fail("orrery %s exited %d\nstdout: %s\nstderr: %s"
                      % (" ".join(map(str, args)), r.returncode, r.stdout, r.stderr))
        return r

    def cli_json(self, *args, env=None):
        r = self.cli(*(list(args) + ["--json"]), env=env)
        try:
            return json.loads(r.stdout)
        except ValueError:
            self.fail("orrery %s --json printed no JSON: %r" % (" ".join(args), r.stdout))

    def assertCliError(self, r, code, reason):
        """Exit status `code` (1: the hub refused or could not be reached, 2: a usage error)
        and stderr exactly "orrery: <reason>" (README: errors exit non-zero with
        `orrery: <reason>`); nothing on stdout."""
        self.assertEqual(r.returncode, code, r.stderr)
        self.assertEqual(r.stderr, "orrery: %s\n" % reason)
        self.assertEqual(r.stdout, "")

    # -- help

    def test_help(self):
        for command, options in HELP.items():
            with self.subTest(command=" ".join(command) or "orrery"):
                r = run_cli(list(command) + ["--help"])
                self.assertEqual(r.returncode, 0, r.stderr)
                for option in options:
                    self.assertIn(option, r.stdout)

    # -- the package round trip

    def test_publish_show_download(self):
        t, name = self.t.name, "cli-model"
        src = os.path.join(self.tmp, "pkg")
        files = write_package(src, name, {
            "model.bin": os.urandom(100000),
            "bin/run": (b"#!/bin/sh\necho hi\n", 0o755),
            "docs/notes.txt": b"notes\n",
        }, title="CLI round trip")
        v = self.cli_json("publish", "--no-check", src)
        self.assertEqual((v["tenant"], v["name"], v["version"]), (t, name, 1))
        self.assertEqual(v["digest"], hub.package_digest(files))
        desc = self.cli_json("show", name)
        self.assertEqual([x["version"] for x in desc["versions"]], [1])
        self.assertEqual(desc["aliases"], {"latest": 1})
        ver = self.cli_json("show", "%s/%s:1" % (t, name))
        self.assertEqual(ver["digest"], v["digest"])
        self.assertEqual(len(ver["files"]), len(files))
        out = os.path.join(self.tmp, "out")
        got = self.cli_json("download", "%s:1" % name, "-o", out)
        self.assertEqual(got["version"], 1)
        self.assertEqual(read_dir(out), files)
        # Text output works too.
        r = self.cli("show", name)
        self.assertIn("%s/%s" % (t, name), r.stdout)
        r = self.cli("show", name + ":latest")
        self.assertIn("model.bin", r.stdout)
        # Unchanged content with --if-changed; a zstd upload of new content.
        v = self.cli_json("publish", "--no-check", src, "--if-changed")
        self.assertIs(v.get("unchanged"), True)
        self.assertEqual(v["version"], 1)
        with open(os.path.join(src, "docs/notes.txt"), "ab") as f:
            f.write(b"more\n")
        files["docs/notes.txt"] = (files["docs/notes.txt"][0] + b"more\n", False)
        v = self.cli_json("publish", "--no-check", src, "--zstd")
        self.assertEqual(v["version"], 2)
        out2 = os.path.join(self.tmp, "out2")
        self.cli_json("download", name, "-o", out2)
        self.assertEqual(read_dir(out2), files)
        # Downloading into an existing directory is refused.
        self.assertCliError(self.cli("download", name, "-o", out2, ok=False), 2,
                            "%s already exists; choose another with -o" % out2)

    def test_list_search_alias_share_delete(self):
        s, t, name = self.server, self.t.name, "cli-life"
        word = "clilife" + os.urandom(4).hex()
        src = os.path.join(self.tmp, "pkg")
        write_package(src, name, {"m.bin": b"1"}, title="Lifecycle " + word, tags=["cli"])
        self.cli_json("publish", "--no-check", src)
        with open(os.path.join(src, "m.bin"), "wb") as f:
            f.write(b"2")
        self.cli_json("publish", "--no-check", src)
        page = self.cli_json("list", "--tenant", t, "--tag", "cli")
        self.assertEqual([i["name"] for i in page["items"]], [name])
        page = self.cli_json("list", "--tenant", t, "--per-page", "1")
        self.assertEqual(page["per_page"], 1)
        page = self.cli_json("search", word)
        self.assertEqual([(i["tenant"], i["name"]) for i in page["items"]], [(t, name)])
        self.assertIn(name, self.cli("search", word).stdout)
        self.assertIn(name, self.cli("list", "--tenant", t).stdout)
        # alias
        self.assertEqual(self.cli_json("alias", name, "prod", "1"), {"alias": "prod", "version": 1})
        self.assertEqual(s.describe(t, name, self.t["publisher"])[1]["aliases"],
                         {"latest": 2, "prod": 1})
        self.assertEqual(self.cli_json("alias", name, "prod", "--delete"),
                         {"alias": "prod", "deleted": True})
        # share
        data = self.cli_json("share", name, "--with", self.other.name)
        self.assertEqual(data, {"visibility": "shared", "shared_with": [self.other.name]})
        self.assertStatus(s.describe(t, name, self.other["reader"]), 200)
        data = self.cli_json("share", name, "--unshare", self.other.name)
        self.assertEqual(data["shared_with"], [])
        self.assertEqual(self.cli_json("share", name, "--public")["visibility"], "public")
        self.assertStatus(s.describe(t, name, self.other["reader"]), 200)
        self.assertEqual(self.cli_json("share", name, "--private"),
                         {"visibility": "private", "shared_with": []})
        self.assertError(s.describe(t, name, self.other["reader"]), 404)
        # delete
        r = self.cli("delete", name + ":2", ok=False)  # stdin is not a terminal
        self.assertCliError(r, 2, "refusing to delete %s/%s:2 without --yes" % (t, name))
        self.assertEqual(s.describe(t, name, self.t["publisher"])[1]["latest_version"], 2)
        self.assertEqual(self.cli_json("delete", name + ":2", "--yes"),
                         {"deleted": "%s/%s:2" % (t, name)})
        self.assertEqual(s.describe(t, name, self.t["publisher"])[1]["latest_version"], 1)
        self.assertEqual(self.cli_json("delete", "%s/%s" % (t, name), "--yes"),
                         {"deleted": "%s/%s" % (t, name)})
        self.assertError(s.describe(t, name, self.t["publisher"]), 404)

    def test_dataset(self):
        src = os.path.join(self.tmp, "ds")
        files = write_package(src, "cli-data", {"d.csv": b"a\n1\n"}, kind="dataset")
        v = self.cli_json("publish", "--no-check", src)
        self.assertEqual(v["kind"], "dataset")
        page = self.cli_json("list", "--kind", "datasets", "--tenant", self.t.name)
        self.assertIn("cli-data", [i["name"] for i in page["items"]])
        out = os.path.join(self.tmp, "out")
        self.cli_json("download", "cli-data", "-o", out)
        self.assertEqual(read_dir(out), files)

    # -- administration

    def test_tenants_and_tokens(self):
        s = self.server
        admin_env = {"ORRERY_URL": s.url, "ORRERY_TOKEN": s.admin}
        name = hub.unique("clit")
        data = self.cli_json("tenant", "create", name, env=admin_env)
        self.assertEqual(data["name"], name)
        self.assertCliError(self.cli("tenant", "create", name, env=admin_env, ok=False), 1,
                            "tenant %s already exists (HTTP 409)" % name)
        self.cli("tenant", "create", name, "--exist-ok", env=admin_env)
        tenants = self.cli_json("tenant", "list", env=admin_env)
        self.assertIn(name, [x["name"] for x in tenants["tenants"]])
        tok = self.cli_json("token", "create", "--tenant", name, "--role", "publisher",
                            "--description", "from the cli", env=admin_env)
        self.assertRegex(tok["token"], hub.TOKEN_RE)
        self.assertEqual((tok["tenant"], tok["role"]), (name, "publisher"))
        who = self.cli_json("whoami", "--url", s.url, "--token", tok["token"], env={})
        self.assertEqual((who["tenant"], who["role"], str(who["token_id"])),
                         (name, "publisher", str(tok["id"])))
        # Text mode prints the token on stdout alone.
        r = self.cli("token", "create", "--tenant", name, "--role", "reader", env=admin_env)
        self.assertRegex(r.stdout.strip(), hub.TOKEN_RE)
        listing = self.cli_json("token", "list", "--tenant", name, env=admin_env)
        self.assertEqual(len(listing["tokens"]), 2)
        revoked = self.cli_json("token", "revoke", str(tok["id"]), env=admin_env)
        self.assertEqual(str(revoked["id"]), str(tok["id"]))
        r = self.cli("whoami", "--url", s.url, "--token", tok["token"], env={}, ok=False)
        self.assertCliError(r, 1, "token revoked (HTTP 401)")
        # Not a hub admin: refused, with the server's message.
        r = self.cli("tenant", "create", hub.unique("no"), ok=False)
        self.assertCliError(r, 1, "creating tenants needs the hub admin (HTTP 403)")
        report = self.cli_json("check", env=admin_env)
        self.assertEqual((report["ok"], report["problems"]), (True, []))
        self.assertIn("removed", self.cli_json("gc", env=admin_env))
        self.assertIn("entries", self.cli_json("audit", "--limit", "5", env=admin_env))

    def test_errors(self):
        r = self.cli("show", "no-such-thing", ok=False)
        self.assertCliError(r, 1, "no servable or dataset %s/no-such-thing (HTTP 404)"
                            % self.t.name)
        r = self.cli("show", "Bad Name!", ok=False)
        self.assertCliError(r, 2, "object name may only contain letters, digits, '.', '_' and '-'")
        missing = os.path.join(self.tmp, "missing-dir")
        r = self.cli("publish", missing, ok=False)
        self.assertCliError(r, 2, "%s is not a directory" % missing)
        usage = "\nRun with --help for more information."
        r = self.cli("publish", ok=False)
        self.assertCliError(r, 2, "DIR is required" + usage)
        r = self.cli("frobnicate", ok=False)
        self.assertCliError(r, 2, "A subcommand is required" + usage)
        url = "http://127.0.0.1:%d" % hub.free_port()
        r = self.cli("whoami", "--url", url, ok=False)
        self.assertCliError(r, 1, "%s: connect: Connection refused" % url)
        r = self.cli("whoami", "--token", "orr_" + "0" * 64, ok=False)
        self.assertCliError(r, 1, "invalid token (HTTP 401)")
        src = os.path.join(self.tmp, "bad")
        write_package(src, "bad-backend", {"m": b"1"}, backend="warp-drive")
        r = self.cli("publish", src, ok=False)  # checked before anything is sent
        self.assertCliError(r, 1, "%s: manifest: backend: unknown backend 'warp-drive' (one of "
                            "torchscript, xgboost, onnx, python, native, pipeline)"
                            % os.path.join(src, "orrery.yaml"))
        r = self.cli("publish", self.tmp, ok=False)
        self.assertCliError(r, 2, "%s has no orrery.yaml: a package directory holds one that "
                            "names the package and lists its files (docs/manifest.md)" % self.tmp)
        nowhere = os.path.join(self.tmp, "nowhere")
        r = self.cli("whoami", env={"ORRERY_URL": self.server.url, "ORRERY_DATA_DIR": nowhere},
                     ok=False)
        token_file = os.path.join(nowhere, "admin.token")
        self.assertCliError(r, 2, "no token: pass --token, set ORRERY_TOKEN or ORRERY_TOKEN_FILE, "
                            "or run where %s is readable (no such file: %s)"
                            % (token_file, token_file))

    def test_admin_token_found_in_data_dir(self):
        s = self.server
        who = self.cli_json("whoami", "--url", s.url, "--data-dir", s.data_dir, env={})
        self.assertEqual((who["tenant"], who["role"]), ("hub", "admin"))
        who = self.cli_json("whoami", env={"ORRERY_URL": s.url, "ORRERY_DATA_DIR": s.data_dir})
        self.assertEqual((who["tenant"], who["role"]), ("hub", "admin"))
        # An explicit token wins over the data dir.
        who = self.cli_json("whoami", "--data-dir", s.data_dir,
                            env={"ORRERY_URL": s.url, "ORRERY_TOKEN": self.t["publisher"]})
        self.assertEqual(who["tenant"], self.t.name)


def port_busy(port):
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return True
    return False


def tcp_listeners(port):
    """Local addresses ("127.0.0.1:7070", "[::]:7070") of the sockets listening on TCP `port`,
    read from /proc/net/tcp and /proc/net/tcp6 (no `ss` needed)."""
    out = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            addr, hexport = fields[1].split(":")
            if fields[3] != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr)
            # The kernel prints the address as 32-bit words in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            host = socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, raw)
            out.append(("[%s]:%d" if v6 else "%s:%d") % (host, port))
    return sorted(out)


def non_loopback_address():
    """A local IPv4 address that is not loopback, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            addr = sock.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


class ServeDefaultsTest(unittest.TestCase):

    def test_serve_without_flags(self):
        # Neither is a reason to skip: the binary is built from this repository, and 7070 is
        # the documented default (README), so this test needs it free.
        self.assertTrue(os.access(hub.BIN, os.X_OK), "no orrery binary at %s" % hub.BIN)
        self.assertFalse(port_busy(7070), "port 7070 is busy: stop whatever listens there "
                         "(e.g. a hub from scripts/run-hub.sh) to run this test")
        cwd = tempfile.mkdtemp(prefix="orrery-serve-")
        self.addCleanup(shutil.rmtree, cwd, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORRERY_")}
        log = open(os.path.join(cwd, "log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([hub.BIN, "serve"], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)
        def listening():
            self.assertIsNone(proc.poll(), "orrery serve exited")
            try:
                with socket.create_connection(("127.0.0.1", 7070), timeout=1):
                    return True
            except OSError:
                return False
        self.assertTrue(oip.wait_for(listening, timeout=30), "not listening on 127.0.0.1:7070")
        data = os.path.join(cwd, "orrery-data")
        self.assertTrue(os.path.isfile(os.path.join(data, "admin.token")))
        self.assertTrue(os.path.isfile(os.path.join(data, "catalog.db")))
        # The CLI in the same directory needs no URL and no token.
        r = run_cli(["whoami", "--json"], cwd=cwd)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["tenant"], "hub")
        # Bound to loopback only.
        self.assertEqual(tcp_listeners(7070), ["127.0.0.1:7070"])
        addr = non_loopback_address()
        if addr:
            with self.assertRaises(OSError, msg="reachable on %s:7070" % addr):
                socket.create_connection((addr, 7070), timeout=2).close()
        stop()
        self.assertEqual(proc.returncode, 0, "orrery serve did not exit 0 on SIGTERM")


if __name__ == "__main__":
    unittest.main()
