// kv_cache.c - the per-sequence K/V row store described in ds/kv.h.
//
// Addressing: element (seq, layer, part, pos, j) lives at
//   base + ((seq * n_layers + layer) * n_ctx + pos) * (k_width + v_width) + part_offset + j
// so one token's K and V rows of a layer are adjacent and a sequence is one contiguous slab.
#include "ds/kv.h"

#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/quant.h"

struct ds_kv_cache {
    ds_kv_params p;
    size_t       elem;     // bytes per element
    size_t       row;      // elements per token per layer (k_width + v_width)
    uint8_t     *data;
    int         *seq_len;  // [n_seq]
};

ds_status ds_kv_cache_new(const ds_kv_params *p, ds_kv_cache **out) {
    *out = NULL;
    if (p->n_layers <= 0 || p->n_ctx <= 0 || p->n_seq <= 0 || p->k_width <= 0 || p->v_width < 0)
        return ds_fail(DS_EINVAL, "kv cache: bad size (layers %d, ctx %d, seqs %d, widths %d/%d)",
                       p->n_layers, p->n_ctx, p->n_seq, p->k_width, p->v_width);
    if (p->type != DS_TYPE_F16 && p->type != DS_TYPE_F32)
        return ds_fail(DS_EINVAL, "kv cache: type %s not supported (f16, f32)",
                       ds_type_name(p->type));
    size_t elem = p->type == DS_TYPE_F16 ? 2 : 4;
    size_t row = (size_t)p->k_width + (size_t)p->v_width;
    // Overflow-checked product n_seq * n_layers * n_ctx * row * elem.
    size_t    total = elem;
    size_t    f[4] = {(size_t)p->n_seq, (size_t)p->n_layers, (size_t)p->n_ctx, row};
    for (int i = 0; i < 4; i++) {
        if (f[i] && total > SIZE_MAX / f[i])
            return ds_fail(DS_ENOMEM, "kv cache: size overflows (ctx %d)", p->n_ctx);
        total *= f[i];
    }
    uint8_t *data = calloc(1, total);
    if (!data)
        return ds_fail(DS_ENOMEM, "kv cache: cannot allocate %zu bytes (ctx %d, %d sequences)",
                       total, p->n_ctx, p->n_seq);
    ds_kv_cache *kv = ds_xcalloc(1, sizeof *kv);
    kv->p = *p;
    kv->elem = elem;
    kv->row = row;
    kv->data = data;
    kv->seq_len = ds_xcalloc((size_t)p->n_seq, sizeof *kv->seq_len);
    *out = kv;
    return DS_OK;
}

void ds_kv_cache_free(ds_kv_cache *kv) {
    if (!kv) return;
    free(kv->data);
    free(kv->seq_len);
    free(kv);
}

const ds_kv_params *ds_kv_cache_params(const ds_kv_cache *kv) { return &kv->p; }

size_t ds_kv_cache_bytes_per_token(const ds_kv_cache *kv) {
    return (size_t)kv->p.n_layers * kv->row * kv->elem;
}

size_t ds_kv_cache_bytes(const ds_kv_cache *kv) {
    return ds_kv_cache_bytes_per_token(kv) * (size_t)kv->p.n_ctx * (size_t)kv->p.n_seq;
}

int ds_kv_cache_seq_len(const ds_kv_cache *kv, int seq) {
    DS_ASSERT(seq >= 0 && seq < kv->p.n_seq);
    return kv->seq_len[seq];
}

ds_status ds_kv_cache_seq_set_len(ds_kv_cache *kv, int seq, int len) {
    DS_ASSERT(seq >= 0 && seq < kv->p.n_seq);
    if (len < 0 || len > kv->p.n_ctx)
        return ds_fail(DS_EINVAL, "kv cache: length %d outside the context [0, %d]", len,
                       kv->p.n_ctx);
    kv->seq_len[seq] = len;
    return DS_OK;
}

// Element offset of (seq, layer, part, pos).
static size_t at(const ds_kv_cache *kv, int seq, int layer, ds_kv_part part, int pos) {
    DS_ASSERT(seq >= 0 && seq < kv->p.n_seq && layer >= 0 && layer < kv->p.n_layers);
    DS_ASSERT(pos >= 0 && pos < kv->p.n_ctx);
    DS_ASSERT(part == DS_KV_K || kv->p.v_width > 0);
    size_t slot = ((size_t)seq * (size_t)kv->p.n_layers + (size_t)layer) * (size_t)kv->p.n_ctx +
                  (size_t)pos;
    return slot * kv->row + (part == DS_KV_V ? (size_t)kv->p.k_width : 0);
}

static int width(const ds_kv_cache *kv, ds_kv_part part) {
    return part == DS_KV_K ? kv->p.k_width : kv->p.v_width;
}

void ds_kv_cache_store(ds_kv_cache *kv, int seq, int layer, ds_kv_part part, int pos,
                       const float *src) {
    size_t o = at(kv, seq, layer, part, pos);
    int    w = width(kv, part);
    if (kv->p.type == DS_TYPE_F32) {
        memcpy((float *)kv->data + o, src, (size_t)w * sizeof(float));
        return;
    }
    uint16_t *dst = (uint16_t *)kv->data + o;
    for (int j = 0; j < w; j++) dst[j] = ds_fp32_to_fp16(src[j]);
}

void ds_kv_cache_load(const ds_kv_cache *kv, int seq, int layer, ds_kv_part part, int pos0,
                      int n, float *dst) {
    int w = width(kv, part);
    for (int i = 0; i < n; i++) {
        size_t o = at(kv, seq, layer, part, pos0 + i);
        float *d = dst + (size_t)i * (size_t)w;
        if (kv->p.type == DS_TYPE_F32) {
            memcpy(d, (const float *)kv->data + o, (size_t)w * sizeof(float));
        } else {
            const uint16_t *s = (const uint16_t *)kv->data + o;
            for (int j = 0; j < w; j++) d[j] = ds_fp16_to_fp32(s[j]);
        }
    }
}
