// hub_download.c - one file from the hub into the models folder: resume, verify, rename.
//
// Data flow: DIR/NAME.part is opened (created) and locked, its bytes are hashed, then a GET
// with "Range: bytes=<size>-" appends the rest while hashing. A 206 answer must start where
// the file ends; a 200 answer (the server ignored the range) starts the file over; a 416
// means the part already holds everything. A broken connection is retried from the new end,
// up to max_retries times in a row without progress. At the end the size must equal the
// listing's (or the server's) and the SHA-256 the listing's (or the hub's X-Linked-Etag, the
// LFS object id); then fsync and rename over DIR/NAME. A mismatch deletes NAME.part: those
// bytes can never become the right file. Any other failure keeps it for the next run.
#include "hub/hub_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "ds/alloc.h"
#include "hub/sha256.h"

#define HUB_PATH_MAX 4096

// ---- files ----

static ds_status make_dirs(const char *dir) {
    char   path[HUB_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) return ds_fail(DS_EINVAL, "models folder path is empty or too long");
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c  = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return ds_fail(DS_EIO, "%s: cannot create the folder: %s", path, strerror(errno));
        path[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return ds_fail(DS_EIO, "%s: not a folder", dir);
    return DS_OK;
}

static ds_status write_all(int fd, const char *data, size_t n, const char *path) {
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return ds_fail(DS_EIO, "%s: write failed: %s", path, strerror(errno));
        data += w, n -= (size_t)w;
    }
    return DS_OK;
}

// Hashes the first `size` bytes of fd and leaves the offset at the end.
static ds_status hash_existing(int fd, int64_t size, ds_sha256 *sha, const char *path) {
    enum { CHUNK = 1 << 20 };
    char *buf = ds_xmalloc(CHUNK);
    ds_status st = DS_OK;
    if (lseek(fd, 0, SEEK_SET) != 0) st = ds_fail(DS_EIO, "%s: seek failed: %s", path, strerror(errno));
    for (int64_t left = size; !st && left > 0;) {
        ssize_t r = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) st = ds_fail(DS_EIO, "%s: read failed: %s", path, r ? strerror(errno) : "file shrank");
        else ds_sha256_update(sha, buf, (size_t)r), left -= r;
    }
    free(buf);
    if (!st && lseek(fd, 0, SEEK_END) != (off_t)size) st = ds_fail(DS_EIO, "%s: seek failed", path);
    return st;
}

static ds_status restart_file(int fd, ds_sha256 *sha, const char *path) {
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        return ds_fail(DS_EIO, "%s: cannot truncate: %s", path, strerror(errno));
    ds_sha256_init(sha);
    return DS_OK;
}

// ---- one transfer ----

typedef struct xfer {
    const hub_conn *c;
    const char     *name; // base name, for progress
    const char     *part; // NAME.part path, for messages
    int             fd;
    ds_sha256       sha;
    int64_t         offset;  // file size when this request started (its Range start)
    int64_t         written; // file size now
    int64_t         expect;  // final size; -1 until someone says
    bool            body_started;
    ds_status       st; // set by a callback that stops the transfer
    // facts from the headers of the latest response (reset at each status line)
    long    code;
    int64_t range_start, range_total, content_length;
    int64_t linked_size; // X-Linked-Size, kept across the redirect that carries it
    char    linked_etag[80];
} xfer;

static int64_t parse_i64(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    if (!isdigit((unsigned char)*s)) return -1;
    int64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static bool header_is(const char *line, size_t n, const char *name, const char **value) {
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) || line[k] != ':') return false;
    *value = line + k + 1;
    return true;
}

// Header lines are not NUL-terminated; copy each (bounded) before parsing it.
static size_t on_header(char *data, size_t size, size_t count, void *user) {
    xfer  *x = user;
    size_t n = size * count;
    char   line[256];
    size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, data, k);
    line[k] = '\0';
    const char *v;
    if (!strncmp(line, "HTTP/", 5)) {
        const char *sp = strchr(line, ' ');
        x->code        = sp ? (long)parse_i64(sp) : 0;
        x->range_start = x->range_total = x->content_length = -1;
    } else if (header_is(line, k, "content-length", &v)) {
        x->content_length = parse_i64(v);
    } else if (header_is(line, k, "x-linked-size", &v)) {
        x->linked_size = parse_i64(v);
    } else if (header_is(line, k, "x-linked-etag", &v)) {
        while (*v == ' ' || *v == '"') v++;
        size_t m = strcspn(v, "\"\r\n ");
        if (m < sizeof x->linked_etag) memcpy(x->linked_etag, v, m), x->linked_etag[m] = '\0';
    } else if (header_is(line, k, "content-range", &v)) {
        // "bytes START-END/TOTAL" or "bytes */TOTAL" (a 416 answer)
        while (*v == ' ') v++;
        if (!strncasecmp(v, "bytes ", 6)) {
            x->range_start    = v[6] == '*' ? -1 : parse_i64(v + 6);
            const char *slash = strchr(v, '/');
            x->range_total    = slash ? parse_i64(slash + 1) : -1;
        }
    }
    return n;
}

// The first bytes of a successful answer: decide whether they continue the file.
static ds_status body_start(xfer *x) {
    int64_t total = -1;
    if (x->code == 206) {
        if (x->range_start != x->offset)
            return ds_fail(DS_EIO, "%s: the server resumed at byte %" PRId64 ", not %" PRId64, x->name,
                           x->range_start, x->offset);
        total = x->range_total;
    } else { // 200: the whole file, whatever we asked for
        if (x->offset > 0) {
            ds_status st = restart_file(x->fd, &x->sha, x->part);
            if (st) return st;
            x->offset = x->written = 0;
        }
        total = x->content_length;
    }
    if (total < 0) total = x->linked_size;
    if (total >= 0 && x->expect >= 0 && total != x->expect)
        return ds_fail(DS_EFORMAT, "%s: the server sends %" PRId64 " bytes but the listing says %" PRId64,
                       x->name, total, x->expect);
    if (x->expect < 0) x->expect = total;
    return DS_OK;
}

static size_t on_body(char *data, size_t size, size_t count, void *user) {
    xfer  *x = user;
    size_t n = size * count;
    if (x->code != 200 && x->code != 206) return n; // an error page: read and drop it
    if (!x->body_started) {
        x->body_started = true;
        if ((x->st = body_start(x)) != DS_OK) return 0;
    }
    if (x->expect >= 0 && x->written + (int64_t)n > x->expect) {
        x->st = ds_fail(DS_EFORMAT, "%s: the server sends more than the %" PRId64 " bytes announced", x->name,
                        x->expect);
        return 0;
    }
    if ((x->st = write_all(x->fd, data, n, x->part)) != DS_OK) return 0;
    ds_sha256_update(&x->sha, data, n);
    x->written += (int64_t)n;
    return n;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const xfer *x = user;
    if (x->c->p.progress) x->c->p.progress(x->c->p.progress_user, x->name, x->written, x->expect);
    return 0;
}

// One GET from the current end of the file. Returns the curl code; *code is the HTTP status.
static CURLcode transfer(xfer *x, const char *url, long *code, char *errbuf) {
    CURL *h = hub_easy_new(x->c, url, errbuf);
    if (!h) return CURLE_OUT_OF_MEMORY;
    char range[48];
    x->offset       = x->written;
    x->body_started = false;
    x->code         = 0;
    x->st           = DS_OK;
    if (x->offset > 0) {
        snprintf(range, sizeof range, "%" PRId64 "-", x->offset);
        curl_easy_setopt(h, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(h);
    *code       = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
    curl_easy_cleanup(h);
    return rc;
}

// ---- the retry loop ----

typedef enum outcome { DONE, RETRY, FAIL, MISMATCH } outcome;

// Judges one transfer. 416 with the file complete counts as done.
static outcome judge(xfer *x, CURLcode rc, long code, const char *url, const char *errbuf, bool *restarted) {
    if (x->st != DS_OK) return x->st == DS_EFORMAT ? MISMATCH : FAIL;
    if (rc == CURLE_OK && (code == 200 || code == 206)) {
        if (x->expect < 0 || x->written == x->expect) return DONE;
        x->st = ds_fail(DS_EIO, "%s: the transfer ended at byte %" PRId64 " of %" PRId64, x->name, x->written,
                        x->expect);
        return RETRY;
    }
    if (rc == CURLE_OK && code == 416 && x->offset > 0) {
        if (x->range_total == x->offset && (x->expect < 0 || x->expect == x->offset)) {
            if (x->expect < 0) x->expect = x->offset;
            return DONE;
        }
        // The partial file is longer than the file: start over, once.
        if (*restarted) {
            x->st = ds_fail(DS_EIO, "%s: the server refuses the range %" PRId64 "-", x->name, x->offset);
            return FAIL;
        }
        if ((x->st = restart_file(x->fd, &x->sha, x->part)) != DS_OK) return FAIL;
        *restarted = true;
        x->written = 0;
        x->st      = ds_fail(DS_EIO, "%s: the partial file did not fit; starting over", x->name);
        return RETRY;
    }
    if (rc == CURLE_OK && code == 404) {
        x->st = ds_fail(DS_ENOTFOUND, "%s: not found (HTTP 404)", url);
        return FAIL;
    }
    if (rc == CURLE_OK && (code == 401 || code == 403)) {
        x->st = ds_fail(DS_EIO, "%s: access denied (HTTP %ld); a gated or private repository needs a token "
                        "in HF_TOKEN", url, code);
        return FAIL;
    }
    if (rc == CURLE_OK) x->st = ds_fail(DS_EIO, "%s: HTTP %ld", url, code);
    else x->st = ds_fail(DS_EIO, "%s: %s", x->name, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return hub_transient(rc, code) ? RETRY : FAIL;
}

static outcome fetch(xfer *x, const char *url, ds_hub_download_info *info) {
    char    errbuf[CURL_ERROR_SIZE];
    long    wait = x->c->p.retry_delay_ms;
    int     fails = 0;
    bool    restarted = false;
    for (;;) {
        int64_t  before = x->written;
        long     code;
        CURLcode rc = transfer(x, url, &code, errbuf);
        if (x->written > x->offset) info->fetched += x->written - x->offset;
        outcome o = judge(x, rc, code, url, errbuf, &restarted);
        if (o != RETRY) return o;
        // Progress of 1 MiB or more makes the connection worth more tries.
        if (x->written - before >= (1 << 20)) fails = 0, wait = x->c->p.retry_delay_ms;
        if (++fails > x->c->p.max_retries) return FAIL;
        info->retries++;
        struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        wait = wait < 15000 ? wait * 2 : 30000;
    }
}

static bool is_sha256_hex(const char *s) {
    if (strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
}

// Size and checksum; on success fsync and rename NAME.part over NAME.
static ds_status finish(xfer *x, const ds_hub_file *f, const char *final, ds_hub_download_info *info) {
    if (x->expect >= 0 && x->written != x->expect)
        return ds_fail(DS_EFORMAT, "%s: got %" PRId64 " bytes, expected %" PRId64, x->name, x->written, x->expect);
    char want[65] = "", got[65];
    if (f->sha256[0]) memcpy(want, f->sha256, sizeof want);
    else if (is_sha256_hex(x->linked_etag))
        for (int i = 0; i < 65; i++) want[i] = (char)tolower((unsigned char)x->linked_etag[i]);
    ds_sha256_final_hex(&x->sha, got);
    if (want[0] && strcmp(want, got))
        return ds_fail(DS_EFORMAT, "%s: SHA-256 mismatch: got %s, the hub says %s", x->name, got, want);
    info->sha256_checked = want[0] != '\0';
    if (fsync(x->fd) != 0) return ds_fail(DS_EIO, "%s: fsync failed: %s", x->part, strerror(errno));
    if (rename(x->part, final) != 0)
        return ds_fail(DS_EIO, "%s: cannot rename to %s: %s", x->part, final, strerror(errno));
    return DS_OK;
}

// Fails early when the folder cannot hold the rest of the file (when the size is known and the
// file system says how much is free).
static ds_status check_space(const char *dir, int64_t need) {
    struct statvfs vs;
    if (need <= 0 || statvfs(dir, &vs) != 0 || vs.f_frsize == 0) return DS_OK;
    double free_bytes = (double)vs.f_bavail * (double)vs.f_frsize;
    if (free_bytes >= (double)need) return DS_OK;
    return ds_fail(DS_EIO, "%s: %.2f GiB more are needed but only %.2f GiB are free", dir,
                   (double)need / (1 << 30), free_bytes / (1 << 30));
}

// Opens and locks NAME.part, so that two pulls of one file cannot interleave their writes.
static ds_status open_part(const char *part, int *fd_out) {
    int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ds_fail(DS_EIO, "%s: cannot open: %s", part, strerror(errno));
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lk) != 0) {
        close(fd);
        return ds_fail(DS_EIO, "%s: another download of this file is running", part);
    }
    *fd_out = fd;
    return DS_OK;
}

ds_status ds_hub_download(const ds_hub_params *p, const char *repo_id, const ds_hub_file *f,
                          const char *dir, char *path_out, size_t cap, ds_hub_download_info *info_out) {
    ds_hub_download_info info = {0};
    if (!ds_hub_repo_id_valid(repo_id)) return ds_fail(DS_EINVAL, "'%s': not a repository name", repo_id);
    if (!ds_hub_file_path_valid(f->path)) return ds_fail(DS_EINVAL, "refusing the unsafe file name '%s'", f->path);
    const char *base = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
    char        final[HUB_PATH_MAX], part[HUB_PATH_MAX], url[HUB_PATH_MAX];
    if ((size_t)snprintf(final, sizeof final, "%s/%s", dir, base) >= sizeof final ||
        (size_t)snprintf(part, sizeof part, "%s.part", final) >= sizeof part)
        return ds_fail(DS_EINVAL, "%s: path too long", base);
    if (path_out && cap) {
        if (strlen(final) >= cap) return ds_fail(DS_EINVAL, "%s: path too long", final);
        memcpy(path_out, final, strlen(final) + 1);
    }
    struct stat sb;
    if (stat(final, &sb) == 0 && S_ISREG(sb.st_mode) && (f->size < 0 || sb.st_size == f->size)) {
        info.present = true;
        if (info_out) *info_out = info;
        return DS_OK;
    }
    hub_conn  c;
    ds_status st = hub_conn_init(&c, p);
    if (!st) st = hub_file_url(&c, repo_id, f->path, url, sizeof url);
    if (!st) st = make_dirs(dir);
    xfer x = {.c = &c, .name = base, .part = part, .fd = -1, .expect = f->size, .linked_size = -1};
    if (!st) st = open_part(part, &x.fd);
    if (st) {
        hub_conn_free(&c);
        return st;
    }
    ds_sha256_init(&x.sha);
    struct stat ps;
    if (fstat(x.fd, &ps) != 0) st = ds_fail(DS_EIO, "%s: stat failed: %s", part, strerror(errno));
    else if (f->size >= 0 && ps.st_size > f->size) st = restart_file(x.fd, &x.sha, part);
    else if (ps.st_size > 0) st = hash_existing(x.fd, ps.st_size, &x.sha, part), x.written = ps.st_size;
    info.resumed = x.written;
    if (!st && f->size >= 0) st = check_space(dir, f->size - x.written);
    outcome o    = st ? FAIL : fetch(&x, url, &info);
    if (o == DONE) {
        st = finish(&x, f, final, &info);
        o  = st == DS_EFORMAT ? MISMATCH : st ? FAIL : DONE;
    } else if (!st) {
        st = x.st != DS_OK ? x.st : ds_fail(DS_EIO, "%s: download failed", base);
    }
    // Add to the message what became of the bytes: wrong ones go, a good start stays.
    if (o == MISMATCH) {
        st = ds_fail(DS_EFORMAT, "%s; the partial download was deleted", ds_errmsg());
        unlink(part);
    } else if (o == FAIL && x.written > 0) {
        st = ds_fail(st, "%s (%" PRId64 " bytes kept in %s; pull again to resume)", ds_errmsg(), x.written, part);
    } else if (o == FAIL) {
        unlink(part);
    }
    if (c.p.progress && o == DONE) c.p.progress(c.p.progress_user, base, x.written, x.written);
    close(x.fd);
    hub_conn_free(&c);
    if (info_out) *info_out = info;
    return st;
}
