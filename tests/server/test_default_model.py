#!/usr/bin/env python3
"""`deepseek serve` with no -m serves the shipped model, and a real answer comes back with its
reasoning in `reasoning_content` and the right number alone in `content`.

The expected answers are computed here by Python's own arithmetic; the model must answer all
but one right (a small model: `deepseek eval-task` measures its accuracy properly) and must
never leak its thinking into `content`.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

QUESTIONS = [("What is 47 * 36?", 47 * 36), ("What is 23 + 58?", 23 + 58),
             ("What is 512 - 275?", 512 - 275), ("What is 64 * 7?", 64 * 7),
             ("What is 308 + 496?", 308 + 496)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def main():
    deepseek = os.environ["DS_BIN"]
    port = free_port()
    env = dict(os.environ)
    env.pop("DS_DEFAULT_MODEL", None)
    srv = subprocess.Popen([deepseek, "serve", "--port", str(port)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except Exception:
                if srv.poll() is not None:
                    print("FAIL: server exited:", srv.stderr.read().decode(errors="replace"))
                    return 1
                time.sleep(0.1)
        right = 0
        for q, want in QUESTIONS:
            r = post(port, {"model": "default", "temperature": 0, "max_tokens": 300,
                            "messages": [{"role": "user", "content": q}]})
            m = r["choices"][0]["message"]
            content, reasoning = m.get("content") or "", m.get("reasoning_content") or ""
            print(f"{q!r}: reasoning {len(reasoning)} chars, content {content!r} (want {want})")
            if not reasoning.strip():
                print("FAIL: no reasoning_content")
                return 1
            if "<think>" in content or "</think>" in content or "carry" in content:
                print("FAIL: thinking leaked into content")
                return 1
            right += content.strip() == str(want)
        print(f"{right}/{len(QUESTIONS)} right")
        if right < len(QUESTIONS) - 1:
            print("FAIL: too many wrong answers")
            return 1
        print("1 passed, 0 failed")
        return 0
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()


if __name__ == "__main__":
    sys.exit(main())
