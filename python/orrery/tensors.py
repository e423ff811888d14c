"""numpy arrays <-> the Open Inference Protocol's binary tensor extension.

A request is a JSON header followed by each input's raw bytes (little-endian; BYTES as
4-byte length-prefixed elements); its length travels in `Inference-Header-Content-Length`.
Outputs are asked for binary too, so no number ever goes through JSON text.
"""

import json

import numpy as np

# datatype -> numpy dtype (little-endian); BYTES is an object array of bytes.
DTYPES = {
    "BOOL": np.dtype("?"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
HEADER = "Inference-Header-Content-Length"


def datatype_of(array):
    """The protocol datatype of a numpy array; TypeError for one it cannot carry."""
    if array.dtype == object or array.dtype.kind in "SU":
        return "BYTES"
    for name, dtype in DTYPES.items():
        if array.dtype == dtype or array.dtype == dtype.newbyteorder("="):
            return name
    raise TypeError("numpy dtype %s has no Open Inference Protocol datatype (use one of %s, "
                    "or an object array of bytes for BYTES)" % (array.dtype, ", ".join(DTYPES)))


def _bytes_of(array):
    if array.dtype.kind == "U":
        items = [s.encode("utf-8") for s in array.reshape(-1)]
    elif array.dtype.kind == "S":
        items = list(array.reshape(-1))
    else:
        items = []
        for item in array.reshape(-1):
            if isinstance(item, str):
                item = item.encode("utf-8")
            if not isinstance(item, (bytes, bytearray)):
                raise TypeError("a BYTES tensor holds bytes or str, not %s" % type(item).__name__)
            items.append(bytes(item))
    return b"".join(len(i).to_bytes(4, "little") + i for i in items)


def encode_request(inputs, outputs=None):
    """(body, headers) of an inference request; `inputs` is {name: ndarray} in order."""
    header = {"inputs": [], "outputs": [{"name": n, "parameters": {"binary_data": True}}
                                        for n in (outputs or [])],
              "parameters": {"binary_data_output": True}}
    if not header["outputs"]:
        del header["outputs"]
    blobs = []
    for name, array in inputs.items():
        datatype = datatype_of(array)
        if datatype == "BYTES":
            data = _bytes_of(array)
        else:
            data = np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()
        header["inputs"].append({"name": name, "datatype": datatype, "shape": list(array.shape),
                                 "parameters": {"binary_data_size": len(data)}})
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    return text + b"".join(blobs), {HEADER: str(len(text)),
                                    "Content-Type": "application/octet-stream"}


def _decode_bytes(data, count):
    items, at = [], 0
    for _ in range(count):
        size = int.from_bytes(data[at:at + 4], "little")
        items.append(bytes(data[at + 4:at + 4 + size]))
        at += 4 + size
    array = np.empty(count, dtype=object)
    array[:] = items
    return array


def decode_response(body, header_length):
    """{name: ndarray} of an answer (binary or JSON outputs), in the answer's order."""
    length = int(header_length) if header_length else len(body)
    head = json.loads(body[:length])
    out, at = {}, length
    for output in head.get("outputs", []):
        shape = tuple(output["shape"])
        count = int(np.prod(shape)) if shape else 1
        size = (output.get("parameters") or {}).get("binary_data_size")
        datatype = output["datatype"]
        if size is not None:
            chunk = memoryview(body)[at:at + size]
            at += size
            if datatype == "BYTES":
                array = _decode_bytes(chunk, count)
            else:
                array = np.frombuffer(chunk, dtype=DTYPES[datatype]).copy()
        elif datatype == "BYTES":
            array = np.empty(count, dtype=object)
            array[:] = [d.encode("utf-8") if isinstance(d, str) else d for d in output["data"]]
        else:
            array = np.asarray(output["data"], dtype=DTYPES[datatype])
        out[output["name"]] = array.reshape(shape)
    return out, head
