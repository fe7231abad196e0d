#!/usr/bin/env python3
"""A local stand-in for the Hugging Face hub, for testing `deepseek pull` (python3 stdlib only).

Serves the repositories under ROOT (ROOT/OWNER/NAME/... files) the way huggingface.co does:

  GET /api/models/OWNER/NAME[/revision/REV][?blobs=true]
      {"id", "sha", "siblings": [{"rfilename", "size"?, "blobId"?, "lfs"?: {"sha256", "size",
       "pointerSize"}}]}; sizes and lfs only with blobs=true, as model_info(files_metadata=True)
  GET /api/models/OWNER/NAME/tree/REV[?recursive=true]
      [{"type": "file"|"directory", "oid", "size", "path", "lfs"?: {"oid", "size", "pointerSize"}}]
  GET /OWNER/NAME/resolve/REV/PATH
      .gguf files are LFS files: 302 to /cdn/SHA256/NAME with X-Linked-Size, X-Linked-Etag and
      X-Repo-Commit, as the hub sends to its CDN; other files are served directly.
  GET /cdn/SHA256/NAME
      the bytes, with ETag, Accept-Ranges, Range requests (206 + Content-Range, 416).

Test knobs (options): --drop-after N closes the connection after N body bytes, once per file;
--stall-after N sends N body bytes, then nothing for --stall-seconds (default 5), once per file;
--corrupt PATH serves PATH with a byte changed (the listing keeps the true SHA-256);
--wrong-size PATH lists PATH 100 bytes longer than it is; --no-range ignores Range headers;
--evil adds listing entries with path-traversal names; --token T answers 401 without
"Authorization: Bearer T"; --no-redirect serves LFS files directly; --log FILE appends one JSON
line per request (path, range, status, body bytes sent).

Binds 127.0.0.1 on a free port (or --port) and prints "PORT <n>" on stdout once listening.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVIL_NAMES = ["../evil.gguf", "../../evil.gguf", "/tmp/evil.gguf", "a/../../evil.gguf", ".hidden.gguf",
              "..", "dir//evil.gguf", "evil\\..\\x.gguf", "evil%2F..%2Fx.gguf", "bad\nname.gguf"]


class Repo:
    """The files of one repository, with their hashes (computed once)."""

    def __init__(self, root, repo_id):
        self.id, self.dir, self.files = repo_id, os.path.join(root, repo_id), {}
        for base, _, names in os.walk(self.dir):
            for n in sorted(names):
                full = os.path.join(base, n)
                rel = os.path.relpath(full, self.dir).replace(os.sep, "/")
                with open(full, "rb") as f:
                    data = f.read()
                self.files[rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                   "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                                   "lfs": rel.endswith(".gguf"), "full": full}
        self.commit = hashlib.sha1(repr(sorted((k, v["sha256"]) for k, v in self.files.items()))
                                   .encode()).hexdigest()


class Hub:
    def __init__(self, args):
        self.args, self.root, self.lock = args, args.root, threading.Lock()
        self.dropped, self.repos = set(), {}

    def repo(self, repo_id):
        if not re.fullmatch(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+", repo_id) or ".." in repo_id:
            return None
        if not os.path.isdir(os.path.join(self.root, repo_id)):
            return None
        with self.lock:
            if repo_id not in self.repos:
                self.repos[repo_id] = Repo(self.root, repo_id)
            return self.repos[repo_id]

    def listed_size(self, rel, info):
        return info["size"] + (100 if rel in self.args.wrong_size else 0)

    def model_info(self, r, blobs):
        sib = []
        for rel, info in sorted(r.files.items()):
            e = {"rfilename": rel}
            if blobs:
                e["size"] = self.listed_size(rel, info)
                e["blobId"] = info["oid"]
                if info["lfs"]:
                    e["lfs"] = {"sha256": info["sha256"], "size": self.listed_size(rel, info),
                                "pointerSize": 134}
            sib.append(e)
        if self.args.evil:
            sib += [{"rfilename": n, "size": 10, "lfs": {"sha256": "0" * 64, "size": 10}} for n in EVIL_NAMES]
        return {"_id": "x", "id": r.id, "modelId": r.id, "sha": r.commit, "private": False,
                "gated": False, "disabled": False, "tags": ["gguf"], "siblings": sib}

    def tree(self, r, recursive):
        out, dirs = [], set()
        for rel, info in sorted(r.files.items()):
            parts = rel.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
            if not recursive and len(parts) > 1:
                continue
            e = {"type": "file", "oid": info["oid"], "size": self.listed_size(rel, info), "path": rel}
            if info["lfs"]:
                e["lfs"] = {"oid": info["sha256"], "size": self.listed_size(rel, info), "pointerSize": 134}
            out.append(e)
        for d in sorted(dirs):
            if recursive or "/" not in d:
                out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
        if self.args.evil:
            out += [{"type": "file", "oid": "0" * 40, "size": 10, "path": n,
                     "lfs": {"oid": "0" * 64, "size": 10, "pointerSize": 134}} for n in EVIL_NAMES]
        return out

    def first_time_for(self, key):
        with self.lock:
            if key in self.dropped:
                return False
            self.dropped.add(key)
            return True


class Handler(BaseHTTPRequestHandler):
    server_version = "hub-test/1"

    def log_message(self, fmt, *args):  # quiet; --log has what the tests need
        pass

    def record(self, status, sent):
        if not HUB.args.log:
            return
        line = json.dumps({"path": self.path, "range": self.headers.get("Range"), "status": status,
                           "sent": sent, "auth": self.headers.get("Authorization") is not None})
        with HUB.lock, open(HUB.args.log, "a") as f:
            f.write(line + "\n")

    def reply(self, status, body=b"", ctype="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(status, len(body))

    def error(self, status, msg):
        self.reply(status, json.dumps({"error": msg}).encode(), headers={"X-Error-Message": msg})

    def authorized(self):
        if not HUB.args.token:
            return True
        return self.headers.get("Authorization") == "Bearer " + HUB.args.token

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path, query = urllib.parse.unquote(url.path), urllib.parse.parse_qs(url.query)
        if path.startswith("/cdn/"):
            return self.cdn(path)
        if not self.authorized():
            return self.error(401, "Invalid credentials in Authorization header")
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m:
            r = HUB.repo(m.group(1))
            if not r or (m.group(2) not in (None, "main")):
                return self.error(404, "Repository not found")
            blobs = query.get("blobs", ["false"])[0] == "true"
            return self.reply(200, json.dumps(HUB.model_info(r, blobs)).encode())
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            r = HUB.repo(m.group(1))
            if not r or m.group(2) != "main":
                return self.error(404, "Repository not found")
            rec = query.get("recursive", ["false"])[0] in ("true", "1")
            return self.reply(200, json.dumps(HUB.tree(r, rec)).encode())
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self.resolve(m.group(1), m.group(2), m.group(3))
        return self.error(404, "Not found")

    def resolve(self, repo_id, rev, rel):
        r = HUB.repo(repo_id)
        if not r or rev != "main":
            return self.error(404, "Repository not found")
        info = r.files.get(rel)
        if not info:
            return self.error(404, "Entry not found")
        if info["lfs"] and not HUB.args.no_redirect:
            loc = "/cdn/%s/%s?repo=%s&file=%s" % (info["sha256"], urllib.parse.quote(rel.split("/")[-1]),
                                                  urllib.parse.quote(repo_id), urllib.parse.quote(rel))
            return self.reply(302, b"", "text/plain", {
                "Location": loc, "X-Linked-Size": str(info["size"]),
                "X-Linked-Etag": '"%s"' % info["sha256"], "X-Repo-Commit": r.commit,
                "ETag": '"%s"' % info["oid"]})
        return self.send_file(r, rel, info)

    def cdn(self, path):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        r = HUB.repo(q.get("repo", [""])[0])
        rel = q.get("file", [""])[0]
        info = r.files.get(rel) if r else None
        if not info or path.split("/")[2] != info["sha256"]:
            return self.error(404, "Not found")
        return self.send_file(r, rel, info)

    def send_file(self, r, rel, info):
        with open(info["full"], "rb") as f:
            data = bytearray(f.read())
        if rel in HUB.args.corrupt and data:
            data[len(data) // 2] ^= 0xFF
        size, start, end, status = len(data), 0, len(data) - 1, 200
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m and not HUB.args.no_range:
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size:
                return self.reply(416, b"", "text/plain", {"Content-Range": "bytes */%d" % size})
            status = 206
        body = bytes(data[start:end + 1])
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"%s"' % (info["sha256"] if info["lfs"] else info["oid"]))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if self.command == "HEAD":
            return self.record(status, 0)
        n = HUB.args.stall_after
        if n is not None and n < len(body) and HUB.first_time_for("stall " + r.id + "/" + rel):
            try:
                self.wfile.write(body[:n])
                self.wfile.flush()
                time.sleep(HUB.args.stall_seconds)  # the client's stall timeout should end this
                self.wfile.write(body[n:])
            except OSError:
                pass
            return self.record(status, n)
        n = HUB.args.drop_after
        if n is not None and n < len(body) and HUB.first_time_for(r.id + "/" + rel):
            self.wfile.write(body[:n])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the client sees the connection end mid-body
            return self.record(status, n)
        self.wfile.write(body)
        self.record(status, len(body))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--drop-after", type=int)
    ap.add_argument("--stall-after", type=int)
    ap.add_argument("--stall-seconds", type=float, default=5.0)
    ap.add_argument("--corrupt", action="append", default=[])
    ap.add_argument("--wrong-size", action="append", default=[])
    ap.add_argument("--no-range", action="store_true")
    ap.add_argument("--no-redirect", action="store_true")
    ap.add_argument("--evil", action="store_true")
    ap.add_argument("--token")
    ap.add_argument("--log")
    global HUB
    HUB = Hub(ap.parse_args())
    srv = ThreadingHTTPServer(("127.0.0.1", HUB.args.port), Handler)
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
