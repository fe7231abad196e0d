// render_v3.c - the V3-shaped families: DeepSeek-V3, R1 (revised and original), the
// R1-Distill-Llama and R1-Distill-Qwen templates, and the older V2 chat format.
//
// Each renderer follows its Jinja template statement by statement, with the template's
// `ns` flags as locals, so that its quirks come out the same: the V3 template writes
// `<｜tool▁calls▁end｜><｜end▁of▁sentence｜>` only after the second and later calls of a
// message (a single call stays open), never resets `is_first` between messages, and writes
// `<｜tool▁outputs▁end｜>` in front of the answer that follows tool results. Where Jinja would
// raise (a null content added to a string), the renderer reports the message instead.
#include <string.h>

#include "chat_internal.h"

// How a V3-shaped template differs from the V3 one.
typedef struct v3_style {
    bool        last_system; // distills: only the last system message, not all joined
    bool        cut_think;   // R1: assistant content after the last </think>
    bool        qwen_calls;  // Distill-Qwen: calls whenever tool_calls is non-empty, arguments
                             // through tojson, every call list closed
    const char *gen;         // the generation prompt
} v3_style;

static ds_status system_prompt(const ds_chat_messages *m, bool last_only, chat_out *out) {
    bool first = true;
    size_t start = out->b->len;
    for (size_t i = 0; i < m->n; i++) {
        const ds_chat_message *msg = &m->items[i];
        if (msg->role != DS_ROLE_SYSTEM) continue;
        if (!msg->content) return chat_bad_message(i, msg, "content is null");
        if (last_only) chat_truncate(out, start); // the template keeps overwriting ns.system_prompt
        else if (!first) chat_put(out, "\n\n");
        chat_put_content(out, msg->content);
        first = false;
    }
    return DS_OK;
}

static void call_text(chat_out *out, const ds_chat_tool_call *c, bool quote_args) {
    chat_put(out, CHAT_CALL_BEGIN);
    chat_put_content(out, c->type);
    chat_put(out, CHAT_SEP);
    chat_put_content(out, c->name);
    chat_put(out, "\n```json\n");
    size_t at = out->b->len;
    if (quote_args) chat_json_str(out->b, c->arguments);
    else chat_put(out, c->arguments);
    chat_mark(out, at);
    chat_put(out, "\n```" CHAT_CALL_END);
}

static ds_status render_v3_style(const ds_chat_messages *m, const ds_chat_params *p,
                                 const v3_style *st, chat_out *out) {
    bool is_first = false, is_tool = false, is_output_first = true;
    chat_put(out, p->bos ? p->bos : CHAT_BOS);
    ds_status s = system_prompt(m, st->last_system, out);
    if (s != DS_OK) return s;
    for (size_t i = 0; i < m->n; i++) {
        const ds_chat_message *msg = &m->items[i];
        switch (msg->role) {
        case DS_ROLE_SYSTEM: break;
        case DS_ROLE_USER:
            if (!msg->content) return chat_bad_message(i, msg, "content is null");
            is_tool = false;
            chat_put(out, CHAT_USER);
            chat_put_content(out, msg->content);
            break;
        case DS_ROLE_ASSISTANT:
            if (st->qwen_calls ? msg->n_tool_calls > 0 : msg->content == NULL) {
                is_tool = false;
                for (size_t k = 0; k < msg->n_tool_calls; k++) {
                    if (!is_first) {
                        chat_put(out, CHAT_ASSISTANT CHAT_CALLS_BEGIN);
                        call_text(out, &msg->tool_calls[k], st->qwen_calls);
                        is_first = true;
                    } else {
                        chat_put(out, "\n");
                        call_text(out, &msg->tool_calls[k], st->qwen_calls);
                        if (!st->qwen_calls) chat_put(out, CHAT_CALLS_END CHAT_EOS);
                    }
                }
                if (st->qwen_calls) chat_put(out, CHAT_CALLS_END CHAT_EOS);
            }
            if (msg->content) {
                if (is_tool) {
                    chat_put(out, CHAT_OUTPUTS_END);
                    chat_put_content(out, msg->content);
                    chat_put(out, CHAT_EOS);
                    is_tool = false;
                } else {
                    chat_put(out, CHAT_ASSISTANT);
                    chat_put_content(out, st->cut_think ? chat_after_think(msg->content, false)
                                                           : msg->content);
                    chat_put(out, CHAT_EOS);
                }
            }
            break;
        case DS_ROLE_TOOL:
            if (!msg->content) return chat_bad_message(i, msg, "content is null");
            is_tool = true;
            chat_put(out, is_output_first ? CHAT_OUTPUTS_BEGIN CHAT_OUTPUT_BEGIN
                                             : "\n" CHAT_OUTPUT_BEGIN);
            is_output_first = false;
            chat_put_content(out, msg->content);
            chat_put(out, CHAT_OUTPUT_END);
            break;
        }
    }
    if (is_tool) chat_put(out, CHAT_OUTPUTS_END);
    if (p->add_generation_prompt && !is_tool) chat_put(out, st->gen);
    return DS_OK;
}

ds_status chat_render_v3(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                         chat_out *out) {
    (void)think;
    static const v3_style st = {.gen = CHAT_ASSISTANT};
    return render_v3_style(m, p, &st, out);
}

ds_status chat_render_r1(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                         chat_out *out) {
    (void)think;
    static const v3_style st = {.cut_think = true, .gen = CHAT_ASSISTANT CHAT_THINK "\n"};
    return render_v3_style(m, p, &st, out);
}

ds_status chat_render_r1_original(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                                  chat_out *out) {
    (void)think;
    static const v3_style st = {.cut_think = true, .gen = CHAT_ASSISTANT};
    return render_v3_style(m, p, &st, out);
}

ds_status chat_render_distill_llama(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                                    chat_out *out) {
    (void)think;
    static const v3_style st = {.last_system = true, .cut_think = true,
                                .gen = CHAT_ASSISTANT CHAT_THINK "\n"};
    return render_v3_style(m, p, &st, out);
}

ds_status chat_render_distill_qwen(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                                   chat_out *out) {
    (void)think;
    static const v3_style st = {.last_system = true, .cut_think = true, .qwen_calls = true,
                                .gen = CHAT_ASSISTANT CHAT_THINK "\n"};
    return render_v3_style(m, p, &st, out);
}

// V2 / V2-Lite chat (deepseek-gguf.md §7.4): plain "User: " / "Assistant: " turns; tool
// messages are not part of the format and are left out, as the template does.
ds_status chat_render_v2(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                         chat_out *out) {
    (void)think;
    chat_put(out, p->bos ? p->bos : CHAT_BOS);
    for (size_t i = 0; i < m->n; i++) {
        const ds_chat_message *msg = &m->items[i];
        if (msg->role == DS_ROLE_TOOL) continue;
        if (!msg->content) return chat_bad_message(i, msg, "content is null");
        if (msg->role == DS_ROLE_USER) chat_put(out, "User: ");
        if (msg->role == DS_ROLE_ASSISTANT) chat_put(out, "Assistant: ");
        chat_put_content(out, msg->content);
        chat_put(out, msg->role == DS_ROLE_ASSISTANT ? CHAT_EOS : "\n\n");
    }
    if (p->add_generation_prompt) chat_put(out, "Assistant:");
    return DS_OK;
}
