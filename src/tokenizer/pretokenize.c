// pretokenize.c - the regex lists that cut text into words, per tokenizer.ggml.pre.
//
// Each pre-tokenizer is a list of regexes applied in order (deepseek-gguf.md §6.3-6.4, and
// Hugging Face's Sequence of Split(..., "Isolated")): every current piece is split into the
// matches and the gaps between them, nothing is dropped, and the next regex sees each piece
// as a whole subject of its own (so a lookahead never looks past the piece).
//
// The patterns are Hugging Face's, rewritten for PCRE2 (UTF + UCP + JIT):
//   - `\s` is Oniguruma's (Unicode White_Space: U+0009-000D, 0020, 0085, 00A0, 1680,
//     2000-200A, 2028, 2029, 202F, 205F, 3000). PCRE2's own \s adds U+180E, so every \s is
//     written as the explicit class WS below. (JavaScript's \s, used by @lenml/tokenizers,
//     differs at U+0085 and U+FEFF; the differential test avoids those two.)
//   - `(?i:'s|'t|...)` is written with explicit case classes, as llama.cpp and transformers.js do.
//   - `$` is end of subject only (PCRE2_DOLLAR_ENDONLY); pieces never hold a newline where
//     deepseek-llm uses it, so Oniguruma's end-of-line `$` gives the same result.
//   - The deepseek-llm letter class is the one in llama.cpp, with code points written out.
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "tok_internal.h"

#define WS "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

// GPT-2-style tail shared by qwen2 and llama3, after the digit part.
#define GPT_TAIL                                                                                    \
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+"
#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

#define DS_LLM_LETTERS                                                                              \
    "A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}\\x{1c4}-"        \
    "\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}\\x{37f}"          \
    "\\x{386}\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}\\x{3f7}-\\x{481}"         \
    "\\x{48a}-\\x{52f}\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}\\x{13f8}-"           \
    "\\x{13fd}\\x{1c90}-\\x{1cba}\\x{1cbd}-\\x{1cbf}\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}"        \
    "\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}\\x{1f18}-\\x{1f1d}\\x{1f20}-\\x{1f45}\\x{1f48}-"       \
    "\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}\\x{1f5b}\\x{1f5d}\\x{1f5f}-\\x{1f7d}\\x{1f80}-"         \
    "\\x{1fb4}\\x{1fb6}-\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}\\x{1fc6}-\\x{1fcc}\\x{1fd0}-"        \
    "\\x{1fd3}\\x{1fd6}-\\x{1fdb}\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}"        \
    "\\x{2102}\\x{2107}\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}\\x{2126}"          \
    "\\x{2128}\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}\\x{2145}-"        \
    "\\x{2149}\\x{214e}\\x{2183}\\x{2184}\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-"         \
    "\\x{2cee}\\x{2cf2}\\x{2cf3}\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}"         \
    "\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-"       \
    "\\x{fb17}\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}\\x{104b0}-"             \
    "\\x{104d3}\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}\\x{118a0}-"        \
    "\\x{118df}\\x{1e900}-\\x{1e943}"

#define CJK_DS_LLM "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"

typedef struct pre_def {
    const char *names[6]; // canonical name first
    const char *regex[TOK_MAX_REGEX + 1];
    bool        ignore_merges;
    bool        add_bos_default;
} pre_def;

static const pre_def pre_defs[] = {
    {.names = {"deepseek-v3"},
     .regex = {"\\p{N}{1,3}", "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
               "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+"
               "|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
               "| ?[\\p{P}\\p{S}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+"}},
    {.names = {"deepseek-llm"},
     .regex = {"[\\r\\n]", "[" WS "]?[" DS_LLM_LETTERS "]+",
               "[" WS "]?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}"
               "\\x{3000}-\\x{3002}]+",
               "[" WS "]+$", CJK_DS_LLM, "\\p{N}+"}},
    {.names = {"deepseek-coder"},
     .regex = {"[\\r\\n]", "[" WS "]?\\p{L}+", "[" WS "]?\\p{P}+", CJK_DS_LLM, "\\p{N}"}},
    {.names = {"qwen2", "deepseek-r1-qwen"},
     .regex = {CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" GPT_TAIL}},
    {.names = {"llama-bpe", "llama3", "llama-v3"},
     .regex = {CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}" GPT_TAIL},
     .ignore_merges   = true,
     .add_bos_default = true},
    {.names = {"default"},
     .regex = {"[\\p{P}\\$\\+<=>\\^~\\|]+",
               "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS
               "]+(?![^" WS "])",
               "\\p{N}+", "[0-9][0-9][0-9]"}},
};
enum { N_PRE = sizeof pre_defs / sizeof pre_defs[0] };

static const pre_def *find_def(const char *name, size_t n) {
    for (int i = 0; i < N_PRE; i++)
        for (int k = 0; k < 6 && pre_defs[i].names[k]; k++)
            if (strlen(pre_defs[i].names[k]) == n && !memcmp(pre_defs[i].names[k], name, n))
                return &pre_defs[i];
    return NULL;
}

bool tok_pre_known(const char *name) { return find_def(name, strlen(name)) != NULL; }

ds_status tok_pre_init(tok_pre *p, const char *name, size_t name_len) {
    memset(p, 0, sizeof *p);
    const pre_def *d = find_def(name, name_len);
    if (!d)
        return ds_fail(DS_EUNSUPPORTED, "unknown pre-tokenizer '%.*s' (tokenizer.ggml.pre)",
                       (int)(name_len > 64 ? 64 : name_len), name);
    p->name            = d->names[0];
    p->ignore_merges   = d->ignore_merges;
    p->add_bos_default = d->add_bos_default;
    for (int i = 0; d->regex[i]; i++) {
        int         err;
        PCRE2_SIZE  off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)d->regex[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &off,
                                       NULL);
        // The patterns are constants of this file: failing to compile one is a bug.
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            ds_abort(__FILE__, __LINE__, "pre-tokenizer %s regex %d: %s at %zu", p->name, i,
                     (const char *)msg, (size_t)off);
        }
        // JIT is an optimisation; without it (no JIT support) matching still works.
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        p->re[p->n_regex++] = re;
    }
    return DS_OK;
}

void tok_pre_free(tok_pre *p) {
    for (int i = 0; i < p->n_regex; i++) pcre2_code_free(p->re[i]);
    p->n_regex = 0;
}

void tok_split_work_init(tok_split_work *w, const tok_pre *p) {
    memset(w, 0, sizeof *w);
    w->md = pcre2_match_data_create(4, NULL);
    if (!w->md) ds_abort(__FILE__, __LINE__, "out of memory (pcre2)");
    (void)p;
}

void tok_split_work_free(tok_split_work *w) {
    pcre2_match_data_free(w->md);
    pcre2_match_context_free(w->mc);
    pcre2_jit_stack_free(w->js);
    free(w->a.r);
    free(w->b.r);
    memset(w, 0, sizeof *w);
}

static void ranges_push(tok_ranges *r, size_t s, size_t e) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->r   = ds_xrealloc(r->r, r->cap * 2 * sizeof *r->r);
    }
    r->r[2 * r->n]     = (uint32_t)s;
    r->r[2 * r->n + 1] = (uint32_t)e;
    r->n++;
}

// Length of the UTF-8 character starting with lead byte c (input is valid UTF-8).
static size_t char_len(uint8_t c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

// Splits piece [s, e) of text with one regex, appending the pieces to out.
static ds_status split_one(const pcre2_code *re, tok_split_work *w, const char *text, size_t s,
                           size_t e, tok_ranges *out) {
    const PCRE2_SPTR subj = (PCRE2_SPTR)text + s;
    const size_t     len  = e - s;
    size_t           pos = 0, from = 0; // pos: end of the last piece; from: where to search
    while (from < len) {
        int rc = pcre2_match(re, subj, len, from, PCRE2_NO_UTF_CHECK, w->md, w->mc);
        if ((rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_MATCHLIMIT) && !w->js) {
            // A long run outgrew the default 32 KiB JIT stack: retry with a large one (made
            // only when needed, so short texts do not pay for it).
            w->mc = pcre2_match_context_create(NULL);
            w->js = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
            if (!w->mc || !w->js) ds_abort(__FILE__, __LINE__, "out of memory (pcre2)");
            pcre2_jit_stack_assign(w->mc, NULL, w->js);
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return ds_fail(DS_EINVAL, "pre-tokenizer: regex match failed: %s", (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t            ms = ov[0], me = ov[1];
        if (me == ms) { // an empty match is no piece; search again one character on
            from = ms + char_len(subj[ms]);
            continue;
        }
        if (ms > pos) ranges_push(out, s + pos, s + ms);
        ranges_push(out, s + ms, s + me);
        pos = from = me;
    }
    if (pos < len) ranges_push(out, s + pos, e);
    return DS_OK;
}

ds_status tok_split(const tok_pre *p, tok_split_work *w, const char *text, size_t len) {
    w->a.n = 0;
    if (!len) return DS_OK;
    ranges_push(&w->a, 0, len);
    for (int k = 0; k < p->n_regex; k++) {
        w->b.n = 0;
        for (size_t i = 0; i < w->a.n; i++) {
            ds_status st = split_one(p->re[k], w, text, w->a.r[2 * i], w->a.r[2 * i + 1], &w->b);
            if (st != DS_OK) return st;
        }
        tok_ranges tmp = w->a;
        w->a           = w->b;
        w->b           = tmp;
    }
    return DS_OK;
}
