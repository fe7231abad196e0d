// convert.c - a Hugging Face byte-level BPE tokenizer (tokenizer.json, optionally
// tokenizer_config.json) to a vocab-only GGUF with the tokenizer.ggml.* keys.
//
// Ids: model.vocab gives the base tokens; every added token overrides its id with its content
// and becomes CONTROL when marked special, else USER_DEFINED (what Hugging Face matches
// always). Ids no entry names, and the padding up to pad_to, become "[PAD<i>]" UNUSED tokens.
// The pre-tokenizer is recognised from the Split regexes (or given by name). Before the file
// is written, the collected arrays are built into a tokenizer, so every check the loader makes
// (merges naming known tokens, special ids in range, ...) runs on the converted data too.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "tok_internal.h"

typedef struct conv {
    const char *path;
    char      **text; // [n] owned strings
    size_t     *len;
    int32_t    *type;
    int64_t     n;
    char      **merge;
    size_t     *merge_len;
    int64_t     n_merges;
    const char *pre;
    char        pre_buf[32];
} conv;

static void conv_free(conv *c) {
    for (int64_t i = 0; i < c->n; i++) free(c->text[i]);
    for (int64_t i = 0; i < c->n_merges; i++) free(c->merge[i]);
    free(c->text);
    free(c->len);
    free(c->type);
    free(c->merge);
    free(c->merge_len);
}

static void set_token(conv *c, int64_t id, const char *s, size_t n, int32_t type) {
    free(c->text[id]);
    c->text[id] = ds_xstrndup(s, n);
    c->len[id]  = n;
    c->type[id] = type;
}

// The Split regexes of the pre-tokenizer, as Hugging Face writes them, for each known name.
static const struct {
    const char *name;
    int         n;
    const char *first;  // the first regex, exactly
    const char *needle; // a substring of the last regex that tells variants apart
} known_pre[] = {
    {"deepseek-v3", 3, "\\p{N}{1,3}", "[\\p{L}\\p{M}]+"},
    {"qwen2", 1, NULL, "\\p{L}+|\\p{N}| ?"},
    {"llama-bpe", 1, NULL, "\\p{L}+|\\p{N}{1,3}| ?"},
    {"deepseek-llm", 6, "[\r\n]", "\\p{N}+"},
    {"deepseek-coder", 5, "[\r\n]", "\\p{N}"},
};

static void collect_splits(json_t *pt, const char **re, int *n) {
    if (!json_is_object(pt)) return;
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (type && !strcmp(type, "Sequence")) {
        json_t *seq = json_object_get(pt, "pretokenizers");
        size_t  i;
        json_t *v;
        json_array_foreach(seq, i, v) collect_splits(v, re, n);
    } else if (type && !strcmp(type, "Split") && *n < 8) {
        const char *r = json_string_value(json_object_get(json_object_get(pt, "pattern"), "Regex"));
        re[(*n)++]    = r ? r : "";
    }
}

static ds_status detect_pre(conv *c, json_t *root) {
    const char *re[8];
    int         n = 0;
    collect_splits(json_object_get(root, "pre_tokenizer"), re, &n);
    for (size_t k = 0; k < sizeof known_pre / sizeof known_pre[0]; k++) {
        if (known_pre[k].n != n) continue;
        if (known_pre[k].first && strcmp(re[0], known_pre[k].first)) continue;
        const char *last = re[n - 1];
        if (n == 1 || !strcmp(known_pre[k].name, "deepseek-v3")) {
            if (!strstr(last, known_pre[k].needle)) continue;
        } else if (strcmp(last, known_pre[k].needle)) {
            continue;
        }
        c->pre = known_pre[k].name;
        return DS_OK;
    }
    return ds_fail(DS_EUNSUPPORTED,
                   "%s: pre-tokenizer not recognised (%d Split regexes, first '%.60s'); give its "
                   "name with --pre",
                   c->path, n, n ? re[0] : "");
}

static ds_status read_vocab(conv *c, json_t *root) {
    json_t *model = json_object_get(root, "model");
    const char *mt = json_string_value(json_object_get(model, "type"));
    if (!mt || strcmp(mt, "BPE"))
        return ds_fail(DS_EUNSUPPORTED, "%s: model type '%s' is not BPE", c->path, mt ? mt : "?");
    json_t *vocab = json_object_get(model, "vocab"), *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab)) return ds_fail(DS_EFORMAT, "%s: model.vocab is not an object", c->path);
    int64_t     max_id = -1;
    const char *key;
    json_t     *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= DS_TOKEN_MAX_VOCAB)
            return ds_fail(DS_EFORMAT, "%s: vocab entry '%.40s' has a bad id", c->path, key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= DS_TOKEN_MAX_VOCAB || !json_is_string(json_object_get(v, "content")))
            return ds_fail(DS_EFORMAT, "%s: added token %zu lacks a valid id or content", c->path, i);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    if (max_id < 0) return ds_fail(DS_EFORMAT, "%s: empty vocabulary", c->path);
    c->n    = max_id + 1;
    c->text = ds_xcalloc((size_t)c->n, sizeof *c->text);
    c->len  = ds_xcalloc((size_t)c->n, sizeof *c->len);
    c->type = ds_xcalloc((size_t)c->n, sizeof *c->type);
    json_object_foreach(vocab, key, v) {
        set_token(c, json_integer_value(v), key, strlen(key), DS_TOKEN_NORMAL);
    }
    json_array_foreach(added, i, v) {
        json_t *content = json_object_get(v, "content");
        set_token(c, json_integer_value(json_object_get(v, "id")), json_string_value(content),
                  json_string_length(content),
                  json_is_true(json_object_get(v, "special")) ? DS_TOKEN_CONTROL : DS_TOKEN_USER_DEFINED);
    }
    return DS_OK;
}

static ds_status read_merges(conv *c, json_t *root) {
    json_t *m = json_object_get(json_object_get(root, "model"), "merges");
    if (!json_is_array(m)) return ds_fail(DS_EFORMAT, "%s: model.merges is not an array", c->path);
    c->n_merges  = 0;
    c->merge     = ds_xcalloc(json_array_size(m) + 1, sizeof *c->merge);
    c->merge_len = ds_xcalloc(json_array_size(m) + 1, sizeof *c->merge_len);
    size_t  i;
    json_t *v;
    json_array_foreach(m, i, v) {
        ds_buf b = {0};
        if (json_is_string(v)) {
            ds_buf_append(&b, json_string_value(v), json_string_length(v));
        } else if (json_is_array(v) && json_array_size(v) == 2 &&
                   json_is_string(json_array_get(v, 0)) && json_is_string(json_array_get(v, 1))) {
            json_t *l = json_array_get(v, 0), *r = json_array_get(v, 1);
            ds_buf_append(&b, json_string_value(l), json_string_length(l));
            ds_buf_puts(&b, " ");
            ds_buf_append(&b, json_string_value(r), json_string_length(r));
        } else {
            return ds_fail(DS_EFORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]", c->path, i);
        }
        c->merge[c->n_merges]     = b.data ? b.data : ds_xstrdup("");
        c->merge_len[c->n_merges] = b.len;
        c->n_merges++;
    }
    return DS_OK;
}

// A token named in tokenizer_config.json: a string or {"content": ...}; its id or -1.
static int64_t config_token(const conv *c, json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return -1;
    for (int64_t i = 0; i < c->n; i++)
        if (c->text[i] && c->len[i] == json_string_length(v) &&
            !memcmp(c->text[i], json_string_value(v), c->len[i]))
            return i;
    return -1;
}

static json_t *load_json(const char *path) {
    json_error_t err;
    json_t      *j = json_load_file(path, JSON_ALLOW_NUL, &err);
    if (!j) ds_fail(DS_EFORMAT, "%s:%d: %s", path, err.line, err.text);
    return j;
}

ds_status ds_tokenizer_convert_hf(const ds_tokenizer_convert_params *p, const char *out_path) {
    conv            c    = {.path = p->tokenizer_json};
    json_t         *root = NULL, *cfg = NULL;
    ds_gguf_writer *w    = NULL;
    ds_tokenizer   *tok  = NULL;
    ds_str         *toks = NULL, *merges = NULL;
    ds_status       st   = DS_OK;
    if (!(root = load_json(p->tokenizer_json))) return DS_EFORMAT;
    if (p->tokenizer_config && !(cfg = load_json(p->tokenizer_config))) {
        st = DS_EFORMAT;
        goto done;
    }
    if ((st = read_vocab(&c, root)) != DS_OK || (st = read_merges(&c, root)) != DS_OK) goto done;
    if (p->pre) {
        if (!tok_pre_known(p->pre)) {
            st = ds_fail(DS_EUNSUPPORTED, "unknown pre-tokenizer '%s'", p->pre);
            goto done;
        }
        c.pre = p->pre;
    } else if ((st = detect_pre(&c, root)) != DS_OK) {
        goto done;
    }
    const char *norm = json_string_value(json_object_get(json_object_get(root, "normalizer"), "type"));
    if (norm && strcmp(norm, "Sequence"))
        ds_log(DS_LOG_WARN, "%s: normalizer %s is not applied by this tokenizer", c.path, norm);
    if (p->pad_to > c.n) {
        if (p->pad_to > DS_TOKEN_MAX_VOCAB) {
            st = ds_fail(DS_EINVAL, "pad_to %lld is over the limit", (long long)p->pad_to);
            goto done;
        }
        c.text = ds_xrealloc(c.text, (size_t)p->pad_to * sizeof *c.text);
        c.len  = ds_xrealloc(c.len, (size_t)p->pad_to * sizeof *c.len);
        c.type = ds_xrealloc(c.type, (size_t)p->pad_to * sizeof *c.type);
        for (int64_t i = c.n; i < p->pad_to; i++) c.text[i] = NULL;
        c.n = p->pad_to;
    }
    for (int64_t i = 0; i < c.n; i++) {
        if (c.text[i]) continue;
        char pad[32];
        int  k = snprintf(pad, sizeof pad, "[PAD%lld]", (long long)i);
        set_token(&c, i, pad, (size_t)k, DS_TOKEN_UNUSED);
    }

    tok_spec s;
    tok_spec_init(&s);
    s.name  = c.path;
    s.model = (ds_str){"gpt2", 4};
    s.pre   = (ds_str){c.pre, strlen(c.pre)};
    toks    = ds_xmalloc((size_t)c.n * sizeof *toks);
    merges  = ds_xmalloc(((size_t)c.n_merges + 1) * sizeof *merges);
    for (int64_t i = 0; i < c.n; i++) toks[i] = (ds_str){c.text[i], c.len[i]};
    for (int64_t i = 0; i < c.n_merges; i++) merges[i] = (ds_str){c.merge[i], c.merge_len[i]};
    s.n_vocab  = c.n;
    s.tokens   = toks;
    s.types    = c.type;
    s.merges   = merges;
    s.n_merges = c.n_merges;
    if (cfg) {
        s.bos = config_token(&c, cfg, "bos_token");
        s.eos = config_token(&c, cfg, "eos_token");
        s.pad = config_token(&c, cfg, "pad_token");
        s.unk = config_token(&c, cfg, "unk_token");
        json_t *ab = json_object_get(cfg, "add_bos_token"), *ae = json_object_get(cfg, "add_eos_token");
        s.add_bos  = json_is_boolean(ab) ? json_is_true(ab) : (s.bos >= 0 ? -1 : 0);
        s.add_eos  = json_is_boolean(ae) ? json_is_true(ae) : 0;
    }
    if ((st = tok_build(&s, &tok)) != DS_OK) goto done;

    w = ds_gguf_writer_new();
    ds_gguf_writer_set_str(w, "general.name", "vocab");
    ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", c.pre);
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)c.text, c.len,
                               (uint64_t)c.n);
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_INT32, c.type, (uint64_t)c.n);
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)c.merge,
                               c.merge_len, (uint64_t)c.n_merges);
    if (s.bos >= 0) ds_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s.bos);
    if (s.eos >= 0) ds_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s.eos);
    if (s.pad >= 0) ds_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)s.pad);
    if (s.unk >= 0) ds_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)s.unk);
    ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", ds_tokenizer_add_bos(tok));
    ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", s.add_eos > 0);
    json_t *tmpl = cfg ? json_object_get(cfg, "chat_template") : NULL;
    if (json_is_string(tmpl)) {
        ds_gguf_writer_set_strn(w, "tokenizer.chat_template", json_string_value(tmpl),
                                json_string_length(tmpl));
    } else if (json_is_array(tmpl)) { // [{"name": ..., "template": ...}, ...]
        size_t  i;
        json_t *v;
        json_array_foreach(tmpl, i, v) {
            const char *name = json_string_value(json_object_get(v, "name"));
            json_t     *t    = json_object_get(v, "template");
            if (!name || !json_is_string(t)) continue;
            char key[160];
            if (!strcmp(name, "default")) snprintf(key, sizeof key, "tokenizer.chat_template");
            else snprintf(key, sizeof key, "tokenizer.chat_template.%.100s", name);
            ds_gguf_writer_set_strn(w, key, json_string_value(t), json_string_length(t));
        }
    }
    st = ds_gguf_writer_write(w, out_path);
done:
    ds_gguf_writer_free(w);
    ds_tokenizer_free(tok);
    free(toks);
    free(merges);
    conv_free(&c);
    json_decref(root);
    json_decref(cfg);
    return st;
}
