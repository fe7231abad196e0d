// synth_vocab.c - the tokenizer and metadata keys of a synthetic model.
//
// The vocabulary has the real size and the real special tokens at their real ids, so that
// chat prompts tokenize to the ids the real model would see for its special tokens, and the
// embedding and output matrices have the real shape. The ordinary tokens are made up:
//   - the 256 byte tokens, in GPT-2's byte-to-unicode mapped form (deepseek-gguf.md §6.5), so
//     any text tokenizes, byte by byte at worst;
//   - the tokens of a small merge list built from common English words, each merge joining a
//     prefix that is already a token with one more character (so every merge names existing
//     tokens and its result exists);
//   - unique syllable "words" up to the special tokens (never reachable by a merge, as in a
//     real vocabulary most tokens are rarely produced).
// Token types follow shared/testdata/vocab (converted from the real tokenizers): BOS/EOS and
// placeholders CONTROL, chat and think tokens USER_DEFINED, padding past the tokenizer UNUSED.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/synth.h"

enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5 };

// ---- chat templates ----

// The official DeepSeek-R1 / R1-Distill template (generation prompt "<｜Assistant｜><think>\n").
static const char template_r1[] =
    "{% if not add_generation_prompt is defined -%}\n"
    "  {%- set add_generation_prompt = false -%}\n"
    "{%- endif -%}\n"
    "{%- set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] == 'system' -%}\n"
    "    {%- set ns.system_prompt = message['content'] -%}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}{{bos_token}}{{ns.system_prompt}}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    "    {%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}\n"
    "  {%- endif -%}\n"
    "  {%- if message['role'] == 'assistant' and message['tool_calls'] -%}\n"
    "    {%- set ns.is_tool = false -%}\n"
    "    {%- for tool in message['tool_calls']-%}\n"
    "      {%- if not ns.is_first -%}\n"
    "        {{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] | tojson + '\\n' + '```' + '<｜tool▁call▁end｜>'}}\n"
    "        {%- set ns.is_first = true -%}\n"
    "      {%- else -%}\n"
    "        {{'\\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] | tojson + '\\n' + '```' + '<｜tool▁call▁end｜>'}}\n"
    "      {%- endif -%}\n"
    "    {%- endfor -%}\n"
    "    {{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}\n"
    "  {%- endif -%}\n"
    "  {%- if message['role'] == 'assistant' and message['content'] is not none -%}\n"
    "    {%- if ns.is_tool -%}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}\n"
    "      {%- set ns.is_tool = false -%}\n"
    "    {%- else -%}\n"
    "      {%- set content = message['content'] -%}\n"
    "      {%- if '</think>' in content -%}\n"
    "        {%- set content = content.split('</think>')[-1] -%}\n"
    "      {%- endif -%}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}\n"
    "    {%- endif -%}\n"
    "  {%- endif -%}\n"
    "  {%- if message['role'] == 'tool' -%}\n"
    "    {%- set ns.is_tool = true -%}\n"
    "    {%- if ns.is_output_first -%}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}\n"
    "      {%- set ns.is_output_first = false -%}\n"
    "      {%- else -%}{{'\\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}\n"
    "    {%- endif -%}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if ns.is_tool -%}{{'<｜tool▁outputs▁end｜>'}}\n"
    "{%- endif -%}\n"
    "{%- if add_generation_prompt and not ns.is_tool -%}{{'<｜Assistant｜><think>\\n'}}\n"
    "{%- endif %}";

// DeepSeek-V2(-Lite)-Chat (llama.cpp's built-in "deepseek2" format, deepseek-gguf.md §7.4).
static const char template_v2[] =
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

const char *ds_synth_chat_template(ds_synth_template t) {
    return t == DS_SYNTH_TEMPLATE_V2 ? template_v2 : template_r1;
}

// ---- special tokens per family ----

typedef struct special {
    int64_t     id; // < 0: counted from the end of the vocabulary (-1 = last id)
    const char *text;
    int         type;
} special;

#define BOS "<｜begin▁of▁sentence｜>"
#define EOS "<｜end▁of▁sentence｜>"

static const special tiny_specials[] = {
    {0, BOS, TT_CONTROL}, {1, EOS, TT_CONTROL},
    {-13, "<｜User｜>", TT_USER}, {-12, "<｜Assistant｜>", TT_USER},
    {-11, "<think>", TT_USER}, {-10, "</think>", TT_USER},
    {-9, "<｜tool▁calls▁begin｜>", TT_USER}, {-8, "<｜tool▁calls▁end｜>", TT_USER},
    {-7, "<｜tool▁call▁begin｜>", TT_USER}, {-6, "<｜tool▁call▁end｜>", TT_USER},
    {-5, "<｜tool▁sep｜>", TT_USER}, {-4, "<｜tool▁outputs▁begin｜>", TT_USER},
    {-3, "<｜tool▁outputs▁end｜>", TT_USER}, {-2, "<｜tool▁output▁begin｜>", TT_USER},
    {-1, "<｜tool▁output▁end｜>", TT_USER},
};

// DeepSeek-R1's ids (V3 has placeholders where R1 has <think> and </think>).
static const special dsv3_specials[] = {
    {0, BOS, TT_CONTROL}, {1, EOS, TT_CONTROL}, {2, "<｜▁pad▁｜>", TT_CONTROL},
    {128798, "<think>", TT_USER}, {128799, "</think>", TT_USER},
    {128800, "<｜fim▁hole｜>", TT_USER}, {128801, "<｜fim▁begin｜>", TT_USER},
    {128802, "<｜fim▁end｜>", TT_USER}, {128803, "<｜User｜>", TT_USER},
    {128804, "<｜Assistant｜>", TT_USER}, {128805, "<|EOT|>", TT_CONTROL},
    {128806, "<｜tool▁calls▁begin｜>", TT_USER}, {128807, "<｜tool▁calls▁end｜>", TT_USER},
    {128808, "<｜tool▁call▁begin｜>", TT_USER}, {128809, "<｜tool▁call▁end｜>", TT_USER},
    {128810, "<｜tool▁outputs▁begin｜>", TT_USER}, {128811, "<｜tool▁outputs▁end｜>", TT_USER},
    {128812, "<｜tool▁output▁begin｜>", TT_USER}, {128813, "<｜tool▁output▁end｜>", TT_USER},
    {128814, "<｜tool▁sep｜>", TT_USER},
};

// R1-Distill-Qwen: Qwen2.5's added tokens with DeepSeek's renamed into the first ids.
static const special qwen_specials[] = {
    {151643, EOS, TT_CONTROL}, {151644, "<｜User｜>", TT_USER},
    {151645, "<｜Assistant｜>", TT_USER}, {151646, BOS, TT_CONTROL},
    {151647, "<|EOT|>", TT_CONTROL}, {151648, "<think>", TT_USER}, {151649, "</think>", TT_USER},
    {151650, "<|quad_start|>", TT_CONTROL}, {151651, "<|quad_end|>", TT_CONTROL},
    {151652, "<|vision_start|>", TT_CONTROL}, {151653, "<|vision_end|>", TT_CONTROL},
    {151654, "<|vision_pad|>", TT_CONTROL}, {151655, "<|image_pad|>", TT_CONTROL},
    {151656, "<|video_pad|>", TT_CONTROL}, {151657, "<tool_call>", TT_USER},
    {151658, "</tool_call>", TT_USER}, {151659, "<|fim_prefix|>", TT_USER},
    {151660, "<|fim_middle|>", TT_USER}, {151661, "<|fim_suffix|>", TT_USER},
    {151662, "<|fim_pad|>", TT_USER}, {151663, "<|repo_name|>", TT_USER},
    {151664, "<|file_sep|>", TT_USER},
};

static const special dsllm_specials[] = {{100000, BOS, TT_CONTROL}, {100001, EOS, TT_CONTROL}};

typedef struct family {
    const special *specials;
    int            n_specials;
    int64_t        first_byte;   // id of the byte token for 0x00; the other 255 follow
    int64_t        ordinary_end; // ordinary tokens fill [first_byte + 256, ordinary_end)
    int64_t        pad_from;     // ids from here on are "[PADn]" UNUSED (0: none)
    int64_t        bos, eos, pad;
    int64_t        placeholders_from, placeholders_to; // CONTROL "<｜place▁holder▁no▁i｜>"
} family;

#define SPECIALS(a) (a), (int)(sizeof(a) / sizeof((a)[0]))

static family family_of(const ds_synth_shape *s) {
    switch (s->vocab) {
    case DS_SYNTH_VOCAB_DSV3:
        return (family){SPECIALS(dsv3_specials), 3, 128000, 128815, 0, 1, 1, 128000, 128798};
    case DS_SYNTH_VOCAB_QWEN:
        return (family){SPECIALS(qwen_specials), 0, 151643, 151665, 151646, 151643, 151643, 0, 0};
    case DS_SYNTH_VOCAB_DSLLM:
        return (family){SPECIALS(dsllm_specials), 0, 100000, 100002, 100000, 100001, 100001, 0, 0};
    case DS_SYNTH_VOCAB_TINY:
    default:
        return (family){SPECIALS(tiny_specials), 2, s->n_vocab - 13, 0, 0, 1, 1, 0, 0};
    }
}

// ---- ordinary tokens ----

// UTF-8 of GPT-2's printable stand-in for byte b (deepseek-gguf.md §6.5).
static size_t byte_token(int b, char out[4]) {
    unsigned cp;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        cp = (unsigned)b;
    } else {
        unsigned n = 0; // rank of b among the remapped bytes
        for (int c = 0; c < b; c++)
            if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

// Words whose spellings become merges, with and without a leading space ("Ġ").
static const char *const words[] = {
    "the", "and", "that", "have", "for", "not", "with", "you", "this", "but", "from", "they",
    "say", "her", "she", "will", "one", "all", "would", "there", "their", "what", "out",
    "about", "who", "get", "which", "when", "make", "can", "like", "time", "just", "him",
    "know", "take", "people", "into", "year", "your", "good", "some", "could", "them", "see",
    "other", "than", "then", "now", "look", "only", "come", "its", "over", "think", "also",
    "back", "after", "use", "two", "how", "our", "work", "first", "well", "way", "even", "new",
    "want", "because", "any", "these", "give", "day", "most", "is", "are", "was", "be", "it",
    "in", "of", "to", "on", "at", "as", "by", "or", "an", "if", "do", "so", "up", "my", "ing",
    "tion", "ed", "er", "es", "ly", "re", "al", "def", "return", "class", "import", "self",
    "true", "false", "null", "int", "char", "void", "static", "const", "struct", "answer",
    "question", "reason", "step", "let", "number", "model", "user", "assistant", "hello",
};

typedef struct vocab {
    char  **text;
    int32_t *type;
    int64_t n;
    char  **merges;
    int64_t n_merges, cap_merges;
} vocab;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct merger {
    vocab  *v;
    int64_t next, limit; // next free id, end of the ordinary range
    char  **known;       // sorted merge results so far, borrowed from v->text
    int64_t n_known;
} merger;

static bool is_known(const merger *m, const char *s) {
    return m->n_known > 0 && bsearch(&s, m->known, (size_t)m->n_known, sizeof *m->known, cmp_str);
}

// Adds merge "l r" and its result token l+r, unless the result exists or the range is full.
static void add_merge(merger *m, const char *l, const char *r) {
    char res[64], line[130];
    snprintf(res, sizeof res, "%s%s", l, r);
    if (m->next >= m->limit || is_known(m, res)) return;
    snprintf(line, sizeof line, "%s %s", l, r);
    vocab *v = m->v;
    if (v->n_merges == v->cap_merges) {
        v->cap_merges = v->cap_merges ? 2 * v->cap_merges : 256;
        v->merges     = ds_xrealloc(v->merges, (size_t)v->cap_merges * sizeof *v->merges);
    }
    v->merges[v->n_merges++] = ds_xstrdup(line);
    v->text[m->next]         = ds_xstrdup(res);
    v->type[m->next]         = TT_NORMAL;
    m->known = ds_xrealloc(m->known, (size_t)(m->n_known + 1) * sizeof *m->known);
    m->known[m->n_known++] = v->text[m->next++];
    qsort(m->known, (size_t)m->n_known, sizeof *m->known, cmp_str);
}

// Adds the merges that spell the ASCII word `w`, one letter at a time, optionally after "Ġ"
// (a leading space), so each merge joins an existing token with one more character.
static void add_word(merger *m, const char *w, bool space) {
    char   prefix[40];
    size_t len = 0;
    if (space) prefix[len++] = '\xC4', prefix[len++] = '\xA0';
    else prefix[len++] = *w++;
    prefix[len] = '\0';
    for (; *w && len + 1 < sizeof prefix; w++) {
        char c[2] = {*w, '\0'};
        add_merge(m, prefix, c);
        prefix[len++] = *w;
        prefix[len]   = '\0';
    }
}

// Unique filler k: optional "Ġ", then at least two consonant+vowel syllables (k's digits in
// base 90, least significant first; unambiguous because every syllable is two letters).
static void filler(uint64_t k, char *out, size_t cap) {
    static const char cons[] = "bcdfghjklmnprstvwz", vow[] = "aeiou";
    size_t   len = 0;
    uint64_t m   = (k >> 1) + 90;
    if (!(k & 1)) out[len++] = '\xC4', out[len++] = '\xA0';
    while (m && len + 3 < cap) {
        unsigned d = (unsigned)(m % 90);
        out[len++] = cons[d / 5];
        out[len++] = vow[d % 5];
        m /= 90;
    }
    out[len] = '\0';
}

static void vocab_free(vocab *v) {
    for (int64_t i = 0; i < v->n; i++) free(v->text[i]);
    for (int64_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->text);
    free(v->type);
    free(v->merges);
}

static void vocab_build(const ds_synth_shape *s, const family *f, vocab *v) {
    memset(v, 0, sizeof *v);
    v->n    = s->n_vocab;
    v->text = ds_xcalloc((size_t)v->n, sizeof *v->text);
    v->type = ds_xcalloc((size_t)v->n, sizeof *v->type);
    char buf[96];
    for (int i = 0; i < f->n_specials; i++) {
        int64_t id = f->specials[i].id < 0 ? v->n + f->specials[i].id : f->specials[i].id;
        DS_ASSERT(id >= 0 && id < v->n && !v->text[id]);
        v->text[id] = ds_xstrdup(f->specials[i].text);
        v->type[id] = f->specials[i].type;
    }
    for (int64_t id = f->placeholders_from; id < f->placeholders_to; id++) {
        snprintf(buf, sizeof buf, "<｜place▁holder▁no▁%lld｜>", (long long)(id - f->placeholders_from));
        v->text[id] = ds_xstrdup(buf);
        v->type[id] = TT_CONTROL;
    }
    for (int64_t id = f->pad_from ? f->pad_from : v->n; id < v->n; id++) {
        snprintf(buf, sizeof buf, "[PAD%lld]", (long long)id);
        v->text[id] = ds_xstrdup(buf);
        v->type[id] = TT_UNUSED;
    }
    for (int b = 0; b < 256; b++) {
        size_t n = byte_token(b, buf);
        v->text[f->first_byte + b] = ds_xstrndup(buf, n);
        v->type[f->first_byte + b] = TT_NORMAL;
    }

    merger m = {.v = v, .next = f->first_byte + 256, .limit = f->ordinary_end};
    add_merge(&m, "\xC4\xA0", "\xC4\xA0");                 // "Ġ Ġ"
    add_merge(&m, "\xC4\xA0\xC4\xA0", "\xC4\xA0\xC4\xA0"); // "ĠĠ ĠĠ"
    add_merge(&m, "\xC4\x8A", "\xC4\x8A");                 // "Ċ Ċ"
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        add_word(&m, words[i], true);
        add_word(&m, words[i], false);
    }
    for (uint64_t k = 0; m.next < f->ordinary_end; k++) {
        filler(k, buf, sizeof buf);
        if (is_known(&m, buf)) continue;
        v->text[m.next]   = ds_xstrdup(buf);
        v->type[m.next++] = TT_NORMAL;
    }
    free(m.known);
    for (int64_t id = 0; id < v->n; id++) DS_ASSERT(v->text[id] != NULL);
}

static void add_tokenizer(ds_gguf_writer *w, const ds_synth_shape *s) {
    family f = family_of(s);
    vocab  v;
    vocab_build(s, &f, &v);
    ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", s->pre);
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text, NULL,
                               (uint64_t)v.n);
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_INT32, v.type, (uint64_t)v.n);
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges, NULL,
                               (uint64_t)v.n_merges);
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)f.bos);
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)f.eos);
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)f.pad);
    ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    ds_gguf_writer_set_str(w, "tokenizer.chat_template", ds_synth_chat_template(s->chat_template));
    vocab_free(&v);
}

// ---- model keys ----

// "{arch}.suffix" keys with the stored types llama.cpp's converter uses.
static void key_u32(ds_gguf_writer *w, const char *arch, const char *suffix, int64_t v) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    ds_gguf_writer_set_u32(w, key, (uint32_t)v);
}

static void key_f32(ds_gguf_writer *w, const char *arch, const char *suffix, float v) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    ds_gguf_writer_set_f32(w, key, v);
}

// Keys of deepseek-gguf.md §2.2, as conversion/deepseek.py writes them (new MLA layout unless
// the shape asks for the legacy one).
static void add_deepseek2_keys(ds_gguf_writer *w, const ds_synth_shape *s) {
    const char *a      = s->arch;
    bool        moe    = s->n_routed_experts > 0;
    int64_t     nope_r = s->qk_nope_head_dim + s->qk_rope_head_dim;
    key_u32(w, a, "attention.head_count_kv", s->mla_split ? 1 : s->n_heads);
    if (moe) {
        key_u32(w, a, "expert_count", s->n_routed_experts);
        key_u32(w, a, "expert_used_count", s->n_activated_experts);
    }
    if (s->n_expert_groups > 0) {
        key_u32(w, a, "expert_group_count", s->n_expert_groups);
        key_u32(w, a, "expert_group_used_count", s->n_limited_groups);
    }
    if (s->score_func > 0) key_u32(w, a, "expert_gating_func", s->score_func);
    key_u32(w, a, "leading_dense_block_count", s->n_dense_layers);
    key_u32(w, a, "vocab_size", s->n_vocab);
    // llama.cpp reads q_lora_rank unless the layer count says "lite" (26 or 27 blocks), so a
    // Q-LoRA-less model of another depth needs an explicit 0 (as the shared tiny model has).
    if (s->q_lora_rank > 0 || (s->n_layers != 26 && s->n_layers != 27))
        key_u32(w, a, "attention.q_lora_rank", s->q_lora_rank);
    key_u32(w, a, "attention.kv_lora_rank", s->kv_lora_rank);
    if (s->mla_split) {
        key_u32(w, a, "attention.key_length", s->kv_lora_rank + s->qk_rope_head_dim);
        key_u32(w, a, "attention.value_length", s->kv_lora_rank);
        key_u32(w, a, "attention.key_length_mla", nope_r);
        key_u32(w, a, "attention.value_length_mla", s->v_head_dim);
    } else {
        key_u32(w, a, "attention.key_length", nope_r);
        key_u32(w, a, "attention.value_length", s->v_head_dim);
    }
    key_u32(w, a, "expert_feed_forward_length", s->moe_inter_dim);
    key_u32(w, a, "expert_shared_count", s->n_shared_experts);
    if (s->route_scale != 0.0f) key_f32(w, a, "expert_weights_scale", s->route_scale);
    if (s->norm_topk_prob) {
        char key[96];
        snprintf(key, sizeof key, "%s.expert_weights_norm", a);
        ds_gguf_writer_set_bool(w, key, true);
    }
    key_u32(w, a, "rope.dimension_count", s->qk_rope_head_dim);
}

static void add_rope_scaling(ds_gguf_writer *w, const ds_synth_shape *s) {
    if (s->rope_factor == 0.0f) return;
    char key[96];
    snprintf(key, sizeof key, "%s.rope.scaling.type", s->arch);
    ds_gguf_writer_set_str(w, key, "yarn");
    key_f32(w, s->arch, "rope.scaling.factor", s->rope_factor);
    key_u32(w, s->arch, "rope.scaling.original_context_length", s->original_seq_len);
    if (s->yarn_betas) {
        key_f32(w, s->arch, "rope.scaling.yarn_beta_fast", 32.0f);
        key_f32(w, s->arch, "rope.scaling.yarn_beta_slow", 1.0f);
    }
    if (s->yarn_log_mul != 0.0f) key_f32(w, s->arch, "rope.scaling.yarn_log_multiplier", s->yarn_log_mul);
}

void ds_synth_add_metadata(ds_gguf_writer *w, const ds_synth_plan *plan) {
    const ds_synth_shape *s = &plan->shape;
    const char           *a = s->arch;
    bool                  ds2 = !strcmp(a, "deepseek2");
    ds_gguf_writer_set_str(w, "general.architecture", a);
    ds_gguf_writer_set_str(w, "general.type", "model");
    ds_gguf_writer_set_str(w, "general.name", s->model_name);
    key_u32(w, a, "block_count", s->n_layers);
    key_u32(w, a, "context_length", s->n_ctx_train);
    key_u32(w, a, "embedding_length", s->dim);
    key_u32(w, a, "feed_forward_length", s->inter_dim);
    key_u32(w, a, "attention.head_count", s->n_heads);
    if (!ds2) key_u32(w, a, "attention.head_count_kv", s->n_kv_heads);
    key_f32(w, a, "rope.freq_base", s->rope_theta);
    key_f32(w, a, "attention.layer_norm_rms_epsilon", s->norm_eps);
    add_rope_scaling(w, s);
    if (ds2) {
        add_deepseek2_keys(w, s);
    } else {
        // The shared tiny models carry rope.dimension_count for qwen2 too; it equals the head
        // dim, which is what llama.cpp assumes without it.
        key_u32(w, a, "rope.dimension_count", s->head_dim);
        if (!strcmp(a, "llama")) key_u32(w, a, "vocab_size", s->n_vocab);
    }
    ds_gguf_writer_set_u32(w, "general.file_type", ds_mix_file_type(plan->mix));
    ds_gguf_writer_set_u32(w, "general.quantization_version", 2);
    add_tokenizer(w, s);
}
