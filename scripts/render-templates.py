#!/usr/bin/env python3
"""Render the expected chat prompts for tests/unit/test_chat.c from the official Jinja templates.

    python3 scripts/render-templates.py [TEMPLATE_DIR] > tests/data/chat_expected.json

TEMPLATE_DIR defaults to $DS_SHARED/testdata/templates (or ../shared/testdata/templates). CMake
never runs this script: its output is committed, so the C tests compare against strings that
Python's jinja2 rendered once from the templates, not against anything our code produced.

The environment copies Hugging Face transformers' apply_chat_template: a sandboxed environment
with trim_blocks and lstrip_blocks, loop controls, and a `tojson` filter that is json.dumps with
ensure_ascii=False (not jinja2's HTML-escaping one). `from_json` (used by the V3.2 copy) is
json.loads.

Where llama.cpp's copies in testdata/templates differ from the official files, this script
restores the official form with exact text edits (each must match exactly once), as
testdata/templates/README.md and docs deepseek-gguf.md §7 describe:
  * R1-Distill-Qwen: drop llama.cpp's test-only `enable_thinking` -> `</think>` branch.
  * V3.1: llama.cpp writes `<think></think>` where the official template writes `</think>`.
Formats without a file of their own are built from a file that is there, by the edits §7 gives:
  * deepseek-r1 (the revised R1 template, Jan 2025, also in R1's 671B repo): the V3 template,
    with assistant content cut after the last `</think>` and the generation prompt
    `<｜Assistant｜><think>\\n` (§7.1).
  * deepseek-r1-original (first R1 upload): the same cut, generation prompt `<｜Assistant｜>`.
  * deepseek-v2 (V2 / V2-Lite chat): written out below from §7.4 (BOS, `User: ` + msg + `\\n\\n`,
    `Assistant: ` + msg + EOS, system + `\\n\\n`, prompt `Assistant:`).
"""
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.filters["from_json"] = json.loads
    return env


def edit(text, old, new):
    n = text.count(old)
    if n != 1:
        sys.exit(f"render-templates: expected one {old!r} in the template, found {n}")
    return text.replace(old, new)


V2_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")


def load_templates(tdir):
    def rd(name):
        with open(os.path.join(tdir, name), encoding="utf-8") as f:
            return f.read()

    v3 = rd("deepseek-ai-DeepSeek-V3.jinja")
    r1_cut = edit(v3, "{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}",
                  "{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}"
                  "{% set content = content.split('</think>')[-1] %}{% endif %}"
                  "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}")
    r1 = edit(r1_cut, "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}",
              "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}")
    qwen = edit(rd("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"),
                "{% if not enable_thinking %}{{- '</think>' -}}{% endif %}", "")
    v31 = rd("deepseek-ai-DeepSeek-V3.1.jinja")
    if v31.count("<think></think>") != 3:
        sys.exit("render-templates: the V3.1 copy no longer has three <think></think>")
    v31 = v31.replace("<think></think>", "</think>")
    return {
        "deepseek-v3": v3,
        "deepseek-r1": r1,
        "deepseek-r1-original": r1_cut,
        "deepseek-v3.1": v31,
        "deepseek-v3.2": rd("deepseek-ai-DeepSeek-V3.2.jinja"),
        "r1-distill-qwen": qwen,
        "r1-distill-llama": rd("deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja"),
        "deepseek-v2": V2_TEMPLATE,
    }


# ---- conversations ----

SYS = {"role": "system", "content": "You are a helpful assistant."}
SYS2 = {"role": "system", "content": "Answer in French."}
U1 = {"role": "user", "content": "What is 2+2?"}
U2 = {"role": "user", "content": "And 3+3? Say \"six\" <b>bold</b> & more."}
A1_THINK = {"role": "assistant",
            "content": "<think>\nThe user asks 2+2.\n</think>\n\nIt is 4."}
A1_PLAIN = {"role": "assistant", "content": "It is 4."}
A1_RC = {"role": "assistant", "content": "It is 4.", "reasoning_content": "Simple sum."}
A1_TWO_CLOSE = {"role": "assistant", "content": "a</think>b</think>c"}
CALL1 = {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
CALL2 = {"id": "call_2", "type": "function",
         "function": {"name": "get_time", "arguments": "{\"tz\": \"CET\",\n \"q\": \"a\\\"b\"}"}}
A_CALL1 = {"role": "assistant", "content": None, "tool_calls": [CALL1]}
A_CALL2 = {"role": "assistant", "content": None, "tool_calls": [CALL1, CALL2]}
A_CALL_TEXT = {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL1]}
T1 = {"role": "tool", "tool_call_id": "call_1", "content": "22 degrees"}
T2 = {"role": "tool", "tool_call_id": "call_2", "content": "10:00"}
A_AFTER_TOOL = {"role": "assistant", "content": "It is 22 degrees in Paris."}
UNI = {"role": "user", "content": "Grüße, 你好 — tab\there\u0001 end\\"}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]

PLAIN = ["deepseek-v3", "deepseek-r1", "deepseek-r1-original", "deepseek-v3.1", "deepseek-v3.2",
         "r1-distill-qwen", "r1-distill-llama", "deepseek-v2"]
TOOLING = [f for f in PLAIN if f != "deepseek-v2"]

# (name, formats, messages, extra kwargs)
CASES = [
    ("single", PLAIN, [U1], {}),
    ("single_no_prompt", PLAIN, [U1], {"add_generation_prompt": False}),
    ("system", PLAIN, [SYS, U1], {}),
    ("two_systems", PLAIN, [SYS, U1, SYS2], {}),
    ("multi_turn_think", PLAIN, [SYS, U1, A1_THINK, U2], {}),
    ("multi_turn_plain", PLAIN, [U1, A1_PLAIN, U2], {}),
    ("multi_turn_reasoning_field", PLAIN, [U1, A1_RC, U2], {}),
    ("ends_with_assistant", PLAIN, [U1, A1_THINK], {"add_generation_prompt": False}),
    ("two_think_closes", PLAIN, [U1, A1_TWO_CLOSE, U2], {}),
    ("unicode", PLAIN, [UNI], {}),
    ("tool_call_pending", TOOLING, [SYS, U1, A_CALL1, T1], {}),
    ("tool_call_answered", TOOLING, [SYS, U1, A_CALL1, T1, A_AFTER_TOOL, U2], {}),
    ("two_tool_calls", TOOLING, [U1, A_CALL2, T1, T2, A_AFTER_TOOL], {}),
    ("tool_call_with_text", ["deepseek-v3.1", "deepseek-v3.2", "r1-distill-qwen"],
     [U1, A_CALL_TEXT, T1, A_AFTER_TOOL, U2], {}),
    ("tool_defs", ["deepseek-v3.2"], [U1], {"tools": TOOLS}),
    ("tool_defs_system", ["deepseek-v3.2"], [SYS, U1, A_CALL1, T1], {"tools": TOOLS}),
]
THINKING = ["deepseek-v3.1", "deepseek-v3.2"]


def main():
    tdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("DS_SHARED", "../shared"), "testdata", "templates")
    env = make_env()
    templates = {k: env.from_string(v) for k, v in load_templates(tdir).items()}
    out = []
    for name, formats, messages, extra in CASES:
        for fmt in formats:
            for think in ([False, True] if fmt in THINKING else [None]):
                kw = {"messages": messages, "bos_token": BOS, "eos_token": EOS,
                      "add_generation_prompt": extra.get("add_generation_prompt", True)}
                if "tools" in extra:
                    kw["tools"] = extra["tools"]
                if think is not None:
                    kw["thinking"] = think
                case = {"name": name, "format": fmt, "messages": messages,
                        "add_generation_prompt": kw["add_generation_prompt"]}
                if "tools" in extra:
                    case["tools"] = extra["tools"]
                if think is not None:
                    case["thinking"] = think
                case["expected"] = templates[fmt].render(**kw)
                out.append(case)
    json.dump({"generator": "scripts/render-templates.py", "jinja2": jinja2.__version__,
               "cases": out}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
