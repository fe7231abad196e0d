// tokenizer.h - text to token ids and back, as the Hugging Face tokenizer of each model does it.
//
// Model: byte-level BPE (`tokenizer.ggml.model = gpt2`), the kind every DeepSeek model uses
// (deepseek-gguf.md §6). Encoding runs in four steps:
//   1. invalid UTF-8 in the input is replaced by U+FFFD, one per maximal invalid subpart (the
//      WHATWG / Python errors="replace" rule, which is also what a JavaScript string built with
//      TextDecoder holds), so every later step sees valid UTF-8;
//   2. added tokens are split out of the raw text, longest first: USER_DEFINED tokens always,
//      CONTROL and UNKNOWN tokens only when DS_ENCODE_PARSE_SPECIAL is given, none at all
//      with DS_ENCODE_LITERAL or inside the literal spans of ds_tokenizer_encode_spans;
//   3. each remaining fragment is cut into words by the pre-tokenizer's regex list
//      (`tokenizer.ggml.pre`: deepseek-v3, deepseek-llm, deepseek-coder, qwen2 /
//      deepseek-r1-qwen, llama-bpe / llama3), run with PCRE2 (UTF, UCP, JIT), with `\s` meaning
//      the Unicode White_Space property as in Hugging Face's Oniguruma;
//   4. each word's bytes become one symbol each (GPT-2 byte-to-unicode table) and are merged by
//      merge rank, lowest rank first, leftmost first on ties.
// Not done: Unicode normalizers (Qwen's tokenizer.json asks for NFC; llama.cpp skips it too),
// so decomposed input can tokenize differently from Hugging Face on the qwen2 vocabulary.
//
// Decoding maps each token back to bytes; CONTROL tokens render as text only on request.
// Output is always valid UTF-8: invalid bytes become U+FFFD, and the stream decoder holds a
// character that is split across tokens until its last byte arrives.
//
// A loaded tokenizer is immutable: every function here may be called from several threads
// on the same tokenizer at once (encode keeps its BPE cache per call).
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/buf.h"
#include "ds/err.h"

typedef struct ds_gguf ds_gguf;
typedef struct ds_tokenizer ds_tokenizer;

// Token types, as stored in tokenizer.ggml.token_type.
typedef enum ds_token_type {
    DS_TOKEN_UNDEFINED    = 0,
    DS_TOKEN_NORMAL       = 1,
    DS_TOKEN_UNKNOWN      = 2,
    DS_TOKEN_CONTROL      = 3,
    DS_TOKEN_USER_DEFINED = 4,
    DS_TOKEN_UNUSED       = 5,
    DS_TOKEN_BYTE         = 6,
} ds_token_type;

#define DS_TOKEN_NONE     (-1)        // "no such token" (absent special id, failed lookup)
#define DS_TOKEN_MAX_TEXT 4096        // longest token text accepted at load, in bytes
#define DS_TOKEN_MAX_VOCAB (1 << 24)  // largest vocabulary accepted at load
#define DS_ENCODE_MAX_TEXT ((size_t)1 << 30) // longest text encode accepts, in bytes

// Encode flags.
enum {
    // Add what the vocabulary asks for around the text: BOS in front when
    // tokenizer.ggml.add_bos_token is true, EOS behind when add_eos_token is true.
    DS_ENCODE_ADD_BOS = 1u << 0,
    // Turn the text of CONTROL tokens (<｜begin▁of▁sentence｜>, ...) into those tokens. Use it
    // for rendered chat templates, never for untrusted user text.
    DS_ENCODE_PARSE_SPECIAL = 1u << 1,
    // Match no added token at all, USER_DEFINED ones included (DeepSeek-V3/R1 keep their chat
    // markers there, and Hugging Face matches those in any text): every byte is plain text,
    // encoded by BPE. For untrusted text (message content); overrides PARSE_SPECIAL.
    DS_ENCODE_LITERAL = 1u << 2,
};

// A byte range [off, off + len) of a text.
typedef struct ds_text_span {
    size_t off;
    size_t len;
} ds_text_span;

// Decode flags.
enum {
    DS_DECODE_SPECIAL = 1u << 0, // render CONTROL/UNKNOWN tokens as their text (else nothing)
};

// A growable array of token ids. A zeroed ds_tokens is empty and valid.
typedef struct ds_tokens {
    int32_t *ids;
    size_t   n;
    size_t   cap;
} ds_tokens;

void ds_tokens_free(ds_tokens *t); // back to the zeroed state; NULL is a no-op

// ---- load / free ----

// Builds a tokenizer from the tokenizer.ggml.* keys of a GGUF (tensor data is not needed; a
// vocab-only file works). Everything is copied: the GGUF may be closed afterwards.
// Validated (docs/security.md §1b): tokens STRING[n], token_type INT32[n], scores FLOAT32[n]
// if present, merges STRING[] each naming two known tokens whose concatenation is a token,
// special ids < n, token texts at most DS_TOKEN_MAX_TEXT bytes, BYTE tokens spelled <0xHH>.
// DS_EUNSUPPORTED for a model other than gpt2 or an unknown pre-tokenizer (the message names
// it), DS_EFORMAT for inconsistent data; the message names the file and the problem.
ds_status ds_tokenizer_load(const ds_gguf *g, ds_tokenizer **out);

void ds_tokenizer_free(ds_tokenizer *t); // NULL is a no-op

// ---- queries ----

int32_t     ds_tokenizer_n_vocab(const ds_tokenizer *t);
const char *ds_tokenizer_pre(const ds_tokenizer *t); // pre-tokenizer name, e.g. "deepseek-v3"
int32_t     ds_tokenizer_bos(const ds_tokenizer *t); // DS_TOKEN_NONE if the vocab has none
int32_t     ds_tokenizer_eos(const ds_tokenizer *t);
int32_t     ds_tokenizer_eot(const ds_tokenizer *t); // eot, else <｜end▁of▁sentence｜>-like text
bool        ds_tokenizer_add_bos(const ds_tokenizer *t); // tokenizer.ggml.add_bos_token
// True for tokens that end generation: eos, eot, eom and tokens whose text is a known
// end-of-turn marker (deepseek-gguf.md §6.8). False for ids out of range.
bool        ds_tokenizer_is_eog(const ds_tokenizer *t, int32_t id);
// Appends every id for which ds_tokenizer_is_eog is true to out, in id order (for a
// sampler's end-of-generation set). DS_ENOMEM (out unchanged) if memory runs out.
ds_status   ds_tokenizer_eog_ids(const ds_tokenizer *t, ds_tokens *out);
// Type of a token; DS_TOKEN_UNDEFINED for ids out of range.
ds_token_type ds_tokenizer_type(const ds_tokenizer *t, int32_t id);
// The id whose vocabulary text is exactly text[0..len), or DS_TOKEN_NONE. Vocabulary text is
// the stored form: byte-mapped for NORMAL tokens ("Ġthe"), literal for added tokens.
int32_t     ds_tokenizer_find(const ds_tokenizer *t, const char *text, size_t len);

// ---- encode ----

// Appends the ids of text[0..len) to out. The text may hold any bytes (see the top of this
// file). DS_EINVAL for a text longer than DS_ENCODE_MAX_TEXT, DS_ENOMEM if memory runs out;
// on failure out keeps what it held before.
ds_status ds_tokenizer_encode(const ds_tokenizer *t, const char *text, size_t len,
                              unsigned flags, ds_tokens *out);

// ds_tokenizer_encode for a text that mixes trusted and untrusted bytes (a rendered chat
// prompt): no added token is matched where it would overlap one of the `literal` spans
// (sorted, non-overlapping, inside the text), elsewhere `flags` decide. Pre-tokenization and
// BPE run across span edges as in a plain encode, so a text whose literal spans hold no
// added-token text gives exactly the ids ds_tokenizer_encode gives. DS_EINVAL for spans out of
// order or out of range, as well as encode's errors.
ds_status ds_tokenizer_encode_spans(const ds_tokenizer *t, const char *text, size_t len,
                                    unsigned flags, const ds_text_span *literal,
                                    size_t n_literal, ds_tokens *out);

// The same into a caller buffer: writes min(n, cap) ids and sets *n_tokens to the full count
// n (so n > cap means the buffer was too small, as snprintf reports it).
ds_status ds_tokenizer_encode_buf(const ds_tokenizer *t, int32_t *ids, size_t cap,
                                  const char *text, size_t len, unsigned flags,
                                  size_t *n_tokens);

// ---- decode ----

// Writes the bytes of token `id` into buf (always NUL-terminated when cap > 0) and returns
// the full length; a result >= cap means the output was truncated. Added tokens of every type
// give their text; the bytes of one NORMAL token need not be valid UTF-8 on their own.
// Ids out of range give "" (0).
size_t ds_tokenizer_piece(const ds_tokenizer *t, int32_t id, char *buf, size_t cap);

// Appends the text of ids[0..n) to out as valid UTF-8 (invalid bytes become U+FFFD).
// DS_EINVAL (nothing appended) if an id is out of range.
ds_status ds_tokenizer_decode(const ds_tokenizer *t, const int32_t *ids, size_t n,
                              unsigned flags, ds_buf *out);

// Streaming decoder: feed ids one at a time as they are generated; every byte it appends is
// valid UTF-8, and a character split across tokens comes out once it is complete. Plain data:
// init it in place, no free needed. One stream per thread.
typedef struct ds_token_stream {
    const ds_tokenizer *tok;
    unsigned            flags;   // DS_DECODE_*
    uint8_t             held[4]; // start of an incomplete character
    int                 n_held;
} ds_token_stream;

void ds_token_stream_init(ds_token_stream *s, const ds_tokenizer *t, unsigned flags);
// Appends the complete text so far to out. DS_EINVAL (nothing appended) for an id out of range.
ds_status ds_token_stream_push(ds_token_stream *s, int32_t id, ds_buf *out);
// End of stream: held bytes that never completed a character become U+FFFD.
void ds_token_stream_flush(ds_token_stream *s, ds_buf *out);

// ---- conversion from Hugging Face files ----

// Options for ds_tokenizer_convert_hf.
typedef struct ds_tokenizer_convert_params {
    const char *tokenizer_json;   // path of tokenizer.json (required)
    const char *tokenizer_config; // path of tokenizer_config.json, or NULL
    const char *pre;              // pre-tokenizer name, or NULL to detect it from the regexes
    int64_t     pad_to;           // pad the vocabulary with [PAD<i>] UNUSED tokens to this size (0: no)
} ds_tokenizer_convert_params;

// Writes a vocab-only GGUF (tokenizer.ggml.* keys, chat template, no tensors) from a Hugging
// Face byte-level BPE tokenizer; the result is loaded once before it is written, so it passes
// ds_tokenizer_load. Added tokens marked special become CONTROL, the others USER_DEFINED.
// DS_EIO, DS_EFORMAT (malformed JSON, missing fields), DS_EUNSUPPORTED (not byte-level BPE, an
// unrecognised pre-tokenizer). The message names the file and the problem.
ds_status ds_tokenizer_convert_hf(const ds_tokenizer_convert_params *p, const char *out_path);
