// tools.c - tool calls written by the model, parsed out of the reply's tool block.
//
// The block is the `tools` text of ds_reasoning (from the family's marker on). Each family
// writes calls the way its template renders them in history:
//   V3 / R1 / distills: <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n
//                       ```json\nARGS\n```<｜tool▁call▁end｜> ... <｜tool▁calls▁end｜>
//   V3.1:               <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS
//                       <｜tool▁call▁end｜> ... <｜tool▁calls▁end｜>
//   V3.2 (DSML):        <｜DSML｜function_calls>\n<｜DSML｜invoke name="NAME">\n
//                       <｜DSML｜parameter name="K" string="true|false">V</｜DSML｜parameter>\n
//                       </｜DSML｜invoke>\n</｜DSML｜function_calls>
// Arguments must come out as a JSON object. The Distill-Qwen and V3.1 templates write them
// as a JSON *string* holding the object (tojson of the text), so a string whose text is an
// object is unwrapped. The closing <｜tool▁calls▁end｜> may be missing when generation
// stopped at end-of-sentence right after the last call.
#include <jansson.h>
#include <string.h>

#include "chat_internal.h"
#include "ds/alloc.h"

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static bool eat(cursor *c, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n)) return false;
    c->p += n;
    return true;
}

// Text up to `stop` (not included); the cursor moves past stop. false if stop never comes.
static bool until(cursor *c, const char *stop, const char **s, size_t *n) {
    size_t k = strlen(stop);
    for (const char *q = c->p; q + k <= c->end; q++)
        if (!memcmp(q, stop, k)) {
            *s   = c->p;
            *n   = (size_t)(q - c->p);
            c->p = q + k;
            return true;
        }
    return false;
}

// Arguments text -> compact JSON object text (owned), or NULL.
static char *args_json(const char *s, size_t n) {
    json_error_t err;
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY, &err);
    if (json_is_string(v)) {
        json_t *inner = json_loadb(json_string_value(v), json_string_length(v), 0, &err);
        json_decref(v);
        v = inner;
    }
    char *out = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!out) return NULL;
    char *copy = ds_xstrdup(out);
    free(out);
    return copy;
}

typedef struct calls {
    ds_chat_tool_call *items;
    size_t             n, cap;
} calls;

static void add_call(calls *cs, const char *name, size_t name_len, char *args) {
    if (cs->n == cs->cap) {
        cs->cap   = cs->cap ? 2 * cs->cap : 4;
        cs->items = ds_xrealloc(cs->items, cs->cap * sizeof *cs->items);
    }
    cs->items[cs->n++] = (ds_chat_tool_call){.type      = ds_xstrdup("function"),
                                             .name      = ds_xstrndup(name, name_len),
                                             .arguments = args};
}

// V3-style and V3.1 blocks.
static ds_status parse_v3(cursor *c, bool v31, calls *cs) {
    if (!eat(c, CHAT_CALLS_BEGIN))
        return ds_fail(DS_EFORMAT, "tool calls: the block does not start with " CHAT_CALLS_BEGIN);
    for (;;) {
        skip_ws(c);
        if (eat(c, CHAT_CALLS_END) || c->p == c->end) break;
        const char *name, *args, *type;
        size_t name_n, args_n, type_n;
        if (!eat(c, CHAT_CALL_BEGIN))
            return ds_fail(DS_EFORMAT, "tool calls: call %zu does not start with " CHAT_CALL_BEGIN,
                           cs->n);
        if (v31) {
            if (!until(c, CHAT_SEP, &name, &name_n) || !until(c, CHAT_CALL_END, &args, &args_n))
                return ds_fail(DS_EFORMAT, "tool calls: call %zu is incomplete", cs->n);
        } else {
            if (!until(c, CHAT_SEP, &type, &type_n) || !until(c, "\n", &name, &name_n) ||
                !eat(c, "```json\n") || !until(c, "```", &args, &args_n) ||
                (skip_ws(c), !eat(c, CHAT_CALL_END)))
                return ds_fail(DS_EFORMAT, "tool calls: call %zu is incomplete", cs->n);
        }
        if (name_n == 0) return ds_fail(DS_EFORMAT, "tool calls: call %zu has no name", cs->n);
        char *json = args_json(args, args_n);
        if (!json)
            return ds_fail(DS_EFORMAT, "tool calls: call %zu (%.*s): arguments are not a JSON object",
                           cs->n, (int)(name_n > 64 ? 64 : name_n), name);
        add_call(cs, name, name_n, json);
    }
    if (cs->n == 0) return ds_fail(DS_EFORMAT, "tool calls: the block holds no call");
    return DS_OK;
}

#define DSML_OPEN(x)  "<" CHAT_DSML x
#define DSML_CLOSE(x) "</" CHAT_DSML x

static ds_status parse_dsml_params(cursor *c, size_t k, json_t *obj) {
    for (;;) {
        skip_ws(c);
        if (eat(c, DSML_CLOSE("invoke>"))) return DS_OK;
        const char *key, *kind, *val;
        size_t key_n, kind_n, val_n;
        if (!eat(c, DSML_OPEN("parameter name=\"")) || !until(c, "\" string=\"", &key, &key_n) ||
            !until(c, "\">", &kind, &kind_n) || !until(c, DSML_CLOSE("parameter>"), &val, &val_n))
            return ds_fail(DS_EFORMAT, "tool calls: call %zu: a parameter is incomplete", k);
        char *name = ds_xstrndup(key, key_n);
        json_t *v  = NULL;
        if (kind_n == 4 && !memcmp(kind, "true", 4)) {
            v = json_stringn(val, val_n);
        } else {
            json_error_t err;
            v = json_loadb(val, val_n, JSON_DECODE_ANY, &err);
        }
        if (!v) {
            ds_status st = ds_fail(DS_EFORMAT, "tool calls: call %zu: parameter '%.64s' is not JSON",
                                   k, name);
            free(name);
            return st;
        }
        json_object_set_new(obj, name, v);
        free(name);
    }
}

static ds_status parse_dsml(cursor *c, calls *cs) {
    if (!eat(c, DSML_OPEN("function_calls>")))
        return ds_fail(DS_EFORMAT, "tool calls: the block does not start with function_calls");
    for (;;) {
        skip_ws(c);
        if (eat(c, DSML_CLOSE("function_calls>")) || c->p == c->end) break;
        const char *name;
        size_t name_n;
        if (!eat(c, DSML_OPEN("invoke name=\"")) || !until(c, "\">", &name, &name_n) || !name_n)
            return ds_fail(DS_EFORMAT, "tool calls: call %zu has no invoke name", cs->n);
        json_t *obj  = json_object();
        ds_status st = parse_dsml_params(c, cs->n, obj);
        char *text   = st == DS_OK ? json_dumps(obj, JSON_COMPACT) : NULL;
        json_decref(obj);
        if (st != DS_OK) return st;
        add_call(cs, name, name_n, ds_xstrdup(text ? text : "{}"));
        free(text);
    }
    if (cs->n == 0) return ds_fail(DS_EFORMAT, "tool calls: the block holds no call");
    return DS_OK;
}

ds_status ds_chat_parse_tool_calls(ds_chat_format f, const char *text, size_t len,
                                   ds_chat_tool_call **out, size_t *n_out) {
    *out   = NULL;
    *n_out = 0;
    cursor c = {text, text + len};
    calls cs = {0};
    ds_status st;
    skip_ws(&c);
    switch (f) {
    case DS_CHAT_DEEPSEEK_V2:
        return ds_fail(DS_EUNSUPPORTED, "chat format %s has no tool calls", ds_chat_format_name(f));
    case DS_CHAT_DEEPSEEK_V3_2: st = parse_dsml(&c, &cs); break;
    case DS_CHAT_DEEPSEEK_V3_1: st = parse_v3(&c, true, &cs); break;
    default: st = parse_v3(&c, false, &cs); break;
    }
    if (st != DS_OK) {
        ds_chat_tool_calls_free(cs.items, cs.n);
        return st;
    }
    *out   = cs.items;
    *n_out = cs.n;
    return DS_OK;
}
