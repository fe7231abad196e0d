// bpe.c - byte-level BPE of one word.
//
// The word's bytes start as one symbol each (the token of the byte's mapped character; a byte
// without one is left out, as Hugging Face does without an unk token). Adjacent pairs with a
// merge go into a min-heap keyed by (rank, position of the left symbol); the best pair is
// merged and its new neighbours queued, until no pair is left (deepseek-gguf.md §6.6). Pairs
// are looked up by token id, never by text: vocab.c resolved every merge to
// (left id, right id) -> (rank, merged id) at load.
//
// A heap entry is stale when either symbol changed since it was queued; symbols only grow,
// so (left index, left id, right index, right id) identifies a pair exactly.
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "tok_internal.h"

typedef struct tok_sym {
    int32_t id;   // -1: merged away
    int32_t prev; // index of the previous live symbol, -1 at the start
    int32_t next; // index of the next live symbol, -1 at the end
} tok_sym;

typedef struct tok_cand {
    int32_t rank;
    int32_t left;  // symbol index
    int32_t right; // symbol index
    int32_t lid, rid, id; // ids when queued, and the merged id
} tok_cand;

static bool cand_less(const tok_cand *a, const tok_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(tok_cand *h, size_t *n, tok_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p])) break;
        h[i] = h[p];
        i    = p;
    }
    h[i] = c;
}

static tok_cand heap_pop(tok_cand *h, size_t *n) {
    tok_cand top  = h[0];
    tok_cand last = h[--(*n)];
    size_t   i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = l + 1 < m && cand_less(&h[l + 1], &h[l]) ? l + 1 : l;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i    = c;
    }
    if (m) h[i] = last;
    return top;
}

static void try_queue(const ds_tokenizer *t, const tok_sym *sym, int32_t l, tok_cand *h,
                      size_t *n) {
    if (l < 0) return;
    int32_t r = sym[l].next;
    if (r < 0) return;
    const tok_merge *m = tok_merge_find(t, sym[l].id, sym[r].id);
    if (!m) return;
    heap_push(h, n,
              (tok_cand){.rank = m->rank, .left = l, .right = r, .lid = sym[l].id,
                         .rid = sym[r].id, .id = m->id});
}

void tok_bpe_work_free(tok_bpe_work *w) {
    free(w->sym);
    free(w->heap);
    free(w->mapped);
    memset(w, 0, sizeof *w);
}

static void reserve(tok_bpe_work *w, size_t n) {
    if (n > w->sym_cap) {
        w->sym_cap  = n < 64 ? 64 : n;
        w->sym      = ds_xrealloc(w->sym, w->sym_cap * sizeof *w->sym);
        // each merge queues at most two pairs: n initial + 2n later bounds the heap
        w->heap_cap = 3 * w->sym_cap;
        w->heap     = ds_xrealloc(w->heap, w->heap_cap * sizeof *w->heap);
    }
}

// ignore_merges (llama3): the whole word in mapped form, if it is a token of the BPE model.
// Added tokens are not (Hugging Face keeps them out of model.vocab): they are matched before
// pre-tokenization or, in literal text, never.
static int32_t whole_word(const ds_tokenizer *t, tok_bpe_work *w, const uint8_t *word, size_t n) {
    if (n > DS_TOKEN_MAX_TEXT) return -1;
    if (2 * n > w->mapped_cap) {
        w->mapped_cap = 2 * n < 256 ? 256 : 2 * n;
        w->mapped     = ds_xrealloc(w->mapped, w->mapped_cap);
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)tok_utf8_encode(tok_byte_to_cp(word[i]), w->mapped + o);
    int32_t id = tok_map_find(t, w->mapped, o);
    if (id < 0) return -1;
    ds_token_type ty = (ds_token_type)t->type[id];
    return ty == DS_TOKEN_CONTROL || ty == DS_TOKEN_USER_DEFINED || ty == DS_TOKEN_UNKNOWN ? -1 : id;
}

ds_status tok_bpe_word(const ds_tokenizer *t, tok_bpe_work *w, const uint8_t *word, size_t n,
                       ds_tokens *out) {
    if (t->pre.ignore_merges) {
        int32_t id = whole_word(t, w, word, n);
        if (id >= 0) return tok_push(out, id);
    }
    if (n == 1) return t->byte_tok[word[0]] >= 0 ? tok_push(out, t->byte_tok[word[0]]) : DS_OK;
    reserve(w, n);
    tok_sym  *sym = w->sym;
    int32_t   ns  = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_tok[word[i]];
        if (id < 0) continue;
        sym[ns] = (tok_sym){.id = id, .prev = ns - 1, .next = ns + 1};
        ns++;
    }
    if (!ns) return DS_OK;
    sym[ns - 1].next = -1;
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < ns; i++) try_queue(t, sym, i, w->heap, &nh);
    while (nh) {
        tok_cand c = heap_pop(w->heap, &nh);
        if (sym[c.left].id != c.lid || sym[c.left].next != c.right || sym[c.right].id != c.rid)
            continue; // stale
        sym[c.left].id   = c.id;
        int32_t rn       = sym[c.right].next;
        sym[c.left].next = rn;
        if (rn >= 0) sym[rn].prev = c.left;
        sym[c.right].id = -1;
        try_queue(t, sym, sym[c.left].prev, w->heap, &nh);
        try_queue(t, sym, c.left, w->heap, &nh);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        ds_status st = tok_push(out, sym[i].id);
        if (st != DS_OK) return st;
    }
    return DS_OK;
}
