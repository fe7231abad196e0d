#!/usr/bin/env python3
"""malformed.py - hostile requests against `deepseek serve`: each must get the right 4xx with
an OpenAI-shaped error and a clear message, and the server must answer a normal request after
each. Then: a client that disconnects mid-stream frees its slot, and SIGTERM exits 0.

Usage: malformed.py DEEPSEEK_BIN MODEL.gguf
"""
import json
import socket
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from serverlib import Server  # noqa: E402

KEY = "s3cret-key"
AUTH = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
MSG = [{"role": "user", "content": "hi"}]


def chat(**kw):
    return json.dumps({"model": "x", "messages": MSG, "max_tokens": 2, **kw}).encode()


# (name, method, path, body bytes, headers, expected status, phrase in the message)
CASES = [
    ("bad JSON", "POST", "/v1/chat/completions", b"{not json", AUTH, 400, "not valid JSON"),
    ("truncated JSON", "POST", "/v1/chat/completions", b'{"messages":[{"role":"user"', AUTH, 400, "not valid JSON"),
    ("empty body", "POST", "/v1/chat/completions", b"", AUTH, 400, "empty"),
    ("JSON array body", "POST", "/v1/chat/completions", b"[]", AUTH, 400, "JSON object"),
    ("invalid UTF-8", "POST", "/v1/chat/completions",
     b'{"messages":[{"role":"user","content":"\xc3\x28\xff"}]}', AUTH, 400, "not valid JSON"),
    ("NUL in JSON string", "POST", "/v1/chat/completions",
     b'{"messages":[{"role":"user","content":"a\\u0000b"}]}', AUTH, 400, ""),
    ("missing messages", "POST", "/v1/chat/completions", b'{"model":"x"}', AUTH, 400, "required"),
    ("empty messages", "POST", "/v1/chat/completions", b'{"messages":[]}', AUTH, 400, "empty"),
    ("messages not array", "POST", "/v1/chat/completions", b'{"messages":{"role":"user"}}', AUTH, 400, "array"),
    ("unknown role", "POST", "/v1/chat/completions",
     b'{"messages":[{"role":"robot","content":"x"}]}', AUTH, 400, "robot"),
    ("missing role", "POST", "/v1/chat/completions", b'{"messages":[{"content":"x"}]}', AUTH, 400, "role"),
    ("content wrong type", "POST", "/v1/chat/completions",
     b'{"messages":[{"role":"user","content":5}]}', AUTH, 400, "message"),
    ("message not object", "POST", "/v1/chat/completions", b'{"messages":["hi"]}', AUTH, 400, "object"),
    ("negative max_tokens", "POST", "/v1/chat/completions", chat(max_tokens=-1), AUTH, 422, "max_tokens"),
    ("zero max_tokens", "POST", "/v1/chat/completions", chat(max_tokens=0), AUTH, 422, "max_tokens"),
    ("huge max_tokens", "POST", "/v1/chat/completions", chat(max_tokens=10**15), AUTH, 422, "max_tokens"),
    ("string max_tokens", "POST", "/v1/chat/completions", chat(max_tokens="5"), AUTH, 422, "integer"),
    ("float max_tokens", "POST", "/v1/chat/completions", chat(max_tokens=2.5), AUTH, 422, "integer"),
    ("temperature too high", "POST", "/v1/chat/completions", chat(temperature=9), AUTH, 422, "temperature"),
    ("negative temperature", "POST", "/v1/chat/completions", chat(temperature=-1), AUTH, 422, "temperature"),
    ("temperature string", "POST", "/v1/chat/completions", chat(temperature="hot"), AUTH, 422, "number"),
    ("top_p > 1", "POST", "/v1/chat/completions", chat(top_p=1.5), AUTH, 422, "top_p"),
    ("penalty out of range", "POST", "/v1/chat/completions", chat(presence_penalty=-7), AUTH, 422, "presence_penalty"),
    ("frequency_penalty huge", "POST", "/v1/chat/completions", chat(frequency_penalty=1e300), AUTH, 422, "frequency_penalty"),
    ("seed not integer", "POST", "/v1/chat/completions", chat(seed="x"), AUTH, 422, "seed"),
    ("stream not bool", "POST", "/v1/chat/completions", chat(stream="yes"), AUTH, 422, "stream"),
    ("top_logprobs > 20", "POST", "/v1/chat/completions", chat(logprobs=True, top_logprobs=50), AUTH, 422, "top_logprobs"),
    ("top_logprobs without logprobs", "POST", "/v1/chat/completions", chat(top_logprobs=2), AUTH, 422, "logprobs"),
    ("n = 5", "POST", "/v1/chat/completions", chat(n=5), AUTH, 422, "n"),
    ("stop not string", "POST", "/v1/chat/completions", chat(stop=7), AUTH, 422, "stop"),
    ("17 stop strings", "POST", "/v1/chat/completions", chat(stop=[str(i) for i in range(17)]), AUTH, 422, "stop"),
    ("stop too long", "POST", "/v1/chat/completions", chat(stop="x" * 1000), AUTH, 422, "stop"),
    ("bad response_format", "POST", "/v1/chat/completions", chat(response_format={"type": "yaml"}), AUTH, 422, "response_format"),
    ("bad tools", "POST", "/v1/chat/completions", chat(tools=[{"type": "function"}]), AUTH, 422, "tools"),
    ("bad tool name", "POST", "/v1/chat/completions",
     chat(tools=[{"type": "function", "function": {"name": "rm -rf /"}}]), AUTH, 422, "tools"),
    ("tool_choice without tools", "POST", "/v1/chat/completions", chat(tool_choice="required"), AUTH, 422, "tool_choice"),
    ("bad thinking", "POST", "/v1/chat/completions", chat(thinking={"type": "sometimes"}), AUTH, 422, "thinking"),
    ("prompt longer than context", "POST", "/v1/chat/completions",
     json.dumps({"messages": [{"role": "user", "content": "word " * 3000}]}).encode(), AUTH, 400, "tokens too many"),
    ("completion without prompt", "POST", "/v1/completions", b'{"max_tokens":3}', AUTH, 400, "prompt"),
    ("completion prompt number", "POST", "/v1/completions", b'{"prompt":3}', AUTH, 422, "prompt"),
    ("detokenize negative id", "POST", "/detokenize", b'{"tokens":[1,-5]}', AUTH, 400, "tokens[1]"),
    ("detokenize id too large", "POST", "/detokenize", b'{"tokens":[100000]}', AUTH, 400, "tokens[0]"),
    ("detokenize huge id", "POST", "/detokenize", b'{"tokens":[18446744073709551615]}', AUTH, 400, ""),
    ("detokenize not array", "POST", "/detokenize", b'{"tokens":"1 2 3"}', AUTH, 422, "tokens"),
    ("tokenize no content", "POST", "/tokenize", b'{"text":"x"}', AUTH, 400, "content"),
    ("wrong API key", "POST", "/v1/chat/completions", chat(),
     {"Authorization": "Bearer nope", "Content-Type": "application/json"}, 401, "API key"),
    ("missing API key", "GET", "/v1/models", None, {}, 401, "API key"),
    ("key of another length", "GET", "/v1/models", None, {"Authorization": "Bearer " + KEY + "x"}, 401, "API key"),
    ("unknown route", "GET", "/v2/everything", None, AUTH, 404, "route"),
    ("wrong method", "GET", "/v1/chat/completions", None, AUTH, 405, "POST"),
    ("deep nesting", "POST", "/v1/chat/completions", b"[" * 100000 + b"]" * 100000, AUTH, 400, ""),
]


def check_error(name, status, data, want_status, phrase):
    if status != want_status:
        return f"{name}: status {status}, expected {want_status}: {data[:200]!r}"
    try:
        err = json.loads(data)["error"]
        assert isinstance(err["message"], str) and err["message"]
        assert "type" in err and "param" in err and "code" in err
    except Exception as e:  # noqa: BLE001
        return f"{name}: not an OpenAI error body ({e}): {data[:200]!r}"
    if phrase and phrase not in err["message"] and phrase != err.get("param"):
        return f"{name}: message {err['message']!r} does not mention {phrase!r}"
    return None


def declared_oversized(port):
    """Content-Length above the cap: refused from the headers alone, before any body is sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
              b"\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        part = s.recv(4096)
        if not part:
            break
        data += part
    s.close()
    return data


def chunked_oversized(port):
    """A chunked body that grows past the cap: refused without reading it all into memory."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
              b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    try:
        for _ in range(40):  # 2.5 MiB > the 1 MiB cap
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        data = s.recv(4096)
    except OSError:
        data = b""
    s.close()
    return data


def disconnect_mid_stream(srv):
    body = json.dumps({"messages": MSG, "max_tokens": 64, "stream": True}).encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    got = b""
    while got.count(b"data:") < 3:
        part = s.recv(4096)
        if not part:
            return f"stream ended early: {got[:300]!r}"
        got += part
    s.close()
    deadline = time.time() + 2
    while time.time() < deadline:
        m = srv.metrics(AUTH)
        if m["deepseek_slots_busy"] == 0 and m["deepseek_requests_cancelled_total"] >= 1:
            return None
        time.sleep(0.05)
    return f"slot not freed after a disconnect: {m}"


def disk_cache(binary, model):
    """The on-disk prefix cache survives a restart; a damaged file is ignored, never trusted."""
    import tempfile
    doc = " ".join(f"Item {i} of the shared document is here." for i in range(20))
    body = {"max_tokens": 2, "messages": [{"role": "system", "content": doc}, {"role": "user", "content": "q"}]}
    hits = []
    with tempfile.TemporaryDirectory() as d:
        for round_ in range(3):
            srv = Server(binary, model, ["-c", "512", "--cache-dir", d])
            try:
                st, data = srv.request("POST", "/v1/chat/completions", body)
                hits.append(json.loads(data)["usage"]["prompt_cache_hit_tokens"] if st == 200 else -1)
            finally:
                srv.stop()
            if round_ == 1:  # damage the entry
                f = [x for x in __import__("os").listdir(d) if x.endswith(".dspc")][0]
                with open(f"{d}/{f}", "r+b") as fh:
                    fh.seek(100)
                    fh.write(b"XXXX")
    if not (hits[0] == 0 and hits[1] >= 300 and hits[2] == 0):
        return f"disk cache hits cold/restart/damaged: {hits}"
    return None


def main():
    binary, model = sys.argv[1], sys.argv[2]
    srv = Server(binary, model, ["-np", "2", "-c", "512", "--api-key", KEY, "--max-body", str(1 << 20),
                                 "--max-tokens", "64"])
    failures = []
    try:
        for name, method, path, body, headers, want, phrase in CASES:
            try:
                status, data = srv.request(method, path, body, headers)
            except OSError as e:
                failures.append(f"{name}: connection failed: {e}")
                continue
            f = check_error(name, status, data, want, phrase)
            if f:
                failures.append(f)
            st, data = srv.request("POST", "/v1/chat/completions", chat(), AUTH)
            if st != 200 or "choices" not in json.loads(data):
                failures.append(f"after {name}: normal request got {st}")
        for what, fn in (("declared", declared_oversized), ("chunked", chunked_oversized)):
            data = fn(srv.port)
            f = check_error(f"{what} oversized body", int((data.split(b" ") + [b"0", b"0"])[1] or 0),
                            data.split(b"\r\n\r\n", 1)[-1], 413, "larger")
            if f:
                failures.append(f)
            st, _ = srv.request("POST", "/v1/chat/completions", chat(), AUTH)
            if st != 200:
                failures.append(f"after {what} oversized body: normal request got {st}")
        f = disconnect_mid_stream(srv)
        if f:
            failures.append(f)
        if srv.request("GET", "/health")[0] != 200:
            failures.append("health after all cases")
    finally:
        rc = srv.stop()
    if rc != 0:
        failures.append(f"SIGTERM: exit status {rc}")
    f = disk_cache(binary, model)
    if f:
        failures.append(f)
    print(f"{len(CASES) + 2} malformed requests, {len(failures)} failures")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
