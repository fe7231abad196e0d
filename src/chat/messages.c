// messages.c - OpenAI-style message lists: JSON in, plain structs out, and the small text
// helpers the renderers share.
//
// A list is checked once here, so the renderers can trust the shape: every role is known,
// every content is a string or null, every tool call has a function name and arguments. What
// a particular template still cannot render (a user turn with null content) is reported by
// that renderer, with the message index.
#include <jansson.h>
#include <string.h>

#include "chat_internal.h"
#include "ds/alloc.h"

// ---- small helpers shared by the renderers ----

const char *chat_role_name(ds_chat_role r) {
    switch (r) {
    case DS_ROLE_SYSTEM: return "system";
    case DS_ROLE_USER: return "user";
    case DS_ROLE_ASSISTANT: return "assistant";
    case DS_ROLE_TOOL: return "tool";
    }
    return "?";
}

ds_status chat_bad_message(size_t i, const ds_chat_message *msg, const char *what) {
    return ds_fail(DS_EFORMAT, "message %zu (%s): %s", i, chat_role_name(msg->role), what);
}

void chat_json_str(ds_buf *b, const char *s) {
    ds_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f" : NULL;
        if (esc) ds_buf_puts(b, esc);
        else if (c < 0x20) ds_buf_printf(b, "\\u%04x", c);
        else ds_buf_append(b, p, 1);
    }
    ds_buf_append(b, "\"", 1);
}

const char *chat_after_think(const char *s, bool first) {
    const char *hit = strstr(s, CHAT_THINK_END), *last = NULL;
    if (!hit) return s;
    if (first) return hit + strlen(CHAT_THINK_END);
    while (hit) {
        last = hit;
        hit  = strstr(hit + 1, CHAT_THINK_END);
    }
    return last + strlen(CHAT_THINK_END);
}

// ---- building and freeing ----

void ds_chat_tool_calls_free(ds_chat_tool_call *calls, size_t n) {
    for (size_t i = 0; calls && i < n; i++) {
        free(calls[i].id);
        free(calls[i].type);
        free(calls[i].name);
        free(calls[i].arguments);
    }
    free(calls);
}

void ds_chat_messages_free(ds_chat_messages *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        ds_chat_message *msg = &m->items[i];
        free(msg->content);
        free(msg->reasoning_content);
        free(msg->tool_call_id);
        ds_chat_tool_calls_free(msg->tool_calls, msg->n_tool_calls);
    }
    free(m->items);
    *m = (ds_chat_messages){0};
}

static ds_chat_message *push(ds_chat_messages *m) {
    if (m->n == m->cap) {
        m->cap   = m->cap ? m->cap * 2 : 8;
        m->items = ds_xrealloc(m->items, m->cap * sizeof *m->items);
    }
    ds_chat_message *msg = &m->items[m->n++];
    *msg                 = (ds_chat_message){0};
    return msg;
}

void ds_chat_messages_add(ds_chat_messages *m, ds_chat_role role, const char *content,
                          const char *reasoning_content) {
    ds_chat_message *msg   = push(m);
    msg->role              = role;
    msg->content           = content ? ds_xstrdup(content) : NULL;
    msg->reasoning_content = reasoning_content ? ds_xstrdup(reasoning_content) : NULL;
}

// ---- JSON ----

static bool role_from_name(const char *s, ds_chat_role *out) {
    static const char *names[] = {"system", "user", "assistant", "tool"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (ds_chat_role)i;
            return true;
        }
    return false;
}

// A string field: absent or null -> *out NULL; a string -> a copy; for content, an array of
// text parts -> their texts joined. Anything else is an error.
static ds_status text_field(const json_t *obj, const char *key, bool parts, size_t i,
                            char **out) {
    const json_t *v = json_object_get(obj, key);
    *out            = NULL;
    if (!v || json_is_null(v)) return DS_OK;
    if (json_is_string(v)) {
        *out = ds_xstrndup(json_string_value(v), json_string_length(v));
        if (strlen(*out) != json_string_length(v)) {
            free(*out);
            *out = NULL;
            return ds_fail(DS_EFORMAT, "message %zu: '%s' holds a NUL character", i, key);
        }
        return DS_OK;
    }
    if (parts && json_is_array(v)) {
        ds_buf b = {0};
        ds_buf_puts(&b, "");
        for (size_t k = 0; k < json_array_size(v); k++) {
            const json_t *part = json_array_get(v, k), *type = json_object_get(part, "type");
            const json_t *text = json_object_get(part, "text");
            if (!json_is_string(type) || strcmp(json_string_value(type), "text") ||
                !json_is_string(text)) {
                ds_buf_free(&b);
                return ds_fail(DS_EFORMAT, "message %zu: content part %zu is not a text part", i, k);
            }
            ds_buf_puts(&b, json_string_value(text));
        }
        *out = b.data;
        return DS_OK;
    }
    return ds_fail(DS_EFORMAT, "message %zu: '%s' must be a string or null", i, key);
}

static ds_status tool_calls_field(const json_t *obj, size_t i, ds_chat_message *msg) {
    const json_t *v = json_object_get(obj, "tool_calls");
    if (!v || json_is_null(v)) return DS_OK;
    if (!json_is_array(v))
        return ds_fail(DS_EFORMAT, "message %zu: 'tool_calls' must be an array", i);
    size_t n = json_array_size(v);
    if (n == 0) return DS_OK;
    msg->tool_calls = ds_xcalloc(n, sizeof *msg->tool_calls);
    for (size_t k = 0; k < n; k++, msg->n_tool_calls++) {
        const json_t *tc = json_array_get(v, k), *fn = json_object_get(tc, "function");
        const json_t *id = json_object_get(tc, "id"), *type = json_object_get(tc, "type");
        const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        if (!json_is_object(tc) || !json_is_object(fn) || !json_is_string(name) ||
            !json_string_length(name))
            return ds_fail(DS_EFORMAT, "message %zu: tool call %zu has no function name", i, k);
        if (!json_is_string(args) && !json_is_object(args))
            return ds_fail(DS_EFORMAT,
                           "message %zu: tool call %zu: arguments must be a JSON string or object",
                           i, k);
        if (type && !json_is_string(type))
            return ds_fail(DS_EFORMAT, "message %zu: tool call %zu: type must be a string", i, k);
        ds_chat_tool_call *c = &msg->tool_calls[k];
        c->name              = ds_xstrdup(json_string_value(name));
        c->type              = ds_xstrdup(type ? json_string_value(type) : "function");
        c->id                = json_is_string(id) ? ds_xstrdup(json_string_value(id)) : NULL;
        if (json_is_string(args)) {
            c->arguments = ds_xstrdup(json_string_value(args));
        } else {
            char *s      = json_dumps(args, JSON_COMPACT);
            c->arguments = ds_xstrdup(s ? s : "{}");
            free(s);
        }
    }
    return DS_OK;
}

ds_status ds_chat_messages_from_json(const json_t *list, ds_chat_messages *out) {
    *out = (ds_chat_messages){0};
    if (!json_is_array(list)) return ds_fail(DS_EFORMAT, "messages: expected a JSON array");
    if (json_array_size(list) == 0) return ds_fail(DS_EFORMAT, "messages: the list is empty");
    ds_status st = DS_OK;
    for (size_t i = 0; i < json_array_size(list) && st == DS_OK; i++) {
        const json_t *obj = json_array_get(list, i), *role = json_object_get(obj, "role");
        if (!json_is_object(obj)) {
            st = ds_fail(DS_EFORMAT, "message %zu: expected a JSON object", i);
            break;
        }
        ds_chat_role r;
        if (!json_is_string(role) || !role_from_name(json_string_value(role), &r)) {
            st = ds_fail(DS_EFORMAT,
                         "message %zu: role must be system, user, assistant or tool (got %s)", i,
                         json_is_string(role) ? json_string_value(role) : "none");
            break;
        }
        ds_chat_message *msg = push(out);
        msg->role            = r;
        st = text_field(obj, "content", true, i, &msg->content);
        if (st == DS_OK) st = text_field(obj, "reasoning_content", false, i, &msg->reasoning_content);
        if (st == DS_OK) st = text_field(obj, "tool_call_id", false, i, &msg->tool_call_id);
        if (st == DS_OK && r == DS_ROLE_ASSISTANT) st = tool_calls_field(obj, i, msg);
        if (st == DS_OK && r != DS_ROLE_ASSISTANT && json_object_get(obj, "tool_calls"))
            st = ds_fail(DS_EFORMAT, "message %zu: only assistant messages carry tool_calls", i);
    }
    if (st != DS_OK) ds_chat_messages_free(out);
    return st;
}

ds_status ds_chat_messages_parse(const char *text, size_t len, ds_chat_messages *out) {
    *out = (ds_chat_messages){0};
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return ds_fail(DS_EFORMAT, "messages: invalid JSON at line %d column %d: %s", err.line,
                       err.column, err.text);
    const json_t *list = json_is_object(root) ? json_object_get(root, "messages") : root;
    ds_status st       = ds_chat_messages_from_json(list, out);
    json_decref(root);
    return st;
}
