// cmd_inspect.c - `deepseek inspect FILE`: a GGUF file's metadata, tensor table and totals.
//
// Long arrays are abbreviated to their first elements (`--full` prints them whole). For a
// model file (one with tensors) the architecture's hyperparameters are validated as model
// loading would, so a file that could not be run is reported here with exit status 1.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ds/buf.h"
#include "ds/gguf.h"
#include "ds/hparams.h"
#include "ds/hub.h"

const char cmd_inspect_usage[] =
    "usage: deepseek inspect FILE|NAME [--json] [--full]\n"
    "\n"
    "Shows a GGUF file: its metadata (keys, types, values; long arrays abbreviated), a table\n"
    "of its tensors (name, type, shape, offset, bytes) and totals (parameters, bytes, bits per\n"
    "weight). Multi-part models (NAME-00001-of-0000N.gguf) are read as one. A NAME that\n"
    "is not a path is looked up in the models folder (see: deepseek list).\n"
    "For a model file the hyperparameters are checked as loading would check them.\n"
    "\n"
    "  --json   print one JSON object instead, for scripts\n"
    "  --full   print long arrays in full\n"
    "Exit status: 0 when the file is valid, 1 when it is not (with a one-line message).\n";

enum { ARRAY_HEAD = 8, STRING_HEAD = 120 }; // what an abbreviated array or string shows

// ---- values ----

static void put_array_elem(ds_buf *b, const ds_gguf_arr *a, uint64_t i, bool json) {
    switch (a->elem_type) {
    case DS_GGUF_STRING: {
        ds_str s = ds_gguf_arr_str(a, i);
        ds_buf_json_str(b, s.ptr, s.len); // quoted and escaped in text form too
        break;
    }
    case DS_GGUF_FLOAT32:
    case DS_GGUF_FLOAT64: {
        double v = ds_gguf_arr_float(a, i);
        if (json && !isfinite(v)) ds_buf_puts(b, "null"); // JSON has no inf/nan
        else ds_buf_printf(b, "%.9g", v);
        break;
    }
    case DS_GGUF_BOOL:
        ds_buf_puts(b, ds_gguf_arr_int(a, i) ? "true" : "false");
        break;
    default: ds_buf_printf(b, "%" PRId64, ds_gguf_arr_int(a, i)); break;
    }
}

static void put_array(ds_buf *b, const ds_gguf_arr *a, bool full, bool json) {
    uint64_t shown = full || a->count <= ARRAY_HEAD ? a->count : ARRAY_HEAD;
    ds_buf_puts(b, "[");
    for (uint64_t i = 0; i < shown; i++) {
        if (i) ds_buf_puts(b, ", ");
        put_array_elem(b, a, i, json);
    }
    if (shown < a->count && !json) ds_buf_printf(b, ", ... (%" PRIu64 " more)", a->count - shown);
    ds_buf_puts(b, "]");
}

static void put_scalar_json(ds_buf *b, const ds_gguf *g, int64_t i) {
    ds_gguf_type t = ds_gguf_kv_type(g, i);
    char         text[256];
    if (t == DS_GGUF_STRING) {
        ds_str s;
        DS_ASSERT(ds_gguf_get_str(g, ds_gguf_kv_key(g, i), &s) == DS_OK);
        ds_buf_json_str(b, s.ptr, s.len);
        return;
    }
    if (t == DS_GGUF_FLOAT32 || t == DS_GGUF_FLOAT64) {
        double v = 0;
        DS_ASSERT(ds_gguf_get_float(g, ds_gguf_kv_key(g, i), &v) == DS_OK);
        if (isfinite(v)) ds_buf_printf(b, "%.9g", v);
        else ds_buf_puts(b, "null"); // JSON has no inf/nan
        return;
    }
    ds_gguf_kv_format(g, i, text, sizeof text);
    ds_buf_puts(b, text); // integers and true/false are valid JSON as formatted
}

// ---- text form ----

static void print_text(const ds_gguf *g, bool full) {
    ds_buf b = {0};
    printf("file: %s\nversion: %u, alignment: %u, parts: %d\n", ds_gguf_path(g), ds_gguf_version(g),
           ds_gguf_alignment(g), ds_gguf_n_parts(g));
    printf("\nmetadata (%" PRId64 " keys):\n", ds_gguf_n_kv(g));
    for (int64_t i = 0; i < ds_gguf_n_kv(g); i++) {
        ds_gguf_type t = ds_gguf_kv_type(g, i);
        ds_buf_clear(&b);
        if (t == DS_GGUF_ARRAY) {
            ds_gguf_arr a = ds_gguf_kv_arr(g, i);
            ds_buf_printf(&b, "%s[%" PRIu64 "] ", ds_gguf_type_name(a.elem_type), a.count);
            put_array(&b, &a, full, false);
        } else if (t == DS_GGUF_STRING) {
            ds_str s;
            DS_ASSERT(ds_gguf_get_str(g, ds_gguf_kv_key(g, i), &s) == DS_OK);
            bool cut = !full && s.len > STRING_HEAD;
            ds_buf_puts(&b, "string ");
            ds_buf_json_str(&b, s.ptr, cut ? STRING_HEAD : s.len); // escaped: templates hold newlines
            if (cut) ds_buf_printf(&b, "... (%zu bytes)", s.len);
        } else {
            char text[64];
            ds_gguf_kv_format(g, i, text, sizeof text);
            ds_buf_printf(&b, "%s %s", ds_gguf_type_name(t), text);
        }
        printf("  %-48s %s\n", ds_gguf_kv_key(g, i), b.data);
    }
    ds_buf_free(&b);

    int64_t nt = ds_gguf_n_tensors(g);
    printf("\ntensors (%" PRId64 "):\n  %-40s %-8s %-28s %14s %14s\n", nt, "name", "type", "shape",
           "offset", "bytes");
    uint64_t params = 0, bytes = 0;
    for (int64_t i = 0; i < nt; i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        char  shape[64];
        int   n = snprintf(shape, sizeof shape, "%" PRId64, t->ne[0]);
        for (int d = 1; d < t->n_dims && n > 0 && (size_t)n < sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, " x %" PRId64, t->ne[d]);
        printf("  %-40s %-8s %-28s %14" PRIu64 " %14zu\n", t->name, ds_type_name((int32_t)t->type),
               shape, t->offset, t->nbytes);
        params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        bytes += t->nbytes;
    }
    printf("\ntotals: %" PRIu64 " parameters, %" PRIu64 " bytes (%.2f MiB), %.3f bits per weight\n",
           params, bytes, (double)bytes / (1024.0 * 1024.0), params ? 8.0 * (double)bytes / (double)params : 0.0);
}

// ---- JSON form ----

static void print_json(const ds_gguf *g, bool full) {
    ds_buf b = {0};
    ds_buf_puts(&b, "{\"file\":");
    ds_buf_json_str(&b, ds_gguf_path(g), strlen(ds_gguf_path(g)));
    ds_buf_printf(&b, ",\"version\":%u,\"alignment\":%u,\"parts\":%d,\"metadata\":{", ds_gguf_version(g),
                  ds_gguf_alignment(g), ds_gguf_n_parts(g));
    for (int64_t i = 0; i < ds_gguf_n_kv(g); i++) {
        const char  *key = ds_gguf_kv_key(g, i);
        ds_gguf_type t   = ds_gguf_kv_type(g, i);
        if (i) ds_buf_puts(&b, ",");
        ds_buf_json_str(&b, key, strlen(key));
        ds_buf_puts(&b, ":{\"type\":");
        if (t == DS_GGUF_ARRAY) {
            ds_gguf_arr a = ds_gguf_kv_arr(g, i);
            ds_buf_printf(&b, "\"array\",\"elem_type\":\"%s\",\"count\":%" PRIu64 ",\"%s\":",
                          ds_gguf_type_name(a.elem_type), a.count,
                          full || a.count <= ARRAY_HEAD ? "value" : "head");
            put_array(&b, &a, full, true);
        } else {
            ds_buf_printf(&b, "\"%s\",\"value\":", ds_gguf_type_name(t));
            put_scalar_json(&b, g, i);
        }
        ds_buf_puts(&b, "}");
    }
    ds_buf_puts(&b, "},\"tensors\":[");
    uint64_t params = 0, bytes = 0;
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        if (i) ds_buf_puts(&b, ",");
        ds_buf_puts(&b, "{\"name\":");
        ds_buf_json_str(&b, t->name, strlen(t->name));
        ds_buf_printf(&b, ",\"type\":\"%s\",\"shape\":[", ds_type_name((int32_t)t->type));
        for (int d = 0; d < t->n_dims; d++) ds_buf_printf(&b, d ? ",%" PRId64 : "%" PRId64, t->ne[d]);
        ds_buf_printf(&b, "],\"offset\":%" PRIu64 ",\"bytes\":%zu,\"part\":%d}", t->offset, t->nbytes, t->part);
        params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        bytes += t->nbytes;
    }
    ds_buf_printf(&b, "],\"totals\":{\"parameters\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"bpw\":%.4f}}\n",
                  params, bytes, params ? 8.0 * (double)bytes / (double)params : 0.0);
    fputs(b.data, stdout);
    ds_buf_free(&b);
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool        json = false, full = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--full")) full = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage_error(argv[0], "unknown option '%s'", argv[i]);
        else if (path) return cli_usage_error(argv[0], "more than one file given");
        else path = argv[i];
    }
    if (!path) return cli_usage_error(argv[0], "no file given");

    char resolved[4096];
    if (ds_model_resolve(path, resolved, sizeof resolved) != DS_OK) return cli_error(argv[0], "%s", ds_errmsg());
    ds_gguf *g = NULL;
    if (ds_gguf_open(resolved, &g) != DS_OK) return cli_error(argv[0], "%s", ds_errmsg());
    if (ds_gguf_n_tensors(g) > 0) { // a model: its hyperparameters must make sense
        ds_hparams hp;
        if (ds_hparams_read(g, &hp) != DS_OK) {
            int rc = cli_error(argv[0], "%s", ds_errmsg());
            ds_gguf_close(g);
            return rc;
        }
    }
    if (json) print_json(g, full);
    else print_text(g, full);
    ds_gguf_close(g);
    return 0;
}
