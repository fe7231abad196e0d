// models.c - the local models folder: where it is, what is in it, and what -m NAME means.
//
// The folder is flat (hub.h): NAME.gguf, or NAME-0000i-of-0000N.gguf for the parts of a split
// model, which ds_gguf_open finds beside the first part. Listing opens every model with the
// GGUF reader, which validates the whole header, so a damaged file shows up as an error row
// instead of failing the list.
#include "ds/hub.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ds/alloc.h"
#include "ds/gguf.h"
#include "ds/types.h"

// ---- where ----

ds_status ds_models_dir(char *buf, size_t cap) {
    const char *env = getenv("DS_MODELS");
    int         n;
    if (env && *env) n = snprintf(buf, cap, "%s", env);
    else if ((env = getenv("XDG_DATA_HOME")) && env[0] == '/') n = snprintf(buf, cap, "%s/deepseek/models", env);
    else if ((env = getenv("HOME")) && *env) n = snprintf(buf, cap, "%s/.local/share/deepseek/models", env);
    else return ds_fail(DS_EINVAL, "no models folder: set DS_MODELS (or HOME)");
    if (n < 0 || (size_t)n >= cap) return ds_fail(DS_EINVAL, "models folder path too long");
    return DS_OK;
}

// ---- names of split models ----

// Length of the NAME in NAME-00001-of-00003.gguf (part and count into *no, *count), or 0.
static size_t split_prefix(const char *file, int *no, int *count) {
    static const char tail[] = "-00000-of-00000.gguf";
    size_t n = strlen(file), k = sizeof tail - 1;
    if (n <= k) return 0;
    const char *t = file + n - k;
    for (size_t i = 0; i < k; i++)
        if (tail[i] == '0' ? !isdigit((unsigned char)t[i]) : t[i] != tail[i]) return 0;
    *no    = atoi(t + 1);
    *count = atoi(t + 10);
    return *no >= 1 && *no <= *count ? n - k : 0;
}

static bool is_regular(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static ds_status copy_out(const char *path, char *buf, size_t cap) {
    size_t n = strlen(path);
    if (n >= cap) return ds_fail(DS_EINVAL, "%s: path too long", path);
    memcpy(buf, path, n + 1);
    return DS_OK;
}

// ---- -m NAME ----

ds_status ds_model_resolve(const char *name_or_path, char *buf, size_t cap) {
    if (is_regular(name_or_path)) return copy_out(name_or_path, buf, cap);
    if (strchr(name_or_path, '/') || !*name_or_path || name_or_path[0] == '.')
        return ds_fail(DS_ENOTFOUND, "%s: no such file", name_or_path);
    char dir[4096], path[4096 + 300];
    ds_status st = ds_models_dir(dir, sizeof dir);
    if (st) return st;
    size_t nl = strlen(name_or_path);
    if (nl > 250) return ds_fail(DS_ENOTFOUND, "%.40s...: no such model", name_or_path);
    snprintf(path, sizeof path, "%s/%s", dir, name_or_path);
    if (is_regular(path)) return copy_out(path, buf, cap);
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name_or_path);
    if (is_regular(path)) return copy_out(path, buf, cap);
    // A split model: NAME-00001-of-NNNNN.gguf, whatever N is.
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        int            no, count;
        bool           found = false;
        while (!found && (e = readdir(d)) != NULL) {
            if (split_prefix(e->d_name, &no, &count) == nl && no == 1 && !strncmp(e->d_name, name_or_path, nl)) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                found = is_regular(path);
            }
        }
        closedir(d);
        if (found) return copy_out(path, buf, cap);
    }
    return ds_fail(DS_ENOTFOUND, "%s: not a file, nor a model in %s (see: deepseek list)", name_or_path, dir);
}

// ---- file types ----

// llama.cpp's llama_ftype values (include/llama.h) and the names its tools print.
static const char *const file_types[] = {
    [0] = "F32",      [1] = "F16",      [2] = "Q4_0",     [3] = "Q4_1",     [7] = "Q8_0",
    [8] = "Q5_0",     [9] = "Q5_1",     [10] = "Q2_K",    [11] = "Q3_K_S",  [12] = "Q3_K_M",
    [13] = "Q3_K_L",  [14] = "Q4_K_S",  [15] = "Q4_K_M",  [16] = "Q5_K_S",  [17] = "Q5_K_M",
    [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS",  [21] = "Q2_K_S",  [22] = "IQ3_XS",
    [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL",  [26] = "IQ3_S",   [27] = "IQ3_M",
    [28] = "IQ2_S",   [29] = "IQ2_M",   [30] = "IQ4_XS",  [31] = "IQ1_M",   [32] = "BF16",
    [36] = "TQ1_0",   [37] = "TQ2_0",   [38] = "MXFP4_MOE",
};

const char *ds_file_type_name(uint32_t ft) {
    return ft < sizeof file_types / sizeof file_types[0] ? file_types[ft] : NULL;
}

// Without general.file_type: the type holding the most bytes among matrices.
static char *dominant_type(const ds_gguf *g) {
    uint64_t bytes[64] = {0};
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        if (t->n_dims >= 2 && (unsigned)t->type < 64) bytes[t->type] += t->nbytes;
    }
    int best = -1;
    for (int k = 0; k < 64; k++)
        if (bytes[k] && (best < 0 || bytes[k] > bytes[best])) best = k;
    if (best < 0) return ds_xstrdup("-");
    char *s = ds_xstrdup(ds_type_name(best));
    for (char *p = s; *p; p++) *p = (char)toupper((unsigned char)*p);
    return s;
}

static void describe(ds_model_entry *m) {
    ds_gguf *g = NULL;
    if (ds_gguf_open(m->path, &g) != DS_OK) {
        m->error = ds_xstrdup(ds_errmsg());
        return;
    }
    ds_str arch;
    m->arch = ds_gguf_get_str(g, "general.architecture", &arch) == DS_OK ? ds_xstrndup(arch.ptr, arch.len)
                                                                        : ds_xstrdup("?");
    for (char *p = m->arch; *p; p++)
        if (!isprint((unsigned char)*p)) *p = '?';
    int64_t     ft;
    const char *name = NULL;
    if (ds_gguf_get_int(g, "general.file_type", &ft) == DS_OK && ft >= 0 && ft <= UINT32_MAX)
        name = ds_file_type_name((uint32_t)ft);
    m->type    = name ? ds_xstrdup(name) : dominant_type(g);
    m->n_parts = ds_gguf_n_parts(g);
    m->size    = 0;
    for (int p = 0; p < m->n_parts; p++) m->size += (int64_t)ds_gguf_file_size(g, p);
    ds_gguf_close(g);
}

// ---- listing ----

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const ds_model_entry *)a)->name, ((const ds_model_entry *)b)->name);
}

ds_status ds_models_list(const char *dir, ds_model_entry **out, size_t *n_out) {
    *out   = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return DS_OK;
        return ds_fail(DS_EIO, "%s: cannot read the folder: %s", dir, strerror(errno));
    }
    ds_model_entry *v = NULL;
    size_t          n = 0, cap = 0;
    struct dirent  *e;
    while ((e = readdir(d)) != NULL) {
        const char *f = e->d_name;
        size_t      len = strlen(f), plen;
        int         no = 1, count = 1;
        if (f[0] == '.' || len <= 5 || strcmp(f + len - 5, ".gguf")) continue;
        if ((plen = split_prefix(f, &no, &count)) == 0) plen = len - 5;
        else if (no != 1) continue; // later parts belong to their first part's row
        char path[4096 + 256];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, f) >= sizeof path || !is_regular(path)) continue;
        if (n == cap) cap = cap ? cap * 2 : 16, v = ds_xrealloc(v, cap * sizeof *v);
        ds_model_entry *m = &v[n++];
        *m = (ds_model_entry){.name = ds_xstrndup(f, plen), .path = ds_xstrdup(path), .n_parts = count};
        describe(m);
        if (m->error) {
            struct stat sb;
            m->size = stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
        }
    }
    closedir(d);
    if (n) qsort(v, n, sizeof *v, cmp_entry);
    *out   = v;
    *n_out = n;
    return DS_OK;
}

void ds_models_list_free(ds_model_entry *e, size_t n) {
    if (!e) return;
    for (size_t i = 0; i < n; i++) {
        free(e[i].name), free(e[i].path), free(e[i].arch), free(e[i].type), free(e[i].error);
    }
    free(e);
}
