#!/usr/bin/env python3
"""`deepseek pull` and `deepseek list` against a local hub (tests/tools/hub_server.py).

The GGUF files are written here by a small writer of our own (format: deepseek-gguf.md §1) and
the expected bytes and SHA-256 come from these files, not from the program under test. Each
scenario starts its own server on 127.0.0.1 with a free port and a fresh models folder:
single and split models, tags, a choice between quantizations, a connection dropped mid-file
(resumed in the same run, and in a later run from NAME.part), a stalled transfer, a server
that ignores Range, a checksum mismatch and a size mismatch (no file may be left behind),
unsafe names in the listing, an unknown repository, a token, and `list` reading the results.
Needs DS_BIN (the deepseek binary). Exit 0 when every check passes.
"""
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "tools", "hub_server.py")
BIN = os.environ.get("DS_BIN", "deepseek")
FAILS = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        FAILS.append(what)


# ---- a minimal GGUF v3 writer ----

def gguf_bytes(arch, file_type, n_floats, seed, split=None):
    """One f32 tensor of n_floats random values; split = (no, count, total tensors) or None."""
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kv = [(s("general.architecture") + struct.pack("<I", 8) + s(arch)),
          (s("general.name") + struct.pack("<I", 8) + s("test")),
          (s("general.file_type") + struct.pack("<I", 4) + struct.pack("<I", file_type))]
    if split:
        no, count, total = split
        kv += [s("split.no") + struct.pack("<I", 2) + struct.pack("<H", no),
               s("split.count") + struct.pack("<I", 2) + struct.pack("<H", count),
               s("split.tensors.count") + struct.pack("<I", 5) + struct.pack("<i", total)]
    name = "blk.%d.weight" % (split[0] if split else 0)
    info = s(name) + struct.pack("<I", 1) + struct.pack("<q", n_floats) + struct.pack("<i", 0) + struct.pack("<Q", 0)
    head = b"GGUF" + struct.pack("<I", 3) + struct.pack("<q", 1) + struct.pack("<q", len(kv)) + b"".join(kv) + info
    head += b"\0" * ((-len(head)) % 32)
    rnd = random.Random(seed)
    data = struct.pack("<%df" % n_floats, *[rnd.uniform(-1, 1) for _ in range(n_floats)])
    return head + data


def make_hub(root):
    """Repositories: test/tiny-GGUF (one model), test/multi-GGUF (several), test/evil-GGUF."""
    files = {
        "test/tiny-GGUF/tiny-Q8_0.gguf": gguf_bytes("llama", 7, 60000, 1),
        "test/tiny-GGUF/README.md": b"# tiny\n",
        "test/multi-GGUF/multi-Q4_K_M.gguf": gguf_bytes("deepseek2", 15, 50000, 2),
        "test/multi-GGUF/mmproj-multi-F16.gguf": gguf_bytes("clip", 1, 1000, 3),
        "test/evil-GGUF/README.md": b"nothing\n",
    }
    for i in range(3):
        files["test/multi-GGUF/Q8_0/multi-Q8_0-%05d-of-00003.gguf" % (i + 1)] = \
            gguf_bytes("deepseek2", 7, 40000, 10 + i, split=(i, 3, 3))
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return files


# ---- running things ----

class Server:
    def __init__(self, root, log, *opts):
        self.p = subprocess.Popen([sys.executable, SERVER, "--root", root, "--log", log, *opts],
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError("hub_server did not start")
        self.url, self.log = "http://127.0.0.1:%d" % int(line.split()[1]), log

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(x) for x in f]

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=10)


def run(args, env=None, timeout=60):
    e = dict(os.environ)
    e.pop("HF_TOKEN", None)
    e.update(env or {})
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def sha(data):
    return hashlib.sha256(data).hexdigest()


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Scenario:
    """A fresh models folder, a server with the given options, and helpers."""

    def __init__(self, tmp, name, files, *server_opts):
        self.dir = os.path.join(tmp, name, "models")
        os.makedirs(self.dir)
        self.files = files
        self.srv = Server(os.path.join(tmp, "hub"), os.path.join(tmp, name, "log.jsonl"), *server_opts)

    def pull(self, spec, *opts, env=None):
        e = {"DS_MODELS": self.dir}
        e.update(env or {})
        return run(["pull", spec, "--base-url", self.srv.url, "--retry-delay", "10", "--timeout", "10", *opts],
                   env=e)

    def local(self):
        return sorted(os.listdir(self.dir))

    def same(self, rel):
        local = os.path.join(self.dir, os.path.basename(rel))
        return os.path.exists(local) and read(local) == self.files[rel]

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.srv.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="ds-pull-")
    try:
        files = make_hub(os.path.join(tmp, "hub"))
        scenarios(tmp, files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d checks failed" % len(FAILS))
        return 1
    print("all checks passed")
    return 0


def scenarios(tmp, files):
    tiny, q4 = "test/tiny-GGUF/tiny-Q8_0.gguf", "test/multi-GGUF/multi-Q4_K_M.gguf"
    parts = ["test/multi-GGUF/Q8_0/multi-Q8_0-%05d-of-00003.gguf" % i for i in (1, 2, 3)]

    with Scenario(tmp, "single", files) as s:
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 0, "single: pull REPO succeeds (%s)" % err.strip()[-200:])
        check(s.same(tiny) and s.local() == ["tiny-Q8_0.gguf"], "single: the bytes arrive, no .part, no README")
        check(out.strip() == os.path.join(s.dir, "tiny-Q8_0.gguf"), "single: stdout names the file")
        check(any(r["status"] == 302 for r in s.srv.requests()), "single: the hub's redirect was followed")
        n_req = len(s.srv.requests())
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 0 and "already present" in err, "single: a second pull finds the file")
        check(all("/resolve/" not in r["path"] for r in s.srv.requests()[n_req:]), "single: ... and fetches nothing")
        rc, out, _ = run(["list", "--json"], env={"DS_MODELS": s.dir})
        rows = json.loads(out) if rc == 0 else []
        check(len(rows) == 1 and rows[0]["name"] == "tiny-Q8_0" and rows[0]["architecture"] == "llama" and
              rows[0]["type"] == "Q8_0" and rows[0]["size"] == len(files[tiny]) and rows[0]["error"] is None,
              "list: name, architecture, type and size of the pulled model")
        rc, out, _ = run(["list"], env={"DS_MODELS": s.dir})
        check(rc == 0 and "tiny-Q8_0" in out and "llama" in out and "Q8_0" in out, "list: the table")

    with Scenario(tmp, "choose", files) as s:
        rc, out, err = s.pull("test/multi-GGUF")
        check(rc == 1 and "choose" in err and "multi-Q4_K_M" in err and "multi-Q8_0" in err and s.local() == [],
              "choose: several quantizations are listed, nothing is pulled")
        rc, out, err = s.pull("test/multi-GGUF:q8_0")
        check(rc == 0 and all(s.same(p) for p in parts), "choose: REPO:TAG pulls all three parts of a split model")
        check(s.local() == sorted(os.path.basename(p) for p in parts), "choose: ... and nothing else")
        rc, out, err = s.pull("test/multi-GGUF/multi-Q4_K_M.gguf")
        check(rc == 0 and s.same(q4), "choose: REPO/FILE pulls one file")
        rc, out, err = s.pull("test/multi-GGUF/Q8_0/multi-Q8_0-00002-of-00003.gguf")
        check(rc == 0 and err.count("already present") == 3, "choose: naming a later part means the whole model")
        rc, out, err = s.pull("test/multi-GGUF:Q5_K_M")
        check(rc == 1 and "no .gguf file matches" in err, "choose: an unknown tag fails")
        rc, out, _ = run(["list", "--json"], env={"DS_MODELS": s.dir})
        rows = {r["name"]: r for r in json.loads(out)} if rc == 0 else {}
        q8 = rows.get("multi-Q8_0", {})
        check(q8.get("parts") == 3 and q8.get("size") == sum(len(files[p]) for p in parts) and
              q8.get("type") == "Q8_0" and q8.get("architecture") == "deepseek2" and not q8.get("error"),
              "list: a split model is one row with the size of all parts")
        check(rows.get("multi-Q4_K_M", {}).get("type") == "Q4_K_M", "list: file type 15 is Q4_K_M")

    with Scenario(tmp, "drop-retry", files, "--drop-after", "100000") as s:
        rc, out, err = s.pull("test/tiny-GGUF")
        reqs = [r for r in s.srv.requests() if r["path"].startswith("/cdn/")]
        check(rc == 0 and s.same(tiny), "drop: a connection dropped mid-file is resumed in the same run")
        check(len(reqs) == 2 and reqs[0]["sent"] == 100000 and reqs[1]["range"] == "bytes=100000-" and
              reqs[1]["status"] == 206 and reqs[1]["sent"] == len(files[tiny]) - 100000,
              "drop: ... with a Range request for the missing bytes only")

    with Scenario(tmp, "drop-later", files, "--drop-after", "100000") as s:
        rc, out, err = s.pull("test/tiny-GGUF", "--retries", "0")
        part = os.path.join(s.dir, "tiny-Q8_0.gguf.part")
        check(rc == 1 and s.local() == ["tiny-Q8_0.gguf.part"] and os.path.getsize(part) == 100000 and
              "pull again to resume" in err, "drop: without retries the partial file stays (%s)" % err.strip())
        rc, out, err = s.pull("test/tiny-GGUF")  # this server drops each file only once
        reqs = [r for r in s.srv.requests() if r["path"].startswith("/cdn/")]
        check(rc == 0 and s.same(tiny) and s.local() == ["tiny-Q8_0.gguf"] and "resumed" in err,
              "drop: a later run resumes from NAME.part")
        check(reqs[-1]["range"] == "bytes=100000-" and reqs[-1]["sent"] == len(files[tiny]) - 100000,
              "drop: ... fetching only the rest")

    with Scenario(tmp, "stall", files, "--stall-after", "50000", "--stall-seconds", "20") as s:
        t0 = time.monotonic()
        rc, out, err = s.pull("test/tiny-GGUF", "--timeout", "1")
        reqs = [r for r in s.srv.requests() if r["path"].startswith("/cdn/")]
        check(rc == 0 and s.same(tiny) and time.monotonic() - t0 < 15,
              "stall: a stalled transfer times out and resumes (%.1f s)" % (time.monotonic() - t0))
        check(any(r["range"] == "bytes=50000-" for r in reqs), "stall: ... from the bytes already received")

    with Scenario(tmp, "no-range", files, "--no-range") as s:
        with open(os.path.join(s.dir, "tiny-Q8_0.gguf.part"), "wb") as f:
            f.write(files[tiny][:5000])
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 0 and s.same(tiny), "no-range: a server that ignores Range gets the file restarted")

    with Scenario(tmp, "bad-part", files) as s:
        with open(os.path.join(s.dir, "tiny-Q8_0.gguf.part"), "wb") as f:
            f.write(b"\xff" * 5000)  # a partial file from some other content
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 1 and "SHA-256 mismatch" in err and s.local() == [],
              "bad-part: a wrong partial file fails the checksum and is deleted")
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 0 and s.same(tiny), "bad-part: ... and the next pull starts clean")

    with Scenario(tmp, "corrupt", files, "--corrupt", "tiny-Q8_0.gguf") as s:
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 1 and "SHA-256 mismatch" in err and sha(files[tiny]) in err,
              "corrupt: a checksum mismatch fails with a clear message (%s)" % err.strip()[-160:])
        check(s.local() == [], "corrupt: ... and leaves no file behind")

    with Scenario(tmp, "wrong-size", files, "--wrong-size", "tiny-Q8_0.gguf") as s:
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 1 and "listing says" in err and s.local() == [],
              "wrong-size: a size mismatch fails and leaves no file behind")

    with Scenario(tmp, "evil", files, "--evil") as s:
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 0 and s.same(tiny) and "unsafe names" in err, "evil: unsafe listing entries are skipped")
        rc, out, err = s.pull("test/evil-GGUF")
        check(rc == 1 and "no .gguf model" in err, "evil: a repository of only unsafe names has nothing to pull")
        rc, out, err = s.pull("test/tiny-GGUF/../../evil.gguf")
        check(rc == 2, "evil: a traversal in REPO/FILE is refused")
        written = [os.path.join(b, n) for b, _, ns in os.walk(tmp) for n in ns if n.endswith(".gguf")]
        check(not any(os.path.basename(w).startswith(("evil", "x.", ".hidden")) for w in written) and
              s.local() == ["tiny-Q8_0.gguf"], "evil: nothing was written outside the models folder")

    with Scenario(tmp, "missing", files) as s:
        rc, out, err = s.pull("test/nothing-here")
        check(rc == 1 and "no such repository" in err, "missing: an unknown repository fails clearly")
        rc, out, err = s.pull("test/tiny-GGUF/other.gguf")
        check(rc == 1 and "no file other.gguf" in err, "missing: an unknown file fails clearly")
        rc, out, err = run(["pull", "test/tiny-GGUF", "--base-url", "http://127.0.0.1:1", "--retries", "0",
                            "--dir", s.dir])
        check(rc == 1 and "127.0.0.1" in err, "missing: a refused connection fails clearly")

    with Scenario(tmp, "token", files, "--token", "s3cret") as s:
        rc, out, err = s.pull("test/tiny-GGUF")
        check(rc == 1 and "HF_TOKEN" in err, "token: a 401 names HF_TOKEN")
        rc, out, err = s.pull("test/tiny-GGUF", env={"HF_TOKEN": "s3cret"})
        check(rc == 0 and s.same(tiny), "token: HF_TOKEN is sent")


if __name__ == "__main__":
    sys.exit(main())
