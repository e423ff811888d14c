#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into DIR/<target>/ (stdlib only).

The seeds are the inputs the unit and end-to-end tests send: HTTP heads (keep-alive,
pipelined, chunked, an upload), chunked bodies, JSON and binary inference requests of each
datatype, .npy files of each dtype and byte order, every example's orrery.yaml, and small tar
packages (plain, with directories, PAX long names).
    fuzz/make_corpus.py DIR
"""

import glob
import io
import json
import os
import struct
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)


def http_heads():
    yield b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    yield (b"POST /v2/models/acme/mlp/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer orr_"
           + b"0" * 64 + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    yield (b"POST /api/v1/servables/acme/mlp/versions HTTP/1.1\r\nHost: x\r\n"
           b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
    yield b"GET /a%2Fb?x=1&y=%20 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n\r\n"
    yield b"HEAD / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"


def chunked_bodies():
    for piece in (b"\x00", b"\x03", b"\x0f"):
        yield piece + b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"
        yield piece + b"A;ext=1\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT"
        yield piece + b"ffffffffffffffff\r\n"


def infer_json():
    types = {"BOOL": [True, False], "UINT8": [0, 255], "INT16": [-3, 4], "INT32": [1, 2],
             "INT64": [-(2 ** 63), 2 ** 63 - 1], "UINT64": [0, 2 ** 64 - 1], "FP32": [1.5, -0.25],
             "FP64": [1e308, "NaN"], "BYTES": ["a", "bc"]}
    for dtype, data in types.items():
        tensor = {"name": "x", "datatype": dtype, "shape": [2], "data": data}
        yield json.dumps({"id": "1", "inputs": [tensor]}).encode()
    yield json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2],
                                  "data": [[1, 2], [3, 4]]}],
                      "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
                      "parameters": {"priority": 1, "timeout": 1000}}).encode()
    yield b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [Infinity]}]}'


def infer_binary():
    def framed(head, blob, raw_type=10, raw_dim=-1):
        text = json.dumps(head).encode()
        return struct.pack("<H", len(text)) + bytes([raw_type, raw_dim & 0xff]) + text + blob
    blob = struct.pack("<4f", 1, 2, 3, 4)
    yield framed({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2],
                              "parameters": {"binary_data_size": 16}}]}, blob)
    words = struct.pack("<I", 2) + b"hi" + struct.pack("<I", 0)
    yield framed({"inputs": [{"name": "s", "datatype": "BYTES", "shape": [2],
                              "parameters": {"binary_data_size": len(words)}}]}, words, 13, 1)
    yield struct.pack("<H", 0) + bytes([11, 0xff]) + struct.pack("<4d", 1, 2, 3, 4)


def npy_files():
    def npy(descr, shape, data, fortran=False, version=1):
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
            descr, fortran, "".join("%d," % d for d in shape))
        pad = 64 - (10 + len(header) + 1) % 64
        header = header + " " * pad + "\n"
        magic = b"\x93NUMPY" + bytes([version, 0])
        size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
        return magic + size + header.encode() + data
    yield npy("<f4", (2, 2), struct.pack("<4f", 1, 2, 3, 4))
    yield npy("<f8", (3,), struct.pack("<3d", 1, 2, 3))
    yield npy(">i4", (2,), struct.pack(">2i", 1, 2))
    yield npy("|u1", (4,), b"\x00\x01\x02\x03")
    yield npy("|b1", (2,), b"\x00\x01")
    yield npy("<i8", (), struct.pack("<q", 7))
    yield npy("<f2", (1,), b"\x00\x3c", version=2)


def manifests():
    for path in sorted(glob.glob(os.path.join(SOURCE, "examples", "*", "orrery.yaml"))):
        with open(path, "rb") as f:
            yield f.read()


def archives():
    def tar(entries, fmt=tarfile.PAX_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
            for name, data in entries:
                info = tarfile.TarInfo(name)
                if data is None:
                    info.type = tarfile.DIRTYPE
                    t.addfile(info)
                else:
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
        return buf.getvalue()
    yield tar([("orrery.yaml", b"name: x\n"), ("model.bin", b"weights")])
    yield tar([("sub", None), ("sub/a.txt", b"a"), ("orrery.yaml", b"name: y\n")])
    yield tar([("d" * 120 + "/" + "f" * 120, b"long name")])
    yield tar([("orrery.yaml", b"name: z\n")], fmt=tarfile.GNU_FORMAT)


TARGETS = {"http_head_fuzzer": http_heads, "chunked_fuzzer": chunked_bodies,
           "infer_json_fuzzer": infer_json, "infer_binary_fuzzer": infer_binary,
           "npy_fuzzer": npy_files, "manifest_fuzzer": manifests, "archive_fuzzer": archives}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py DIR")
    for target, seeds in TARGETS.items():
        out = os.path.join(sys.argv[1], target)
        os.makedirs(out, exist_ok=True)
        for i, seed in enumerate(seeds()):
            with open(os.path.join(out, "seed-%02d" % i), "wb") as f:
                f.write(seed)


if __name__ == "__main__":
    main()
