// render_v31.c - the hybrid-thinking families: DeepSeek-V3.1 (official template) and V3.2
// (llama.cpp's template, with DSML tool calls and tool definitions in the system prompt).
//
// V3.1: every assistant turn that follows a user turn opens with `<｜Assistant｜></think>`
// (earlier turns are always shown as non-thinking), assistant content is cut after the
// *first* `</think>`, tool arguments are written through tojson (a JSON string of the
// arguments text), tool results are bare `<｜tool▁output▁begin｜>...<｜tool▁output▁end｜>`.
// V3.2: reasoning_content of the turns after the last user message is written back inside
// <think>...</think> when thinking is on; tool results are grouped in <function_results>.
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"

static ds_status system_joined(const ds_chat_messages *m, bool null_ok, chat_out *out) {
    bool first = true;
    for (size_t i = 0; i < m->n; i++) {
        const ds_chat_message *msg = &m->items[i];
        if (msg->role != DS_ROLE_SYSTEM) continue;
        if (!msg->content && !null_ok) return chat_bad_message(i, msg, "content is null");
        if (!first) chat_put(out, "\n\n");
        chat_put_content(out, msg->content ? msg->content : "");
        first = false;
    }
    return DS_OK;
}

// ---- V3.1 ----

ds_status chat_render_v31(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                          chat_out *out) {
    bool is_first = false, is_tool = false, is_last_user = false;
    chat_put(out, p->bos ? p->bos : CHAT_BOS);
    ds_status s = system_joined(m, false, out);
    if (s != DS_OK) return s;
    for (size_t i = 0; i < m->n; i++) {
        const ds_chat_message *msg = &m->items[i];
        switch (msg->role) {
        case DS_ROLE_SYSTEM: break;
        case DS_ROLE_USER:
            if (!msg->content) return chat_bad_message(i, msg, "content is null");
            is_tool = is_first = false;
            is_last_user       = true;
            chat_put(out, CHAT_USER);
            chat_put_content(out, msg->content);
            break;
        case DS_ROLE_ASSISTANT:
            if (msg->n_tool_calls > 0) {
                if (is_last_user) chat_put(out, CHAT_ASSISTANT CHAT_THINK_END);
                is_last_user = is_first = is_tool = false;
                for (size_t k = 0; k < msg->n_tool_calls; k++) {
                    if (!is_first) {
                        if (msg->content) chat_put_content(out, msg->content);
                        chat_put(out, CHAT_CALLS_BEGIN);
                        is_first = true;
                    }
                    chat_put(out, CHAT_CALL_BEGIN);
                    chat_put_content(out, msg->tool_calls[k].name);
                    chat_put(out, CHAT_SEP);
                    size_t at = out->b->len;
                    chat_json_str(out->b, msg->tool_calls[k].arguments);
                    chat_mark(out, at);
                    chat_put(out, CHAT_CALL_END);
                }
                chat_put(out, CHAT_CALLS_END CHAT_EOS);
                break;
            }
            if (is_last_user) chat_put(out, CHAT_ASSISTANT CHAT_THINK_END);
            is_last_user = false;
            if (!msg->content) return chat_bad_message(i, msg, "content is null");
            chat_put_content(out, is_tool ? msg->content : chat_after_think(msg->content, true));
            chat_put(out, CHAT_EOS);
            is_tool = false;
            break;
        case DS_ROLE_TOOL:
            if (!msg->content) return chat_bad_message(i, msg, "content is null");
            is_last_user = false;
            is_tool      = true;
            chat_put(out, CHAT_OUTPUT_BEGIN);
            chat_put_content(out, msg->content);
            chat_put(out, CHAT_OUTPUT_END);
            break;
        }
    }
    if (p->add_generation_prompt && is_last_user && !is_tool)
        chat_put(out, think ? CHAT_ASSISTANT CHAT_THINK : CHAT_ASSISTANT CHAT_THINK_END);
    return DS_OK;
}

// ---- Python-style JSON (json.dumps with ensure_ascii=False, default separators) ----

static void py_json(ds_buf *b, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        bool first = true;
        ds_buf_puts(b, "{");
        json_object_foreach((json_t *)v, key, val) {
            if (!first) ds_buf_puts(b, ", ");
            chat_json_str(b, key);
            ds_buf_puts(b, ": ");
            py_json(b, val);
            first = false;
        }
        ds_buf_puts(b, "}");
        break;
    }
    case JSON_ARRAY:
        ds_buf_puts(b, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) ds_buf_puts(b, ", ");
            py_json(b, json_array_get(v, i));
        }
        ds_buf_puts(b, "]");
        break;
    case JSON_STRING: chat_json_str(b, json_string_value(v)); break;
    case JSON_INTEGER: ds_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: {
        // Shortest text that reads back the same, as Python's repr; a whole number keeps ".0".
        // (Python switches to exponent form at 1e16, %g at the precision: they can differ for
        // long whole numbers, which tool arguments do not hold in practice.)
        double x = json_real_value(v);
        char   t[40];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(t, sizeof t, "%.*g", prec, x);
            if (strtod(t, NULL) == x) break;
        }
        ds_buf_puts(b, t);
        if (!strpbrk(t, ".eEn")) ds_buf_puts(b, ".0");
        break;
    }
    case JSON_TRUE: ds_buf_puts(b, "true"); break;
    case JSON_FALSE: ds_buf_puts(b, "false"); break;
    case JSON_NULL: ds_buf_puts(b, "null"); break;
    }
}

// ---- V3.2 ----

#define DSML_TOKEN CHAT_DSML
static const char tools_header[] =
    "## Tools\n\nYou have access to a set of tools you can use to answer the user's question.\n"
    "You can invoke functions by writing a \"<" DSML_TOKEN "function_calls>\" block like the "
    "following as part of your reply to the user:\n<" DSML_TOKEN "function_calls>\n<" DSML_TOKEN
    "invoke name=\"$FUNCTION_NAME\">\n<" DSML_TOKEN "parameter name=\"$PARAMETER_NAME\" "
    "string=\"true|false\">$PARAMETER_VALUE</" DSML_TOKEN "parameter>\n...\n</" DSML_TOKEN
    "invoke>\n<" DSML_TOKEN "invoke name=\"$FUNCTION_NAME2\">\n...\n</" DSML_TOKEN "invoke>\n</"
    DSML_TOKEN "function_calls>\n\nString and scalar parameters should be specified as is "
    "without any escaping or quotes, while lists and objects should use JSON format. The "
    "\"string\" attribute should be set to \"true\" for string type parameters and \"false\" "
    "for other types (numbers, booleans, arrays, objects).\n\nIf the thinking_mode is enabled, "
    "then after function results you should strongly consider outputting a thinking block. "
    "Here is an example:\n\n<" DSML_TOKEN "function_calls>\n...\n</" DSML_TOKEN
    "function_calls>\n\n<function_results>\n...\n</function_results>\n\n" CHAT_THINK
    "...thinking about results" CHAT_THINK_END "\n\nHere are the functions available in "
    "JSONSchema format:\n<functions>\n";

// The system prompt: the joined system messages, then the tool definitions (the client's
// JSON, written back Python-style: content) under the template's header.
static ds_status v32_system(const ds_chat_messages *m, const ds_chat_params *p, chat_out *out) {
    size_t    start = out->b->len;
    ds_status s     = system_joined(m, true, out);
    json_t   *tools = NULL;
    if (s == DS_OK && p->tools_json) {
        json_error_t err;
        tools = json_loads(p->tools_json, 0, &err);
        if (!json_is_array(tools))
            s = ds_fail(DS_EFORMAT, "tools: expected a JSON array of tool definitions%s%s",
                        tools ? "" : ": ", tools ? "" : err.text);
    }
    if (s == DS_OK && json_array_size(tools) > 0) {
        if (out->b->len > start) chat_put(out, "\n\n");
        chat_put(out, tools_header);
        for (size_t i = 0; i < json_array_size(tools); i++) {
            const json_t *t = json_array_get(tools, i), *type = json_object_get(t, "type");
            if (!json_is_string(type) || strcmp(json_string_value(type), "function")) continue;
            const json_t *fn = json_object_get(t, "function");
            if (!fn) {
                s = ds_fail(DS_EFORMAT, "tools: tool %zu has no 'function'", i);
                break;
            }
            size_t at = out->b->len;
            py_json(out->b, fn);
            chat_mark(out, at);
            chat_put(out, "\n");
        }
        chat_put(out, "</functions>\n");
    }
    json_decref(tools);
    return s;
}

static ds_status v32_calls(const ds_chat_message *msg, size_t i, chat_out *out) {
    chat_put(out, "\n\n<" DSML_TOKEN "function_calls>\n");
    for (size_t k = 0; k < msg->n_tool_calls; k++) {
        const ds_chat_tool_call *c = &msg->tool_calls[k];
        json_error_t err;
        json_t *args = json_loads(c->arguments, JSON_DECODE_ANY, &err);
        if (!json_is_object(args)) {
            json_decref(args);
            return chat_bad_message(i, msg, "tool call arguments are not a JSON object");
        }
        chat_put(out, "<" DSML_TOKEN "invoke name=\"");
        chat_put_content(out, c->name);
        chat_put(out, "\">\n");
        const char *key;
        json_t *val;
        json_object_foreach(args, key, val) {
            bool str = json_is_string(val);
            chat_put(out, "<" DSML_TOKEN "parameter name=\"");
            chat_put_content(out, key);
            chat_put(out, str ? "\" string=\"true\">" : "\" string=\"false\">");
            size_t at = out->b->len;
            if (str) chat_put(out, json_string_value(val));
            else py_json(out->b, val);
            chat_mark(out, at);
            chat_put(out, "</" DSML_TOKEN "parameter>\n");
        }
        chat_put(out, "</" DSML_TOKEN "invoke>\n");
        json_decref(args);
    }
    chat_put(out, "</" DSML_TOKEN "function_calls>");
    return DS_OK;
}

static void v32_think(const ds_chat_message *msg, bool open, chat_out *out) {
    if (open) {
        chat_put(out, CHAT_THINK);
        if (msg->reasoning_content) chat_put_content(out, msg->reasoning_content);
    }
    chat_put(out, CHAT_THINK_END);
}

ds_status chat_render_v32(const ds_chat_messages *m, const ds_chat_params *p, bool think,
                          chat_out *out) {
    chat_put(out, p->bos ? p->bos : CHAT_BOS);
    ds_status s = v32_system(m, p, out);
    if (s != DS_OK) return s;
    size_t last_user = SIZE_MAX; // SIZE_MAX: none (the template's -1)
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].role == DS_ROLE_USER) last_user = i;
    bool pending_asst = false, pending_tool = false;
    for (size_t i = 0; i < m->n; i++) {
        const ds_chat_message *msg = &m->items[i];
        bool after_last_user = last_user == SIZE_MAX || i > last_user;
        if (msg->role == DS_ROLE_USER) {
            chat_put(out, CHAT_USER);
            chat_put_content(out, msg->content ? msg->content : "");
            pending_asst = true;
            pending_tool = false;
        } else if (msg->role == DS_ROLE_ASSISTANT) {
            if (pending_asst) chat_put(out, CHAT_ASSISTANT);
            if (pending_tool) chat_put(out, "\n\n");
            if (pending_asst || pending_tool) v32_think(msg, after_last_user && think, out);
            pending_asst = pending_tool = false;
            if (msg->content) chat_put_content(out, msg->content);
            if (msg->n_tool_calls && (s = v32_calls(msg, i, out)) != DS_OK) return s;
            chat_put(out, CHAT_EOS);
        } else if (msg->role == DS_ROLE_TOOL) {
            size_t a = SIZE_MAX; // the last assistant message with tool calls before this one
            for (size_t k = 0; k < i; k++)
                if (m->items[k].role == DS_ROLE_ASSISTANT && m->items[k].n_tool_calls) a = k;
            if (a == SIZE_MAX)
                return chat_bad_message(i, msg, "tool result without an earlier tool call");
            size_t order = i - a;
            if (order == 1) chat_put(out, "\n\n<function_results>");
            chat_put(out, "\n<result>");
            chat_put_content(out, msg->content ? msg->content : "");
            chat_put(out, "</result>");
            if (order == m->items[a].n_tool_calls) {
                chat_put(out, "\n</function_results>");
                pending_asst = false;
                pending_tool = true;
            }
        }
    }
    if (p->add_generation_prompt && (pending_asst || pending_tool)) {
        chat_put(out, pending_asst ? CHAT_ASSISTANT : "\n\n");
        chat_put(out, think ? CHAT_THINK : CHAT_THINK CHAT_THINK_END);
    }
    return DS_OK;
}
