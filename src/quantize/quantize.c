// quantize.c - choose a type per tensor for a mix, and rewrite a model file with them.
//
// Data flow: open IN (any types), plan every tensor's new type, write the header of OUT
// (keys copied, file_type and split keys updated), then per tensor: copy its bytes when
// the type is unchanged, otherwise dequantize rows to f32 and quantize them to the new
// type, split over threads by rows. The writer streams tensors to a temporary file that is
// renamed over OUT at the end.
#include "ds/quantize.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "ds/quant.h"

// ---- mixes ----

static const struct {
    const char *name;
    ds_type     base;
    uint32_t    file_type; // llama_ftype
} mixes[DS_MIX_COUNT] = {
    [DS_MIX_F32]    = {"F32", DS_TYPE_F32, 0},       [DS_MIX_F16] = {"F16", DS_TYPE_F16, 1},
    [DS_MIX_BF16]   = {"BF16", DS_TYPE_BF16, 32},    [DS_MIX_Q8_0] = {"Q8_0", DS_TYPE_Q8_0, 7},
    [DS_MIX_Q6_K]   = {"Q6_K", DS_TYPE_Q6_K, 18},    [DS_MIX_Q5_K_M] = {"Q5_K_M", DS_TYPE_Q5_K, 17},
    [DS_MIX_Q4_K_M] = {"Q4_K_M", DS_TYPE_Q4_K, 15},  [DS_MIX_Q4_0] = {"Q4_0", DS_TYPE_Q4_0, 2},
    [DS_MIX_IQ4_XS] = {"IQ4_XS", DS_TYPE_IQ4_XS, 30},
};

ds_quantize_params ds_quantize_params_default(void) {
    return (ds_quantize_params){.mix = DS_MIX_Q4_K_M, .n_threads = 1};
}

ds_status ds_mix_from_name(const char *name, ds_mix *out) {
    for (int m = 0; m < DS_MIX_COUNT; m++) {
        if (!strcasecmp(name, mixes[m].name)) {
            *out = (ds_mix)m;
            return DS_OK;
        }
    }
    return ds_fail(DS_EINVAL,
                   "unknown type mix '%s' (known: F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, IQ4_XS)",
                   name);
}

const char *ds_mix_name(ds_mix m) { return mixes[m].name; }
uint32_t    ds_mix_file_type(ds_mix m) { return mixes[m].file_type; }

// ---- per-tensor rules ----

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// Tensors that keep their stored type: small, or precision-critical (the router decides
// which experts run, so llama.cpp never quantizes it either).
static bool keeps_type(const ds_gguf_tensor *t) {
    return t->n_dims < 2 || !ends_with(t->name, "weight") || strstr(t->name, "_norm.weight") ||
           strstr(t->name, "ffn_gate_inp.weight") || strstr(t->name, "exp_probs_b") ||
           strstr(t->name, "rope_freqs");
}

// llama.cpp's choice of layers that get more bits: the first and last eighth, and every
// third layer in between.
static bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int64_t layer_of(const char *name) {
    long layer = -1;
    if (sscanf(name, "blk.%ld.", &layer) != 1) return -1;
    return layer;
}

static bool is_attn_v_like(const char *name) {
    return strstr(name, "attn_v.weight") || strstr(name, "attn_kv_b.weight");
}

// The type that fits rows of ne0 elements when `want` does not (llama.cpp's fallbacks).
static ds_type fallback(ds_type want, int64_t ne0) {
    const ds_type_traits *tt = ds_type_traits_get(want);
    if (ne0 % tt->block_elems == 0) return want;
    ds_type alt;
    switch (want) {
    case DS_TYPE_IQ4_XS: alt = DS_TYPE_IQ4_NL; break;
    case DS_TYPE_Q4_K: alt = DS_TYPE_Q5_0; break;
    case DS_TYPE_Q5_K: alt = DS_TYPE_Q5_1; break;
    case DS_TYPE_Q6_K: alt = DS_TYPE_Q8_0; break;
    default: alt = DS_TYPE_F16; break;
    }
    return ne0 % ds_type_traits_get(alt)->block_elems == 0 ? alt : DS_TYPE_F16;
}

ds_type ds_quantize_choose_type(ds_mix mix, const ds_gguf_tensor *t, const ds_quantize_ctx *ctx) {
    if (keeps_type(t)) return t->type;
    ds_type base = mixes[mix].base;
    if (!ds_type_traits_get(base)->quantized) return base; // F32/F16/BF16: plain conversion

    bool k_mix  = mix == DS_MIX_Q4_K_M || mix == DS_MIX_Q5_K_M;
    ds_type out = base;
    if (!strcmp(t->name, "output.weight") || (!ctx->has_output && !strcmp(t->name, "token_embd.weight"))) {
        out = mix == DS_MIX_Q8_0 || t->ne[0] % DS_QK_K != 0 ? DS_TYPE_Q8_0 : DS_TYPE_Q6_K;
    } else if (is_attn_v_like(t->name)) {
        if (k_mix && use_more_bits(ctx->attn_v_index, ctx->attn_v_count)) out = DS_TYPE_Q6_K;
        else if (mix == DS_MIX_IQ4_XS && ctx->n_gqa >= 4) out = DS_TYPE_Q5_K;
    } else if (strstr(t->name, "ffn_down")) {
        int64_t layer = layer_of(t->name);
        if (layer >= 0 && k_mix && use_more_bits(layer, ctx->n_layer)) out = DS_TYPE_Q6_K;
        else if (layer >= 0 && mix == DS_MIX_IQ4_XS && layer < ctx->n_layer / 8) out = DS_TYPE_Q5_K;
    }
    return fallback(out, t->ne[0]);
}

// ---- conversion ----

typedef struct convert_job {
    const ds_type_traits *src_tt, *dst_tt;
    const uint8_t        *src;
    uint8_t              *dst;
    int64_t               ne0, n_rows;
    size_t                src_row_bytes, dst_row_bytes;
    int                   ith, nth;
} convert_job;

static void *convert_rows(void *arg) {
    const convert_job *j   = arg;
    int64_t            per = (j->n_rows + j->nth - 1) / j->nth;
    int64_t            r0  = per * j->ith;
    int64_t            r1  = r0 + per < j->n_rows ? r0 + per : j->n_rows;
    float             *row = ds_xmalloc((size_t)j->ne0 * sizeof(float));
    for (int64_t r = r0; r < r1; r++) {
        j->src_tt->to_float(j->src + (size_t)r * j->src_row_bytes, row, j->ne0);
        j->dst_tt->from_float(row, j->dst + (size_t)r * j->dst_row_bytes, j->ne0);
    }
    free(row);
    return NULL;
}

// Converts tensor t to `type` into a new buffer (*out, owned by the caller).
static ds_status convert_tensor(const ds_gguf_tensor *t, ds_type type, int n_threads, uint8_t **out,
                                size_t *out_bytes) {
    const ds_type_traits *src_tt = ds_type_traits_get(t->type), *dst_tt = ds_type_traits_get(type);
    if (!src_tt->to_float)
        return ds_fail(DS_EUNSUPPORTED, "tensor '%s': cannot convert from %s", t->name, src_tt->name);
    if (!dst_tt->from_float)
        return ds_fail(DS_EUNSUPPORTED, "tensor '%s': no quantizer for %s", t->name, dst_tt->name);
    int64_t n_rows = t->ne[1] * t->ne[2] * t->ne[3];
    size_t  dst_row_bytes;
    if (ds_type_row_bytes_checked(type, t->ne[0], &dst_row_bytes) != DS_OK) return DS_EFORMAT;
    size_t total = dst_row_bytes * (size_t)n_rows; // <= the f32 size, which the reader bounded
    uint8_t *dst = malloc(total ? total : 1);
    if (!dst) return ds_fail(DS_ENOMEM, "tensor '%s': cannot allocate %zu bytes", t->name, total);

    if (n_threads > n_rows) n_threads = (int)(n_rows > 0 ? n_rows : 1);
    convert_job jobs[64];
    pthread_t   tids[64];
    if (n_threads > 64) n_threads = 64;
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (convert_job){.src_tt = src_tt, .dst_tt = dst_tt, .src = t->data, .dst = dst,
                                .ne0 = t->ne[0], .n_rows = n_rows,
                                .src_row_bytes = ds_type_row_bytes(t->type, t->ne[0]),
                                .dst_row_bytes = dst_row_bytes, .ith = i, .nth = n_threads};
    }
    int started = 1; // job 0 runs on this thread
    for (int i = 1; i < n_threads; i++, started++)
        if (pthread_create(&tids[i], NULL, convert_rows, &jobs[i]) != 0) break;
    // Jobs whose thread could not start run here, so no rows are skipped.
    for (int i = started; i < n_threads; i++) convert_rows(&jobs[i]);
    convert_rows(&jobs[0]);
    for (int i = 1; i < started; i++) pthread_join(tids[i], NULL);
    *out       = dst;
    *out_bytes = total;
    return DS_OK;
}

// ---- the file ----

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static ds_quantize_ctx plan_context(const ds_gguf *g) {
    ds_quantize_ctx ctx = {.n_layer = 0, .n_gqa = 1, .has_output = ds_gguf_find_tensor(g, "output.weight") != NULL};
    ds_str          arch;
    if (ds_gguf_get_str(g, "general.architecture", &arch) == DS_OK && arch.len < 64) {
        char    key[128];
        int64_t heads = 0, heads_kv = 0;
        snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
        if (ds_gguf_get_int(g, key, &ctx.n_layer) != DS_OK) ctx.n_layer = 0;
        snprintf(key, sizeof key, "%.*s.attention.head_count", (int)arch.len, arch.ptr);
        bool h = ds_gguf_get_int(g, key, &heads) == DS_OK;
        snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)arch.len, arch.ptr);
        if (h && ds_gguf_get_int(g, key, &heads_kv) == DS_OK && heads_kv > 0) ctx.n_gqa = heads / heads_kv;
    }
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++)
        if (is_attn_v_like(ds_gguf_tensor_at(g, i)->name)) ctx.attn_v_count++;
    return ctx;
}

static void copy_metadata(ds_gguf_writer *w, const ds_gguf *g, ds_mix mix) {
    for (int64_t i = 0; i < ds_gguf_n_kv(g); i++) {
        const char *key = ds_gguf_kv_key(g, i);
        if (!strncmp(key, "split.", 6) || !strcmp(key, "general.file_type") ||
            !strcmp(key, "general.quantization_version"))
            continue; // the output is one file with a new type mix
        ds_gguf_writer_copy_kv(w, g, i);
    }
    ds_gguf_writer_set_u32(w, "general.quantization_version", 2);
    ds_gguf_writer_set_u32(w, "general.file_type", ds_mix_file_type(mix));
}

ds_status ds_quantize_file(const char *in_path, const char *out_path, const ds_quantize_params *p) {
    if (same_file(in_path, out_path))
        return ds_fail(DS_EINVAL, "%s: output would overwrite the input", out_path);
    ds_gguf *g = NULL;
    ds_status st = ds_gguf_open(in_path, &g);
    if (st != DS_OK) return st;

    int64_t         nt    = ds_gguf_n_tensors(g);
    ds_type        *types = ds_xcalloc((size_t)(nt ? nt : 1), sizeof *types);
    ds_quantize_ctx ctx   = plan_context(g);
    ds_gguf_writer *w     = ds_gguf_writer_new();
    copy_metadata(w, g, p->mix);
    for (int64_t i = 0; i < nt && st == DS_OK; i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        types[i] = ds_quantize_choose_type(p->mix, t, &ctx);
        if (is_attn_v_like(t->name)) ctx.attn_v_index++;
        st = ds_gguf_writer_add_tensor(w, t->name, types[i], t->n_dims, t->ne, NULL);
    }
    if (st == DS_OK) st = ds_gguf_writer_begin(w, out_path);
    for (int64_t i = 0; i < nt && st == DS_OK; i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        if (types[i] == t->type) {
            st = ds_gguf_writer_put(w, t->data, t->nbytes);
        } else {
            uint8_t *buf   = NULL;
            size_t   bytes = 0;
            st = convert_tensor(t, types[i], p->n_threads, &buf, &bytes);
            if (st == DS_OK) st = ds_gguf_writer_put(w, buf, bytes);
            free(buf);
        }
        if (st == DS_OK && p->progress) p->progress(p->progress_user, i + 1, nt, t, types[i]);
    }
    if (st == DS_OK) st = ds_gguf_writer_commit(w);
    if (st != DS_OK && !strstr(ds_errmsg(), out_path) && !strstr(ds_errmsg(), in_path))
        st = ds_fail(st, "%s: %s", in_path, ds_errmsg());
    ds_gguf_writer_free(w); // removes the temporary file if not committed
    free(types);
    ds_gguf_close(g);
    return st;
}
