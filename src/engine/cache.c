// cache.c - the on-disk prefix cache: KV rows of earlier prompts, reused across restarts.
//
// A file holds the rows of one prompt prefix:
//   header (64 bytes, little-endian):
//     magic "DSPC" | version u32 | model fingerprint u64 | n_layers u32 | k_width u32 |
//     v_width u32 | elem bytes u32 (4: rows are stored as f32) | n_tokens u32 | reserved u32 |
//     payload bytes u64 | checksum u64 (FNV-1a over tokens and payload) | reserved u64
//   tokens: n_tokens int32
//   payload: for each position, for each layer: the K row, then the V row (if any), f32.
// Files are untrusted input (docs/security.md §1c, §4.2): the header is checked against this
// model's fingerprint and KV layout, sizes are checked for overflow and against the file's
// size, and the checksum is verified before a single row reaches the KV cache. A damaged file
// is skipped with a warning; a file of another model is skipped quietly. Writes go to a
// temporary file in the same directory that is fsync'ed and renamed into place, so a crash
// never leaves a half-written entry under a real name.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "engine_internal.h"

enum { HDR_BYTES = 64, CACHE_VERSION = 1 };
static const char MAGIC[4] = {'D', 'S', 'P', 'C'};

// ---- hashing ----

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}
#define FNV_INIT 0xCBF29CE484222325ull

uint64_t model_fingerprint(const ds_gguf *g) {
    uint64_t h = FNV_INIT;
    for (int64_t i = 0; i < ds_gguf_n_kv(g); i++) {
        const char *k = ds_gguf_kv_key(g, i);
        h             = fnv(h, k, strlen(k) + 1);
    }
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        h = fnv(h, t->name, strlen(t->name) + 1);
        h = fnv(h, &t->type, sizeof t->type);
        h = fnv(h, t->ne, sizeof t->ne);
        h = fnv(h, &t->nbytes, sizeof t->nbytes);
        // A sample of the weights: two models of the same shape differ here.
        size_t k = t->nbytes < 256 ? t->nbytes : 256;
        h        = fnv(h, t->data, k);
        h        = fnv(h, (const char *)t->data + t->nbytes - k, k);
    }
    return h;
}

// ---- header ----

typedef struct hdr {
    uint64_t fingerprint, payload, checksum;
    uint32_t version, n_layers, k_width, v_width, elem, n_tokens;
} hdr;

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void hdr_write(unsigned char *b, const hdr *h) {
    memset(b, 0, HDR_BYTES);
    memcpy(b, MAGIC, 4);
    put32(b + 4, h->version);
    put64(b + 8, h->fingerprint);
    put32(b + 16, h->n_layers);
    put32(b + 20, h->k_width);
    put32(b + 24, h->v_width);
    put32(b + 28, h->elem);
    put32(b + 32, h->n_tokens);
    put64(b + 40, h->payload);
    put64(b + 48, h->checksum);
}

static bool hdr_read(const unsigned char *b, hdr *h) {
    if (memcmp(b, MAGIC, 4)) return false;
    *h = (hdr){.version     = get32(b + 4),
               .fingerprint = get64(b + 8),
               .n_layers    = get32(b + 16),
               .k_width     = get32(b + 20),
               .v_width     = get32(b + 24),
               .elem        = get32(b + 28),
               .n_tokens    = get32(b + 32),
               .payload     = get64(b + 40),
               .checksum    = get64(b + 48)};
    return true;
}

// Bytes of payload for n tokens with this cache's layout; 0 on overflow.
static uint64_t payload_bytes(const ds_kv_params *kp, uint64_t n) {
    uint64_t row = ((uint64_t)kp->k_width + (uint64_t)kp->v_width) * 4u * (uint64_t)kp->n_layers;
    if (row == 0 || n > UINT64_MAX / row) return 0;
    return row * n;
}

// ---- reading ----

// Reads and checks a whole file. On success *tokens holds its tokens and *payload (if not
// NULL) its rows. Returns a reason on failure ("" when the file is simply another model's).
static const char *read_entry(const disk_cache *d, const ds_kv_params *kp, const char *path,
                              ds_tokens *tokens, unsigned char **payload) {
    const char   *why = NULL;
    unsigned char b[HDR_BYTES];
    hdr           h;
    unsigned char *data = NULL;
    int  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        why = "cannot open";
        goto done;
    }
    if (read(fd, b, HDR_BYTES) != HDR_BYTES || !hdr_read(b, &h)) {
        why = "not a prefix-cache file";
        goto done;
    }
    if (h.fingerprint != d->fingerprint) {
        why = "";
        goto done;
    }
    uint64_t want = payload_bytes(kp, h.n_tokens);
    if (h.version != CACHE_VERSION || h.elem != 4 || h.n_layers != (uint32_t)kp->n_layers ||
        h.k_width != (uint32_t)kp->k_width || h.v_width != (uint32_t)kp->v_width ||
        h.n_tokens == 0 || h.n_tokens > (uint32_t)kp->n_ctx || want == 0 || h.payload != want ||
        (uint64_t)sb.st_size != HDR_BYTES + 4ull * h.n_tokens + want) {
        why = "header does not match this model's KV layout or the file's size";
        goto done;
    }
    size_t n = 4u * h.n_tokens + (size_t)want;
    data     = malloc(n);
    if (!data) {
        why = "out of memory";
        goto done;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, data + got, n - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    if (got != n || fnv(FNV_INIT, data, n) != h.checksum) {
        why = "checksum mismatch (damaged file)";
        goto done;
    }
    tokens->n = 0;
    for (uint32_t i = 0; i < h.n_tokens; i++) {
        if (tokens->n == tokens->cap) {
            tokens->cap = tokens->cap ? 2 * tokens->cap : 256;
            tokens->ids = ds_xrealloc(tokens->ids, tokens->cap * sizeof(int32_t));
        }
        tokens->ids[tokens->n++] = (int32_t)get32(data + 4 * i);
    }
    if (payload) {
        memmove(data, data + 4u * h.n_tokens, (size_t)want);
        *payload = data;
        data     = NULL;
    }
done:
    if (fd >= 0) close(fd);
    free(data);
    return why;
}

static void add_entry(disk_cache *d, const char *path, ds_tokens *t) {
    if (d->n == d->cap) {
        d->cap   = d->cap ? 2 * d->cap : 16;
        d->items = ds_xrealloc(d->items, d->cap * sizeof *d->items);
    }
    d->items[d->n++] = (disk_entry){.path = ds_xstrdup(path), .tokens = *t};
    *t               = (ds_tokens){0};
}

static void drop_entry(disk_cache *d, size_t i, bool unlink_file) {
    if (unlink_file) unlink(d->items[i].path);
    free(d->items[i].path);
    ds_tokens_free(&d->items[i].tokens);
    memmove(d->items + i, d->items + i + 1, (d->n - i - 1) * sizeof *d->items);
    d->n--;
}

ds_status disk_cache_open(disk_cache *d, const char *dir, uint64_t fingerprint,
                          const ds_kv_cache *kv, int max_files, ds_engine_stats *st) {
    memset(d, 0, sizeof *d);
    if (mkdir(dir, 0700) && errno != EEXIST) return ds_fail(DS_EIO, "%s: cannot create", dir);
    DIR *dh = opendir(dir);
    if (!dh) return ds_fail(DS_EIO, "%s: cannot open the directory", dir);
    d->dir         = ds_xstrdup(dir);
    d->fingerprint = fingerprint;
    d->max_files   = max_files > 0 ? max_files : 64;
    const ds_kv_params *kp = ds_kv_cache_params(kv);
    struct dirent      *de;
    while ((de = readdir(dh))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".dspc")) continue;
        ds_buf path = {0};
        ds_buf_printf(&path, "%s/%s", dir, de->d_name);
        ds_tokens   t   = {0};
        const char *why = read_entry(d, kp, path.data, &t, NULL);
        if (!why) add_entry(d, path.data, &t);
        else if (*why) {
            ds_log(DS_LOG_WARN, "prefix cache: %s: %s; ignored", path.data, why);
            st->disk_cache_rejected++;
        }
        ds_tokens_free(&t);
        ds_buf_free(&path);
    }
    closedir(dh);
    ds_log(DS_LOG_INFO, "prefix cache: %zu entries in %s", d->n, dir);
    return DS_OK;
}

void disk_cache_close(disk_cache *d) {
    while (d->n) drop_entry(d, d->n - 1, false);
    free(d->items);
    free(d->dir);
    memset(d, 0, sizeof *d);
}

const disk_entry *disk_cache_best(const disk_cache *d, const int32_t *tokens, size_t n,
                                  size_t *lcp) {
    const disk_entry *best = NULL;
    *lcp                   = 0;
    for (size_t i = 0; i < d->n; i++) {
        size_t k = tokens_lcp(&d->items[i].tokens, tokens, n);
        if (k > *lcp) {
            *lcp = k;
            best = &d->items[i];
        }
    }
    return best;
}

bool disk_cache_load(disk_cache *d, const disk_entry *entry, ds_kv_cache *kv, int seq,
                     size_t n, ds_engine_stats *st) {
    const ds_kv_params *kp      = ds_kv_cache_params(kv);
    ds_tokens           t       = {0};
    unsigned char      *payload = NULL;
    size_t              idx     = (size_t)(entry - d->items);
    const char         *why     = read_entry(d, kp, entry->path, &t, &payload);
    // The file must still hold the tokens the index promised.
    if (!why && (t.n < n || tokens_lcp(&entry->tokens, t.ids, t.n) < n)) why = "changed on disk";
    if (why) {
        ds_log(DS_LOG_WARN, "prefix cache: %s: %s; ignored", entry->path, *why ? why : "foreign");
        st->disk_cache_rejected++;
        drop_entry(d, idx, false);
        ds_tokens_free(&t);
        free(payload);
        return false;
    }
    const float *row = (const float *)payload; // f32 rows, written by this program
    for (size_t i = 0; i < n; i++)
        for (int l = 0; l < kp->n_layers; l++) {
            ds_kv_cache_store(kv, seq, l, DS_KV_K, (int)i, row);
            row += kp->k_width;
            if (kp->v_width) {
                ds_kv_cache_store(kv, seq, l, DS_KV_V, (int)i, row);
                row += kp->v_width;
            }
        }
    ds_kv_cache_seq_set_len(kv, seq, (int)n);
    st->disk_cache_hits++;
    ds_tokens_free(&t);
    free(payload);
    return true;
}

// ---- writing ----

static bool write_all(int fd, const void *p, size_t n) {
    const char *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

void disk_cache_save(disk_cache *d, const ds_kv_cache *kv, int seq, const int32_t *tokens,
                     size_t n, ds_engine_stats *st) {
    for (size_t i = 0; i < d->n; i++)
        if (d->items[i].tokens.n >= n && tokens_lcp(&d->items[i].tokens, tokens, n) == n) return;
    const ds_kv_params *kp   = ds_kv_cache_params(kv);
    uint64_t            want = payload_bytes(kp, n);
    size_t              size = 4 * n + (size_t)want;
    unsigned char      *data = want ? malloc(size) : NULL;
    if (!data) return;
    for (size_t i = 0; i < n; i++) put32(data + 4 * i, (uint32_t)tokens[i]);
    float *row = (float *)(data + 4 * n);
    for (size_t i = 0; i < n; i++)
        for (int l = 0; l < kp->n_layers; l++) {
            ds_kv_cache_load(kv, seq, l, DS_KV_K, (int)i, 1, row);
            row += kp->k_width;
            if (kp->v_width) {
                ds_kv_cache_load(kv, seq, l, DS_KV_V, (int)i, 1, row);
                row += kp->v_width;
            }
        }
    hdr h = {.version = CACHE_VERSION, .fingerprint = d->fingerprint,
             .n_layers = (uint32_t)kp->n_layers, .k_width = (uint32_t)kp->k_width,
             .v_width = (uint32_t)kp->v_width, .elem = 4, .n_tokens = (uint32_t)n,
             .payload = want, .checksum = fnv(FNV_INIT, data, size)};
    unsigned char b[HDR_BYTES];
    hdr_write(b, &h);
    ds_buf path = {0}, tmp = {0};
    ds_buf_printf(&path, "%s/%016llx-%016llx.dspc", d->dir, (unsigned long long)d->fingerprint,
                  (unsigned long long)fnv(FNV_INIT, data, 4 * n));
    ds_buf_printf(&tmp, "%s.tmp.%ld", path.data, (long)getpid());
    int  fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write_all(fd, b, HDR_BYTES) && write_all(fd, data, size) && !fsync(fd);
    if (fd >= 0) close(fd);
    ok = ok && !rename(tmp.data, path.data);
    if (!ok) {
        ds_log(DS_LOG_WARN, "prefix cache: cannot write %s: %s", path.data, strerror(errno));
        unlink(tmp.data);
    } else {
        int dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        ds_tokens t = {0};
        t.ids       = ds_xmalloc(n * sizeof(int32_t));
        memcpy(t.ids, tokens, n * sizeof(int32_t));
        t.n = t.cap = n;
        // An entry whose tokens are a prefix of these is now redundant.
        for (size_t i = d->n; i-- > 0;)
            if (d->items[i].tokens.n <= n &&
                tokens_lcp(&d->items[i].tokens, tokens, n) == d->items[i].tokens.n &&
                strcmp(d->items[i].path, path.data))
                drop_entry(d, i, true);
        add_entry(d, path.data, &t);
        while (d->n > (size_t)d->max_files) drop_entry(d, 0, true);
        st->disk_cache_writes++;
    }
    free(data);
    ds_buf_free(&path);
    ds_buf_free(&tmp);
}
