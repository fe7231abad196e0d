#!/usr/bin/env python3
"""deepseek chat -p (one answer, for scripts) and --json, and the messages for bad input.

On the tiny shared model (random weights, R1-Distill template, so thinking is on by
default): --json carries the DeepSeek API's field names and self-consistent usage; the
prompt token count equals what `deepseek template` + `deepseek tokenize` make of the same
messages (an independent path through the template and tokenizer commands); the answer goes
to stdout and the thinking and stats to stderr; --think off and --budget change the split;
--messages continues a saved conversation. Bad input (unknown format name, a message list
that cannot be rendered, a negative reasoning budget, ...) gets one clear line and a non-zero
status. Skips (exit 77) without the shared model unless DS_REQUIRE_SHARED=1.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def run(*args, stdin=None):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return subprocess.run(list(args), capture_output=True, text=True, errors="replace",
                          input=stdin, env=env, timeout=300)


def answers(ds, model, tmp):
    base = [ds, "chat", "-m", model, "-t", "1", "--temp", "0"]
    r = run(*base, "-p", "Hello there", "-n", "16", "--json")
    check(r.returncode == 0, f"--json exits 0 ({r.stderr.strip()[:200]})")
    out = json.loads(r.stdout)
    check(set(out) >= {"reasoning_content", "content", "usage", "finish_reason"},
          "--json has reasoning_content, content, usage, finish_reason")
    u = out["usage"]
    check(u["completion_tokens"] == 16 and out["finish_reason"] == "length",
          "-n 16: 16 tokens, finish_reason length")
    check(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
          and u["prompt_cache_miss_tokens"] == u["prompt_tokens"] - u["prompt_cache_hit_tokens"],
          "usage totals add up (total, cache hit + miss)")
    check(isinstance(out["reasoning_content"], str) and out["reasoning_content"] != ""
          and u["completion_tokens_details"]["reasoning_tokens"] == 16 and out["content"] == "",
          "R1 format: all 16 tokens are thinking, no answer yet")

    # prompt tokens by another path: the template command, then the tokenizer command
    msgs = os.path.join(tmp, "one.json")
    with open(msgs, "w") as f:
        json.dump([{"role": "user", "content": "Hello there"}], f)
    rendered = os.path.join(tmp, "prompt.txt")
    with open(rendered, "w") as f:
        f.write(run(ds, "template", "-m", model, "--messages", msgs).stdout)
    ids = json.loads(run(ds, "tokenize", "-m", model, "-f", rendered, "--ids", "--special",
                         "--no-bos").stdout)
    check(u["prompt_tokens"] == len(ids),
          f"prompt_tokens {u['prompt_tokens']} = template + tokenize ({len(ids)})")

    r2 = run(*base, "-p", "Hello there", "-n", "16", "--json")
    check(r2.stdout == r.stdout, "--temp 0: the same answer twice")

    r = run(*base, "-p", "Hello there", "-n", "12", "--json", "--think", "off")
    out = json.loads(r.stdout)
    check(r.returncode == 0 and out["reasoning_content"] is None and out["content"] != ""
          and out["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0,
          "--think off: an answer without thinking (reasoning_content null)")

    r = run(*base, "-p", "Hello there", "-n", "16", "--json", "--budget", "4")
    out = json.loads(r.stdout)
    rt = out["usage"]["completion_tokens_details"]["reasoning_tokens"]
    check(r.returncode == 0 and 0 < rt < 16 and out["content"] != "",
          f"--budget 4: thinking cut short ({rt} tokens), then an answer")

    # plain -p: answer on stdout, thinking and the stats line on stderr
    r = run(*base, "-p", "Hello there", "-n", "12", "--think", "off")
    check(r.returncode == 0 and r.stdout.strip() != "", "-p: the answer on stdout")
    check(re.search(r"in \d+ \| out 12 \| [\d.]+ tok/s \| ctx \d+/\d+ \| API \$[\d.]+ \| "
                    r"local [\d.]+ CPU-s", r.stderr) is not None, "-p: the stats line on stderr")
    r = run(*base, "-p", "Hello there", "-n", "12")
    check(r.stdout.strip() == "" and "Thinking..." in r.stderr and "...done thinking." in r.stderr,
          "-p: thinking goes to stderr, framed (no terminal: no color)")
    r = run(*base, "-p", "Hello there", "-n", "12", "--hide-thinking")
    check("Thinking..." not in r.stderr and "out 12 (12 reasoning)" in r.stderr,
          "--hide-thinking: not shown, still counted")

    # --messages continues a conversation (as /save writes it)
    conv = os.path.join(tmp, "conv.json")
    with open(conv, "w") as f:
        json.dump([{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": "Hello there"},
                   {"role": "assistant", "content": "Hi."}], f)
    r = run(*base, "-p", "Hello there", "-n", "4", "--json", "--messages", conv)
    check(r.returncode == 0 and json.loads(r.stdout)["usage"]["prompt_tokens"] > u["prompt_tokens"],
          "--messages: the earlier turns are in the prompt")


def bad_input(ds, model, tmp):
    base = [ds, "chat", "-m", model, "-t", "1", "-n", "4"]

    def bad(args, rc, pattern, what, files=None):
        r = run(*base, *args)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode == rc and re.search(pattern, r.stderr) is not None
              and r.stdout == "" and lines and lines[0].startswith("deepseek chat: "),
              f"{what}: status {r.returncode}, '{lines[0] if lines else ''}'")

    bad(["-p", "hi", "--chat-format", "deepseek-v9"], 2,
        r"unknown chat format 'deepseek-v9' \(known: deepseek-v3, .*deepseek-v2\)",
        "unknown format name")
    null_user = os.path.join(tmp, "null.json")
    with open(null_user, "w") as f:
        f.write('[{"role":"user","content":null}]')
    bad(["-p", "hi", "--messages", null_user], 1, r"null\.json: message 0 \(user\): content is null",
        "a message list that cannot be rendered")
    wizard = os.path.join(tmp, "wizard.json")
    with open(wizard, "w") as f:
        f.write('[{"role":"wizard","content":"x"}]')
    bad(["-p", "hi", "--messages", wizard], 1, r"message 0: role must be", "an unknown role")
    notjson = os.path.join(tmp, "notjson.json")
    with open(notjson, "w") as f:
        f.write('[{"role":')
    bad(["-p", "hi", "--messages", notjson], 1, r"notjson\.json: ", "a message file that is not JSON")
    bad(["-p", "hi", "--messages", os.path.join(tmp, "absent.json")], 1, r"cannot read",
        "a missing message file")
    bad(["-p", "hi", "--budget", "-1"], 2, r"reasoning budget cannot be negative \(got -1\)",
        "a reasoning budget < 0")
    bad(["-p", "hi", "--think", "maybe"], 2, r"--think takes on or off", "--think maybe")
    bad(["--json"], 2, r"--json needs -p", "--json without -p")
    bad(["-p", "hi", "--price", "1,2"], 2, r"--price: ", "--price with two numbers")
    bad(["-p", "hi", "-n", "-3"], 2, r"bad option or value: -n -3", "-n -3")
    r = run(ds, "chat", "-m", os.path.join(tmp, "absent.gguf"), "-p", "hi")
    check(r.returncode == 1 and "absent.gguf" in r.stderr, "a missing model file")
    # a prompt longer than the context is refused by the engine with its message
    r = run(*base, "-c", "16", "-p", "word " * 40)
    check(r.returncode == 1 and r.stderr.startswith("deepseek chat: ") and r.stdout == "",
          f"a question longer than the context: '{r.stderr.strip()[:120]}'")


def main():
    shared = os.environ.get("DS_SHARED", "../shared")
    ds = os.environ.get("DS_BIN", "deepseek")
    model = os.path.join(shared, "testdata/models/tiny-qwen2-f32.gguf")
    if not os.path.exists(model):
        if os.environ.get("DS_REQUIRE_SHARED") == "1":
            print("FAIL: missing " + model)
            return 1
        print("skipping: missing " + model)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        answers(ds, model, tmp)
        bad_input(ds, model, tmp)
    print(f"{len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
