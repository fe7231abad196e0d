// openai.c - validation of OpenAI/DeepSeek request bodies: a pure function from bytes to a
// checked request or an error with status, field and message.
//
// Scalar fields are checked by one table of {name, type, min, max, where it goes}, in the
// manner of llama.cpp's server schema; structured fields (messages, stop, tools, tool_choice,
// response_format, thinking, prompt, tokens) have their own checks below the table. Unknown
// fields are ignored, as DeepSeek's API does; a null optional field counts as absent.
// Status rule: a body that is not a JSON object, or lacks what the endpoint needs, is 400
// ("invalid format"); a field that is present with the wrong type or out of range is 422
// ("invalid parameters"), both with the field's name in `param` and the message.
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/server.h"

typedef enum ftype { F_INT, F_NUM, F_BOOL, F_STR } ftype;

typedef enum fstore {
    S_NONE,       // checked only
    S_MAX_TOKENS, // gen.max_tokens
    S_TEMPERATURE,
    S_TOP_P,
    S_SEED,
    S_FREQ,
    S_PRES,
    S_LOGPROBS,
    S_TOP_LOGPROBS,
    S_STREAM,
    S_MODEL,
    S_ADD_SPECIAL,
    S_PARSE_SPECIAL,
    S_WITH_PIECES,
    S_BUDGET,
} fstore;

enum { K_CHAT = 1, K_COMPL = 2, K_TOK = 4, K_GEN = K_CHAT | K_COMPL };

typedef struct field {
    const char *name;
    ftype       type;
    double      min, max; // inclusive, for numbers
    unsigned    kinds;    // endpoints where the field means something
    fstore      store;
} field;

#define BIG 9007199254740991.0 // 2^53 - 1: integers beyond this do not survive JSON numbers

static const field fields[] = {
    {"model", F_STR, 0, 0, K_GEN, S_MODEL},
    {"max_tokens", F_INT, 1, BIG, K_GEN, S_MAX_TOKENS},
    {"max_completion_tokens", F_INT, 1, BIG, K_GEN, S_MAX_TOKENS},
    {"temperature", F_NUM, 0, 2, K_GEN, S_TEMPERATURE},
    {"top_p", F_NUM, 0, 1, K_GEN, S_TOP_P},
    {"seed", F_INT, -BIG, BIG, K_GEN, S_SEED},
    {"frequency_penalty", F_NUM, -2, 2, K_GEN, S_FREQ},
    {"presence_penalty", F_NUM, -2, 2, K_GEN, S_PRES},
    {"logprobs", F_BOOL, 0, 0, K_CHAT, S_LOGPROBS},
    {"top_logprobs", F_INT, 0, DS_ENGINE_MAX_TOP_LOGPROBS, K_CHAT, S_TOP_LOGPROBS},
    {"n", F_INT, 1, 1, K_GEN, S_NONE},
    {"stream", F_BOOL, 0, 0, K_GEN, S_STREAM},
    {"user", F_STR, 0, 0, K_GEN, S_NONE},
    {"reasoning_budget", F_INT, 0, BIG, K_CHAT, S_BUDGET},
    {"add_special", F_BOOL, 0, 0, K_TOK, S_ADD_SPECIAL},
    {"parse_special", F_BOOL, 0, 0, K_TOK, S_PARSE_SPECIAL},
    {"with_pieces", F_BOOL, 0, 0, K_TOK, S_WITH_PIECES},
};

static const char *type_name(ftype t) {
    static const char *const names[] = {"an integer", "a number", "a boolean", "a string"};
    return names[t];
}

static ds_status bad(ds_openai_error *err, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static ds_status bad(ds_openai_error *err, int status, const char *param, const char *fmt, ...) {
    err->status = status;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return DS_EFORMAT;
}

// ---- the table ----

static void store(ds_openai_request *r, fstore s, const json_t *v) {
    double d = json_is_number(v) ? json_number_value(v) : 0;
    switch (s) {
    case S_MAX_TOKENS: r->gen.max_tokens = (int)(d > 2e9 ? 2e9 : d); break;
    case S_TEMPERATURE: r->gen.temperature = (float)d; break;
    case S_TOP_P: r->gen.top_p = (float)d; break;
    case S_SEED:
        r->gen.seed = (uint64_t)(int64_t)json_integer_value(v);
        r->seed_set = true;
        break;
    case S_FREQ: r->gen.frequency_penalty = (float)d; break;
    case S_PRES: r->gen.presence_penalty = (float)d; break;
    case S_LOGPROBS: r->gen.logprobs = json_is_true(v); break;
    case S_TOP_LOGPROBS: r->gen.top_logprobs = (int)d; break;
    case S_STREAM: r->stream = json_is_true(v); break;
    case S_MODEL: r->model = json_string_value(v); break;
    case S_ADD_SPECIAL: r->add_special = json_is_true(v); break;
    case S_PARSE_SPECIAL: r->parse_special = json_is_true(v); break;
    case S_WITH_PIECES: r->with_pieces = json_is_true(v); break;
    case S_BUDGET: r->gen.reasoning_budget = (int)(d > 2e9 ? 2e9 : d); break;
    case S_NONE: break;
    }
}

static ds_status check_field(const field *f, const json_t *v, const ds_openai_limits *lim,
                             ds_openai_error *err) {
    bool ok = (f->type == F_INT && json_is_integer(v)) ||
              (f->type == F_NUM && json_is_number(v)) || (f->type == F_BOOL && json_is_boolean(v)) ||
              (f->type == F_STR && json_is_string(v));
    if (!ok) return bad(err, 422, f->name, "'%s' must be %s", f->name, type_name(f->type));
    if (f->type == F_INT || f->type == F_NUM) {
        double d   = json_number_value(v);
        double max = f->store == S_MAX_TOKENS && lim->max_tokens > 0 ? lim->max_tokens : f->max;
        if (!isfinite(d) || d < f->min || d > max)
            return bad(err, 422, f->name, "'%s' is %.17g; the valid range is [%.17g, %.17g]",
                       f->name, d, f->min, max);
    }
    if (f->type == F_STR && strlen(json_string_value(v)) != json_string_length(v))
        return bad(err, 422, f->name, "'%s' contains a NUL character", f->name);
    return DS_OK;
}

static ds_status scalars(ds_openai_request *r, unsigned kind, const ds_openai_limits *lim,
                         ds_openai_error *err) {
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const field *f = &fields[i];
        if (!(f->kinds & kind)) continue;
        const json_t *v = json_object_get(r->root, f->name);
        if (!v || json_is_null(v)) continue;
        ds_status st = check_field(f, v, lim, err);
        if (st) return st;
        store(r, f->store, v);
    }
    return DS_OK;
}

// ---- structured fields ----

static ds_status parse_stop(ds_openai_request *r, ds_openai_error *err) {
    const json_t *v = json_object_get(r->root, "stop");
    if (!v || json_is_null(v)) return DS_OK;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0 || json_string_length(v) > DS_ENGINE_MAX_STOP_LEN)
            return bad(err, 422, "stop", "'stop' must be 1..%d bytes", DS_ENGINE_MAX_STOP_LEN);
        r->gen.stop[0] = json_string_value(v);
        r->gen.n_stop  = 1;
        return DS_OK;
    }
    if (!json_is_array(v) || json_array_size(v) > DS_ENGINE_MAX_STOP)
        return bad(err, 422, "stop", "'stop' must be a string or an array of at most %d strings",
                   DS_ENGINE_MAX_STOP);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            json_string_length(s) > DS_ENGINE_MAX_STOP_LEN ||
            strlen(json_string_value(s)) != json_string_length(s))
            return bad(err, 422, "stop", "'stop[%zu]' must be a string of 1..%d bytes", i,
                       DS_ENGINE_MAX_STOP_LEN);
        r->gen.stop[r->gen.n_stop++] = json_string_value(s);
    }
    return DS_OK;
}

static bool valid_function_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static ds_status parse_tools(ds_openai_request *r, ds_openai_error *err) {
    const json_t *tools = json_object_get(r->root, "tools");
    const json_t *tc    = json_object_get(r->root, "tool_choice");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools) || json_array_size(tools) > 128)
            return bad(err, 422, "tools", "'tools' must be an array of at most 128 tools");
        for (size_t i = 0; i < json_array_size(tools); i++) {
            const json_t *t  = json_array_get(tools, i);
            const json_t *fn = json_object_get(t, "function");
            const json_t *nm = json_object_get(fn, "name");
            const json_t *ty = json_object_get(t, "type");
            const json_t *pa = json_object_get(fn, "parameters");
            if (!json_is_object(t) || !json_is_string(ty) || strcmp(json_string_value(ty), "function") ||
                !json_is_object(fn) || !json_is_string(nm) || !valid_function_name(json_string_value(nm)) ||
                (pa && !json_is_null(pa) && !json_is_object(pa)))
                return bad(err, 422, "tools",
                           "tools[%zu] must be {\"type\":\"function\",\"function\":{\"name\": "
                           "1-64 of [A-Za-z0-9_-], \"parameters\": object}}", i);
        }
        if (json_array_size(tools)) r->tools_json = json_dumps(tools, JSON_COMPACT);
    }
    r->gen.tools_json  = r->tools_json;
    r->gen.tool_choice = r->tools_json ? DS_TOOL_CHOICE_AUTO : DS_TOOL_CHOICE_NONE;
    if (!tc || json_is_null(tc)) return DS_OK;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (!strcmp(s, "none")) r->gen.tool_choice = DS_TOOL_CHOICE_NONE;
        else if (!strcmp(s, "auto")) r->gen.tool_choice = r->tools_json ? DS_TOOL_CHOICE_AUTO : DS_TOOL_CHOICE_NONE;
        else if (!strcmp(s, "required")) r->gen.tool_choice = DS_TOOL_CHOICE_REQUIRED;
        else return bad(err, 422, "tool_choice", "'tool_choice' must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":...}}");
    } else {
        const json_t *nm = json_object_get(json_object_get(tc, "function"), "name");
        if (!json_is_object(tc) || !json_is_string(nm))
            return bad(err, 422, "tool_choice", "'tool_choice' must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":...}}");
        r->gen.tool_choice = DS_TOOL_CHOICE_NAMED;
        r->gen.tool_name   = json_string_value(nm);
    }
    if (r->gen.tool_choice >= DS_TOOL_CHOICE_REQUIRED && !r->tools_json)
        return bad(err, 422, "tool_choice", "'tool_choice' forces a call but no tools were given");
    if (r->gen.tool_choice == DS_TOOL_CHOICE_NAMED) {
        const json_t *tools_arr = json_object_get(r->root, "tools");
        bool          found     = false;
        for (size_t i = 0; i < json_array_size(tools_arr); i++) {
            const json_t *n = json_object_get(json_object_get(json_array_get(tools_arr, i), "function"), "name");
            if (!strcmp(json_string_value(n), r->gen.tool_name)) found = true;
        }
        if (!found) return bad(err, 422, "tool_choice", "'tool_choice' names a function that is not in 'tools'");
    }
    return DS_OK;
}

static ds_status parse_options(ds_openai_request *r, ds_openai_error *err) {
    const json_t *so = json_object_get(r->root, "stream_options");
    if (so && !json_is_null(so)) {
        const json_t *iu = json_object_get(so, "include_usage");
        if (!json_is_object(so) || (iu && !json_is_boolean(iu)))
            return bad(err, 422, "stream_options", "'stream_options' must be {\"include_usage\": boolean}");
        r->include_usage = json_is_true(iu);
    }
    const json_t *rf = json_object_get(r->root, "response_format");
    if (rf && !json_is_null(rf)) {
        const char *t = json_string_value(json_object_get(rf, "type"));
        if (!json_is_object(rf) || !t || (strcmp(t, "text") && strcmp(t, "json_object")))
            return bad(err, 422, "response_format", "'response_format' must be {\"type\": \"text\" or \"json_object\"}");
        r->gen.json_object = !strcmp(t, "json_object");
    }
    const json_t *th = json_object_get(r->root, "thinking");
    if (th && !json_is_null(th)) {
        const char *t = json_string_value(json_object_get(th, "type"));
        if (!json_is_object(th) || !t || (strcmp(t, "enabled") && strcmp(t, "disabled")))
            return bad(err, 422, "thinking", "'thinking' must be {\"type\": \"enabled\" or \"disabled\"}");
        r->gen.think = !strcmp(t, "enabled") ? DS_THINK_ON : DS_THINK_OFF;
    }
    const json_t *kw = json_object_get(json_object_get(r->root, "chat_template_kwargs"), "enable_thinking");
    if (kw && !json_is_boolean(kw))
        return bad(err, 422, "chat_template_kwargs", "'enable_thinking' must be a boolean");
    if (kw) r->gen.think = json_is_true(kw) ? DS_THINK_ON : DS_THINK_OFF;
    if (r->gen.top_logprobs > 0 && !r->gen.logprobs)
        return bad(err, 422, "top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    if (r->gen.logprobs && !json_object_get(r->root, "top_logprobs")) r->gen.top_logprobs = 0;
    if (r->gen.top_p == 0) r->gen.temperature = 0; // only the most likely token is left
    if (r->gen.top_p == 0) r->gen.top_p = 1;
    return DS_OK;
}

static ds_status parse_messages(ds_openai_request *r, const ds_openai_limits *lim,
                                ds_openai_error *err) {
    const json_t *m = json_object_get(r->root, "messages");
    if (!m) return bad(err, 400, "messages", "'messages' is required");
    if (!json_is_array(m)) return bad(err, 400, "messages", "'messages' must be an array");
    if (json_array_size(m) == 0) return bad(err, 400, "messages", "'messages' must not be empty");
    int max = lim->max_messages > 0 ? lim->max_messages : 4096;
    if (json_array_size(m) > (size_t)max)
        return bad(err, 400, "messages", "'messages' has %zu entries; at most %d", json_array_size(m), max);
    for (size_t i = 0; i < json_array_size(m); i++) {
        const json_t *msg  = json_array_get(m, i);
        const char   *role = json_string_value(json_object_get(msg, "role"));
        if (!json_is_object(msg)) return bad(err, 400, "messages", "messages[%zu] must be an object", i);
        if (!role) return bad(err, 400, "messages", "messages[%zu].role must be a string", i);
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") &&
            strcmp(role, "tool") && strcmp(role, "developer"))
            return bad(err, 400, "messages",
                       "messages[%zu].role '%.40s' is not one of system, user, assistant, tool", i, role);
    }
    if (ds_chat_messages_from_json(m, &r->messages))
        return bad(err, 400, "messages", "%s", ds_errmsg());
    return DS_OK;
}

static ds_status parse_prompt(ds_openai_request *r, const char *key, ds_openai_error *err) {
    const json_t *p = json_object_get(r->root, key);
    if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
    if (!p) return bad(err, 400, key, "'%s' is required", key);
    if (!json_is_string(p)) return bad(err, 422, key, "'%s' must be a string", key);
    r->prompt     = json_string_value(p);
    r->prompt_len = json_string_length(p);
    return DS_OK;
}

static ds_status parse_tokens(ds_openai_request *r, const ds_openai_limits *lim,
                              ds_openai_error *err) {
    const json_t *t = json_object_get(r->root, "tokens");
    if (!t) return bad(err, 400, "tokens", "'tokens' is required");
    if (!json_is_array(t)) return bad(err, 422, "tokens", "'tokens' must be an array of token ids");
    size_t n  = json_array_size(t);
    r->tokens = ds_xmalloc((n ? n : 1) * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(t, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= lim->n_vocab)
            return bad(err, 400, "tokens", "tokens[%zu] is not a token id in [0, %d)", i, lim->n_vocab);
        r->tokens[i] = (int32_t)json_integer_value(v);
    }
    r->n_tokens = n;
    return DS_OK;
}

// ---- entry ----

ds_status ds_openai_parse(ds_openai_kind kind, const char *body, size_t len,
                          const ds_openai_limits *lim, ds_openai_request *out,
                          ds_openai_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    out->kind          = kind;
    out->gen           = ds_gen_params_default();
    out->parse_special = false;
    json_error_t je;
    if (len == 0) return bad(err, 400, NULL, "the request body is empty; a JSON object is expected");
    out->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!out->root)
        return bad(err, 400, NULL, "the body is not valid JSON: %s (line %d, column %d)", je.text,
                   je.line, je.column);
    ds_status st = DS_OK;
    if (!json_is_object(out->root)) {
        st = bad(err, 400, NULL, "the body must be a JSON object");
        goto done;
    }
    unsigned k = kind == DS_OPENAI_CHAT ? K_CHAT : kind == DS_OPENAI_COMPLETION ? K_COMPL : K_TOK;
    if ((st = scalars(out, k, lim, err))) goto done;
    switch (kind) {
    case DS_OPENAI_CHAT:
        if ((st = parse_messages(out, lim, err)) || (st = parse_stop(out, err)) ||
            (st = parse_tools(out, err)) || (st = parse_options(out, err)))
            goto done;
        break;
    case DS_OPENAI_COMPLETION:
        if ((st = parse_prompt(out, "prompt", err)) || (st = parse_stop(out, err)) ||
            (st = parse_options(out, err)))
            goto done;
        break;
    case DS_OPENAI_TOKENIZE: st = parse_prompt(out, "content", err); break;
    case DS_OPENAI_DETOKENIZE: st = parse_tokens(out, lim, err); break;
    }
done:
    if (st) ds_openai_request_free(out);
    return st;
}

void ds_openai_request_free(ds_openai_request *r) {
    if (!r) return;
    json_decref(r->root);
    ds_chat_messages_free(&r->messages);
    free(r->tokens);
    free(r->tools_json);
    ds_openai_kind kind = r->kind;
    memset(r, 0, sizeof *r);
    r->kind = kind;
}
