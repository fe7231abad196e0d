// perplexity.c - perplexity over a token list, computed exactly as llama.cpp's perplexity
// tool does (tools/perplexity: perplexity() and process_logits()), so the two tools' numbers
// can be compared directly. See ds/model.h for the procedure.
#include <math.h>
#include <stdlib.h>

#include "ds/kv.h"
#include "model_internal.h"

// -log softmax(row)[tok], with llama.cpp's float max and double sum.
static double nll_of(const float *row, int V, int32_t tok) {
    float mx = row[0];
    for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += expf(row[i] - mx);
    return -((double)(row[tok] - mx) - log(sum));
}

ds_status ds_perplexity(ds_model *m, const int32_t *tokens, size_t n_tokens,
                        const ds_perplexity_params *p, ds_perplexity_cb cb, void *ud,
                        ds_perplexity_result *out) {
    const int n_ctx = p->n_ctx, V = m->n_vocab;
    if (n_ctx < 8) return ds_fail(DS_EINVAL, "perplexity: context %d too small", n_ctx);
    if (n_tokens < 2 * (size_t)n_ctx)
        return ds_fail(DS_EINVAL, "perplexity: %zu tokens; at least 2 * %d = %d are needed",
                       n_tokens, n_ctx, 2 * n_ctx);
    int n_chunk = (int)(n_tokens / (size_t)n_ctx);
    if (p->n_chunks > 0 && p->n_chunks < n_chunk) n_chunk = p->n_chunks;
    const int n_batch = p->n_batch > 0 && p->n_batch < n_ctx ? p->n_batch : n_ctx;
    const int first = n_ctx / 2;

    ds_kv_params kp = ds_model_kv_params(m, n_ctx, 1, p->kv_type);
    ds_kv_cache *kv = NULL;
    ds_status    st = ds_kv_cache_new(&kp, &kv);
    if (st) return st;
    float   *logits = malloc((size_t)n_ctx * (size_t)V * sizeof *logits);
    int32_t *chunk = malloc((size_t)n_ctx * sizeof *chunk);
    if (!logits || !chunk) {
        st = ds_fail(DS_ENOMEM, "perplexity: cannot allocate logits for %d tokens", n_ctx);
        goto done;
    }
    double  nll = 0, nll2 = 0;
    int64_t count = 0;
    for (int c = 0; c < n_chunk; c++) {
        const int32_t *src = tokens + (size_t)c * (size_t)n_ctx;
        for (int i = 0; i < n_ctx; i++) chunk[i] = src[i];
        if (p->bos >= 0) chunk[0] = p->bos;
        ds_kv_cache_seq_set_len(kv, 0, 0);
        for (int b = 0; b < n_ctx; b += n_batch) {
            int nb = n_ctx - b < n_batch ? n_ctx - b : n_batch;
            st = ds_model_forward(m, kv, 0, chunk + b, nb, true, logits + (size_t)b * V);
            if (st) goto done;
        }
        // logits of position i predict the original token i + 1
        for (int i = first; i < n_ctx - 1; i++) {
            double v = nll_of(logits + (size_t)i * V, V, src[i + 1]);
            nll += v;
            nll2 += v * v;
            count++;
        }
        if (cb) cb(ud, c, n_chunk, exp(nll / (double)count));
    }
    double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
    out->ppl = exp(mean);
    out->err = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) * out->ppl : 0;
    out->n_chunks = n_chunk;
    out->n_scored = count;
done:
    free(logits);
    free(chunk);
    ds_kv_cache_free(kv);
    return st;
}
