#!/usr/bin/env python3
"""deepseek chat as a person uses it: through a pseudo-terminal (tmux send-keys/capture-pane).

The tiny shared model has random weights, so the checks are about structure, not words: the
question is echoed after the prompt, the answer streams (text before the stats line exists),
thinking is dimmed (SGR 2) and the answer is not, each turn ends with a stats line whose
numbers hang together (context = prompt + completion, the second turn's prompt holds the
first turn), /reset empties the context, Ctrl-C stops a long answer and the program takes the
next question, line editing and history work, /save writes a list `deepseek template` reads,
bad slash-command input gets a clear message, Ctrl-C twice at the prompt leaves.

Skips (exit 77) without tmux or the shared model, unless DS_REQUIRE_SHARED=1.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SLOW = float(os.environ.get("DS_TEST_SLOW", "1"))  # timeouts scale (sanitizer builds)
STATS = re.compile(
    r"\[in (\d+)(?: \((\d+) cached\))? \| out (\d+)(?: \((\d+) reasoning\))? \| ([\d.]+) tok/s"
    r" \| ctx (\d+)/(\d+) \| API \$([\d.]+) \| local ([\d.]+) CPU-s\]")
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


class Tty:
    """One `deepseek chat` in a detached tmux session on a private server."""

    def __init__(self, args, name):
        self.sock = f"dschat{os.getpid()}{name}"
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TMUX")}
        env["LANG"] = "C.UTF-8"
        cmd = " ".join(shlex_quote(a) for a in args) + "; echo __EXIT__ $?; sleep 600"
        subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", "new-session", "-d", "-s",
                        "chat", "-x", "200", "-y", "50", cmd], check=True, env=env)
        subprocess.run(["tmux", "-L", self.sock, "set-option", "-g", "history-limit", "20000"],
                       check=True)

    def keys(self, *keys):
        subprocess.run(["tmux", "-L", self.sock, "send-keys", "-t", "chat"] + list(keys),
                       check=True)

    def line(self, text):
        self.keys("-l", text)  # literally, so "/budget" is not read as a key name
        self.keys("Enter")

    def screen(self, escapes=False):
        a = ["tmux", "-L", self.sock, "capture-pane", "-p", "-J", "-S", "-", "-t", "chat"]
        if escapes:
            a.append("-e")
        return subprocess.run(a, check=True, capture_output=True, text=True,
                              errors="replace").stdout

    def wait(self, pred, what, timeout=30):
        end = time.time() + timeout * SLOW
        while time.time() < end:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.05)
        print(f"---- screen while waiting for {what} ----\n{self.screen()}\n----")
        raise TimeoutError(what)

    def wait_count(self, pattern, n, what, timeout=30):
        return self.wait(lambda s: len(re.findall(pattern, s)) >= n, what, timeout)

    def close(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


def streamed(screen, question):
    """Over 20 characters of answer shown after the question's line."""
    parts = screen.split(">>> " + question + "\n", 1)
    return len(parts) == 2 and len(parts[1].strip()) > 20


def stats(screen):
    return [tuple(float(x) if x and "." in x else int(x or 0) for x in m.groups())
            for m in STATS.finditer(screen)]


def conversation(ds, model, tmp):
    """Two turns, /think, /reset, /budget, /save, editing and history, Ctrl-D."""
    t = Tty([ds, "chat", "-m", model, "-n", "24", "-c", "512", "-t", "1", "--temp", "0"], "a")
    try:
        t.wait(lambda s: ">>> " in s, "the prompt")
        t.line("Hello there")
        s = t.wait_count(STATS, 1, "turn 1 stats")
        check(">>> Hello there" in s, "the question is shown after the prompt")
        body = s.split(">>> Hello there", 1)[1].split("[in ", 1)[0]
        check(body.strip() != "", "an answer was printed before the stats line")
        e = t.screen(escapes=True)
        after = e.split("Hello there", 1)[1]
        check(after.lstrip("\r\n ").startswith("\x1b[2m"), "the thinking is dimmed (SGR 2)")
        s1 = stats(s)[0]
        check(s1[2] == 24 and s1[3] == 24, "turn 1: 24 tokens out, all reasoning (R1 format)")
        check(s1[5] == s1[0] + s1[2] and s1[6] == 512, "turn 1: ctx = in + out, of 512")
        api = (s1[0] - s1[1]) * 0.28e-6 + s1[1] * 0.028e-6 + s1[2] * 0.42e-6
        check(abs(s1[7] - api) <= 1e-6, f"turn 1: API cost {s1[7]} = {api:.6f} at list prices")

        t.line("/think off")
        t.wait(lambda s: "thinking: off" in s, "/think off")
        t.line("What next?")
        s = t.wait_count(STATS, 2, "turn 2 stats")
        s2 = stats(s)[1]
        check(s2[3] == 0, "turn 2 with /think off: no reasoning tokens")
        check(s2[0] > s1[0], "turn 2's prompt holds turn 1 (more tokens in)")
        e = t.screen(escapes=True)
        ans = e.split("What next?", 1)[1].lstrip("\r\n")
        check(not ans.startswith("\x1b[2m") and ans.split("\n")[0].strip() != "",
              "turn 2: the answer is normal text")

        t.line("/save " + os.path.join(tmp, "chat.json"))
        t.wait(lambda s: "saved 4 messages" in s, "/save")
        t.line("/reset")
        t.wait(lambda s: "conversation cleared (context 0/512)" in s, "/reset")
        t.line("What next?")
        s = t.wait_count(STATS, 3, "turn 3 stats")
        s3 = stats(s)[2]
        check(s3[0] < s2[0] and s3[5] < s2[5], "after /reset the context starts empty again")

        t.line("/budget -1")
        t.wait(lambda s: "cannot be negative" in s, "/budget -1 message")
        check("error: the reasoning budget cannot be negative (got -1)" in t.screen(),
              "/budget -1: a clear message")
        t.line("/think maybe")
        t.wait(lambda s: "/think takes on or off (got 'maybe')" in s, "/think maybe message")
        t.line("/frobnicate")
        t.wait(lambda s: "unknown command '/frobnicate' (see /help)" in s, "unknown command")
        t.line("/help")
        t.wait(lambda s: "/save FILE" in s and "/budget N" in s, "/help")

        # editing: type the command without its slash, go to the start, add it
        t.keys("-l", "budget 7")
        t.keys("C-a")
        t.keys("-l", "/")
        t.keys("Enter")
        t.wait(lambda s: "reasoning budget: 7 tokens" in s, "emacs editing (C-a)")
        t.keys("Up")
        t.keys("Enter")
        t.wait_count(r"reasoning budget: 7 tokens", 2, "history recall (Up)")
        check(True, "line editing and history")

        t.keys("-l", '"""first line')
        t.keys("Enter")
        t.wait(lambda s: "... " in s, "the continuation prompt")
        t.keys("-l", 'second line"""')
        t.keys("Enter")
        s = t.wait_count(STATS, 4, "multi-line turn")
        check(stats(s)[3][0] > s3[0], "a two-line entry is one longer question")

        t.keys("C-d")
        t.wait(lambda s: "__EXIT__ 0" in s, "Ctrl-D leaves with status 0")
        check(True, "Ctrl-D at the prompt leaves")
    finally:
        t.close()

    saved = os.path.join(tmp, "chat.json")
    with open(saved, encoding="utf-8") as f:
        msgs = json.load(f)
    check([m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
          and msgs[0]["content"] == "Hello there" and msgs[2]["content"] == "What next?",
          "/save: the two turns as a JSON message list")
    check("reasoning_content" in msgs[1] and "reasoning_content" not in msgs[3],
          "/save: turn 1's thinking kept, turn 2 had none")
    r = subprocess.run([ds, "template", "--messages", saved, "--chat-format", "r1-distill-qwen"],
                       capture_output=True, text=True, errors="replace")
    check(r.returncode == 0 and "Hello there" in r.stdout, "deepseek template reads the file")


def interrupt(ds, model):
    """Ctrl-C during a long answer, then the next question, then Ctrl-C twice to leave."""
    t = Tty([ds, "chat", "-m", model, "-n", "0", "-c", "1024", "-t", "1", "--temp", "0"], "b")
    try:
        t.wait(lambda s: ">>> " in s, "the prompt")
        t.line("Tell me a long story")
        # streaming: text shows while the turn is still running (no stats line yet)
        s = t.wait(lambda s: streamed(s, "Tell me a long story"), "streamed text")
        check(not STATS.search(s), "the answer streams (text before the turn ends)")
        t0 = time.time()
        t.keys("C-c")
        s = t.wait(lambda s: "[interrupted]" in s and STATS.search(s), "[interrupted]")
        check(time.time() - t0 < 5 * SLOW, f"Ctrl-C stopped the answer in {time.time()-t0:.2f}s")
        first = stats(s)[0]
        check(0 < first[2] < 1000, f"the answer stopped early ({first[2]} tokens of up to ~1000)")
        check("__EXIT__" not in s, "the program is still running")
        t.wait(lambda s: s.rstrip().endswith(">>>"), "the prompt again")
        t.line("/think off")
        t.line("And then?")
        t.wait(lambda s: streamed(s, "And then?"), "second answer")
        t.keys("C-c")
        s = t.wait_count(r"\[interrupted\]", 2, "second [interrupted]")
        check(len(stats(s)) == 2 and stats(s)[1][0] > first[0],
              "the next question was answered in the same conversation")
        t.wait(lambda s: s.rstrip().endswith(">>>"), "the prompt again")
        t.keys("-l", "half a question")
        t.wait(lambda s: s.rstrip().endswith(">>> half a question"), "typed text")
        t.keys("C-c")
        t.wait(lambda s: s.rstrip().endswith(">>>") and "half a question" in s, "the text dropped")
        check("Ctrl-C again" not in t.screen(), "Ctrl-C over typed text only drops the text")
        t.keys("C-c")
        t.wait(lambda s: "Ctrl-C again" in s, "the hint after one Ctrl-C at the prompt")
        check("__EXIT__" not in t.screen(), "one Ctrl-C at the prompt does not leave")
        t.keys("C-c")
        t.wait(lambda s: "__EXIT__ 0" in s, "exit after the second Ctrl-C")
        check(True, "a second Ctrl-C at the prompt leaves with status 0")
    finally:
        t.close()


def main():
    shared = os.environ.get("DS_SHARED", "../shared")
    ds = os.environ.get("DS_BIN", "deepseek")
    model = os.path.join(shared, "testdata/models/tiny-qwen2-f32.gguf")
    missing = [w for w, ok in (("tmux", shutil.which("tmux")), (model, os.path.exists(model)))
               if not ok]
    if missing:
        msg = "missing: " + ", ".join(missing)
        if os.environ.get("DS_REQUIRE_SHARED") == "1":
            print("FAIL: " + msg)
            return 1
        print("skipping: " + msg)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        for part in (conversation, interrupt):
            try:
                part(ds, model, tmp) if part is conversation else part(ds, model)
            except TimeoutError as e:
                check(False, f"{part.__name__}: timed out waiting for {e}")
    print(f"{len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
