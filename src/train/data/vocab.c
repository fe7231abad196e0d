// vocab.c - the byte-level BPE vocabulary of the arithmetic models.
//
// GPT-2 byte-level BPE (tokenizer.ggml.model "gpt2") with the deepseek-v3 pre-tokenizer, which
// cuts numbers into runs of at most three digits; no merge joins digits, so every digit stays
// one token (what makes column arithmetic learnable). Merges build whole words for the
// phrasings of data/tasks.c, each word as a chain (Ġ+a, Ġa+p, Ġap+p, ...), so questions and
// working take few tokens. Added tokens: the DeepSeek BOS/EOS (control, as in DeepSeek-V3's
// tokenizer), <｜User｜>, <｜Assistant｜>, <think>, </think> (user-defined, always split out).
#include <stdlib.h>
#include <string.h>

#include "../train_internal.h"
#include "ds/synth.h"
#include "ds/alloc.h"
#include "ds/gguf.h"

static const char *const words[] = {
    // questions
    "What", " is", " plus", " minus", " times", "Compute", "Add", " and", "Subtract", " from",
    "Multiply", " by", "Which", " larger", " number", " bigger", " or", " has", " buys", " more",
    " How", " many", " does", " he", " she", " have", " now", " had", " gave", " away", " are",
    " left", " boxes", " with", " in", " each", " box", " there", " total", " He", " She",
    " apples", " coins", " books", " marbles", " stickers", " pencils", "Tom", "Ann", "Sam", "Mia",
    "Ben", "Lily", " Tom", " Ann", " Sam", " Mia", " Ben", " Lily",
    // working
    " write", " carry", " borrow", " negative", " digits", " so", " add", " subtract", " multiply",
    " of", "so",
};

// GPT-2's byte -> code point map: printable bytes map to themselves, the rest to 256 + k.
static int byte_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int k = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) k++;
    return 256 + k;
}

static size_t put_utf8(char *o, int cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

// The byte-mapped form of text[0..n).
static char *mapped(const char *text, size_t n) {
    char  *o = ds_xmalloc(2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += put_utf8(o + k, byte_cp((unsigned char)text[i]));
    o[k] = '\0';
    return o;
}

typedef struct list {
    char  **s;
    size_t  n, cap;
} list;

static bool has(const list *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->s[i], s)) return true;
    return false;
}

static void push(list *l, char *s) { // takes s
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 512;
        l->s = ds_xrealloc(l->s, l->cap * sizeof *l->s);
    }
    l->s[l->n++] = s;
}

ds_status ds_train_write_vocab(const char *path) {
    list    tok = {0}, mer = {0};
    int32_t types[1024];
    push(&tok, ds_xstrdup(DS_TASK_BOS)), push(&tok, ds_xstrdup(DS_TASK_EOS));
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        push(&tok, mapped(&c, 1));
    }
    const char *added[] = {DS_TASK_USER, DS_TASK_ASSISTANT, "<think>", "</think>"};
    for (int i = 0; i < 4; i++) push(&tok, ds_xstrdup(added[i]));
    const size_t n_fixed = tok.n;
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        const size_t n = strlen(words[w]);
        for (size_t k = 2; k <= n; k++) { // prefix of k bytes = prefix of k-1 + byte k-1
            char *left = mapped(words[w], k - 1), *right = mapped(words[w] + k - 1, 1);
            char *full = mapped(words[w], k);
            if (!has(&tok, full)) {
                size_t ml = strlen(left) + strlen(right) + 2;
                char  *m = ds_xmalloc(ml);
                memcpy(m, left, strlen(left));
                m[strlen(left)] = ' ';
                memcpy(m + strlen(left) + 1, right, strlen(right) + 1);
                push(&mer, m);
                push(&tok, full);
            } else {
                free(full);
            }
            free(left), free(right);
        }
    }
    DS_ASSERT(tok.n <= sizeof types / sizeof types[0]);
    for (size_t i = 0; i < tok.n; i++)
        types[i] = i < 2 ? DS_TOKEN_CONTROL : i >= n_fixed - 4 && i < n_fixed ? DS_TOKEN_USER_DEFINED
                                                                                : DS_TOKEN_NORMAL;
    ds_gguf_writer *w = ds_gguf_writer_new();
    ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", "deepseek-v3");
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok.s, NULL, tok.n);
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_INT32, types, tok.n);
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mer.s, NULL, mer.n);
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 0);
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 1);
    ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    ds_gguf_writer_set_str(w, "tokenizer.chat_template", ds_synth_chat_template(DS_SYNTH_TEMPLATE_R1));
    ds_status st = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    for (size_t i = 0; i < tok.n; i++) free(tok.s[i]);
    for (size_t i = 0; i < mer.n; i++) free(mer.s[i]);
    free(tok.s), free(mer.s);
    return st;
}
