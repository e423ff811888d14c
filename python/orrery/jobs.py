"""Training jobs (docs/jobs.md) as Client methods: submit, list, show, follow the log, halt,
resume, cancel, rerun, publish the output. Mixed into Client; every error answer raises OrreryError."""

import json
import os
import sys
import urllib.parse

from orrery import package


def _load_spec(spec):
    """A spec given as a dict, or the path of a .json (or, with PyYAML, .yaml) file; returns
    (dict, the directory relative code paths start from)."""
    if isinstance(spec, dict):
        return dict(spec), os.getcwd()
    with open(spec, encoding="utf-8") as f:
        text = f.read()
    base = os.path.dirname(os.path.abspath(spec))
    if spec.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ValueError("reading %s needs PyYAML (Debian: python3-yaml); or pass the spec "
                             "as a dict or a .json file" % spec) from None
        return yaml.safe_load(text), base
    return json.loads(text), base


class JobsMixin:

    def submit(self, spec, follow=False, out=None):
        """Submits a training job; returns the job (a dict: id, state, ...). `spec` is a dict
        or a spec file (docs/jobs.md); a `code:` directory is uploaded first. With
        follow=True, prints the log to `out` (default stdout) as the job runs and returns the
        job once it is over."""
        spec, base = _load_spec(spec)
        code = spec.get("code")
        if isinstance(code, str):
            directory = code if os.path.isabs(code) else os.path.join(base, code)
            if not os.path.isdir(directory):
                raise ValueError("code: %s is not a directory" % directory)
            uploaded = json.loads(self._request("POST", "/api/v1/jobs/code",
                                                package.pack_tree(directory),
                                                {"Content-Type": "application/x-tar"})[2])
            spec["code"] = {"upload": uploaded["digest"]}
        job = self._json("POST", "/api/v1/jobs", spec)
        if follow:
            self.logs(job["id"], follow=True, out=out)
            job = self.job(job["id"])
        return job

    def jobs(self, state=None, limit=100):
        """Your tenant's jobs, newest first (dicts); `state` filters ("RUNNING", ...)."""
        query = {"limit": limit}
        if state:
            query["state"] = state
        return self._json("GET", "/api/v1/jobs?" + urllib.parse.urlencode(query))["jobs"]

    def job(self, job_id):
        """One job with its history (every state change and why) and its attempts."""
        return self._json("GET", "/api/v1/jobs/%d" % int(job_id))

    def job_metrics(self, job_id, limit=1000):
        """The metrics lines the job wrote to $ORRERY_METRICS (dicts), the last `limit`."""
        return self._json("GET", "/api/v1/jobs/%d/metrics?limit=%d"
                          % (int(job_id), limit))["metrics"]

    def logs(self, job_id, follow=False, out=None):
        """The job's log (str). With follow=True, also prints it to `out` (default stdout) as
        it grows, until the job is over (COMPLETED, FAILED, CANCELLED or HALTED)."""
        out = out or sys.stdout
        offset, text = 0, []
        while True:
            query = {"offset": offset}
            if follow:
                query["wait_ms"] = 10000
            _, resp, data = self._request("GET", "/api/v1/jobs/%d/logs?%s"
                                          % (int(job_id), urllib.parse.urlencode(query)))
            chunk = data.decode("utf-8", "replace")
            text.append(chunk)
            if follow and chunk:
                out.write(chunk)
                out.flush()
            offset = int(resp.getheader("X-Orrery-Log-Offset", offset + len(data)))
            if not follow or resp.getheader("X-Orrery-Log-End") == "true":
                return "".join(text)

    def _job_action(self, job_id, action):
        return self._json("POST", "/api/v1/jobs/%d/%s" % (int(job_id), action))

    def halt(self, job_id):
        """Halts the job: it gets SIGTERM to write its checkpoint, then waits HALTED."""
        return self._job_action(job_id, "halt")

    def resume(self, job_id):
        """Resumes a HALTED job from its checkpoint."""
        return self._job_action(job_id, "resume")

    def cancel(self, job_id):
        """Cancels the job for good."""
        return self._job_action(job_id, "cancel")

    def publish_job(self, job_id, servable=None, manifest=None):
        """Publishes a COMPLETED job's output as a new servable version with its lineage;
        `servable` and `manifest` default to the spec's publish section. Returns the version."""
        body = {}
        if servable:
            body["servable"] = servable
        if manifest is not None:
            body["manifest"] = manifest
        return self._json("POST", "/api/v1/jobs/%d/publish" % int(job_id), body)["version"]

    def rerun(self, job_id):
        """Submits the same job again, from the same code and input versions."""
        return self._job_action(job_id, "rerun")
