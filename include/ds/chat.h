// chat.h - chat formats (messages -> prompt text), the reasoning split of generated text, and
// tool calls written by the model.
//
// Formats. A template stored in a model file is untrusted input, so it is never interpreted:
// it only serves to recognise a family from a table, and each family is rendered by C code
// that reproduces, byte for byte, what the official Jinja template renders (quirks included,
// such as V3's unclosed single tool call). deepseek-gguf.md §7 describes the forms; the unit
// tests compare with strings rendered by jinja2 from the official templates
// (scripts/render-templates.py). Families:
//   deepseek-v3           V3 / V3-0324 / V2.5 style: BOS + joined system prompts, <｜User｜>,
//                         <｜Assistant｜>...<｜end▁of▁sentence｜>, prompt `<｜Assistant｜>`.
//   deepseek-r1           R1 (revised template, also R1-0528's 671B GGUFs from that template):
//                         V3 plus earlier reasoning cut at the last </think>, prompt
//                         `<｜Assistant｜><think>\n` (thinking forced open).
//   deepseek-r1-original  the first R1 upload: the same cut, prompt `<｜Assistant｜>`; the model
//                         opens <think> itself.
//   deepseek-v3.1         hybrid thinking: prompt `<｜Assistant｜></think>` (off, the template's
//                         default) or `<｜Assistant｜><think>` (on); V3.1 tool-call syntax.
//   deepseek-v3.2         V3.2 (llama.cpp's template; DSML tool calls, tool definitions in the
//                         system prompt, reasoning_content kept after the last user turn).
//   r1-distill-qwen       R1-Distill-Qwen: last system prompt only, JSON-quoted tool arguments.
//   r1-distill-llama      R1-Distill-Llama: last system prompt only, V3-style tool calls.
//   deepseek-v2           V2 / V2-Lite chat: "User: ...\n\nAssistant: ...".
// Only the V3.2 template writes tool definitions; the others ignore `tools` as their official
// templates do.
//
// Untrusted text. A rendered prompt mixes the template's own text (markers such as
// <｜User｜>, which must become special tokens) with text from the messages, which must not:
// a user who writes `<｜Assistant｜>` or `<think>` is writing text. ds_chat_render_spans
// reports which bytes came from the messages, and ds_chat_encode tokenizes the prompt with
// special tokens parsed in the template's text only (message bytes go through plain BPE, as
// the official API treats user text).
//
// Reasoning. ds_reasoning turns generated text, pushed piece by piece as tokens arrive, into
// reasoning, answer and tool-call text; markers split across pieces are held back until they
// are decided. The CLI and the server drive the same code.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/buf.h"
#include "ds/err.h"
#include "ds/tokenizer.h"

typedef struct ds_gguf ds_gguf;
struct json_t; // jansson

typedef enum ds_chat_format {
    DS_CHAT_DEEPSEEK_V3,
    DS_CHAT_DEEPSEEK_R1,
    DS_CHAT_DEEPSEEK_R1_ORIGINAL,
    DS_CHAT_DEEPSEEK_V3_1,
    DS_CHAT_DEEPSEEK_V3_2,
    DS_CHAT_R1_DISTILL_QWEN,
    DS_CHAT_R1_DISTILL_LLAMA,
    DS_CHAT_DEEPSEEK_V2,
    DS_CHAT_FORMAT_COUNT
} ds_chat_format;

// ---- messages ----

typedef enum ds_chat_role { DS_ROLE_SYSTEM, DS_ROLE_USER, DS_ROLE_ASSISTANT, DS_ROLE_TOOL } ds_chat_role;

typedef struct ds_chat_tool_call {
    char *id;        // may be NULL
    char *type;      // "function"
    char *name;      // function name
    char *arguments; // JSON text, as the client sent it (an object is written out compactly)
} ds_chat_tool_call;

// One message of an OpenAI-style list. Strings are owned by the list; NULL means absent/null.
typedef struct ds_chat_message {
    ds_chat_role       role;
    char              *content;           // NULL: JSON null or absent
    char              *reasoning_content; // NULL: absent
    ds_chat_tool_call *tool_calls;
    size_t             n_tool_calls;
    char              *tool_call_id; // tool results: the call answered (may be NULL)
} ds_chat_message;

typedef struct ds_chat_messages {
    ds_chat_message *items;
    size_t           n;
    size_t           cap;
} ds_chat_messages;

// Reads an OpenAI message list (a JSON array of {role, content, reasoning_content, tool_calls,
// tool_call_id}); content may also be an array of {"type":"text","text":...} parts, which
// are joined. DS_EFORMAT with "message N: ..." for anything that cannot be rendered: not an
// array, an unknown role, a non-string content, a tool call without a function name or
// arguments. On failure *out is empty. Free with ds_chat_messages_free.
ds_status ds_chat_messages_from_json(const struct json_t *list, ds_chat_messages *out);
// The same from JSON text (a bare array, or an object with a "messages" array).
ds_status ds_chat_messages_parse(const char *text, size_t len, ds_chat_messages *out);
// Appends a copy of a plain message (content and reasoning may be NULL). For C callers.
void ds_chat_messages_add(ds_chat_messages *m, ds_chat_role role, const char *content,
                          const char *reasoning_content);
void ds_chat_messages_free(ds_chat_messages *m); // back to empty; NULL is a no-op
void ds_chat_tool_calls_free(ds_chat_tool_call *calls, size_t n);

// ---- formats ----

typedef enum ds_chat_think {
    DS_THINK_DEFAULT, // what the template does when not told (V3.1/V3.2: off)
    DS_THINK_OFF,
    DS_THINK_ON,
} ds_chat_think;

typedef struct ds_chat_params {
    bool          add_generation_prompt; // end with the assistant's opening (default true)
    ds_chat_think think;                 // only V3.1/V3.2 have a switch; others: DEFAULT only
    const char   *tools_json;            // OpenAI "tools" array as JSON text, or NULL
    const char   *bos;                   // BOS text; NULL: "<｜begin▁of▁sentence｜>"
} ds_chat_params;

ds_chat_params ds_chat_params_default(void);

const char *ds_chat_format_name(ds_chat_format f); // "deepseek-r1"; "unknown" if out of range
// A format by name. DS_ENOTFOUND with a message that lists the known names.
ds_status ds_chat_format_from_name(const char *name, ds_chat_format *out);
// True when the format has a thinking switch (--think on|off).
bool ds_chat_format_has_think_switch(ds_chat_format f);
// True when the format's models reason in a <think> block: always (R1 and its distills), or
// when switched on (V3.1, V3.2). False for V3 and V2, which have no thinking mode.
bool ds_chat_format_can_think(ds_chat_format f);

// Recognises a family from a template text and an architecture name ("deepseek2", "qwen2",
// "llama"; may be NULL), by the table in template.c. Returns DS_CHAT_FORMAT_COUNT when the
// text matches no family. The text is only searched, never run.
ds_chat_format ds_chat_detect_template(const char *tmpl, size_t len, const char *arch);

// Recognises the family of a model: tokenizer.chat_template when present, else the special
// tokens (tok may be NULL) and the architecture. DS_EUNSUPPORTED with the reason when no
// family fits (the caller may then take --chat-format).
ds_status ds_chat_detect(const ds_gguf *g, const ds_tokenizer *tok, ds_chat_format *out);

// Renders messages as the family's official template does, appending to out. DS_EFORMAT
// ("message N (role): ...") for a list the template cannot render (a null user content, a
// tool result with no content), DS_EUNSUPPORTED for --think with a family without a switch,
// DS_EFORMAT for tools_json that is not a JSON array. On failure out is left as it was.
ds_status ds_chat_render(ds_chat_format f, const ds_chat_messages *m, const ds_chat_params *p,
                         ds_buf *out);

// Byte ranges of a rendered prompt that came from the messages or the tools: contents,
// reasoning, tool results, tool-call names and arguments, tool definitions. Offsets are into
// the ds_buf the prompt was rendered into; sorted, non-overlapping, adjacent ranges joined.
typedef struct ds_chat_spans {
    ds_text_span *items;
    size_t        n, cap;
} ds_chat_spans;

void ds_chat_spans_free(ds_chat_spans *s); // back to empty; NULL is a no-op

// ds_chat_render (the same bytes, the same errors) that also appends to `content` the ranges
// of out that came from the messages. On failure both are left as they were.
ds_status ds_chat_render_spans(ds_chat_format f, const ds_chat_messages *m,
                               const ds_chat_params *p, ds_buf *out, ds_chat_spans *content);

// Tokenizes a rendered prompt: special tokens parsed outside the content spans, none inside
// (ds_tokenizer_encode_spans); `flags` may add DS_ENCODE_ADD_BOS. Appends to out; the
// tokenizer's errors.
ds_status ds_chat_encode(const ds_tokenizer *t, const char *text, size_t len,
                         const ds_chat_spans *content, unsigned flags, ds_tokens *out);

// ---- reasoning split ----

typedef enum ds_reasoning_state {
    DS_REASONING_START,    // nothing decided yet: a leading <think> may still come
    DS_REASONING_THINKING, // inside <think> ... </think>
    DS_REASONING_ANSWER,   // the answer
    DS_REASONING_TOOLS,    // tool-call block (the rest goes to the tools buffer)
} ds_reasoning_state;

// Streaming splitter. Plain data: init in place, no free. Text in a held tail (a possible
// start of a marker, whitespace before </think>) is kept inside (hold[]) until decided.
typedef struct ds_reasoning {
    ds_chat_format     format;
    ds_reasoning_state state;
    bool               skip_ws;   // drop whitespace at the start of the current part
    bool               closed;    // a </think> was seen
    char               hold[96];  // undecided bytes
    size_t             n_hold;
} ds_reasoning;

// Starts a reply to `prompt` (the rendered text; may be NULL). When the prompt ends with an
// open <think> (R1's `<think>\n`, V3.1 thinking), the reply starts as reasoning; when it ends
// with `</think>` the reply is answer only; otherwise a leading <think> is looked for.
void ds_reasoning_init(ds_reasoning *r, ds_chat_format f, const char *prompt, size_t len);

// Feeds generated text. Appends what is decided to `reasoning` (between <think> and </think>,
// without the tags and the whitespace around it), `content` (the answer, leading whitespace
// removed) and `tools` (from the family's tool-call marker on, verbatim). Any buffer may be
// NULL to drop that part.
void ds_reasoning_push(ds_reasoning *r, const char *text, size_t len, ds_buf *reasoning,
                       ds_buf *content, ds_buf *tools);

// End of generation: what is held is released where it belongs (a reply that never closed
// its thinking leaves all of it as reasoning).
void ds_reasoning_finish(ds_reasoning *r, ds_buf *reasoning, ds_buf *content, ds_buf *tools);

static inline bool ds_reasoning_is_thinking(const ds_reasoning *r) {
    return r->state == DS_REASONING_THINKING;
}

// ---- tool calls written by the model ----

// Parses the tool-call block of a reply (the `tools` text of ds_reasoning) as the family
// writes it: V3/R1/distills `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```
// <｜tool▁call▁end｜>`, V3.1 `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>`,
// V3.2 DSML invoke blocks. Arguments must be a JSON object; they come back as compact JSON
// text. ids are left NULL. DS_EFORMAT naming what is wrong (the block is incomplete, the
// arguments are not JSON); DS_EUNSUPPORTED for a family without tool calls. The caller
// frees with ds_chat_tool_calls_free.
ds_status ds_chat_parse_tool_calls(ds_chat_format f, const char *text, size_t len,
                                   ds_chat_tool_call **calls, size_t *n_calls);
