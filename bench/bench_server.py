#!/usr/bin/env python3
"""bench_server.py - load and prefix-cache benchmarks of `deepseek serve` (docs/PERFORMANCE.md).

  load:     C concurrent streaming clients for D seconds; every third client hangs up after a few
            chunks. Reports failed requests, slots left busy, resident memory over the run,
            aggregate tokens/s and time to first token (p50/p99).
  batching: the same closed-loop load with -np N and with -np 1 (one request at a time).
  prefix:   a ~520-token prompt, then a second prompt sharing its first 500+ tokens: cache hits
            and the two times to first token.

Usage: bench_server.py DEEPSEEK_BIN MODEL.gguf [--clients 16] [--seconds 60] [-np 4]
"""
import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "server"))
from serverlib import Server  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stream_once(port, body, hang_up_after=None):
    """One streaming request. Returns (ok, ttft_s, completion_tokens or None)."""
    data = json.dumps(body).encode()
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    # HTTP/1.0: the stream comes unchunked and ends when the server closes the connection.
    s.sendall(b"POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(data) + data)
    buf, ttft, chunks, usage = b"", None, 0, None
    try:
        while True:
            part = s.recv(65536)
            if not part:
                break
            buf += part
            if b"\r\n" in buf and b" 200 " not in buf.split(b"\r\n", 1)[0] + b" ":
                print("status:", buf[:200], file=sys.stderr)
                return False, None, None
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                i = ev.find(b"data: ")
                if i < 0:
                    continue
                payload = ev[i + 6:]
                if payload.startswith(b"[DONE]"):
                    return True, ttft, usage
                obj = json.loads(payload)
                if "error" in obj:
                    return False, ttft, None
                if obj.get("usage"):
                    usage = obj["usage"]["completion_tokens"]
                if obj["choices"] and (obj["choices"][0]["delta"].get("content") or
                                       obj["choices"][0]["delta"].get("reasoning_content")):
                    chunks += 1
                    if ttft is None:
                        ttft = time.time() - t0
                    if hang_up_after and chunks >= hang_up_after:
                        return True, ttft, chunks  # hung up on purpose
    finally:
        s.close()
    return False, ttft, None


def closed_loop(port, clients, seconds, hang_every=0, max_tokens=48):
    stop_at = time.time() + seconds
    lock = threading.Lock()
    res = {"ok": 0, "failed": 0, "hung_up": 0, "tokens": 0, "ttft": []}

    def worker(k):
        n = 0
        while time.time() < stop_at:
            n += 1
            hang = 4 if hang_every and k % hang_every == 0 else None
            body = {"model": "x", "messages": [{"role": "user", "content": f"client {k} request {n}: tell me"}],
                    "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True},
                    "temperature": 1, "seed": k * 1000 + n}
            try:
                ok, ttft, toks = stream_once(port, body, hang)
            except (OSError, ValueError) as e:
                print("request failed:", e, file=sys.stderr)
                ok, ttft, toks = False, None, None
            with lock:
                if not ok:
                    res["failed"] += 1
                elif hang:
                    res["hung_up"] += 1
                    res["tokens"] += toks or 0
                else:
                    res["ok"] += 1
                    res["tokens"] += toks or 0
                if ttft is not None:
                    res["ttft"].append(ttft)

    t0 = time.time()
    th = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    res["elapsed"] = time.time() - t0
    return res


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def bench_load(a):
    srv = Server(a.bin, a.model, ["-np", str(a.np), "-c", "1024", "--queue", "64"])
    try:
        rss = [rss_kib(srv.proc.pid)]
        box = {}
        t = threading.Thread(target=lambda: box.update(closed_loop(srv.port, a.clients, a.seconds, hang_every=3)))
        t.start()
        while t.is_alive():
            time.sleep(a.seconds / 6)
            rss.append(rss_kib(srv.proc.pid))
        t.join()
        time.sleep(0.5)
        m = srv.metrics()
        rss.append(rss_kib(srv.proc.pid))
    finally:
        rc = srv.stop()
    r = box
    print(f"load: {a.clients} streaming clients x {r['elapsed']:.0f} s, -np {a.np}, every third hangs up")
    print(f"  requests: {r['ok']} complete, {r['hung_up']} hung up on purpose, {r['failed']} failed")
    print(f"  slots busy after the run: {m['deepseek_slots_busy']:.0f}; cancelled (server side): "
          f"{m['deepseek_requests_cancelled_total']:.0f}; disconnects seen: {m['deepseek_client_disconnects_total']:.0f}")
    print(f"  aggregate: {r['tokens'] / r['elapsed']:.1f} tokens/s streamed "
          f"({m['deepseek_completion_tokens_total'] / r['elapsed']:.1f} generated/s by the server)")
    print(f"  time to first token: p50 {pct(r['ttft'], 50) * 1e3:.0f} ms, p99 {pct(r['ttft'], 99) * 1e3:.0f} ms")
    print(f"  resident memory (MiB) over the run: {' '.join(f'{x / 1024:.1f}' for x in rss)}")
    print(f"  exit status after SIGTERM: {rc}")
    return r["failed"] == 0 and m["deepseek_slots_busy"] == 0


def bench_batching(a):
    out = {}
    for np_ in (a.np, 1):
        srv = Server(a.bin, a.model, ["-np", str(np_), "-c", "1024"])
        try:
            r = closed_loop(srv.port, a.np, a.batch_seconds, max_tokens=64)
        finally:
            srv.stop()
        out[np_] = r["tokens"] / r["elapsed"]
        print(f"batching: {a.np} clients, -np {np_}: {out[np_]:.1f} tokens/s, "
              f"ttft p50 {pct(r['ttft'], 50) * 1e3:.0f} ms")
    print(f"  continuous batching gain over one request at a time: {out[a.np] / out[1]:.2f}x")


def bench_prefix(a):
    srv = Server(a.bin, a.model, ["-np", "2", "-c", "1024"])
    try:
        doc = " ".join(f"Item {i} of the shared document is here." for i in range(32))
        res = []
        for q in ("What is item 7?", "What is item 42?"):
            body = {"model": "x", "max_tokens": 4, "stream": True, "stream_options": {"include_usage": True},
                    "messages": [{"role": "system", "content": doc}, {"role": "user", "content": q}]}
            t0 = time.time()
            ok, ttft, _ = stream_once(srv.port, body)
            st, data = srv.request("POST", "/v1/chat/completions", {**body, "stream": False})
            res.append((ttft, json.loads(data)["usage"]))
    finally:
        srv.stop()
    (t1, u1), (t2, u2) = res
    # The second non-stream call above ran after the second stream; report the stream's figures
    # and the hits of a request that shares only the prefix.
    print(f"prefix: prompt {u1['prompt_tokens']} tokens cold, ttft {t1 * 1e3:.1f} ms")
    print(f"  second prompt {u2['prompt_tokens']} tokens sharing the prefix: ttft {t2 * 1e3:.1f} ms "
          f"({t1 / t2:.1f}x shorter)")
    return t1, t2


def bench_prefix_hits(a):
    srv = Server(a.bin, a.model, ["-np", "2", "-c", "1024"])
    try:
        doc = " ".join(f"Item {i} of the shared document is here." for i in range(32))
        out = []
        for q in ("What is item 7?", "What is item 42?"):
            body = {"model": "x", "max_tokens": 4, "messages": [{"role": "system", "content": doc},
                                                                {"role": "user", "content": q}]}
            st, data = srv.request("POST", "/v1/chat/completions", body)
            out.append(json.loads(data)["usage"])
    finally:
        srv.stop()
    print(f"  hits: first {out[0]['prompt_cache_hit_tokens']} of {out[0]['prompt_tokens']}, "
          f"second {out[1]['prompt_cache_hit_tokens']} of {out[1]['prompt_tokens']}")
    return out[1]["prompt_cache_hit_tokens"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("model")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--batch-seconds", type=float, default=20)
    p.add_argument("-np", "--np", type=int, default=4)
    a = p.parse_args()
    ok = bench_load(a)
    bench_batching(a)
    t1, t2 = bench_prefix(a)
    hits = bench_prefix_hits(a)
    ok = ok and hits >= 500 and t1 >= 5 * t2
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
