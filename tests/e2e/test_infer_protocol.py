"""The /v2 inference wire format (docs/inference.md), end to end through a real server.

Proves, with python servables:
- every one of the 14 datatypes round-trips exactly: as JSON (all but FP16/BF16), as binary
  tensor data (all 14), and mixed JSON + binary in one request; nested JSON data; `id` echoed
  (and absent when not sent); a subset of outputs; per-output `binary_data` overriding the
  request's `binary_data_output`; a raw binary request (Inference-Header-Content-Length: 0);
  NaN and +-Infinity pass through (binary, and JSON NaN/Infinity tokens);
- every malformed request is a 400 {"error"} and the server keeps answering: bad JSON, JSON
  nested 100,000 deep, counts, datatypes, element types and ranges, FP16/BF16 as JSON, binary
  sizes that disagree with the body, unknown/missing inputs, unknown outputs, a huge shape
  with a tiny body, a negative timeout, priority 1;
- limits: a body over --max-infer-bytes is a 413; with the one instance held at the test's
  gate and a queue of 2, 8 more requests get exactly 6 refusals (503 "queue is full (2
  requests waiting)" + Retry-After) and 2 answers; the request `timeout` parameter shortens
  the server's --timeout-ms but never extends it (503 "worker timed out after 200 ms / 1500
  ms; killed").
"""

import json
import math
import threading
import unittest

import hub
import oip
from hub import HubTestCase
from oip import DATATYPES, BINARY_ONLY, HCL

ECHO_CODE = '''
def predict(inputs):
    return {"out_" + k[3:]: v for k, v in inputs.items()}
'''

ONE_CODE = '''
import numpy as np

def predict(inputs):
    return {"y": (inputs["x"] * 2).astype(np.float32)}
'''

SLEEPER_CODE = '''
import time

def predict(inputs):
    time.sleep(float(inputs["s"][0]))
    return {"y": inputs["s"]}
'''

VALUES = {
    "BOOL": [True, False, True],
    "UINT8": [0, 255, 7],
    "UINT16": [0, 65535, 1234],
    "UINT32": [0, 4294967295, 1],
    "UINT64": [0, 18446744073709551615, 2 ** 53 + 1],
    "INT8": [-128, 127, 0],
    "INT16": [-32768, 32767, -1],
    "INT32": [-2147483648, 2147483647, 42],
    "INT64": [-9223372036854775808, 9223372036854775807, 2 ** 53 + 1],
    "FP16": [1.0, -2.5, 65504.0],
    "FP32": [1.5, -0.25, 3.4028234663852886e38],
    "FP64": [0.1, -1e300, 5e-324],
    "BF16": [1.0, -2.0, 3.140625],
    "BYTES": ["hello", "", "caf\u00e9 \u2603"],
}
BINARY_BYTES = [b"\x00\xff raw \x01", b"", b"x" * 1000]


def publish_py(server, tenant, name, code, inputs, outputs):
    tar = oip.py_package(name, code, inputs, outputs)
    server.publish_ok(tenant.name, name, tar, tenant["publisher"])


def publish_echo(server, tenant):
    publish_py(server, tenant, "echo", ECHO_CODE,
               [("in_" + d, d, [-1]) for d in DATATYPES], [("out_" + d, d, [-1]) for d in DATATYPES])


class ProtocolTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        cls.tok = cls.t["publisher"]
        publish_echo(cls.server, cls.t)
        publish_py(cls.server, cls.t, "one", ONE_CODE, [("x", "FP32", [-1, 2])],
                   [("y", "FP32", [-1, 2])])
        cls.echo = cls.t.name + "/echo"
        cls.one = cls.t.name + "/one"

    # -- helpers

    def echo_request(self, binary=BINARY_ONLY, values=None, override=None, drop=()):
        """(head, blobs): all 14 inputs, those in `binary` sent binary; override = {dt: input}."""
        values = values or VALUES
        head, blobs = {"inputs": []}, []
        for d in DATATYPES:
            if d in drop:
                continue
            if override and d in override:
                head["inputs"].append(override[d])
                continue
            vals = values[d]
            item = {"name": "in_" + d, "datatype": d, "shape": [len(vals)]}
            if d in binary:
                blob = oip.pack(d, vals)
                item["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                item["data"] = vals
            head["inputs"].append(item)
        head["outputs"] = [{"name": "out_" + d, "parameters": {"binary_data": d in BINARY_ONLY}}
                           for d in DATATYPES if d not in drop]
        return head, blobs

    def send(self, model, head, blobs=()):
        if blobs:
            return oip.infer_binary(self.server, self.tok, model, head, list(blobs))
        return oip.infer_json(self.server, self.tok, model, head)

    def ok(self, resp):
        status, data, headers = resp
        self.assertEqual(status, 200, "infer: %r" % (hub._short(data),))
        return oip.split_answer(data, headers)

    def assert_values(self, datatype, got, want):
        if datatype in ("FP16", "FP32", "BF16"):
            self.assertEqual(len(got), len(want), datatype)
            for g, w in zip(got, want):
                self.assertTrue(math.isclose(g, w, rel_tol=1e-6), "%s: %r != %r" % (datatype, got,
                                                                                    want))
        else:
            self.assertEqual(got, want, datatype)

    def assert_one_answers(self):
        head, _ = self.ok(oip.infer_json(self.server, self.tok, self.one, {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}))
        self.assertEqual(oip.output_values(head, {}, "y"), [2, 4])

    def assert_bad(self, resp, what, message, want=400):
        status, data, _ = resp
        self.assertError((status, data), want, what, message=message)
        self.assert_one_answers()

    # -- round trips

    def test_json_round_trip_every_datatype(self):
        """12 datatypes as JSON, FP16 and BF16 binary in the same request (mixed)."""
        head, blobs = self.echo_request()
        head["id"] = "req-\u00e9-42"
        ans, binaries = self.ok(self.send(self.echo, head, blobs))
        self.assertEqual(ans["model_name"], self.echo)
        self.assertEqual(ans["model_version"], "1")
        self.assertEqual(ans.get("id"), "req-\u00e9-42")
        self.assertEqual(sorted(o["name"] for o in ans["outputs"]),
                         sorted("out_" + d for d in DATATYPES))
        for o in ans["outputs"]:
            d = o["name"][4:]
            with self.subTest(datatype=d):
                self.assertEqual(o["datatype"], d)
                self.assertEqual(o["shape"], [len(VALUES[d])])
                if d in BINARY_ONLY:
                    self.assertNotIn("data", o)
                    self.assertEqual(o["parameters"]["binary_data_size"],
                                     len(oip.pack(d, VALUES[d])))
                else:
                    self.assertNotIn(o["name"], binaries)
                self.assert_values(d, oip.output_values(ans, binaries, o["name"]), VALUES[d])

    def test_binary_round_trip_every_datatype(self):
        values = dict(VALUES, BYTES=BINARY_BYTES)
        head, blobs = self.echo_request(binary=DATATYPES, values=values)
        del head["outputs"]
        head["parameters"] = {"binary_data_output": True}
        status, data, headers = self.send(self.echo, head, blobs)
        self.assertEqual(status, 200, hub._short(data))
        self.assertIn(HCL.lower(), headers)
        ans, binaries = oip.split_answer(data, headers)
        self.assertNotIn("id", ans)
        self.assertEqual(sorted(binaries), sorted("out_" + d for d in DATATYPES))
        for o in ans["outputs"]:
            d = o["name"][4:]
            with self.subTest(datatype=d):
                self.assertEqual((o["datatype"], o["shape"]), (d, [len(values[d])]))
                self.assertNotIn("data", o)
                self.assertEqual(binaries[o["name"]], oip.pack(d, values[d]))

    def test_output_subset_and_per_output_binary_override(self):
        head, blobs = self.echo_request()
        head["parameters"] = {"binary_data_output": True}
        head["outputs"] = [{"name": "out_INT32", "parameters": {"binary_data": False}},
                           {"name": "out_FP16"},
                           {"name": "out_BYTES", "parameters": {"binary_data": False}}]
        ans, binaries = self.ok(self.send(self.echo, head, blobs))
        by_name = {o["name"]: o for o in ans["outputs"]}
        self.assertEqual(sorted(by_name), ["out_BYTES", "out_FP16", "out_INT32"])
        self.assertEqual(by_name["out_INT32"]["data"], VALUES["INT32"])
        self.assertEqual(by_name["out_BYTES"]["data"], VALUES["BYTES"])
        self.assertNotIn("data", by_name["out_FP16"])
        self.assertEqual(sorted(binaries), ["out_FP16"])
        self.assertEqual(binaries["out_FP16"], oip.pack("FP16", VALUES["FP16"]))

    def test_nested_data_and_id(self):
        req = {"id": "abc", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2],
                                        "data": [[1, 2], [3, 4.5]]}]}
        ans, _ = self.ok(self.send(self.one, req))
        self.assertEqual(ans["id"], "abc")
        self.assertEqual(ans["outputs"][0]["shape"], [2, 2])
        self.assertEqual(oip.output_values(ans, {}, "y"), [2, 4, 6, 9])
        del req["id"]
        ans, _ = self.ok(self.send(self.one, req))
        self.assertNotIn("id", ans)

    def test_raw_binary_request(self):
        status, data, headers = self.server.request_full(
            "POST", oip.model_path(self.one), self.tok, body=oip.pack("FP32", [1, 2, 3, 4]),
            headers={HCL: "0", "Content-Type": "application/octet-stream"})
        self.assertEqual(status, 200, hub._short(data))
        self.assertIn(HCL.lower(), headers)
        ans, binaries = oip.split_answer(data, headers)
        self.assertEqual(ans["outputs"][0]["shape"], [2, 2])
        self.assertEqual(binaries["y"], oip.pack("FP32", [2, 4, 6, 8]))

    def test_nan_and_infinity_pass_through(self):
        nan, inf = float("nan"), float("inf")
        head = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2],
                            "parameters": {"binary_data_size": 16}}],
                "parameters": {"binary_data_output": True}}
        ans, binaries = self.ok(self.send(self.one, head, [oip.pack("FP32", [nan, inf, -inf, 1.5])]))
        y = oip.unpack("FP32", binaries["y"])
        self.assertTrue(math.isnan(y[0]), y)
        self.assertEqual(y[1:], [inf, -inf, 3.0])
        body = (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2], '
                b'"data": [NaN, Infinity, -Infinity, 1.5]}]}')
        status, data, headers = self.server.request_full(
            "POST", oip.model_path(self.one), self.tok, body=body,
            headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, hub._short(data))
        self.assertIsInstance(data, dict, "answer is not JSON (NaN tokens?): %r" % hub._short(data))
        y = oip.output_values(data, {}, "y")
        self.assertTrue(isinstance(y[0], float) and math.isnan(y[0]), y)
        self.assertEqual(y[1:], [inf, -inf, 3.0])

    def test_parameters_accepted(self):
        ans, _ = self.ok(self.send(self.one, {
            "parameters": {"priority": 0, "timeout": 10000000},
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 1]}]}))
        self.assertEqual(oip.output_values(ans, {}, "y"), [2, 2])

    # -- bad input: each a 400 {"error"}, and the server still answers

    def x(self, **fields):
        item = {"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}
        item.update(fields)
        return item

    def test_bad_json_bodies(self):
        deep = 100000
        cut = b'{"inputs": [{"name": "x",'
        cases = {
            "malformed JSON": (cut, "request body is not valid JSON: unexpected end of input "
                                    "(at byte %d)" % len(cut)),
            "not an object": (b'[1, 2]', "request body must be a JSON object"),
            "nested 100000 deep": (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2],'
                                   b' "data": ' + b"[" * deep + b"1" + b"]" * deep + b"}]}",
                                   "JSON is nested deeper than 64 levels"),
        }
        for what, (body, message) in cases.items():
            with self.subTest(what):
                self.assert_bad(self.server.request_full(
                    "POST", oip.model_path(self.one), self.tok, body=body,
                    headers={"Content-Type": "application/json"}), what, message)

    def test_bad_tensors(self):
        over = "input 'x': shape %s has %d elements, over the limit of 268435456"
        cases = {
            "count does not match shape": ([self.x(shape=[2, 2], data=[1, 2, 3])],
                                           "input 'x': shape [2,2] needs 4 elements, data has 3"),
            "nested count does not match": ([self.x(shape=[2, 2], data=[[1, 2], [3]])],
                                            "input 'x': shape [2,2] needs 4 elements, data has 3"),
            "datatype not the signature's": ([self.x(datatype="FP64")],
                                             "input 'x' has datatype FP64, the servable expects "
                                             "FP32"),
            "unknown datatype": ([self.x(datatype="FP8")], "input 'x': unknown datatype 'FP8'"),
            "rank not the signature's": ([self.x(shape=[2])],
                                         "input 'x' has shape [2], the servable expects [-1,2]"),
            "fixed dim not the signature's": ([self.x(shape=[1, 3], data=[1, 2, 3])],
                                              "input 'x' has shape [1,3], the servable expects "
                                              "[-1,2]"),
            "string for FP32": ([self.x(data=["a", "b"])],
                                "input 'x': element 0 is a string, FP32 needs a number"),
            "unknown input": ([self.x(), self.x(name="bogus")],
                              "unknown input 'bogus' (the servable's inputs: x)"),
            "duplicate input": ([self.x(), self.x()], "input name 'x' appears more than once"),
            "no inputs": ([], "'inputs' must not be empty"),
            "huge shape, tiny body": ([self.x(shape=[1000000000, 1000000000])],
                                      over % ("[1000000000,1000000000]", 10 ** 18)),
            "huge batch, tiny body": ([self.x(shape=[1000000000, 2])],
                                      over % ("[1000000000,2]", 2 * 10 ** 9)),
            "negative dim": ([self.x(shape=[-1, 2])], "input 'x': 'shape' must be an array of "
                             "non-negative integers that fit int64, got -1"),
        }
        for what, (inputs, message) in cases.items():
            with self.subTest(what):
                self.assert_bad(self.send(self.one, {"inputs": inputs}), what, message)

    def test_bad_element_types_and_json_half_floats(self):
        def item(d, data):
            return {"name": "in_" + d, "datatype": d, "shape": [len(data)], "data": data}
        binary = "input 'in_%s': %s data in JSON is not supported; send it with the binary " \
                 "tensor extension"
        cases = {
            "string for INT32": ({"INT32": item("INT32", ["7"])},
                                 "input 'in_INT32': element 0 is a string, INT32 needs an integer"),
            "300 for UINT8": ({"UINT8": item("UINT8", [300])},
                              "input 'in_UINT8': element 0 (300) is out of range for UINT8"),
            "-1 for UINT64": ({"UINT64": item("UINT64", [-1])},
                              "input 'in_UINT64': element 0 (-1) is out of range for UINT64"),
            "2**63 for INT64": ({"INT64": item("INT64", [2 ** 63])},
                                "input 'in_INT64': element 0 (9223372036854775808) is out of "
                                "range for INT64"),
            "1.5 for INT16": ({"INT16": item("INT16", [1.5])},
                              "input 'in_INT16': element 0 (1.5) is not an integer, as INT16 "
                              "needs"),
            "number for BOOL": ({"BOOL": item("BOOL", [2])},
                                "input 'in_BOOL': element 0 is a number, BOOL needs true or false"),
            "number for BYTES": ({"BYTES": item("BYTES", [5])},
                                 "input 'in_BYTES': element 0 is a number, BYTES needs a string"),
            "FP16 as JSON": ({"FP16": item("FP16", [1.0])}, binary % ("FP16", "FP16")),
            "BF16 as JSON": ({"BF16": item("BF16", [1.0])}, binary % ("BF16", "BF16")),
        }
        for what, (override, message) in cases.items():
            with self.subTest(what):
                head, blobs = self.echo_request(
                    binary=[d for d in BINARY_ONLY if d not in override], override=override)
                self.assert_bad(self.send(self.echo, head, blobs), what, message)
        with self.subTest("missing input"):
            head, blobs = self.echo_request(drop=("INT8",))
            self.assert_bad(self.send(self.echo, head, blobs), "missing input",
                            "missing input 'in_INT8'")

    def test_bad_binary_sizes(self):
        def head(size, shape=(2, 2)):
            return {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(shape),
                                "parameters": {"binary_data_size": size}}]}
        blob = oip.pack("FP32", [1, 2, 3, 4])
        size = "input 'x': binary_data_size %d does not match shape [2,2] of FP32 (16 bytes)"
        self.assert_bad(self.send(self.one, head(32), [blob]), "size larger than the rest",
                        size % 32)
        self.assert_bad(self.send(self.one, head(8, (1, 2)), [blob]), "sizes sum below the body",
                        "binary tensor data after the JSON header is 16 bytes, but inputs "
                        "declare 8 (binary_data_size)")
        self.assert_bad(self.send(self.one, head(12), [blob[:12]]), "size not the shape's",
                        size % 12)
        self.assert_bad(self.send(self.one, head(16, (1000000000, 1000000000)), [blob]),
                        "huge shape, binary", "input 'x': shape [1000000000,1000000000] has "
                        "1000000000000000000 elements, over the limit of 268435456")
        text = json.dumps(head(16)).encode()
        not_number = HCL + " must be a non-negative integer"
        for what, hlen, message in (
                ("header length beyond the body", len(text) + len(blob) + 100,
                 "%s %d is larger than the body (%d bytes)" % (HCL, len(text) + len(blob) + 100,
                                                               len(text) + len(blob))),
                ("header length not a number", "abc", not_number),
                ("negative header length", -5, not_number)):
            with self.subTest(what):
                self.assert_bad(self.server.request_full(
                    "POST", oip.model_path(self.one), self.tok, body=text + blob,
                    headers={HCL: str(hlen), "Content-Type": "application/octet-stream"}), what,
                    message)

    def test_bad_outputs_and_parameters(self):
        timeout = "parameter 'timeout' must be a non-negative integer"
        cases = {
            "unknown output": ({"outputs": [{"name": "nope"}]},
                               "unknown output 'nope' (the servable's outputs: y)"),
            "negative timeout": ({"parameters": {"timeout": -1}}, timeout),
            "timeout not a number": ({"parameters": {"timeout": "soon"}}, timeout),
            "binary_data not a bool": ({"outputs": [{"name": "y",
                                                     "parameters": {"binary_data": "x"}}]},
                                       "outputs[0]: 'binary_data' must be a boolean"),
        }
        for what, (extra, message) in cases.items():
            with self.subTest(what):
                req = {"inputs": [self.x()]}
                req.update(extra)
                self.assert_bad(self.send(self.one, req), what, message)


class LimitsTest(HubTestCase):
    """--max-infer-bytes (413) and --max-queue (503 + Retry-After)."""

    @classmethod
    def setUpClass(cls):
        tenant = hub.unique("lim")  # its gate servable may use the network
        cls.server_args = ("--max-infer-bytes", "100000", "--max-queue", "2", "--instances", "1",
                           "--allow-network", tenant + "/gate")
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",), name=tenant)
        cls.tok = cls.t["publisher"]
        publish_py(cls.server, cls.t, "one", ONE_CODE, [("x", "FP32", [-1, 2])],
                   [("y", "FP32", [-1, 2])])
        cls.server.publish_ok(tenant, "gate", oip.py_package(
            "gate", oip.GATE_CODE, *oip.GATE_SIGNATURE, config={"network": True}), cls.tok)
        cls.one = cls.t.name + "/one"
        cls.gated = cls.t.name + "/gate"

    def small_ok(self):
        status, data, _ = oip.infer_json(self.server, self.tok, self.one, {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]})
        self.assertEqual(status, 200, hub._short(data))

    def test_body_over_max_infer_bytes(self):
        self.small_ok()
        n = 20000
        req = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [n, 2], "data": [1.25] * (2 * n)}]}
        self.assertGreater(len(json.dumps(req)), 100000)
        status, data, _ = oip.infer_json(self.server, self.tok, self.one, req)
        self.assertError((status, data), 413, "JSON body over the limit",
                         message="request body is over the 100000-byte limit")
        head = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [n, 2],
                            "parameters": {"binary_data_size": 8 * n}}]}
        status, data, _ = oip.infer_binary(self.server, self.tok, self.one, head,
                                           [oip.pack("FP32", [1.0] * (2 * n))])
        self.assertError((status, data), 413, "binary body over the limit",
                         message="request body is over the 100000-byte limit")
        self.small_ok()

    def test_full_queue_rejects_with_retry_after(self):
        status, data = self.server.post("/v2/repository/models/%s/load" % self.gated, self.tok)
        self.assertEqual((status, data.get("state")), (200, "READY"), data)
        gate = oip.Gate()
        self.addCleanup(gate.close)
        results = {}

        def infer(i):
            results[i] = oip.infer_json(self.server, self.tok, self.gated, gate.request(),
                                        timeout=60)

        def metric(name):
            text = self.server.get("/metrics", self.tok)[1].decode()
            return oip.metric_value(text, name, self.gated)

        # The one instance is busy: a request is held at the gate.
        holder = threading.Thread(target=infer, args=("held",))
        holder.start()
        gate.arrivals(1)
        # 8 more at once: 2 wait in the queue (--max-queue 2), 6 are refused at once.
        n = 8
        threads = [threading.Thread(target=infer, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        self.assertTrue(oip.wait_for(lambda: metric("orrery_inference_rejected_total") == n - 2),
                        "not exactly %d refused" % (n - 2))
        self.assertEqual(metric("orrery_inference_queue_length"), 2)
        gate.release()
        for _ in range(2):  # the two queued requests run, one after the other
            gate.arrivals(1)
            gate.release()
        for th in threads + [holder]:
            th.join(60)
        answers = [results[i] for i in range(n)] + [results["held"]]
        ok = [r for r in answers if r[0] == 200]
        rejected = [r for r in answers if r[0] != 200]
        self.assertEqual((len(ok), len(rejected)), (3, n - 2), [r[:2] for r in answers])
        for status, data, headers in rejected:
            self.assertError((status, data), 503, message="servable %s:1: queue is full "
                             "(2 requests waiting)" % self.gated)
            self.assertEqual(headers.get("retry-after"), "1", headers)
        for status, data, headers in ok:
            self.assertEqual(data["outputs"][0]["data"], [float(gate.port)])
        self.assertEqual(metric("orrery_inference_rejected_total"), n - 2)
        self.small_ok()


class TimeoutTest(HubTestCase):
    """The request's `timeout` (µs) shortens --timeout-ms and never extends it."""

    server_args = ("--timeout-ms", "1500")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        cls.tok = cls.t["publisher"]
        publish_py(cls.server, cls.t, "sleeper", SLEEPER_CODE, [("s", "FP64", [-1])],
                   [("y", "FP64", [-1])])
        cls.sleeper = cls.t.name + "/sleeper"

    def sleep_request(self, seconds, timeout_us=None):
        req = {"inputs": [{"name": "s", "datatype": "FP64", "shape": [1], "data": [seconds]}]}
        if timeout_us is not None:
            req["parameters"] = {"timeout": timeout_us}
        status, data, _ = oip.infer_json(self.server, self.tok, self.sleeper, req, timeout=120)
        return status, data

    def wait_answering(self):
        self.server.post("/v2/repository/models/%s/load" % self.sleeper, self.tok)
        got = oip.wait_for(lambda: self.sleep_request(0)[0] == 200, timeout=20, interval=0.1)
        self.assertTrue(got, "sleeper never answered again")

    def assert_killed_after(self, resp, ms):
        """The server stopped the request at the deadline it reports: `ms`."""
        self.assertError(resp, 503)
        self.assertWorkerTimeout(resp[1]["error"], "%s:1" % self.sleeper, ms)

    # The servable sleeps an hour: only the deadline ends the request.

    def test_timeout_parameter_shortens(self):
        self.wait_answering()
        self.assert_killed_after(self.sleep_request(3600, timeout_us=200000), 200)
        self.wait_answering()

    def test_timeout_parameter_cannot_extend(self):
        self.wait_answering()
        self.assert_killed_after(self.sleep_request(3600, timeout_us=10000000), 1500)
        self.wait_answering()
        status, data = self.sleep_request(0, timeout_us=10000000)  # accepted, not refused
        self.assertEqual(status, 200, data)


if __name__ == "__main__":
    unittest.main()
