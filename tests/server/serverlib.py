"""serverlib.py - start `deepseek serve` on a free port of 127.0.0.1, talk to it, stop it.

Shared by tests/server/malformed.py and bench/bench_server.py. Plain standard library
(http.client, socket), so raw bytes such as invalid UTF-8 and broken framing can be sent.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import time


class Server:
    def __init__(self, binary, model, args=(), env=None):
        self.proc = subprocess.Popen([binary, "serve", "-m", model, "--port", "0", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=env or os.environ.copy())
        self.port = None
        self.log = []
        deadline = time.time() + 30
        while self.port is None:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line:
                raise RuntimeError("server exited: " + "".join(self.log))
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if time.time() > deadline:
                raise RuntimeError("server did not start")
        # Drain stderr in the background so the server never blocks on a full pipe.
        import threading
        threading.Thread(target=self._drain, daemon=True).start()
        while True:
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("server not healthy")
            time.sleep(0.05)

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line.decode(errors="replace"))

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, data
        finally:
            c.close()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def metrics(self, headers=None):
        st, data = self.request("GET", "/metrics", headers=headers)
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out
