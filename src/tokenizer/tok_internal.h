// tok_internal.h - the tokenizer's private structures, shared by the files of src/tokenizer.
//
// vocab.c     builds a ds_tokenizer from plain arrays (tok_spec), validating everything
// load.c      fills a tok_spec from a GGUF's tokenizer.ggml.* keys
// utf8.c      UTF-8 decoding with the maximal-subpart replacement rule, byte-to-unicode map
// pretokenize.c  the regex lists per pre-tokenizer, compiled with PCRE2, and the split
// bpe.c       merging one word by merge rank
// tokenizer.c encode: sanitize, split out added tokens, pre-tokenize, BPE, per-call cache
// decode.c    pieces, decode, the streaming decoder
// convert.c   Hugging Face tokenizer.json -> vocab-only GGUF
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/err.h"
#include "ds/gguf.h"
#include "ds/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define TOK_MAX_REGEX 6

// ---- what a tokenizer is built from (borrowed arrays; vocab.c copies what it keeps) ----
typedef struct tok_spec {
    const char   *name;        // file name, for messages
    ds_str        model;       // tokenizer.ggml.model
    ds_str        pre;         // tokenizer.ggml.pre (len 0: absent)
    int64_t       n_vocab;
    const ds_str *tokens;      // [n_vocab]
    const int32_t *types;      // [n_vocab], NULL: all NORMAL
    int64_t       n_merges;
    const ds_str *merges;      // [n_merges], "left right"
    int64_t       bos, eos, eot, eom, pad, unk; // -1: absent
    int           add_bos;     // -1: absent (use the pre-tokenizer's default), 0, 1
    int           add_eos;
} tok_spec;

void tok_spec_init(tok_spec *s); // special ids -1, add_* -1, everything else zero

// Builds a tokenizer from a spec; the spec's arrays may be freed afterwards.
ds_status tok_build(const tok_spec *s, ds_tokenizer **out);

// ---- pre-tokenizer ----
typedef struct tok_pre {
    const char *name;          // canonical name
    int         n_regex;
    pcre2_code *re[TOK_MAX_REGEX];
    bool        ignore_merges; // a word that is a token as a whole skips BPE (llama3)
    bool        add_bos_default;
} tok_pre;

// Compiles the regexes of pre-tokenizer `name`; DS_EUNSUPPORTED naming it if unknown.
ds_status tok_pre_init(tok_pre *p, const char *name, size_t name_len);
void      tok_pre_free(tok_pre *p);
// True if `name` is a pre-tokenizer this module knows (for the converter's checks).
bool      tok_pre_known(const char *name);

// Word boundaries: a list of [start, end) byte ranges into one text.
typedef struct tok_ranges {
    uint32_t *r; // pairs: r[2i] start, r[2i+1] end
    size_t    n, cap;
} tok_ranges;

// Per-call scratch for the regex split.
typedef struct tok_split_work {
    pcre2_match_data    *md;
    pcre2_match_context *mc;
    pcre2_jit_stack     *js;
    tok_ranges           a, b;
} tok_split_work;

void      tok_split_work_init(tok_split_work *w, const tok_pre *p);
void      tok_split_work_free(tok_split_work *w);
// Splits text[0..len) (valid UTF-8) into words; the result is in w->a (offsets relative to
// text). DS_EINVAL if PCRE2 fails (a resource limit), with the PCRE2 message.
ds_status tok_split(const tok_pre *p, tok_split_work *w, const char *text, size_t len);

// ---- hash maps ----
// Text -> id, open addressing; slots hold id + 1 (0 = empty).
typedef struct tok_text_map {
    uint32_t *slots;
    uint64_t  mask;
} tok_text_map;

// (left id, right id) -> (rank, merged id).
typedef struct tok_merge {
    uint64_t key; // left << 32 | right; TOK_MERGE_EMPTY for an empty slot
    int32_t  rank;
    int32_t  id;
} tok_merge;
#define TOK_MERGE_EMPTY UINT64_MAX

static inline uint64_t tok_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

uint64_t tok_hash_bytes(const void *p, size_t n);

// ---- the tokenizer ----
struct ds_tokenizer {
    char    name[128];
    int32_t n_vocab;
    // vocabulary text (stored form) and decoded bytes of every token
    char     *text;       // all token texts, back to back
    uint32_t *text_off;   // [n_vocab + 1]
    char     *bytes;      // decoded bytes of every token (what decode emits)
    uint32_t *bytes_off;  // [n_vocab + 1]
    uint8_t  *type;       // [n_vocab] ds_token_type
    tok_text_map map;     // text -> id

    tok_merge *merges;    // [merge_mask + 1]
    uint64_t   merge_mask;
    int64_t    n_merges;
    int32_t    byte_tok[256]; // id of the token for each byte's mapped character, or -1

    // added tokens matched in raw text: ids sorted by (first two bytes, length desc); index
    // into it by the first two bytes. Tokens of one byte are in single[].
    int32_t  *added;      // [n_added]
    uint32_t *added_idx;  // [65537]: bucket b is added[added_idx[b] .. added_idx[b+1])
    int32_t   single[256];
    uint8_t   first[256]; // 1 if some added token starts with this byte
    int64_t   n_added;

    int32_t bos, eos, eot, eom, pad, unk;
    bool    add_bos, add_eos;
    uint8_t *eog;         // [n_vocab] 1 = end of generation

    tok_pre pre;
};

static inline uint32_t tok_text_len(const ds_tokenizer *t, int32_t id) {
    return t->text_off[id + 1] - t->text_off[id];
}

// Looks up the merge of (left, right); NULL if none.
static inline const tok_merge *tok_merge_find(const ds_tokenizer *t, int32_t l, int32_t r) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint64_t i = tok_hash_u64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const tok_merge *m = &t->merges[i];
        if (m->key == key) return m;
        if (m->key == TOK_MERGE_EMPTY) return NULL;
    }
}

int32_t tok_map_find(const ds_tokenizer *t, const char *s, size_t n);

// ---- BPE ----
typedef struct tok_bpe_work {
    struct tok_sym *sym;
    size_t          sym_cap;
    struct tok_cand *heap;
    size_t          heap_cap;
    char           *mapped; // ignore_merges: the word in mapped form
    size_t          mapped_cap;
} tok_bpe_work;

void tok_bpe_work_free(tok_bpe_work *w);
// Appends the ids of one word (raw bytes) to out. DS_ENOMEM if memory runs out.
ds_status tok_bpe_word(const ds_tokenizer *t, tok_bpe_work *w, const uint8_t *word, size_t n,
                       ds_tokens *out);

// Appends one id to a ds_tokens; DS_ENOMEM when it cannot grow.
ds_status tok_push(ds_tokens *out, int32_t id);

// ---- UTF-8 and the byte map ----
// Decodes the sequence at s[0..n) (n >= 1). Returns its length (1..4) and sets *cp; for an
// invalid sequence returns the length of its maximal invalid subpart and sets *cp = -1.
size_t tok_utf8_next(const uint8_t *s, size_t n, int32_t *cp);
// Number of bytes before the first invalid sequence (n if all valid).
size_t tok_utf8_valid_prefix(const uint8_t *s, size_t n);
// Copy of s with every invalid subpart replaced by U+FFFD (EF BF BD); *out_len set.
// Returns NULL if out of memory.
char *tok_utf8_sanitize(const uint8_t *s, size_t n, size_t *out_len);
int   tok_utf8_encode(uint32_t cp, char out[4]);

// GPT-2 bytes_to_unicode: the code point byte b maps to, and the inverse (-1 if cp is not the
// image of a byte).
uint32_t tok_byte_to_cp(uint8_t b);
int      tok_cp_to_byte(uint32_t cp);
