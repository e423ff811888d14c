#!/usr/bin/python3
"""Orrery's Python worker: serves one Python servable in a sandboxed process.

The server (src/backends/python/, src/backends/worker/) starts it as

    /usr/bin/python3 /orrery/orrery_worker.py --entrypoint module:attr

with its side of the frame channel (src/backends/worker/frames.h) as
descriptors 3 (requests, a pipe), 4 (answers, a pipe) and 5 (a Unix socket
for the memfds of shared-memory frames), and in its environment:
    ORRERY_SERVABLE_DIR  where the servable's files are (imported from there)
    ORRERY_SIGNATURE     JSON {"inputs": [{name, datatype, shape}], "outputs": [...]}
    ORRERY_ISOLATION     "bubblewrap" or "fallback" (sandbox.h)

Servable contract (examples/README.md):
- "module:function": function(inputs) per request;
- "module:Class": Class() at load (Class(model_dir) when its constructor has
  exactly one required argument), then instance.predict(inputs), or
  instance(inputs) when it has no predict method.
inputs is a dict of numpy arrays keyed by signature input name (BF16 arrives
as float32, BYTES as an object array of bytes). The result is a dict keyed
by output name, or one array/list when there is one output (a list or tuple
holding exactly one numpy array counts as that array), or a tuple/list of
arrays in signature output order. Outputs are converted to the
signature's datatypes with numpy (BF16: the top 2 bytes of float32, or raw
uint16 bits as given; BYTES from bytes or str); their shape is the array's.

An exception in the servable becomes a kError frame "<Type>: <message>" and
the worker serves on; a failure to load becomes kLoadError and the worker
exits. Stdlib and numpy only; per request: one read into a reused buffer
(large inputs: one pread of the server's memfd into another), numpy array
views over it, one writev (large outputs: one pwrite into a reused memfd).
"""

import json
import os
import socket
import struct
import sys

REQUEST_FD, ANSWER_FD, DESCRIPTOR_FD = 3, 4, 5
K_INFER, K_READY, K_LOAD_ERROR, K_RESULT, K_ERROR = 1, 2, 3, 4, 5
SHM_THRESHOLD = 1 << 20
MAX_FRAME = 1 << 30
MAX_ERROR = 2048
ANCILLARY = socket.CMSG_SPACE(4 * 4)
PREFIX = struct.Struct("<IBI")

np = None  # numpy, imported in main() so that a missing numpy is a load error

NUMPY_TYPES = {
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}


class ProtocolError(Exception):
    pass


def describe(error, frames=0):
    """'<Type>: <message>', at most MAX_ERROR bytes of UTF-8; with `frames`, the last
    frames of its traceback that are not this worker's
    (' (at model.py:3 in <module>; ...)'; the standard library's frames left out too),
    paths relative to the servable."""
    text = str(error)
    line = type(error).__name__ + (": " + text if text else "")
    if frames:
        import traceback
        here = os.path.abspath(__file__)
        stdlib = os.path.dirname(os.__file__) + "/"
        base = os.environ.get("ORRERY_SERVABLE_DIR") or os.getcwd()
        where = []
        for frame in traceback.extract_tb(error.__traceback__):
            if (frame.filename.startswith(("<frozen", stdlib))
                    or os.path.abspath(frame.filename) == here):
                continue
            name = frame.filename
            if name.startswith(base + "/"):
                name = name[len(base) + 1:]
            where.append("%s:%s in %s" % (name, frame.lineno, frame.name))
        if where:
            line += " (at " + "; ".join(where[-frames:]) + ")"
    return line.encode("utf-8", "replace")[:MAX_ERROR].decode("utf-8", "ignore")


class Channel:
    """One end of the frame protocol. Reads into a reused buffer; the arrays
    handed to the servable are views of it, so a new buffer is taken when
    the servable kept a reference to the previous inputs."""

    def __init__(self):
        self.sock = socket.socket(fileno=DESCRIPTOR_FD)  # memfds only
        self.buf = bytearray(1 << 16)
        self.have = 0       # bytes received into buf
        self.frame_end = 0  # end of the current frame in buf
        self.shm_buf = bytearray(0)  # shared-memory inputs are copied here
        self.result_fd = -1          # memfd reused for results of one size
        self.result_size = 0
        self.headers = {}   # raw header bytes -> parsed (treated as read-only)
        self.plans = {}     # raw header bytes -> decoding plan (input_plan)
        self.raw = b""      # the current frame's raw header
        self.encoded = {}   # result entries -> encoded header

    def _recv_more(self):
        n = os.readv(REQUEST_FD, [memoryview(self.buf)[self.have:]])
        self.have += n
        return n > 0

    def _receive_fd(self):
        """The memfd the server sent just before a shared-memory frame."""
        _, ancdata, flags, _ = self.sock.recvmsg(1, ANCILLARY)
        fds = []
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                count = len(data) // 4
                fds.extend(struct.unpack("<%di" % count, data[:count * 4]))
        if len(fds) != 1 or flags & socket.MSG_CTRUNC:
            for fd in fds:
                os.close(fd)
            raise ProtocolError("shared-memory frame without exactly one descriptor")
        return fds[0]

    def read(self):
        """The next frame as (type, header, data, offset): the tensor bytes
        start at data[offset:]. None when the server closed the channel."""
        while self.have < 4:
            if not self._recv_more():
                return None
        (length,) = struct.unpack_from("<I", self.buf, 0)
        if length < 5 or length > MAX_FRAME:
            raise ProtocolError("payload length %d" % length)
        end = 4 + length
        if end > len(self.buf):
            bigger = bytearray(max(end, 2 * len(self.buf)))
            bigger[:self.have] = memoryview(self.buf)[:self.have]
            self.buf = bigger
        while self.have < end:
            if not self._recv_more():
                return None
        self.frame_end = end
        ftype = self.buf[4]
        (header_size,) = struct.unpack_from("<I", self.buf, 5)
        if 9 + header_size > end:
            raise ProtocolError("header past the payload")
        raw = bytes(memoryview(self.buf)[9:9 + header_size])
        self.raw = raw
        header = self.headers.get(raw)  # requests of one shape repeat their header
        if header is None:
            header = json.loads(raw)
            if len(self.headers) < 256:
                self.headers[raw] = header
        if "shm" in header:
            if end != 9 + header_size:
                raise ProtocolError("shared-memory frame with inline bytes")
            return ftype, header, self._read_memfd(self._receive_fd(), header["shm"]), 0
        return ftype, header, self.buf, 9 + header_size

    def _read_memfd(self, fd, size):
        """Copies the memfd into a reused buffer (the server rewrites its memfd
        for the next request, so the inputs must not be a mapping of it)."""
        try:
            if len(self.shm_buf) < size:
                self.shm_buf = bytearray(size)
            with memoryview(self.shm_buf) as view:
                done = 0
                while done < size:
                    n = os.preadv(fd, [view[done:size]], done)
                    if n <= 0:
                        raise ProtocolError("shared-memory descriptor too short")
                    done += n
        finally:
            os.close(fd)
        return self.shm_buf

    def input_plan(self, header):
        """The decoding plan of the current frame's header, cached with it.
        Raises ProtocolError for a header that contradicts itself."""
        plan = self.plans.get(self.raw)
        if plan is None:
            plan = input_plan(header)
            if len(self.plans) < 256:
                self.plans[self.raw] = plan
        return plan

    def done(self):
        """After the reply: keep what was read past this frame, and take a
        fresh buffer if the servable still holds views of this one."""
        # Normally empty: the server sends one frame and waits for the reply.
        leftover = bytes(self.buf[self.frame_end:self.have]) if self.have > self.frame_end else b""
        if not resizable(self.buf):
            self.buf = bytearray(max(1 << 16, len(leftover)))
        self.buf[:len(leftover)] = leftover
        if not resizable(self.shm_buf):
            self.shm_buf = bytearray(0)
        self.have = len(leftover)
        self.frame_end = 0

    def send_result(self, entries, payloads):
        """`entries`: a tuple of (name, datatype, shape tuple, size) per output,
        `payloads` their bytes (bytes-like objects or C-contiguous arrays)."""
        total = 0
        for entry in entries:
            total += entry[3]
        head = self.encoded.get(entries)  # answers of one shape repeat their header
        if head is None:
            header = {"tensors": [{"name": n, "datatype": d, "shape": list(shape), "size": size}
                                  for n, d, shape, size in entries]}
            if total >= SHM_THRESHOLD:
                header["shm"] = total
            head = json.dumps(header, separators=(",", ":")).encode()
            if len(self.encoded) < 256:
                self.encoded[entries] = head
        self.send(K_RESULT, head, payloads, total)

    def send(self, ftype, header, payloads=(), total=0):
        """Sends a frame; `header` is a dict or its encoded JSON; `total`: the
        payloads' size in bytes."""
        if isinstance(header, bytes):
            head = header
        else:
            if total >= SHM_THRESHOLD:
                header["shm"] = total
            head = json.dumps(header, separators=(",", ":")).encode()
        if total >= SHM_THRESHOLD:
            fd = self._result_memfd(total, payloads)
            # The descriptor goes first: the server takes it once the frame is in.
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("<i", fd))]
            self.sock.sendmsg([b"\0"], ancillary)
            parts = [PREFIX.pack(5 + len(head), ftype, len(head)) + head]
        else:
            parts = [PREFIX.pack(5 + len(head) + total, ftype, len(head)), head]
            parts.extend(payloads)
        sent = os.writev(ANSWER_FD, parts)
        size = len(parts[0]) + (0 if len(parts) == 1 else len(head) + total)
        if sent < size:
            # rare (a signal): finish with plain writes
            rest = memoryview(b"".join(p.tobytes() if isinstance(p, np.ndarray) else bytes(p)
                                       for p in parts))[sent:]
            while rest:
                rest = rest[os.write(ANSWER_FD, rest):]

    def _result_memfd(self, total, payloads):
        """A sealed memfd of `total` bytes holding `payloads`. Reused while
        results keep their size: the server has copied the previous one out
        before it sends the next request."""
        import fcntl
        if self.result_size != total:
            if self.result_fd >= 0:
                os.close(self.result_fd)
                self.result_fd, self.result_size = -1, 0
            fd = os.memfd_create("orrery-result", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(fd, total)
            # Fixed size, so that the server may map it.
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                        fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            self.result_fd, self.result_size = fd, total
        offset = 0
        for payload in payloads:
            view = memoryview(payload)
            if not view.nbytes:
                continue
            view = view.cast("B")  # an array's bytes
            while len(view):
                n = os.pwrite(self.result_fd, view, offset)
                view, offset = view[n:], offset + n
        return self.result_fd

    def send_error(self, ftype, message):
        self.send(ftype, {"error": message})


def resizable(buffer):
    """False while numpy arrays (the servable's inputs) still view `buffer`."""
    try:
        buffer.append(0)  # a bytearray cannot be resized while viewed
    except BufferError:
        return False
    del buffer[-1]
    return True


# ----------------------------------------------------------------- tensors

def input_plan(header):
    """[(name, datatype, numpy dtype or None, count, shape, size)] of a request
    header's tensors, checked once per distinct header."""
    plan = []
    for entry in header.get("tensors", []):
        name, datatype, shape, size = (entry["name"], entry["datatype"],
                                       tuple(entry["shape"]), entry["size"])
        count = 1
        for dim in shape:
            count *= dim
        dtype = None
        if datatype not in ("BYTES", "BF16"):
            dtype = np.dtype(NUMPY_TYPES[datatype])
            if size != count * dtype.itemsize:
                raise ProtocolError("tensor '%s' has %d bytes for %d elements" % (name, size, count))
        plan.append((name, datatype, dtype, count, shape, size))
    return plan


def decode_inputs(plan, data, offset):
    """numpy arrays viewing `data` (from `offset` on) as `plan` says."""
    inputs = {}
    for name, datatype, dtype, count, shape, size in plan:
        if dtype is not None:
            inputs[name] = (np.ndarray(shape, dtype, data, offset) if count
                            else np.empty(shape, dtype))
        elif datatype == "BYTES":
            inputs[name] = decode_bytes(data, offset, size, count).reshape(shape)
        else:  # BF16
            bits = np.frombuffer(data, "<u2", count, offset) if count else np.empty(0, "<u2")
            inputs[name] = (bits.astype("<u4") << 16).view("<f4").reshape(shape)
        offset += size
    return inputs


def decode_bytes(data, offset, size, count):
    out = np.empty(count, dtype=object)
    view = memoryview(data)[offset:offset + size]
    position = 0
    for i in range(count):
        (length,) = struct.unpack_from("<I", view, position)
        position += 4
        out[i] = bytes(view[position:position + length])
        position += length
    return out


def infer_datatype(array):
    if array.dtype.kind in "OSU":
        return "BYTES"
    for name, code in NUMPY_TYPES.items():
        if array.dtype == np.dtype(code):
            return name
    raise TypeError("cannot send a numpy array of dtype %s" % array.dtype)


def encode_output(name, datatype, dtype, value):
    """(shape tuple, payload, size in bytes) of one output converted to
    `datatype` (`dtype`: its numpy dtype, None for BYTES and BF16)."""
    if dtype is not None:
        # No copy when the servable returned a C-ordered array of this dtype.
        array = np.asarray(value, dtype=dtype, order="C")
        return array.shape, array, array.nbytes
    if datatype == "BYTES":
        array = value if isinstance(value, np.ndarray) else np.array(value, dtype=object)
        parts = []
        for item in array.reshape(-1):
            if isinstance(item, str):
                item = item.encode("utf-8")
            elif not isinstance(item, (bytes, bytearray, memoryview)):
                raise TypeError("output '%s' is BYTES but holds a %s" % (name, type(item).__name__))
            parts.append(struct.pack("<I", len(item)))
            parts.append(bytes(item))
        payload = b"".join(parts)
        return array.shape, payload, len(payload)
    array = np.asarray(value)  # BF16
    if array.dtype != np.uint16:  # else: raw bfloat16 bits already
        array = (np.asarray(array, dtype="<f4").view("<u4") >> 16).astype("<u2")
    array = np.asarray(array, order="C")
    return array.shape, array, array.nbytes


def output_plan(specs):
    """[(name, datatype, numpy dtype or None)] of the signature's outputs."""
    return [(spec["name"], spec["datatype"],
             None if spec["datatype"] in ("BYTES", "BF16") else np.dtype(NUMPY_TYPES[spec["datatype"]]))
            for spec in specs]


def encode_outputs(result, plan):
    """(entries, payloads) for the servable's `result`: entries is a tuple of
    (name, datatype, shape tuple, size) per output (see Channel.send_result)."""
    if not plan:  # no signature: a dict, datatypes from numpy
        if not isinstance(result, dict):
            raise TypeError("servable must return a dict of arrays")
        plan = output_plan([{"name": k, "datatype": infer_datatype(np.asarray(v))}
                            for k, v in result.items()])
    if isinstance(result, dict):
        try:
            values = [result[name] for name, _, _ in plan]
        except KeyError:
            missing = [name for name, _, _ in plan if name not in result]
            raise KeyError("servable returned no output %s (it returned %s)"
                           % (", ".join(repr(m) for m in missing), sorted(map(str, result)))) from None
    elif len(plan) == 1:
        # A list or tuple of exactly one numpy array is that array; any other
        # value (a list of numbers included) is the output's data.
        single = (isinstance(result, (tuple, list)) and len(result) == 1
                  and isinstance(result[0], np.ndarray))
        values = [result[0] if single else result]
    elif isinstance(result, (tuple, list)) and len(result) == len(plan):
        values = list(result)
    else:
        raise TypeError("servable must return a dict keyed by %s or a tuple of %d arrays"
                        % ([name for name, _, _ in plan], len(plan)))
    entries, payloads = [], []
    for (name, datatype, dtype), value in zip(plan, values):
        shape, payload, size = encode_output(name, datatype, dtype, value)
        entries.append((name, datatype, shape, size))
        payloads.append(payload)
    return tuple(entries), payloads


# ----------------------------------------------------------------- loading

def load_servable(entrypoint, model_dir):
    """The per-request callable named by "module:attr"."""
    import importlib
    module_name, _, attr = entrypoint.partition(":")
    module = importlib.import_module(module_name)
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise AttributeError("module '%s' has no attribute '%s'" % (module_name, attr)) from None
    if isinstance(target, type):
        instance = target(model_dir) if one_required_argument(target) else target()
        predict = getattr(instance, "predict", None)
        if callable(predict):
            return predict
        if callable(instance):
            return instance
        raise TypeError("%s has neither a predict() method nor __call__" % entrypoint)
    if not callable(target):
        raise TypeError("%s is not callable" % entrypoint)
    return target


def one_required_argument(cls):
    import inspect
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [p for p in parameters
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) == 1


def make_undumpable():
    """Fallback sandbox: other workers share uid 65534; a non-dumpable process's
    /proc entries and memory are closed to them."""
    import ctypes
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


# ----------------------------------------------------------------- main

def serve(channel, predict, outputs):
    outputs = output_plan(outputs)
    while True:
        frame = channel.read()
        if frame is None:
            return 0  # the server closed the channel
        ftype, header, data, offset = frame
        if ftype != K_INFER:
            raise ProtocolError("unexpected frame type %d" % ftype)
        try:
            inputs = decode_inputs(channel.input_plan(header), data, offset)
            entries, payloads = encode_outputs(predict(inputs), outputs)
        except Exception as error:  # the servable's failure on this input
            message = describe(error)
            error = inputs = None
            channel.send_error(K_ERROR, message)
        else:
            channel.send_result(entries, payloads)
            inputs = entries = payloads = None
        data = frame = None
        channel.done()


def parse_version(text):
    """(1, 2, 0) of "1.2.0rc1"; the leading run of numbers."""
    parts = []
    for part in text.split("."):
        digits = ""
        for c in part:
            if not c.isdigit():
                break
            digits += c
        if not digits:
            break
        parts.append(int(digits))
        if digits != part:
            break
    return tuple(parts)


def unmet_requirements(requires):
    """The python.requires entries the sandbox does not satisfy, each with why."""
    import importlib
    import operator
    import re
    compare = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
               ">": operator.gt, "<": operator.lt}
    unmet = []
    for entry in requires:
        found = re.match(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|>=|<=|>|<)?\s*([0-9][0-9.]*)?\s*$", entry)
        name, op, wanted = found.groups() if found else (entry, None, None)
        try:
            importlib.import_module(name)
        except Exception as error:  # ImportError, or a package that fails to import
            unmet.append("%s (%s)" % (entry, "not installed" if isinstance(error, ImportError)
                                      else describe(error)))
            continue
        if op:
            top = sys.modules[name.split(".")[0]]
            have = getattr(top, "__version__", None)
            if not isinstance(have, str):
                unmet.append("%s (installed, version unknown)" % entry)
            else:
                a, b = parse_version(have), parse_version(wanted)
                width = max(len(a), len(b))
                a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
                if not compare[op](a, b):
                    unmet.append("%s (%s installed)" % (entry, have))
    return unmet


def main(argv):
    sys.stdout.reconfigure(line_buffering=True)
    if len(argv) < 3 or argv[1] != "--entrypoint" or len(argv) % 2 != 1 or \
            any(flag != "--path" for flag in argv[3::2]):
        print("usage: orrery_worker.py --entrypoint module:attr [--path DIR]...", file=sys.stderr)
        return 2
    entrypoint = argv[2]
    extra_paths = argv[4::2]  # Python environments, after the servable's own files
    channel = Channel()
    try:
        import faulthandler
        faulthandler.enable()  # a crash prints the Python stack to the server log
        global np
        import numpy
        np = numpy
        if os.environ.get("ORRERY_ISOLATION") == "fallback":
            make_undumpable()
        signature = json.loads(os.environ.get("ORRERY_SIGNATURE") or "{}")
        model_dir = os.environ.get("ORRERY_SERVABLE_DIR") or os.getcwd()
        os.chdir(model_dir)
        sys.path[0] = model_dir  # instead of this script's directory
        sys.path[1:1] = extra_paths  # ahead of the system's packages
        unmet = unmet_requirements(json.loads(os.environ.get("ORRERY_REQUIRES") or "[]"))
        if unmet:
            channel.send_error(K_LOAD_ERROR, (
                "python.requires not met: %s. The hub's operator provides modules as Debian "
                "python3-* packages on its host, or as a Python environment (orrery serve "
                "--python-env NAME=DIR) that the manifest names in python.environment; "
                "orrery env list shows what each provides" % "; ".join(unmet))
                .encode("utf-8", "replace")[:MAX_ERROR].decode("utf-8", "ignore"))
            return 1
        predict = load_servable(entrypoint, model_dir)
    except BaseException as error:  # SystemExit at import included
        import traceback
        traceback.print_exc()
        channel.send_error(K_LOAD_ERROR,
                           "cannot load %s: %s" % (entrypoint, describe(error, frames=3)))
        return 1
    channel.send(K_READY, {"pid": os.getpid()})
    return serve(channel, predict, signature.get("outputs") or [])


if __name__ == "__main__":
    status = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # now: threads the servable started must not keep the worker alive
