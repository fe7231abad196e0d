// model_broken.c - see model_broken.h.
#include "model_broken.h"

#include <stdio.h>
#include <string.h>

#include "ds/gguf.h"

bool write_broken_model(const char *src, const char *dst, const broken_spec *spec) {
    ds_gguf *g = NULL;
    if (ds_gguf_open(src, &g) != DS_OK) {
        fprintf(stderr, "%s\n", ds_errmsg());
        return false;
    }
    ds_gguf_writer *w = ds_gguf_writer_new();
    for (int64_t i = 0; i < ds_gguf_n_kv(g); i++) ds_gguf_writer_copy_kv(w, g, i);
    if (spec->kind == BROKEN_KEY_U32) ds_gguf_writer_set_u32(w, spec->name, spec->value);
    const ds_gguf_tensor *other = spec->other ? ds_gguf_find_tensor(g, spec->other) : NULL;
    bool ok = true;
    for (int64_t i = 0; i < ds_gguf_n_tensors(g) && ok; i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        ds_gguf_tensor        swapped;
        bool                  is = !strcmp(t->name, spec->name);
        if (is && spec->kind == BROKEN_MISSING_TENSOR) continue;
        if (is && spec->kind == BROKEN_TENSOR_SHAPE && other) {
            swapped = *other; // other's type, shape and data under this name
            swapped.name = t->name;
            t = &swapped;
        }
        ok = ds_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) == DS_OK;
    }
    ok = ok && ds_gguf_writer_write(w, dst) == DS_OK;
    if (!ok) fprintf(stderr, "%s\n", ds_errmsg());
    ds_gguf_writer_free(w);
    ds_gguf_close(g);
    return ok;
}
