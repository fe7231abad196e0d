// load.c - reads the tokenizer.ggml.* keys of a GGUF into a tok_spec and builds from it.
//
// Array keys are read with the typed getter, which checks element type and count, so a
// token_type array of the wrong type or length is an error here, never an over-read
// (docs/security.md §1b).
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/gguf.h"
#include "tok_internal.h"

// Optional u32 special id: -1 when absent. Other integer types are accepted if they fit.
static ds_status get_id(const ds_gguf *g, const char *key, int64_t *out) {
    *out         = -1;
    int64_t   v  = 0;
    ds_status st = ds_gguf_get_int(g, key, &v);
    if (st == DS_ENOTFOUND) return DS_OK;
    if (st != DS_OK) return st;
    if (v < 0 || v > INT32_MAX)
        return ds_fail(DS_EFORMAT, "%s: %s = %lld is not a token id", ds_gguf_path(g), key,
                       (long long)v);
    *out = v;
    return DS_OK;
}

static ds_status get_flag(const ds_gguf *g, const char *key, int *out) {
    *out         = -1;
    bool      v  = false;
    ds_status st = ds_gguf_get_bool(g, key, &v);
    if (st == DS_ENOTFOUND) return DS_OK;
    if (st != DS_OK) return st;
    *out = v;
    return DS_OK;
}

ds_status ds_tokenizer_load(const ds_gguf *g, ds_tokenizer **out) {
    *out            = NULL;
    const char *p   = ds_gguf_path(g);
    tok_spec    s;
    tok_spec_init(&s);
    s.name = p;
    ds_str   *tokens = NULL, *merges = NULL;
    int32_t  *types  = NULL;
    ds_status st     = ds_gguf_get_str(g, "tokenizer.ggml.model", &s.model);
    if (st == DS_ENOTFOUND) return ds_fail(DS_EFORMAT, "%s: no tokenizer (tokenizer.ggml.model)", p);
    if (st != DS_OK) return st;
    st = ds_gguf_get_str(g, "tokenizer.ggml.pre", &s.pre);
    if (st == DS_ENOTFOUND) s.pre = (ds_str){NULL, 0};
    else if (st != DS_OK) return st;
    if (!(s.model.len == 4 && !memcmp(s.model.ptr, "gpt2", 4)))
        return tok_build(&s, out); // reports the unsupported model

    ds_gguf_arr a_tok, a_type, a_merge, a_score;
    if ((st = ds_gguf_get_arr(g, "tokenizer.ggml.tokens", DS_GGUF_STRING, DS_GGUF_ANY_COUNT,
                              &a_tok)) != DS_OK)
        return st;
    if (a_tok.count < 1 || a_tok.count > DS_TOKEN_MAX_VOCAB)
        return ds_fail(DS_EFORMAT, "%s: tokenizer.ggml.tokens holds %llu tokens (1..%d allowed)",
                       p, (unsigned long long)a_tok.count, DS_TOKEN_MAX_VOCAB);
    s.n_vocab = (int64_t)a_tok.count;
    st = ds_gguf_get_arr(g, "tokenizer.ggml.token_type", DS_GGUF_INT32, a_tok.count, &a_type);
    if (st == DS_ENOTFOUND) a_type.count = 0;
    else if (st != DS_OK) return st;
    // scores are not used by BPE, but a present array must still be well-formed
    st = ds_gguf_get_arr(g, "tokenizer.ggml.scores", DS_GGUF_FLOAT32, a_tok.count, &a_score);
    if (st != DS_OK && st != DS_ENOTFOUND) return st;
    st = ds_gguf_get_arr(g, "tokenizer.ggml.merges", DS_GGUF_STRING, DS_GGUF_ANY_COUNT, &a_merge);
    if (st == DS_ENOTFOUND) return ds_fail(DS_EFORMAT, "%s: gpt2 tokenizer without tokenizer.ggml.merges", p);
    if (st != DS_OK) return st;
    if (a_merge.count > INT32_MAX)
        return ds_fail(DS_EFORMAT, "%s: %llu merges", p, (unsigned long long)a_merge.count);

    tokens = ds_xmalloc((size_t)a_tok.count * sizeof *tokens);
    for (uint64_t i = 0; i < a_tok.count; i++) tokens[i] = ds_gguf_arr_str(&a_tok, i);
    if (a_type.count) {
        types = ds_xmalloc((size_t)a_tok.count * sizeof *types);
        for (uint64_t i = 0; i < a_tok.count; i++) types[i] = (int32_t)ds_gguf_arr_int(&a_type, i);
    }
    merges = ds_xmalloc(((size_t)a_merge.count + 1) * sizeof *merges);
    for (uint64_t i = 0; i < a_merge.count; i++) merges[i] = ds_gguf_arr_str(&a_merge, i);
    s.tokens   = tokens;
    s.types    = types;
    s.merges   = merges;
    s.n_merges = (int64_t)a_merge.count;

    if ((st = get_id(g, "tokenizer.ggml.bos_token_id", &s.bos)) != DS_OK ||
        (st = get_id(g, "tokenizer.ggml.eos_token_id", &s.eos)) != DS_OK ||
        (st = get_id(g, "tokenizer.ggml.eot_token_id", &s.eot)) != DS_OK ||
        (st = get_id(g, "tokenizer.ggml.eom_token_id", &s.eom)) != DS_OK ||
        (st = get_id(g, "tokenizer.ggml.padding_token_id", &s.pad)) != DS_OK ||
        (st = get_id(g, "tokenizer.ggml.unknown_token_id", &s.unk)) != DS_OK ||
        (st = get_flag(g, "tokenizer.ggml.add_bos_token", &s.add_bos)) != DS_OK ||
        (st = get_flag(g, "tokenizer.ggml.add_eos_token", &s.add_eos)) != DS_OK)
        goto done;
    st = tok_build(&s, out);
done:
    free(tokens);
    free(types);
    free(merges);
    return st;
}
