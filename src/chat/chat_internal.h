// chat_internal.h - what the chat module's files share: the marker strings, the renderer
// signature, and small text helpers.
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ds/buf.h"
#include "ds/chat.h"

#define CHAT_BOS           "<｜begin▁of▁sentence｜>"
#define CHAT_EOS           "<｜end▁of▁sentence｜>"
#define CHAT_USER          "<｜User｜>"
#define CHAT_ASSISTANT     "<｜Assistant｜>"
#define CHAT_CALLS_BEGIN   "<｜tool▁calls▁begin｜>"
#define CHAT_CALLS_END     "<｜tool▁calls▁end｜>"
#define CHAT_CALL_BEGIN    "<｜tool▁call▁begin｜>"
#define CHAT_CALL_END      "<｜tool▁call▁end｜>"
#define CHAT_SEP           "<｜tool▁sep｜>"
#define CHAT_OUTPUTS_BEGIN "<｜tool▁outputs▁begin｜>"
#define CHAT_OUTPUTS_END   "<｜tool▁outputs▁end｜>"
#define CHAT_OUTPUT_BEGIN  "<｜tool▁output▁begin｜>"
#define CHAT_OUTPUT_END    "<｜tool▁output▁end｜>"
#define CHAT_THINK         "<think>"
#define CHAT_THINK_END     "</think>"
#define CHAT_DSML          "｜DSML｜"

// Where a renderer writes: the prompt, and the ranges of it that came from the messages
// (spans may be NULL when the caller did not ask). Template text goes through chat_put,
// message text through chat_put_content or is marked with chat_mark after it is written.
typedef struct chat_out {
    ds_buf        *b;
    ds_chat_spans *spans;
} chat_out;

void chat_put(chat_out *o, const char *s);
void chat_put_content(chat_out *o, const char *s);
void chat_mark(chat_out *o, size_t from); // bytes [from, end) came from the messages
void chat_truncate(chat_out *o, size_t len); // drops the text, and the spans, from len on

// A renderer appends the prompt to out; `think` is already resolved to on/off.
typedef ds_status (*chat_render_fn)(const ds_chat_messages *m, const ds_chat_params *p,
                                    bool think, chat_out *out);

ds_status chat_render_v3(const ds_chat_messages *m, const ds_chat_params *p, bool think, chat_out *out);
ds_status chat_render_r1(const ds_chat_messages *m, const ds_chat_params *p, bool think, chat_out *out);
ds_status chat_render_r1_original(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                                  chat_out *out);
ds_status chat_render_distill_llama(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                                    chat_out *out);
ds_status chat_render_distill_qwen(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                                   chat_out *out);
ds_status chat_render_v2(const ds_chat_messages *m, const ds_chat_params *p, bool think, chat_out *out);
ds_status chat_render_v31(const ds_chat_messages *m, const ds_chat_params *p, bool think, chat_out *out);
ds_status chat_render_v32(const ds_chat_messages *m, const ds_chat_params *p, bool think, chat_out *out);

const char *chat_role_name(ds_chat_role r);
// The failure every renderer reports for a field its template cannot use (Jinja would raise).
ds_status chat_bad_message(size_t i, const ds_chat_message *msg, const char *what);

// Appends s as Python's json.dumps(s, ensure_ascii=False) writes a string (the `tojson` of
// Hugging Face's template environment): \" \\ \b \f \n \r \t, other controls as \u00XX.
void chat_json_str(ds_buf *b, const char *s);
// The text after the last (or, with first=true, the first) `</think>` of s, or s itself when
// there is none: Jinja's content.split('</think>')[-1] / [1].
const char *chat_after_think(const char *s, bool first);
