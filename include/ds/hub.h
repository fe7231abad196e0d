// hub.h - models on disk and models from a Hugging Face-style hub (`deepseek pull`, `list`, -m).
//
// The models folder is $DS_MODELS, else $XDG_DATA_HOME/deepseek/models, else
// ~/.local/share/deepseek/models. It is flat: each model is NAME.gguf, or the parts
// NAME-00001-of-0000N.gguf ... of a split one, stored under the file's own base name.
// `-m NAME` resolves to a file of that folder (ds_model_resolve) unless NAME is a path.
//
// The hub side speaks the Hugging Face API (huggingface_hub's model_info and
// hf_hub_download use the same two requests):
//   GET {base}/api/models/{owner}/{name}[/revision/{rev}]?blobs=true
//       -> {"siblings": [{"rfilename": "...", "size": N, "lfs": {"sha256": "...", ...}}]}
//   GET {base}/{owner}/{name}/resolve/{rev}/{rfilename}   (redirects, Range, X-Linked-Size)
// Every string the server sends is untrusted: file names are checked component by component
// (no "..", no leading '.', no absolute paths, a small character set) before any use, and only
// a file's base name ever becomes a local path (security.md §1c, the Ollama traversal CVEs).
// Downloads go to NAME.part beside the target, resume from it with a Range request, check
// the size and the SHA-256 the listing gives, and are renamed over NAME only when both
// match; a mismatch deletes the partial file. Every network operation has a timeout.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/err.h"

// ---- the local models folder ----

// Writes the models folder's path into buf (NUL-terminated). DS_EINVAL when neither
// $DS_MODELS nor $HOME is set or the path does not fit in cap. The folder need not exist.
ds_status ds_models_dir(char *buf, size_t cap);

// Resolves what a user gave to -m: an existing file is returned as is; a bare NAME (no '/')
// is looked up in the models folder as NAME, NAME.gguf or NAME-00001-of-NNNNN.gguf.
// DS_ENOTFOUND (message names the folder) when neither works; DS_EINVAL if buf is too small.
ds_status ds_model_resolve(const char *name_or_path, char *buf, size_t cap);

// One model of the folder, as `deepseek list` shows it.
typedef struct ds_model_entry {
    char   *name;   // file name without .gguf (and without -00001-of-0000N for split models)
    char   *path;   // full path of the file (the first part)
    char   *arch;   // general.architecture, or NULL when the file could not be read
    char   *type;   // file type name ("Q4_K_M"; the dominant tensor type when the key is absent)
    char   *error;  // NULL, or why the file could not be read (one line)
    int     n_parts;
    int64_t size;   // bytes of all parts on disk
} ds_model_entry;

// Lists the .gguf models of `dir`, sorted by name; later parts of split models are folded
// into their first part. A missing folder gives zero entries. Files that fail to open are
// listed with `error` set. DS_EIO only when the folder exists but cannot be read.
ds_status ds_models_list(const char *dir, ds_model_entry **out, size_t *n_out);
void      ds_models_list_free(ds_model_entry *e, size_t n); // NULL is a no-op

// llama.cpp's name for a general.file_type value ("Q4_K_M"), or NULL if unknown.
const char *ds_file_type_name(uint32_t file_type);

// ---- names ----

// True when `repo` is "owner/name" with each part made of [A-Za-z0-9._-], not starting with
// '.' or '-', without "..", at most 96 bytes each.
bool ds_hub_repo_id_valid(const char *repo);
// True when a repository file path is safe to request and to take a base name from:
// '/'-separated components of [A-Za-z0-9._+()-], none empty or starting with '.', <= 255
// bytes each, at most 8 components.
bool ds_hub_file_path_valid(const char *path);

// What `deepseek pull` was given: REPO, REPO/FILE (FILE may contain folders), REPO:TAG.
typedef struct ds_hub_spec {
    char repo[200];
    char file[512]; // "" when absent
    char tag[64];   // "" when absent
} ds_hub_spec;

// Parses and validates a spec. DS_EINVAL with a message for a bad repo, file or tag.
ds_status ds_hub_spec_parse(const char *s, ds_hub_spec *out);

// ---- a repository's listing ----

typedef struct ds_hub_file {
    char   *path;       // repository-relative, valid (ds_hub_file_path_valid)
    int64_t size;       // bytes; -1 when the listing does not say
    char    sha256[65]; // lowercase hex, "" when the listing does not say
} ds_hub_file;

// A model of the repository: one .gguf file, or all the parts of a split one.
typedef struct ds_hub_model {
    char   *name;    // local base name without .gguf and the -00001-of-0000N suffix
    size_t *parts;   // indices into files[] of the parts the listing has, in part order
    int     n_parts; // how many the listing has (complete when n_parts == n_split)
    int     n_split; // parts the names announce (1 for a single file)
    int64_t size;    // total bytes, -1 if some size is unknown
    bool    aux;     // a projector (mmproj-*) that is never picked without being named
} ds_hub_model;

typedef struct ds_hub_repo {
    char         *id;
    ds_hub_file  *files;
    size_t        n_files;
    ds_hub_model *models;
    size_t        n_models;
    size_t        n_skipped; // entries dropped because their names were unsafe
} ds_hub_repo;

// Builds a listing from a model_info JSON body ({"siblings": [...]}) or a tree listing
// (a JSON array of {"type", "path", "size", "lfs": {"oid"}}). Unsafe names are skipped
// (counted in n_skipped). DS_EFORMAT when the body is not such JSON.
ds_status ds_hub_repo_parse(const char *repo_id, const char *json, size_t len, ds_hub_repo **out);
void      ds_hub_repo_free(ds_hub_repo *r); // NULL is a no-op

// Picks the model to pull: by FILE (any part of a split model picks all of its parts), by
// TAG (matched case-insensitively against the file name between '-', '.', '/' or the ends),
// or, with neither, the only model that is not a projector. DS_ENOTFOUND when nothing
// matches; DS_EINVAL when several do (the caller lists r->models to let the user choose);
// DS_EFORMAT when a split model misses parts in the listing.
ds_status ds_hub_select(const ds_hub_repo *r, const char *file, const char *tag, size_t *model);

// ---- HTTP ----

// Progress of one file: `done` of `total` bytes (total -1 if unknown). Called from inside
// the transfer, often; keep it cheap.
typedef void (*ds_hub_progress_fn)(void *user, const char *name, int64_t done, int64_t total);

typedef struct ds_hub_params {
    const char        *base_url;        // NULL: $DS_HUB_URL, else https://huggingface.co
    const char        *revision;        // NULL: "main"
    const char        *token;           // NULL: $HF_TOKEN (sent as a bearer token), if set
    long               connect_timeout; // seconds to connect (default 30)
    long               stall_timeout;   // seconds below 1 KiB/s before a transfer is given up (60)
    int                max_retries;     // reconnects after a transfer breaks (default 5)
    long               retry_delay_ms;  // first wait before a reconnect, doubled each time (1000)
    ds_hub_progress_fn progress;        // may be NULL
    void              *progress_user;
} ds_hub_params;

ds_hub_params ds_hub_params_default(void);

// Fetches and parses a repository's listing. DS_ENOTFOUND for an unknown repository,
// DS_EIO for network failures and other HTTP errors (the message names the URL and status).
ds_status ds_hub_repo_fetch(const ds_hub_params *p, const char *repo_id, ds_hub_repo **out);

// What a download did.
typedef struct ds_hub_download_info {
    bool    present; // the file was already there with the right size; nothing was fetched
    int64_t resumed; // bytes reused from an earlier NAME.part (0 if none)
    int64_t fetched; // bytes received in this call
    int     retries; // reconnects after broken transfers
    bool    sha256_checked;
} ds_hub_download_info;

// Downloads one file of `repo_id` into dir/<base name of f->path>, creating dir if needed
// (see the top of this file for resume and verification). On failure a broken transfer leaves
// NAME.part for a later resume; a wrong size or checksum deletes it. `path_out` (may be NULL)
// receives the final path. DS_EIO / DS_EFORMAT (mismatch) / DS_ENOTFOUND (HTTP 404).
ds_status ds_hub_download(const ds_hub_params *p, const char *repo_id, const ds_hub_file *f,
                          const char *dir, char *path_out, size_t cap, ds_hub_download_info *info);
