// engine.c - loading, the request queue, slots and the scheduler thread.
//
// One scheduler thread owns the model, the KV cache and every slot; other threads only touch
// the queue (under `mu`) and a request's atomic cancel flag. A turn of the scheduler:
//   1. drops cancelled or timed-out requests (queued ones included) and frees their slots;
//   2. admits queued requests into free slots, reusing the longest cached prefix;
//   3. runs one prefill chunk per slot still reading its prompt (a chunk, not the whole
//      prompt, so that other slots keep streaming while a long prompt is read);
//   4. runs one decode step for every generating slot (decode_batch) and samples each.
// A slot keeps its KV rows when its request ends; they stay reusable as a prefix until the
// slot is given to a prompt that shares less of them.
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "engine_internal.h"

ds_engine_params ds_engine_params_default(void) {
    return (ds_engine_params){.n_ctx          = 0,
                              .n_slots        = 4,
                              .n_threads      = 1,
                              .max_queue      = 64,
                              .max_tokens     = 4096,
                              .prefill_chunk  = 128,
                              .cache_dir      = NULL,
                              .disk_max_files = 64,
                              .chat_format    = DS_CHAT_FORMAT_COUNT};
}

ds_gen_params ds_gen_params_default(void) {
    return (ds_gen_params){.max_tokens = 0, .temperature = 1.0f, .top_p = 1.0f,
                           .tool_choice = DS_TOOL_CHOICE_AUTO, .think = DS_THINK_DEFAULT};
}

const char *ds_finish_reason_name(ds_finish_reason r) {
    switch (r) {
    case DS_FINISH_STOP: return "stop";
    case DS_FINISH_LENGTH: return "length";
    case DS_FINISH_TOOL_CALLS: return "tool_calls";
    case DS_FINISH_CANCELLED: return "cancelled";
    }
    return "unknown";
}

double engine_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// ---- load ----

static void *scheduler(void *arg);

static void model_name(char *out, size_t cap, const char *path) {
    const char *base = strrchr(path, '/');
    base             = base ? base + 1 : path;
    size_t n         = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
    if (n >= cap) n = cap - 1;
    memcpy(out, base, n);
    out[n] = 0;
}

static ds_status check_params(const ds_engine_params *p) {
    if (!p->model_path) return ds_fail(DS_EINVAL, "engine: no model path");
    if (p->n_slots < 1 || p->n_slots > 256)
        return ds_fail(DS_EINVAL, "engine: slots must be 1..256 (got %d)", p->n_slots);
    if (p->n_threads < 1 || p->n_threads > 256)
        return ds_fail(DS_EINVAL, "engine: threads must be 1..256 (got %d)", p->n_threads);
    if (p->n_ctx < 0 || p->n_ctx > DS_HPARAMS_MAX_CTX)
        return ds_fail(DS_EINVAL, "engine: bad context size %d", p->n_ctx);
    if (p->max_queue < 0 || p->max_tokens < 1 || p->prefill_chunk < 1)
        return ds_fail(DS_EINVAL, "engine: bad queue, max_tokens or prefill chunk");
    return DS_OK;
}

ds_status ds_engine_new(const ds_engine_params *p, ds_engine **out) {
    *out         = NULL;
    ds_status st = check_params(p);
    if (st) return st;
    ds_engine *e = ds_xcalloc(1, sizeof *e);
    e->p         = *p;
    e->p.cache_dir = NULL;
    model_name(e->name, sizeof e->name, p->model_path);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_cond_init(&e->idle, NULL);

    if ((st = ds_gguf_open(p->model_path, &e->gguf))) goto fail;
    // The fast kernels (DS_KERNELS=ref: the reference), never ggml_numerics: a token's logits
    // then do not depend on how its prompt was cut into batches (activations are rounded per
    // token row, attention per query), so a prefix-cache hit gives the same tokens as a cold run.
    ds_model_params mp = ds_model_params_fast(p->n_threads);
    mp.ggml_numerics   = false;
    if ((st = ds_model_load(e->gguf, &mp, &e->model))) goto fail;
    if ((st = ds_tokenizer_load(e->gguf, &e->tok))) goto fail;
    e->format = p->chat_format;
    if (e->format == DS_CHAT_FORMAT_COUNT && (st = ds_chat_detect(e->gguf, e->tok, &e->format)))
        goto fail;
    const ds_hparams *hp = ds_model_hparams(e->model);
    e->n_ctx = p->n_ctx ? p->n_ctx : (int)(hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (e->n_ctx < 8) {
        st = ds_fail(DS_EINVAL, "engine: context of %d tokens is too small", e->n_ctx);
        goto fail;
    }
    e->n_vocab      = ds_model_n_vocab(e->model);
    ds_kv_params kp = ds_model_kv_params(e->model, e->n_ctx, p->n_slots, DS_TYPE_F16);
    if ((st = ds_kv_cache_new(&kp, &e->kv))) goto fail;
    e->logits = calloc((size_t)p->n_slots * (size_t)e->n_vocab, sizeof(float));
    if (!e->logits) {
        st = ds_fail(DS_ENOMEM, "engine: out of memory for %d slots", p->n_slots);
        goto fail;
    }
    e->b_seq = ds_xcalloc((size_t)p->n_slots, sizeof *e->b_seq);
    e->b_tok = ds_xcalloc((size_t)p->n_slots, sizeof *e->b_tok);
    e->slots = ds_xcalloc((size_t)p->n_slots, sizeof *e->slots);
    for (int i = 0; i < p->n_slots; i++) e->slots[i].id = i;
    e->st.n_slots   = p->n_slots;
    e->st.queue_max = p->max_queue;
    if (p->cache_dir) {
        e->p.cache_dir = p->cache_dir;
        if (disk_cache_open(&e->disk, p->cache_dir, model_fingerprint(e->gguf), e->kv,
                            p->disk_max_files, &e->st)) {
            ds_log(DS_LOG_WARN, "engine: disk cache off: %s", ds_errmsg());
            e->p.cache_dir = NULL;
        }
    }
    if (pthread_create(&e->thread, NULL, scheduler, e)) {
        st = ds_fail(DS_ENOMEM, "engine: cannot start the scheduler thread");
        goto fail;
    }
    *out = e;
    return DS_OK;
fail:
    e->thread = 0;
    e->stop   = true;
    ds_engine_free(e);
    return st;
}

// ---- queries ----

const ds_tokenizer *ds_engine_tokenizer(const ds_engine *e) { return e->tok; }
ds_chat_format      ds_engine_chat_format(const ds_engine *e) { return e->format; }
const char         *ds_engine_model_name(const ds_engine *e) { return e->name; }
int                 ds_engine_n_ctx(const ds_engine *e) { return e->n_ctx; }
int                 ds_engine_n_vocab(const ds_engine *e) { return e->n_vocab; }
int                 ds_engine_max_tokens(const ds_engine *e) { return e->p.max_tokens; }

bool ds_engine_draining(const ds_engine *e) {
    ds_engine *m = (ds_engine *)e; // the lock is not part of the observable state
    pthread_mutex_lock(&m->mu);
    bool d = m->draining;
    pthread_mutex_unlock(&m->mu);
    return d;
}

void ds_engine_get_stats(ds_engine *e, ds_engine_stats *out) {
    pthread_mutex_lock(&e->mu);
    *out            = e->st;
    out->slots_busy = e->n_active;
    out->queue_len  = e->n_waiting;
    pthread_mutex_unlock(&e->mu);
}

// ---- requests ----

static void request_free(ds_engine_request *r) {
    for (int i = 0; i < DS_ENGINE_MAX_STOP; i++) free(r->stop[i]);
    free(r->tool_name);
    free((char *)r->p.tools_json);
    ds_tokens_free(&r->prompt);
    free(r->prompt_text);
    ds_buf_free(&r->tools);
    ds_tokens_free(&r->forced);
    ds_sampler_free(r->smp);
    ds_stop_free(r->stops);
    free(r);
}

void engine_request_unref(ds_engine_request *r) {
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) request_free(r);
}

void ds_engine_request_release(ds_engine_request *r) {
    if (!r) return;
    ds_engine_cancel(r);
    engine_request_unref(r);
}

void ds_engine_cancel(ds_engine_request *r) {
    if (!r) return;
    atomic_store(&r->cancel, true);
    pthread_mutex_lock(&r->e->mu);
    pthread_cond_signal(&r->e->wake);
    pthread_mutex_unlock(&r->e->mu);
}

int ds_engine_request_prompt_tokens(const ds_engine_request *r) { return (int)r->prompt.n; }

// The prompt text of a request. Chat: the family's template, with thinking switched as asked;
// an always-thinking family asked for no thinking gets an empty thinking block pre-filled,
// the way R1's model card describes skipping it. `content` gets the ranges that came from the
// messages, which are tokenized as plain text.
static ds_status render(ds_engine *e, const ds_engine_input *in, const ds_gen_params *p,
                        ds_buf *out, ds_chat_spans *content) {
    if (!in->messages) {
        ds_buf_append(out, in->prompt ? in->prompt : "", in->prompt ? in->prompt_len : 0);
        return DS_OK;
    }
    if (p->think == DS_THINK_ON && !ds_chat_format_can_think(e->format))
        return ds_fail(DS_EINVAL, "chat format %s has no thinking mode: thinking cannot be "
                                  "switched on", ds_chat_format_name(e->format));
    ds_chat_params cp = ds_chat_params_default();
    bool switchable   = ds_chat_format_has_think_switch(e->format);
    cp.think          = switchable ? p->think : DS_THINK_DEFAULT;
    if (p->tool_choice != DS_TOOL_CHOICE_NONE) cp.tools_json = p->tools_json;
    ds_status st = ds_chat_render_spans(e->format, in->messages, &cp, out, content);
    if (st) return st;
    if (!switchable && p->think == DS_THINK_OFF && out->len >= 8 &&
        !memcmp(out->data + out->len - 8, "<think>\n", 8))
        ds_buf_puts(out, "\n</think>\n\n");
    return DS_OK;
}

static ds_status check_gen(const ds_gen_params *p) {
    if (p->n_stop < 0 || p->n_stop > DS_ENGINE_MAX_STOP)
        return ds_fail(DS_EINVAL, "at most %d stop sequences", DS_ENGINE_MAX_STOP);
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !*p->stop[i] || strlen(p->stop[i]) > DS_ENGINE_MAX_STOP_LEN)
            return ds_fail(DS_EINVAL, "stop sequence %d is empty or longer than %d bytes", i,
                           DS_ENGINE_MAX_STOP_LEN);
    if (p->top_logprobs < 0 || p->top_logprobs > DS_ENGINE_MAX_TOP_LOGPROBS)
        return ds_fail(DS_EINVAL, "top_logprobs must be 0..%d", DS_ENGINE_MAX_TOP_LOGPROBS);
    if (!(p->temperature >= 0 && p->temperature <= 2) || !(p->top_p > 0 && p->top_p <= 1))
        return ds_fail(DS_EINVAL, "temperature must be 0..2 and top_p in (0, 1]");
    if (!(fabsf(p->frequency_penalty) <= 2) || !(fabsf(p->presence_penalty) <= 2))
        return ds_fail(DS_EINVAL, "frequency and presence penalties must be in [-2, 2]");
    if (p->tool_choice == DS_TOOL_CHOICE_NAMED && (!p->tool_name || !*p->tool_name))
        return ds_fail(DS_EINVAL, "tool_choice names no function");
    return DS_OK;
}

static ds_status build_request(ds_engine *e, const ds_engine_input *in, const ds_gen_params *p,
                               ds_engine_request *r) {
    ds_status st = check_gen(p);
    if (st) return st;
    r->p   = *p;
    r->raw = !in->messages;
    for (int i = 0; i < p->n_stop; i++) r->stop[i] = ds_xstrdup(p->stop[i]);
    for (int i = 0; i < DS_ENGINE_MAX_STOP; i++) r->p.stop[i] = r->stop[i];
    r->tool_name    = p->tool_name ? ds_xstrdup(p->tool_name) : NULL;
    r->p.tool_name  = r->tool_name;
    r->p.tools_json = p->tools_json ? ds_xstrdup(p->tools_json) : NULL;
    ds_buf        text    = {0};
    ds_chat_spans content = {0};
    st                    = render(e, in, p, &text, &content);
    if (!st) // a raw prompt is the caller's own text, special tokens and all
        st = ds_chat_encode(e->tok, text.data ? text.data : "", text.len, &content,
                            in->messages ? 0 : DS_ENCODE_ADD_BOS, &r->prompt);
    ds_chat_spans_free(&content);
    r->prompt_text     = text.data ? text.data : ds_xstrdup("");
    r->prompt_text_len = text.len;
    if (st) return st;
    if (r->prompt.n == 0) return ds_fail(DS_EINVAL, "the prompt is empty");
    if (r->prompt.n >= (size_t)e->n_ctx)
        return ds_fail(DS_EINVAL,
                       "the prompt is %zu tokens but the context holds %d per request (%zu "
                       "tokens too many, at least one must be left for the reply)",
                       r->prompt.n, e->n_ctx, r->prompt.n - (size_t)e->n_ctx + 1);
    int room    = e->n_ctx - (int)r->prompt.n;
    int cap     = p->max_tokens > 0 && p->max_tokens < e->p.max_tokens ? p->max_tokens
                                                                        : e->p.max_tokens;
    r->max_gen  = cap < room ? cap : room;
    r->deadline = p->timeout_s > 0 ? engine_now() + p->timeout_s : 0;
    r->constrained = p->json_object || (p->tools_json && (p->tool_choice == DS_TOOL_CHOICE_REQUIRED ||
                                                          p->tool_choice == DS_TOOL_CHOICE_NAMED));
    return DS_OK;
}

ds_status ds_engine_submit(ds_engine *e, const ds_engine_input *in, const ds_gen_params *p,
                           ds_engine_cb cb, void *ud, ds_engine_request **out) {
    *out                 = NULL;
    ds_engine_request *r = ds_xcalloc(1, sizeof *r);
    atomic_init(&r->refs, 2);
    atomic_init(&r->cancel, false);
    r->e         = e;
    r->cb        = cb;
    r->ud        = ud;
    ds_status st = build_request(e, in, p, r);
    if (st) {
        request_free(r);
        return st;
    }
    pthread_mutex_lock(&e->mu);
    if (e->draining || e->stop) {
        st = ds_fail(DS_EUNSUPPORTED, "the server is shutting down");
    } else if (e->n_waiting + e->n_active >= e->p.n_slots + e->p.max_queue) {
        st = ds_fail(DS_EUNSUPPORTED, "all %d slots are busy and %d requests are queued; retry "
                                      "later", e->p.n_slots, e->n_waiting);
    }
    if (st) {
        e->st.requests_refused++;
        pthread_mutex_unlock(&e->mu);
        request_free(r);
        return st;
    }
    if (e->q_tail) e->q_tail->next = r;
    else e->q_head = r;
    e->q_tail = r;
    e->n_waiting++;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
    *out = r;
    return DS_OK;
}

// ---- scheduler: admission and the prefix cache ----

size_t tokens_lcp(const ds_tokens *a, const int32_t *b, size_t n) {
    size_t i = 0;
    while (i < a->n && i < n && a->ids[i] == b[i]) i++;
    return i;
}

// Copies rows [0, n) of sequence `from` into sequence `to`.
static void copy_rows(ds_engine *e, int from, int to, size_t n) {
    const ds_kv_params *kp = ds_kv_cache_params(e->kv);
    int                 w  = kp->k_width > kp->v_width ? kp->k_width : kp->v_width;
    float              *row = ds_xmalloc((size_t)w * sizeof(float));
    for (int l = 0; l < kp->n_layers; l++)
        for (size_t i = 0; i < n; i++) {
            ds_kv_cache_load(e->kv, from, l, DS_KV_K, (int)i, 1, row);
            ds_kv_cache_store(e->kv, to, l, DS_KV_K, (int)i, row);
            if (kp->v_width) {
                ds_kv_cache_load(e->kv, from, l, DS_KV_V, (int)i, 1, row);
                ds_kv_cache_store(e->kv, to, l, DS_KV_V, (int)i, row);
            }
        }
    free(row);
}

static void slot_release(ds_engine *e, engine_slot *s);

// Gives request r a free slot: the one whose cache shares the longest prefix with its prompt,
// else the least recently used. Rows of a busier slot or of a disk entry are copied in when
// they share more. At least the last prompt token is always evaluated (its logits are needed).
static void admit(ds_engine *e, ds_engine_request *r) {
    const int32_t *ids = r->prompt.ids;
    size_t         n   = r->prompt.n;
    engine_slot   *best_free = NULL;
    size_t         best_free_lcp = 0;
    int            src = -1;
    size_t         src_lcp = 0;
    for (int i = 0; i < e->p.n_slots; i++) {
        engine_slot *s   = &e->slots[i];
        size_t       lcp = tokens_lcp(&s->cached, ids, n);
        if (s->state == SLOT_FREE &&
            (!best_free || lcp > best_free_lcp ||
             (lcp == best_free_lcp && s->last_used < best_free->last_used))) {
            best_free     = s;
            best_free_lcp = lcp;
        }
        if (lcp > src_lcp) {
            src     = i;
            src_lcp = lcp;
        }
    }
    engine_slot *s     = best_free;
    size_t       reuse = best_free_lcp;
    if (src >= 0 && src != s->id && src_lcp > reuse) {
        copy_rows(e, src, s->id, src_lcp);
        s->cached.n = 0;
        for (size_t i = 0; i < src_lcp; i++) {
            if (s->cached.n == s->cached.cap) {
                s->cached.cap = s->cached.cap ? 2 * s->cached.cap : 256;
                s->cached.ids = ds_xrealloc(s->cached.ids, s->cached.cap * sizeof(int32_t));
            }
            s->cached.ids[s->cached.n++] = ids[i];
        }
        reuse = src_lcp;
    }
    if (e->p.cache_dir) {
        size_t            dlcp = 0;
        const disk_entry *d    = disk_cache_best(&e->disk, ids, n, &dlcp);
        if (dlcp > n - 1) dlcp = n - 1;
        if (d && dlcp > reuse + 16 && disk_cache_load(&e->disk, d, e->kv, s->id, dlcp, &e->st)) {
            s->cached.n = 0;
            for (size_t i = 0; i < dlcp; i++) {
                if (s->cached.n == s->cached.cap) {
                    s->cached.cap = s->cached.cap ? 2 * s->cached.cap : 256;
                    s->cached.ids = ds_xrealloc(s->cached.ids, s->cached.cap * sizeof(int32_t));
                }
                s->cached.ids[s->cached.n++] = ids[i];
            }
            reuse = dlcp;
        }
    }
    if (reuse > n - 1) reuse = n - 1;
    s->cached.n = reuse;
    ds_kv_cache_seq_set_len(e->kv, s->id, (int)reuse);
    s->req       = r;
    s->state     = SLOT_PREFILL;
    s->n_past    = (int)reuse;
    s->last_used = ++e->clock;
    r->cache_hit = (int)reuse;
    if (!gen_begin(e, r)) slot_release(e, s);
}

// ---- scheduler: one turn ----

static void slot_release(ds_engine *e, engine_slot *s) {
    s->req   = NULL;
    s->state = SLOT_FREE;
    pthread_mutex_lock(&e->mu);
    e->n_active--;
    pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->mu);
}

static void append_cached(engine_slot *s, const int32_t *ids, int n) {
    if (s->cached.n + (size_t)n > s->cached.cap) {
        size_t cap = s->cached.cap ? s->cached.cap : 256;
        while (cap < s->cached.n + (size_t)n) cap *= 2;
        s->cached.ids = ds_xrealloc(s->cached.ids, cap * sizeof(int32_t));
        s->cached.cap = cap;
    }
    memcpy(s->cached.ids + s->cached.n, ids, (size_t)n * sizeof(int32_t));
    s->cached.n += (size_t)n;
}

// Ends the slot's request if it was cancelled or ran out of time. True when it ended.
static bool check_stop(ds_engine *e, engine_slot *s) {
    ds_engine_request *r = s->req;
    if (atomic_load(&r->cancel)) {
        gen_finish(e, r, DS_FINISH_CANCELLED);
    } else if (r->deadline && engine_now() > r->deadline) {
        ds_log(DS_LOG_WARN, "engine: request timed out after %.0f s", r->p.timeout_s);
        gen_finish(e, r, DS_FINISH_LENGTH);
    } else {
        return false;
    }
    slot_release(e, s);
    return true;
}

// A forward call failed: the request gets an error, the slot's cache is forgotten.
static void slot_fail(ds_engine *e, engine_slot *s) {
    gen_error(e, s->req, ds_errmsg());
    s->cached.n = 0;
    ds_kv_cache_seq_set_len(e->kv, s->id, 0);
    slot_release(e, s);
}

// The first token: sampled right after the last prompt chunk.
static void after_logits(ds_engine *e, engine_slot *s, float *logits) {
    int32_t next = gen_step(e, s->req, logits);
    if (next < 0) {
        slot_release(e, s);
        return;
    }
    s->next  = next;
    s->state = SLOT_DECODE;
}

static void prefill(ds_engine *e, engine_slot *s) {
    ds_engine_request *r    = s->req;
    int                left = (int)r->prompt.n - s->n_past;
    int                n    = left < e->p.prefill_chunk ? left : e->p.prefill_chunk;
    float             *lg   = e->logits + (size_t)s->id * (size_t)e->n_vocab;
    if (ds_model_forward(e->model, e->kv, s->id, r->prompt.ids + s->n_past, n, false, lg)) {
        slot_fail(e, s);
        return;
    }
    append_cached(s, r->prompt.ids + s->n_past, n);
    s->n_past += n;
    if (s->n_past < (int)r->prompt.n) return;
    if (e->p.cache_dir && r->prompt.n - (size_t)r->cache_hit >= DS_ENGINE_DISK_MIN_TOKENS)
        disk_cache_save(&e->disk, e->kv, s->id, r->prompt.ids, r->prompt.n, &e->st);
    after_logits(e, s, lg);
}

// One decode step for every slot in `batch`. This is the place where a forward pass over
// several sequences at once will go; for now each sequence is one forward call.
// One ds_model_forward_seqs call for all generating slots, so each weight matrix the fast
// path batches is read once per turn rather than once per slot.
static void decode_batch(ds_engine *e, engine_slot **batch, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        engine_slot *s = batch[i];
        if (ds_kv_cache_seq_len(e->kv, s->id) >= e->n_ctx) {
            gen_finish(e, s->req, DS_FINISH_LENGTH);
            slot_release(e, s);
            continue;
        }
        batch[k]   = s;
        e->b_seq[k] = s->id;
        e->b_tok[k] = s->next;
        k++;
    }
    if (k > 0 && ds_model_forward_seqs(e->model, e->kv, e->b_seq, e->b_tok, k, e->logits)) {
        for (int i = 0; i < k; i++) slot_fail(e, batch[i]);
        k = 0;
    }
    for (int i = 0; i < k; i++) {
        append_cached(batch[i], &e->b_tok[i], 1);
        after_logits(e, batch[i], e->logits + (size_t)i * (size_t)e->n_vocab);
    }
    e->st.decode_steps++;
    e->st.decode_slot_tokens += (uint64_t)n;
}

// Queued requests that were cancelled before they got a slot.
static void drop_cancelled_queued(ds_engine *e) {
    ds_engine_request *dead = NULL, **pp = &e->q_head;
    e->q_tail = NULL;
    while (*pp) {
        ds_engine_request *r = *pp;
        bool expired = r->deadline && engine_now() > r->deadline;
        if (atomic_load(&r->cancel) || expired || e->stop) {
            *pp     = r->next;
            r->next = dead;
            dead    = r;
            e->n_waiting--;
        } else {
            e->q_tail = r;
            pp        = &r->next;
        }
    }
    while (dead) {
        ds_engine_request *r = dead;
        dead                 = r->next;
        pthread_mutex_unlock(&e->mu);
        gen_finish(e, r, DS_FINISH_CANCELLED);
        pthread_mutex_lock(&e->mu);
        pthread_cond_broadcast(&e->idle);
    }
}

static bool turn(ds_engine *e) {
    pthread_mutex_lock(&e->mu);
    drop_cancelled_queued(e);
    for (int i = 0; i < e->p.n_slots && e->q_head; i++) {
        if (e->slots[i].state != SLOT_FREE) continue;
        ds_engine_request *r = e->q_head;
        e->q_head            = r->next;
        if (!e->q_head) e->q_tail = NULL;
        r->next = NULL;
        e->n_waiting--;
        e->n_active++;
        pthread_mutex_unlock(&e->mu);
        admit(e, r);
        pthread_mutex_lock(&e->mu);
        i = -1; // admit may have taken a slot other than i
    }
    bool stop = e->stop;
    pthread_mutex_unlock(&e->mu);

    engine_slot *batch[256];
    int          n_batch = 0;
    bool         busy    = false;
    for (int i = 0; i < e->p.n_slots; i++) {
        engine_slot *s = &e->slots[i];
        if (s->state == SLOT_FREE) continue;
        if (stop) atomic_store(&s->req->cancel, true);
        if (check_stop(e, s)) continue;
        busy = true;
        if (s->state == SLOT_PREFILL) prefill(e, s);
        else batch[n_batch++] = s;
    }
    if (n_batch) decode_batch(e, batch, n_batch);
    return busy;
}

static void *scheduler(void *arg) {
    ds_engine *e = arg;
    for (;;) {
        bool busy = turn(e);
        pthread_mutex_lock(&e->mu);
        if (e->stop && e->n_active == 0 && e->n_waiting == 0) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        if (!busy && !e->q_head && !e->stop) pthread_cond_wait(&e->wake, &e->mu);
        pthread_mutex_unlock(&e->mu);
    }
    return NULL;
}

// ---- shutdown ----

void ds_engine_drain(ds_engine *e, double drain_s) {
    double end = engine_now() + drain_s;
    pthread_mutex_lock(&e->mu);
    e->draining = true;
    while ((e->n_active || e->n_waiting) && engine_now() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->idle, &e->mu, &ts);
    }
    e->stop = true; // whatever is left is cancelled by the scheduler
    pthread_cond_signal(&e->wake);
    while (e->n_active || e->n_waiting) pthread_cond_wait(&e->idle, &e->mu);
    pthread_mutex_unlock(&e->mu);
}

void ds_engine_free(ds_engine *e) {
    if (!e) return;
    if (e->thread) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    if (e->slots)
        for (int i = 0; i < e->p.n_slots; i++) ds_tokens_free(&e->slots[i].cached);
    free(e->slots);
    disk_cache_close(&e->disk);
    free(e->logits);
    free(e->b_seq);
    free(e->b_tok);
    ds_kv_cache_free(e->kv);
    ds_tokenizer_free(e->tok);
    ds_model_free(e->model);
    ds_gguf_close(e->gguf);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->idle);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
