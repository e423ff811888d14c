"""Helpers for the inference end-to-end tests (Open Inference Protocol, docs/inference.md).

- pack/unpack: the binary tensor layout (little-endian; BF16 = top 2 bytes of a float32;
  BYTES = uint32 length + bytes per element);
- infer_json / infer_binary: POST .../infer and split a binary answer into its JSON part and
  the bytes of each binary output;
- py_package: a python servable package (backend python, config.entrypoint) built in memory;
- wait_for, metric_value, descendants: polling, /metrics parsing and a /proc walk;
- Gate and GATE_CODE: a servable whose predict() holds until the test lets it go (the order of
  events is then explicit, not set by sleeps).
"""

import json
import os
import re
import socket
import struct
import threading
import time

import hub

FORMATS = {"BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q",
           "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
           "FP16": "e", "FP32": "f", "FP64": "d"}
DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BF16", "BYTES"]
BINARY_ONLY = ("FP16", "BF16")
HCL = "Inference-Header-Content-Length"


def pack(datatype, values):
    if datatype == "BYTES":
        out = b""
        for v in values:
            b = v.encode() if isinstance(v, str) else bytes(v)
            out += struct.pack("<I", len(b)) + b
        return out
    if datatype == "BF16":
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return struct.pack("<%d%s" % (len(values), FORMATS[datatype]), *values)


def unpack(datatype, raw):
    if datatype == "BYTES":
        out, i = [], 0
        while i < len(raw):
            (n,) = struct.unpack_from("<I", raw, i)
            out.append(raw[i + 4:i + 4 + n])
            i += 4 + n
        return out
    if datatype == "BF16":
        return [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
    size = struct.calcsize(FORMATS[datatype])
    return list(struct.unpack("<%d%s" % (len(raw) // size, FORMATS[datatype]), raw))


def model_path(model, version=None, route="infer"):
    """model: "tenant/name" (raw slash), "tenant%2Fname" or a bare name."""
    path = "/v2/models/" + model
    if version is not None:
        path += "/versions/%s" % version
    return path + ("/" + route if route else "")


def flatten(data):
    if isinstance(data, list):
        out = []
        for d in data:
            out.extend(flatten(d))
        return out
    return [data]


def split_answer(data, headers):
    """(JSON part, {output name: raw bytes}) of an inference answer."""
    if isinstance(data, (dict, list)):
        return data, {}
    hlen = headers.get(HCL.lower())
    if hlen is None:
        raise AssertionError("binary answer without %s: %r" % (HCL, data[:300]))
    n = int(hlen)
    head = json.loads(data[:n])
    rest, pos, out = data[n:], 0, {}
    for o in head.get("outputs", []):
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            out[o["name"]] = rest[pos:pos + size]
            pos += size
    if pos != len(rest):
        raise AssertionError("answer has %d binary bytes, outputs claim %d" % (len(rest), pos))
    return head, out


def output_values(head, binaries, name):
    """The flat values of output `name` (JSON data or unpacked binary)."""
    for o in head["outputs"]:
        if o["name"] == name:
            if name in binaries:
                return unpack(o["datatype"], binaries[name])
            return flatten(o["data"])
    raise AssertionError("no output %r in %r" % (name, [o["name"] for o in head["outputs"]]))


def infer_json(server, token, model, request, version=None, timeout=120, path=None):
    """(status, parsed answer, headers)."""
    return server.request_full("POST", path or model_path(model, version), token,
                               json_body=request, timeout=timeout)


def concurrently(call, count):
    """{i: call(i)} for i in range(count), every call on its own thread, all
    started before any is waited for (so that they overlap in the server)."""
    results = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, call(i)))
               for i in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def rows_request(rows, base):
    """A request of `rows` rows of 4 FP32 values for input `x`: base, base + 1, ..."""
    data = [float(base + i) for i in range(rows * 4)]
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 4], "data": data}]}


def binary_body(head, blobs):
    """Body and headers for a request whose JSON part is `head`, followed by `blobs`."""
    text = json.dumps(head).encode()
    return text + b"".join(blobs), {HCL: str(len(text)), "Content-Type": "application/octet-stream"}


def infer_binary(server, token, model, head, blobs, version=None, timeout=120):
    body, headers = binary_body(head, blobs)
    return server.request_full("POST", model_path(model, version), token, body=body,
                               headers=headers, timeout=timeout)


def signature(inputs, outputs):
    return {"inputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in inputs],
            "outputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in outputs]}


def py_package(name, code, inputs, outputs, module="model", config=None, files=None, **fields):
    """Tar bytes of a python servable whose `module`.py holds `code` and defines predict()."""
    cfg = {"entrypoint": module + ":predict"}
    cfg.update(config or {})
    contents = {module + ".py": code.encode()}
    contents.update(files or {})
    tar, _ = hub.package(name, contents, backend="python", signature=signature(inputs, outputs),
                         config=cfg, **fields)
    return tar


def wait_for(fn, timeout=20.0, interval=0.05):
    """Calls fn() until it returns a truthy value; returns it, or the last value at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def metric_value(text, metric, servable):
    """The value of `metric{servable="<servable>",...}` in Prometheus text, or None."""
    pat = re.compile(r'^%s\{([^}]*)\}\s+(\S+)\s*$' % re.escape(metric), re.M)
    for m in pat.finditer(text):
        if 'servable="%s"' % servable in m.group(1):
            return float(m.group(2))
    return None


def descendants(root_pid):
    """Pids of every process below root_pid (walks /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root_pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


# A python servable that, for each request, connects to the test's Gate (the port is its input
# "port", INT64 [1]), says it has started, and answers {"y": [port]} once the gate lets it go.
# It needs the network: publish it with config.network true and start the server with
# --allow-network tenant/name.
GATE_CODE = '''
import socket
def predict(inputs):
    port = int(inputs["port"][0])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"s")
        s.recv(1)
    return {"y": inputs["port"].astype("float64")}
'''
GATE_SIGNATURE = ([("port", "INT64", [-1])], [("y", "FP64", [-1])])

# For batching: y = x + 1 and each row's batch size ("rows"); a call whose first row carries a
# port (input "port", 0 for none) waits at that Gate first, so the instance is busy for as long
# as the test says. Inputs x FP32 [-1, 4] and port INT64 [-1]; outputs y FP32 [-1, 4] and rows
# INT64 [-1, 1].
GATED_ROWS_CODE = '''
import socket
import numpy as np

def predict(inputs):
    x, port = inputs["x"], int(inputs["port"][0])
    if port > 0:
        with socket.create_connection(("127.0.0.1", port)) as gate:
            gate.sendall(b"s")
            gate.recv(1)
    return {"y": x + 1, "rows": np.full((x.shape[0], 1), x.shape[0], dtype=np.int64)}
'''


class Gate:
    """The test's side of GATE_CODE: arrivals() waits until n requests are inside predict();
    release() lets every one waiting answer (a later one waits again, for a later release)."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.waiting = []

    def request(self):
        return {"inputs": [{"name": "port", "datatype": "INT64", "shape": [1],
                            "data": [self.port]}]}

    def arrivals(self, n, timeout=60):
        """Blocks until `n` more requests have entered predict()."""
        self.listener.settimeout(timeout)
        for _ in range(n):
            conn, _ = self.listener.accept()
            conn.settimeout(timeout)
            if conn.recv(1) != b"s":
                raise AssertionError("a gated request did not say it started")
            self.waiting.append(conn)

    def release(self):
        for conn in self.waiting:
            try:
                conn.sendall(b"g")
            except OSError:
                pass  # its worker was killed
            conn.close()
        self.waiting = []

    def close(self):
        self.release()
        self.listener.close()
