// hub_repo.c - names, the `pull` spec, a repository's listing and the choice of a model.
//
// Everything here is pure (no network, no files), so the rules that keep server-provided
// strings from becoming paths are tested directly. A listing is the JSON of either
// /api/models/{repo}?blobs=true (huggingface_hub's model_info: "siblings" with "rfilename",
// "size", "lfs": {"sha256", "size"}) or /api/models/{repo}/tree/{rev} (an array of
// {"type": "file", "path", "size", "lfs": {"oid"}}, where lfs.oid is the SHA-256).
// .gguf files are grouped into models: a split model's parts are
// PREFIX-00001-of-0000N.gguf ... PREFIX-0000N-of-0000N.gguf in one folder.
#include "ds/hub.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ds/alloc.h"
#include "ds/log.h"

// More entries than any model repository has; a bound on what a hostile listing costs.
#define DS_HUB_MAX_FILES 100000

// ---- names ----

static bool repo_part_valid(const char *s, size_t n) {
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') return false;
        if (c == '.' && i + 1 < n && s[i + 1] == '.') return false;
    }
    return true;
}

bool ds_hub_repo_id_valid(const char *repo) {
    const char *slash = strchr(repo, '/');
    if (!slash) return false;
    const char *name = slash + 1;
    return repo_part_valid(repo, (size_t)(slash - repo)) && !strchr(name, '/') &&
           repo_part_valid(name, strlen(name));
}

static bool file_char_ok(unsigned char c) {
    return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' || c == '(' || c == ')';
}

bool ds_hub_file_path_valid(const char *path) {
    size_t n = strlen(path), start = 0;
    int    n_comp = 0;
    if (n == 0 || n > 1000) return false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && path[i] != '/') {
            if (!file_char_ok((unsigned char)path[i])) return false;
            continue;
        }
        size_t len = i - start;
        // Empty (leading '/', "//", trailing '/'), hidden, "." and ".." are all refused.
        if (len == 0 || len > 255 || path[start] == '.' || ++n_comp > 8) return false;
        start = i + 1;
    }
    return true;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// ---- the spec: REPO, REPO/FILE, REPO:TAG ----

ds_status ds_hub_spec_parse(const char *s, ds_hub_spec *out) {
    memset(out, 0, sizeof *out);
    // Accept what people paste from the web site.
    static const char *const prefixes[] = {"https://huggingface.co/", "http://huggingface.co/",
                                           "huggingface.co/", "hf.co/"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t k = strlen(prefixes[i]);
        if (!strncmp(s, prefixes[i], k)) {
            s += k;
            break;
        }
    }
    const char *slash = strchr(s, '/');
    if (!slash) return ds_fail(DS_EINVAL, "'%s': expected OWNER/NAME[/FILE|:TAG]", s);
    const char *second = strchr(slash + 1, '/');
    size_t      repo_len = second ? (size_t)(second - s) : strlen(s);
    const char *colon = memchr(s, ':', repo_len);
    if (colon) {
        const char *tag = colon + 1;
        if (second) return ds_fail(DS_EINVAL, "'%s': give either /FILE or :TAG, not both", s);
        size_t tn = strlen(tag);
        if (tn == 0 || tn >= sizeof out->tag)
            return ds_fail(DS_EINVAL, "'%s': the tag after ':' must be 1 to %zu characters", s,
                           sizeof out->tag - 1);
        for (size_t i = 0; i < tn; i++)
            if (!isalnum((unsigned char)tag[i]) && !strchr("._-", tag[i]))
                return ds_fail(DS_EINVAL, "'%s': a tag may only hold letters, digits, '.', '_', '-'", s);
        memcpy(out->tag, tag, tn + 1);
        repo_len = (size_t)(colon - s);
    }
    if (repo_len >= sizeof out->repo) return ds_fail(DS_EINVAL, "'%.40s...': repository name too long", s);
    memcpy(out->repo, s, repo_len);
    out->repo[repo_len] = '\0';
    if (!ds_hub_repo_id_valid(out->repo))
        return ds_fail(DS_EINVAL, "'%s': not a repository name (OWNER/NAME of letters, digits, '.', '_', '-')",
                       out->repo);
    if (second) {
        const char *file = second + 1;
        if (strlen(file) >= sizeof out->file || !ds_hub_file_path_valid(file))
            return ds_fail(DS_EINVAL, "'%s': not a safe file path (folders and names of letters, digits, "
                           "'.', '_', '-', '+', '(', ')', not starting with '.')", file);
        if (!ends_with(file, ".gguf")) return ds_fail(DS_EINVAL, "'%s': only .gguf files can be pulled", file);
        memcpy(out->file, file, strlen(file) + 1);
    }
    return DS_OK;
}

// ---- parsing a listing ----

static bool parse_sha256(json_t *v, char out[65]) {
    const char *s = json_string_value(v);
    if (!s || strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i])) return false;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = '\0';
    return true;
}

static int64_t parse_size(json_t *v) {
    // 2^50 bytes is far beyond any model and keeps sums of parts from overflowing.
    if (!json_is_integer(v)) return -1;
    json_int_t n = json_integer_value(v);
    return n >= 0 && n < ((json_int_t)1 << 50) ? (int64_t)n : -1;
}

static void add_entry(ds_hub_repo *r, size_t *cap, json_t *e, bool tree) {
    if (!json_is_object(e)) return;
    if (tree) {
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!type || strcmp(type, "file")) return;
    }
    const char *path = json_string_value(json_object_get(e, tree ? "path" : "rfilename"));
    if (!path) return;
    if (!ds_hub_file_path_valid(path)) {
        ds_log(DS_LOG_DEBUG, "%s: skipping a listed file with an unsafe name", r->id);
        r->n_skipped++;
        return;
    }
    if (r->n_files >= DS_HUB_MAX_FILES) {
        r->n_skipped++;
        return;
    }
    if (r->n_files == *cap) {
        *cap      = *cap ? *cap * 2 : 16;
        r->files  = ds_xrealloc(r->files, *cap * sizeof *r->files);
    }
    ds_hub_file *f = &r->files[r->n_files++];
    memset(f, 0, sizeof *f);
    f->path    = ds_xstrdup(path);
    json_t *lfs = json_object_get(e, "lfs");
    f->size    = parse_size(json_object_get(e, "size"));
    if (f->size < 0 && json_is_object(lfs)) f->size = parse_size(json_object_get(lfs, "size"));
    if (json_is_object(lfs) && !parse_sha256(json_object_get(lfs, "sha256"), f->sha256) &&
        !parse_sha256(json_object_get(lfs, "oid"), f->sha256))
        f->sha256[0] = '\0';
}

// Splits a base name NAME-00001-of-00003.gguf into (prefix length, part 1, count 3).
static bool split_name(const char *base, size_t *prefix_len, int *no, int *count) {
    static const char tail[] = "-00000-of-00000.gguf";
    size_t n = strlen(base), k = sizeof tail - 1;
    if (n <= k || strcmp(base + n - 5, ".gguf")) return false;
    const char *t = base + n - k;
    for (size_t i = 0; i < k - 5; i++) {
        bool digit = tail[i] == '0';
        if (digit ? !isdigit((unsigned char)t[i]) : t[i] != tail[i]) return false;
    }
    *no         = atoi(t + 1);
    *count      = atoi(t + 10);
    *prefix_len = n - k;
    return *no >= 1 && *no <= *count;
}

// A .gguf file on its way into a model: `stem` is its path up to the part suffix (or .gguf).
typedef struct candidate {
    const char *path;
    size_t      idx, stem_len;
    int         no, count;
} candidate;

static int cmp_candidate(const void *pa, const void *pb) {
    const candidate *a = pa, *b = pb;
    size_t n = a->stem_len < b->stem_len ? a->stem_len : b->stem_len;
    int    c = memcmp(a->path, b->path, n);
    if (c) return c;
    if (a->stem_len != b->stem_len) return a->stem_len < b->stem_len ? -1 : 1;
    if (a->count != b->count) return a->count < b->count ? -1 : 1;
    if (a->no != b->no) return a->no < b->no ? -1 : 1;
    return strcmp(a->path, b->path); // 0 only for the same path listed twice
}

static bool same_model(const candidate *a, const candidate *b) {
    return a->count > 1 && a->count == b->count && a->stem_len == b->stem_len &&
           !memcmp(a->path, b->path, a->stem_len);
}

// Sorting by (stem, count, part) puts the parts of a split model next to each other, in order,
// in O(n log n) however hostile the listing.
static void group_models(ds_hub_repo *r) {
    candidate *c = ds_xcalloc(r->n_files ? r->n_files : 1, sizeof *c);
    size_t     n = 0;
    for (size_t i = 0; i < r->n_files; i++) {
        const char *path = r->files[i].path, *base = base_name(path);
        if (!ends_with(base, ".gguf")) continue;
        candidate *k = &c[n++];
        size_t     plen;
        *k = (candidate){.path = path, .idx = i, .no = 1, .count = 1};
        if (!split_name(base, &plen, &k->no, &k->count)) plen = strlen(base) - 5, k->no = k->count = 1;
        k->stem_len = (size_t)(base - path) + plen;
    }
    qsort(c, n, sizeof *c, cmp_candidate);
    r->models = ds_xcalloc(n ? n : 1, sizeof *r->models);
    // A listing may name a file twice; the copy goes (sorting made them neighbours).
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!kept || cmp_candidate(&c[kept - 1], &c[i])) c[kept++] = c[i];
    n = kept;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_model(&c[i], &c[j])) j++;
        ds_hub_model *md = &r->models[r->n_models++];
        const char   *base = base_name(c[i].path);
        md->name    = ds_xstrndup(base, c[i].stem_len - (size_t)(base - c[i].path));
        md->n_split = c[i].count;
        md->n_parts = (int)(j - i);
        md->parts   = ds_xcalloc(j - i, sizeof *md->parts);
        md->aux     = !strncasecmp(base, "mmproj", 6);
        md->size    = 0;
        for (size_t p = i; p < j; p++) {
            int64_t sz = r->files[c[p].idx].size;
            md->parts[p - i] = c[p].idx;
            md->size         = sz < 0 || md->size < 0 ? -1 : md->size + sz;
        }
        i = j;
    }
    free(c);
}

ds_status ds_hub_repo_parse(const char *repo_id, const char *json, size_t len, ds_hub_repo **out) {
    *out = NULL;
    json_error_t jerr;
    json_t      *root = json_loadb(json, len, 0, &jerr);
    if (!root) return ds_fail(DS_EFORMAT, "%s: listing is not JSON (line %d: %s)", repo_id, jerr.line, jerr.text);
    bool    tree = json_is_array(root);
    json_t *list = tree ? root : json_object_get(root, "siblings");
    if (!json_is_array(list)) {
        json_decref(root);
        return ds_fail(DS_EFORMAT, "%s: listing has no \"siblings\" array", repo_id);
    }
    ds_hub_repo *r = ds_xcalloc(1, sizeof *r);
    r->id          = ds_xstrdup(repo_id);
    size_t cap = 0, i;
    json_t *e;
    json_array_foreach(list, i, e) add_entry(r, &cap, e, tree);
    json_decref(root);
    group_models(r);
    *out = r;
    return DS_OK;
}

void ds_hub_repo_free(ds_hub_repo *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_files; i++) free(r->files[i].path);
    for (size_t m = 0; m < r->n_models; m++) free(r->models[m].name), free(r->models[m].parts);
    free(r->files);
    free(r->models);
    free(r->id);
    free(r);
}

// ---- choosing a model ----

static bool is_boundary(char c) { return c == '\0' || c == '-' || c == '.' || c == '/'; }

// Whether `tag` occurs in `path` (case-insensitively) with a boundary on both sides.
static bool tag_matches(const char *path, const char *tag) {
    size_t n = strlen(path), k = strlen(tag);
    for (size_t i = 0; k && i + k <= n; i++) {
        if ((i == 0 || is_boundary(path[i - 1])) && is_boundary(path[i + k]) && !strncasecmp(path + i, tag, k))
            return true;
    }
    return false;
}

static bool model_has_path(const ds_hub_repo *r, const ds_hub_model *md, const char *file, bool by_base) {
    for (int p = 0; p < md->n_parts; p++) {
        const char *path = r->files[md->parts[p]].path;
        if (!strcmp(by_base ? base_name(path) : path, file)) return true;
    }
    return false;
}

static ds_status check_complete(const ds_hub_repo *r, size_t m) {
    const ds_hub_model *md = &r->models[m];
    if (md->n_parts == md->n_split) return DS_OK;
    return ds_fail(DS_EFORMAT, "%s: model %s has %d parts but the listing shows only %d", r->id, md->name,
                   md->n_split, md->n_parts);
}

ds_status ds_hub_select(const ds_hub_repo *r, const char *file, const char *tag, size_t *model) {
    size_t hit = SIZE_MAX, n_hits = 0;
    if (file && *file) {
        // The exact path first; then the base name alone, if only one model has it.
        for (int pass = 0; pass < 2 && !n_hits; pass++)
            for (size_t m = 0; m < r->n_models; m++)
                if (model_has_path(r, &r->models[m], pass ? base_name(file) : file, pass == 1))
                    hit = m, n_hits++;
        if (!n_hits) return ds_fail(DS_ENOTFOUND, "%s: no file %s in the repository", r->id, file);
        if (n_hits > 1) return ds_fail(DS_EINVAL, "%s: several files are named %s; give the folder too",
                                       r->id, base_name(file));
    } else if (tag && *tag) {
        for (size_t m = 0; m < r->n_models; m++) {
            const ds_hub_model *md = &r->models[m];
            for (int p = 0; p < md->n_parts; p++) {
                if (tag_matches(r->files[md->parts[p]].path, tag)) {
                    hit = m, n_hits++;
                    break;
                }
            }
        }
        if (!n_hits) return ds_fail(DS_ENOTFOUND, "%s: no .gguf file matches the tag %s", r->id, tag);
        if (n_hits > 1) return ds_fail(DS_EINVAL, "%s: %zu models match the tag %s; choose one", r->id, n_hits, tag);
    } else {
        for (size_t m = 0; m < r->n_models; m++)
            if (!r->models[m].aux) hit = m, n_hits++;
        if (!n_hits) return ds_fail(DS_ENOTFOUND, "%s: the repository has no .gguf model", r->id);
        if (n_hits > 1)
            return ds_fail(DS_EINVAL, "%s has %zu models; choose one with %s:TAG or %s/FILE", r->id, n_hits,
                           r->id, r->id);
    }
    *model = hit;
    return check_complete(r, hit);
}
