"""Client: the hub's REST API and Open Inference Protocol from Python (stdlib + numpy)."""

import hashlib
import http.client
import io
import json
import os
import tarfile
import threading
import time
import urllib.parse

import numpy as np

from orrery import package, tensors
from orrery.display import SearchResult, Servable
from orrery.jobs import JobsMixin


class OrreryError(Exception):
    """An error answer of the hub (`status`: the HTTP status, `message`: its text), or a
    request refused before it was sent (`status` 0)."""

    def __init__(self, status, message):
        super().__init__("%s (HTTP %d)" % (message, status) if status else message)
        self.status = status
        self.message = message


def _default_token():
    """The token the CLI would use: ORRERY_TOKEN, ORRERY_TOKEN_FILE, else the hub admin token
    in the data directory (ORRERY_DATA_DIR, default ./orrery-data)."""
    if os.environ.get("ORRERY_TOKEN"):
        return os.environ["ORRERY_TOKEN"].strip()
    path = os.environ.get("ORRERY_TOKEN_FILE") or os.path.join(
        os.environ.get("ORRERY_DATA_DIR") or "orrery-data", "admin.token")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _split(name, version):
    """(tenant or None, name, version or None) of "tenant/name[:version]" or "name"."""
    if ":" in name:
        name, _, in_name = name.partition(":")
        version = version if version is not None else in_name
    tenant, _, bare = name.rpartition("/")
    return tenant or None, bare, None if version is None else str(version)


def _outputs(resp, data):
    result, _ = tensors.decode_response(data, resp.getheader(tensors.HEADER))
    return next(iter(result.values())) if len(result) == 1 else result


class Handle:
    """An asynchronous inference request (Client.run(..., asynchronous=True))."""

    def __init__(self, client, request_id):
        self._client = client
        self.id = request_id
        self._answer = None

    def _poll(self):
        if self._answer is None:
            status, resp, data = self._client._request("GET", "/api/v1/requests/" + self.id)
            if status != 202:
                self._answer = _outputs(resp, data)
        return self._answer is not None

    def done(self):
        """True once the answer is there (an error answer raises OrreryError)."""
        return self._poll()

    def result(self, timeout=None):
        """The outputs, as run() returns them; waits up to `timeout` seconds (None: for
        ever). OrreryError for an error answer, an expired one (410), or at the timeout
        (status 0)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.01
        while not self._poll():
            if deadline is not None and time.monotonic() + pause > deadline:
                raise OrreryError(0, "request %s is not answered after %s s" % (self.id, timeout))
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        return self._answer

    def __repr__(self):
        return "<orrery request %s>" % self.id


class Client(JobsMixin):
    """One hub, one token. Connections are kept open and reused (one per thread), so repeated
    calls cost one round trip each. Every error answer raises OrreryError. Training jobs:
    submit, jobs, job, logs, halt, resume, cancel, rerun (orrery/jobs.py)."""

    def __init__(self, url=None, token=None, timeout=300):
        url = url or os.environ.get("ORRERY_URL") or "http://127.0.0.1:7070"
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("url must be http://host[:port], not %r" % url)
        self.url = url.rstrip("/")
        self._host, self._port = parts.hostname, parts.port or 80
        self._token = token or _default_token()
        self._timeout = timeout
        self._local = threading.local()
        self._tenant = None
        self._signatures = {}  # (tenant, name, version) -> (fetched at, metadata)

    # ---- HTTP

    def _connection(self, fresh=False):
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def _request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes); 4xx/5xx raise OrreryError. A connection the server
        closed while idle is reopened once."""
        hdrs = dict(headers or {})
        if self._token:
            hdrs["Authorization"] = "Bearer " + self._token
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt == 1)
            try:
                conn.request(method, path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if attempt == 1:
                    raise
            except OSError as error:
                conn.close()
                raise OrreryError(0, "%s: %s" % (self.url, error)) from None
        if resp.will_close:
            conn.close()
        if resp.status >= 400:
            try:
                message = json.loads(data)["error"]
            except (ValueError, KeyError, TypeError):
                message = data[:200].decode("utf-8", "replace")
            raise OrreryError(resp.status, message)
        return resp.status, resp, data

    def _json(self, method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        _, _, data = self._request(method, path, None if body is None else json.dumps(body),
                                   headers)
        return json.loads(data) if data else None

    def _object_path(self, name, kind="servables", version=None, tail=""):
        tenant, bare, version = _split(name, version)
        path = "/api/v1/%s/%s/%s" % (kind, urllib.parse.quote(tenant or self.tenant(), safe=""),
                                     urllib.parse.quote(bare, safe=""))
        if version is not None:
            path += "/versions/" + urllib.parse.quote(version, safe="")
        return path + tail

    # ---- who and what

    def tenant(self):
        """The token's tenant (asked once)."""
        if self._tenant is None:
            self._tenant = self.whoami()["tenant"]
        return self._tenant

    def whoami(self):
        return self._json("GET", "/api/v1/whoami")

    def search(self, text, **filters):
        """Ranked full-text search (names, titles, descriptions, creators, tags, DOIs, ORCID
        iDs); filters: kind, tenant, backend, task, domain, tag, page, per_page."""
        return SearchResult(self._json("GET", "/api/v1/search?" + urllib.parse.urlencode(
            dict(q=text, **filters))))

    def list(self, kind="servables", **filters):
        """One page of the servables (or datasets) the token can see; filters as search."""
        query = urllib.parse.urlencode(filters)
        return SearchResult(self._json("GET", "/api/v1/%s%s" % (kind, "?" + query if query
                                                                 else "")))

    def describe(self, name, version=None, kind="servables"):
        """A servable (or dataset): the object with its versions and aliases, and its latest
        (or the given) version's metadata under "latest"."""
        version = _split(name, version)[2]
        answer = Servable(self._json("GET", self._object_path(name.partition(":")[0], kind)))
        if answer.get("latest_version") or version is not None:
            answer["latest"] = self._json("GET", self._object_path(
                name, kind, version if version is not None else "latest"))
        return answer

    def cite(self, name, version=None, format="bibtex", kind="servables"):
        """A citation of the version (latest without one): bibtex, datacite (JSON text) or ris."""
        path = self._object_path(name, kind, version or "latest", "/cite?format=" + format)
        return self._request("GET", path)[2].decode("utf-8")

    def readme(self, name, version=None, kind="servables"):
        """The version's model card (its README.md)."""
        return self._request("GET", self._object_path(name, kind, version or "latest",
                                                      "/readme"))[2].decode("utf-8")

    # ---- inference

    def _signature(self, tenant, name, version):
        key = (tenant, name, version)
        cached = self._signatures.get(key)
        if cached and time.monotonic() - cached[0] < 60:
            return cached[1]
        path = "/v2/models/%s/%s" % (urllib.parse.quote(tenant), urllib.parse.quote(name))
        if version is not None:
            path += "/versions/" + urllib.parse.quote(version)
        meta = self._json("GET", path)
        self._signatures[key] = (time.monotonic(), meta)
        return meta

    def _bind(self, meta, inputs):
        """{input: ndarray}, checked against the signature before anything is sent."""
        specs = meta["inputs"]
        if not isinstance(inputs, dict):
            if len(specs) != 1:
                raise OrreryError(0, "%s has %d inputs (%s): give a dict of arrays" % (
                    meta["name"], len(specs), ", ".join(s["name"] for s in specs)))
            inputs = {specs[0]["name"]: inputs}
        names = [s["name"] for s in specs]
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise OrreryError(0, "unknown input '%s' (the servable's inputs: %s)"
                              % (unknown[0], ", ".join(names)))
        bound = {}
        for spec in specs:
            if spec["name"] not in inputs:
                raise OrreryError(0, "missing input '%s'" % spec["name"])
            array = inputs[spec["name"]]
            if not isinstance(array, np.ndarray):
                array = np.asarray(array, dtype=tensors.DTYPES.get(spec["datatype"], object))
            datatype = tensors.datatype_of(array)
            if datatype != spec["datatype"]:
                raise OrreryError(0, "input '%s' is %s (numpy %s), the servable expects %s" % (
                    spec["name"], datatype, array.dtype, spec["datatype"]))
            shape = spec["shape"]
            if len(shape) != array.ndim or any(d not in (-1, a) for d, a in zip(shape, array.shape)):
                raise OrreryError(0, "input '%s' has shape %s, the servable expects %s" % (
                    spec["name"], list(array.shape), shape))
            bound[spec["name"]] = array
        return bound

    def run(self, name, inputs, version=None, outputs=None, asynchronous=False):
        """Runs a servable: `inputs` is one array (a one-input servable) or {name: array};
        returns the output array (one output) or {name: array}. Arrays travel binary.
        asynchronous=True submits the request and returns a Handle at once; its result()
        waits for the answer (kept by the hub for a while, then expired)."""
        tenant, bare, version = _split(name, version)
        tenant = tenant or self.tenant()
        meta = self._signature(tenant, bare, version)
        body, headers = tensors.encode_request(self._bind(meta, inputs), outputs)
        path = "/v2/models/%s/%s" % (urllib.parse.quote(tenant), urllib.parse.quote(bare))
        if version is not None:
            path += "/versions/" + urllib.parse.quote(version)
        if asynchronous:
            accepted = json.loads(self._request("POST", path + "/infer-async", body, headers)[2])
            return Handle(self, accepted["id"])
        _, resp, data = self._request("POST", path + "/infer", body, headers)
        return _outputs(resp, data)

    def verify(self, name, version=None):
        """Runs the manifest's examples on the hub: {"ok", "examples": [...]}."""
        return self._json("POST", self._object_path(name, "servables", version, "/verify"), {})

    # ---- packages

    def download(self, name, directory, version=None, kind="servables"):
        """Unpacks the version (latest without one) into `directory` (which must not exist),
        every file checked against its SHA-256; returns the version object."""
        if os.path.exists(directory):
            raise OrreryError(0, "%s already exists" % directory)
        described = self._json("GET", self._object_path(name, kind, version or "latest"))
        data = self._request("GET", self._object_path(name, kind, str(described["version"]),
                                                      "/archive"))[2]
        expected = {f["path"]: f["sha256"] for f in described["files"]}
        staging = directory + ".partial"
        os.makedirs(staging)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for info in tar:
                    path = info.name[2:] if info.name.startswith("./") else info.name
                    if info.isdir():
                        continue
                    if (not info.isfile() or path not in expected or path.startswith("/")
                            or ".." in path.split("/")):
                        raise OrreryError(0, "the archive holds an unexpected entry %r" % path)
                    content = tar.extractfile(info).read()
                    if hashlib.sha256(content).hexdigest() != expected.pop(path):
                        raise OrreryError(0, "%s does not match its SHA-256" % path)
                    target = os.path.join(staging, *path.split("/"))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as f:
                        f.write(content)
                    os.chmod(target, 0o755 if info.mode & 0o111 else 0o644)
            if expected:
                raise OrreryError(0, "the archive lacks %s" % ", ".join(sorted(expected)))
            os.rename(staging, directory)
        except BaseException:
            import shutil
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return described

    def _publish_tar(self, tar, name, kind, public, check, dry_run):
        query = {k: v for k, v in (("visibility", "public" if public else None),
                                   ("check", None if check else "false"),
                                   ("dry_run", "true" if dry_run else None)) if v}
        path = self._object_path(name, kind, tail="/versions")
        if query:
            path += "?" + urllib.parse.urlencode(query)
        headers = {"Content-Type": "application/x-tar",
                   "X-Orrery-Sha256": hashlib.sha256(tar).hexdigest()}
        return json.loads(self._request("POST", path, tar, headers)[2])

    def publish(self, directory, name=None, kind=None, public=False, check=True, dry_run=False):
        """Publishes a package directory as the CLI packs it (orrery.yaml, README.md, and the
        files the manifest lists, without __pycache__, .ipynb_checkpoints and .git); returns
        the version object. The hub loads a servable and
        runs its examples first (check=False skips that; dry_run=True stores nothing)."""
        tar = package.pack_directory(directory)
        if name is None or kind is None:
            with tarfile.open(fileobj=io.BytesIO(tar)) as t:
                text = t.extractfile("orrery.yaml").read().decode("utf-8", "replace")
            fields = dict(line.split(":", 1) for line in text.splitlines()
                          if ":" in line and not line.startswith((" ", "\t", "#", "-")))
            name = name or fields.get("name", "").strip().strip("'\"")
            kind = kind or fields.get("kind", "servable").strip().strip("'\"") + "s"
        if not name:
            raise OrreryError(0, "orrery.yaml has no top-level name: pass name=")
        return self._publish_tar(tar, name, kind if kind.endswith("s") else kind + "s", public,
                                 check, dry_run)

    def publish_function(self, fn, name, inputs, outputs=None, public=False, dry_run=False,
                         **metadata):
        """Publishes a Python function as a servable: `inputs` are example arrays
        ({argument: array}, or one array for a one-argument function; the first dimension is
        the batch) from which the signature is taken, and the outputs `fn` gives for them
        become the manifest's example, which the hub checks when publishing. `outputs` names
        the outputs (default "output", or "output_0", ... for a tuple); `metadata`: title,
        creators ([{"name", "orcid"?, "affiliation"?}]), year, description, license, tags, ...
        `fn` must be a module-level function that imports what it uses (numpy is `np`)."""
        tar = package.function_package(fn, name, inputs, outputs, **metadata)
        return self._publish_tar(tar, name, "servables", public, True, dry_run)
