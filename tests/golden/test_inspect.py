#!/usr/bin/env python3
"""`deepseek inspect --json --full` against an independent GGUF reader written here.

For every GGUF file in $DS_SHARED/testdata/models and testdata/vocab, this script parses the
file itself (a small reader using only `struct`, written from the format description in
docs: deepseek-gguf.md section 1, sharing no code with the C reader), runs the CLI, and checks
that every key's type and value and every tensor's name, type, shape, offset and size agree,
plus the totals. Exit 0 when all agree; the first differences are printed otherwise.
"""
import json
import math
import os
import struct
import subprocess
import sys

SCALARS = {0: ("uint8", "<B"), 1: ("int8", "<b"), 2: ("uint16", "<H"), 3: ("int16", "<h"),
           4: ("uint32", "<I"), 5: ("int32", "<i"), 6: ("float32", "<f"), 7: ("bool", "<?"),
           10: ("uint64", "<Q"), 11: ("int64", "<q"), 12: ("float64", "<d")}
# ggml type id -> (name, block elements, block bytes)
TYPES = {0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20),
         6: ("q5_0", 32, 22), 7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 9: ("q8_1", 32, 36),
         10: ("q2_K", 256, 84), 11: ("q3_K", 256, 110), 12: ("q4_K", 256, 144),
         13: ("q5_K", 256, 176), 14: ("q6_K", 256, 210), 15: ("q8_K", 256, 292),
         16: ("iq2_xxs", 256, 66), 17: ("iq2_xs", 256, 74), 18: ("iq3_xxs", 256, 98),
         19: ("iq1_s", 256, 50), 20: ("iq4_nl", 32, 18), 21: ("iq3_s", 256, 110),
         22: ("iq2_s", 256, 82), 23: ("iq4_xs", 256, 136), 29: ("iq1_m", 256, 56),
         30: ("bf16", 1, 2)}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n]
        self.p += n
        return s.decode("utf-8", errors="replace")

    def value(self, t):
        if t == 8:
            return self.string()
        return self.take(SCALARS[t][1])


def read_gguf(path):
    with open(path, "rb") as f:
        r = Reader(f.read())
    assert r.d[:4] == b"GGUF", path
    r.p = 4
    version, n_tensors, n_kv = r.take("<I"), r.take("<q"), r.take("<q")
    kv = {}
    for _ in range(n_kv):
        key, t = r.string(), r.take("<i")
        if t == 9:
            et, n = r.take("<i"), r.take("<Q")
            kv[key] = ("array", et, [r.value(et) for _ in range(n)])
        else:
            kv[key] = (t, None, r.value(t))
    tensors = []
    for _ in range(n_tensors):
        name, nd = r.string(), r.take("<I")
        ne = [r.take("<q") for _ in range(nd)]
        t, off = r.take("<i"), r.take("<Q")
        name_t, be, bb = TYPES[t]
        nel = math.prod(ne)
        tensors.append({"name": name, "type": name_t, "shape": ne, "offset": off,
                        "bytes": nel // be * bb, "nel": nel})
    return version, kv, tensors


def same_value(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-30)
    return a == b


def compare(path, deepseek):
    version, kv, tensors = read_gguf(path)
    out = subprocess.run([deepseek, "inspect", "--json", "--full", path], capture_output=True,
                         timeout=120)
    if out.returncode != 0:
        return [f"exit status {out.returncode}: {out.stderr.decode(errors='replace').strip()}"]
    j = json.loads(out.stdout)
    errs = []
    if j["version"] != version:
        errs.append(f"version {j['version']} != {version}")
    if set(j["metadata"]) != set(kv):
        errs.append(f"key sets differ: {sorted(set(j['metadata']) ^ set(kv))[:5]}")
    for key, (t, et, v) in kv.items():
        m = j["metadata"].get(key)
        if m is None:
            continue
        if t == "array":
            if m["type"] != "array" or m["count"] != len(v) or m["value"] is None:
                errs.append(f"{key}: array shape differs")
            elif m["elem_type"] != ("string" if et == 8 else SCALARS[et][0]):
                errs.append(f"{key}: element type {m['elem_type']}")
            elif not all(same_value(x, y) for x, y in zip(m["value"], v)):
                errs.append(f"{key}: array values differ")
        else:
            want_t = "string" if t == 8 else SCALARS[t][0]
            if m["type"] != want_t or not same_value(m["value"], v):
                errs.append(f"{key}: {m['type']} {m['value']!r} != {want_t} {v!r}")
    if len(j["tensors"]) != len(tensors):
        errs.append(f"{len(j['tensors'])} tensors != {len(tensors)}")
    for a, b in zip(j["tensors"], tensors):
        for f in ("name", "type", "shape", "offset", "bytes"):
            if a[f] != b[f]:
                errs.append(f"tensor {b['name']}: {f} {a[f]!r} != {b[f]!r}")
    if j["totals"]["parameters"] != sum(t["nel"] for t in tensors):
        errs.append("parameter total differs")
    if j["totals"]["bytes"] != sum(t["bytes"] for t in tensors):
        errs.append("byte total differs")
    return errs


def main():
    shared = os.environ.get("DS_SHARED", "../shared")
    deepseek = os.environ["DS_BIN"]
    files = []
    for sub in ("testdata/models", "testdata/vocab"):
        d = os.path.join(shared, sub)
        if os.path.isdir(d):
            files += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".gguf"))
    if not files:
        msg = f"no GGUF files under {shared}/testdata"
        if os.environ.get("DS_REQUIRE_SHARED") == "1":
            print("FAIL: " + msg)
            return 1
        print("skipping: " + msg)
        return 0
    failed = 0
    for f in files:
        errs = compare(f, deepseek)
        print(f"{'ok  ' if not errs else 'FAIL'} {os.path.basename(f)}")
        for e in errs[:10]:
            print("    " + e)
        failed += bool(errs)
    print(f"{len(files) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
