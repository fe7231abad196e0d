// template.c - the table of chat families: names, how each is recognised, how it renders.
//
// Recognition reads `tokenizer.chat_template` only as text to search (it is untrusted input
// and never run). Rows are tried in order, first match wins, so the more specific families
// come first: V3.2 (DSML), V3.1 (a `thinking` switch and a cut at the first `</think>`), then
// the templates that force `<think>\n` open: R1's own (all system prompts joined), the
// Distill-Qwen one (JSON-quoted tool arguments), the Distill-Llama one (the rest), then the
// first R1 (a `</think>` cut without forcing), V3, V2. The template a file carries decides,
// so the rendering is the one that template gives. Without a template, the architecture
// (qwen2, llama: the distills) and the special tokens (the V3 markers, else V2's plain text)
// decide.
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "ds/alloc.h"
#include "ds/gguf.h"
#include "ds/tokenizer.h"

typedef struct chat_family {
    const char    *name;
    const char    *arch;         // required architecture, or NULL for any
    const char    *must[3];      // substrings that must all be in the template
    const char    *must_not;     // a substring that must not be in it, or NULL
    bool           think_switch; // has a thinking on/off switch
    chat_render_fn render;
    bool           thinks;       // its models reason in <think> (always, or when switched on)
} chat_family;

#define T_V3_MARKERS CHAT_USER, CHAT_ASSISTANT
#define T_CUT        "split('</think>')"
#define T_CUT1       "split('</think>', 1)"
#define T_OPEN       "<｜Assistant｜><think>\\n"
#define T_JOINED     "is_first_sp"                // all system prompts joined (V3, R1)
#define T_QUOTED     "['arguments'] | tojson"     // Distill-Qwen's JSON-quoted arguments

// Indexed by ds_chat_format; detection runs through `detect_order`.
static const chat_family families[DS_CHAT_FORMAT_COUNT] = {
    [DS_CHAT_DEEPSEEK_V3]          = {"deepseek-v3", NULL, {T_V3_MARKERS, CHAT_EOS}, NULL, false,
                                      chat_render_v3, false},
    [DS_CHAT_DEEPSEEK_R1]          = {"deepseek-r1", NULL, {CHAT_USER, T_OPEN, T_JOINED}, NULL,
                                      false, chat_render_r1, true},
    [DS_CHAT_DEEPSEEK_R1_ORIGINAL] = {"deepseek-r1-original", NULL, {T_V3_MARKERS, T_CUT}, NULL,
                                      false, chat_render_r1_original, true},
    [DS_CHAT_DEEPSEEK_V3_1]        = {"deepseek-v3.1", NULL, {CHAT_ASSISTANT, "thinking", T_CUT1},
                                      NULL, true, chat_render_v31, true},
    [DS_CHAT_DEEPSEEK_V3_2]        = {"deepseek-v3.2", NULL, {CHAT_DSML, NULL}, NULL, true,
                                      chat_render_v32, true},
    [DS_CHAT_R1_DISTILL_QWEN]      = {"r1-distill-qwen", NULL, {CHAT_USER, T_OPEN, T_QUOTED}, NULL,
                                      false, chat_render_distill_qwen, true},
    [DS_CHAT_R1_DISTILL_LLAMA]     = {"r1-distill-llama", NULL, {CHAT_USER, T_OPEN}, NULL, false,
                                      chat_render_distill_llama, true},
    [DS_CHAT_DEEPSEEK_V2]          = {"deepseek-v2", NULL,
                                      {"'Assistant: ' + message['content']", NULL}, NULL, false,
                                      chat_render_v2, false},
};

static const ds_chat_format detect_order[] = {
    DS_CHAT_DEEPSEEK_V3_2,    DS_CHAT_DEEPSEEK_V3_1,        DS_CHAT_DEEPSEEK_R1,
    DS_CHAT_R1_DISTILL_QWEN,  DS_CHAT_R1_DISTILL_LLAMA,     DS_CHAT_DEEPSEEK_R1_ORIGINAL,
    DS_CHAT_DEEPSEEK_V3,      DS_CHAT_DEEPSEEK_V2,
};

const char *ds_chat_format_name(ds_chat_format f) {
    return (unsigned)f < DS_CHAT_FORMAT_COUNT ? families[f].name : "unknown";
}

bool ds_chat_format_can_think(ds_chat_format f) {
    return (unsigned)f < DS_CHAT_FORMAT_COUNT && families[f].thinks;
}

bool ds_chat_format_has_think_switch(ds_chat_format f) {
    return (unsigned)f < DS_CHAT_FORMAT_COUNT && families[f].think_switch;
}

ds_status ds_chat_format_from_name(const char *name, ds_chat_format *out) {
    for (int f = 0; f < DS_CHAT_FORMAT_COUNT; f++)
        if (name && !strcmp(name, families[f].name)) {
            *out = (ds_chat_format)f;
            return DS_OK;
        }
    char known[256] = "";
    for (int f = 0; f < DS_CHAT_FORMAT_COUNT; f++) {
        strncat(known, f ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, families[f].name, sizeof known - strlen(known) - 1);
    }
    return ds_fail(DS_ENOTFOUND, "unknown chat format '%.64s' (known: %s)", name ? name : "",
                   known);
}

// memmem is not C11: a plain search over a text that need not be NUL-terminated.
static bool contains(const char *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i + n <= len; i++)
        if (!memcmp(hay + i, needle, n)) return true;
    return false;
}

ds_chat_format ds_chat_detect_template(const char *tmpl, size_t len, const char *arch) {
    for (size_t k = 0; k < sizeof detect_order / sizeof detect_order[0]; k++) {
        const chat_family *fam = &families[detect_order[k]];
        if (fam->arch && (!arch || strcmp(arch, fam->arch))) continue;
        bool ok = true;
        for (int j = 0; j < 3 && fam->must[j] && ok; j++) ok = contains(tmpl, len, fam->must[j]);
        if (ok && fam->must_not) ok = !contains(tmpl, len, fam->must_not);
        if (ok) return detect_order[k];
    }
    return DS_CHAT_FORMAT_COUNT;
}

ds_status ds_chat_detect(const ds_gguf *g, const ds_tokenizer *tok, ds_chat_format *out) {
    char   arch[32] = "";
    ds_str s;
    if (ds_gguf_get_str(g, "general.architecture", &s) == DS_OK && s.len < sizeof arch) {
        memcpy(arch, s.ptr, s.len);
        arch[s.len] = '\0';
    }
    if (ds_gguf_get_str(g, "tokenizer.chat_template", &s) == DS_OK) {
        ds_chat_format f = ds_chat_detect_template(s.ptr, s.len, arch[0] ? arch : NULL);
        if (f != DS_CHAT_FORMAT_COUNT) {
            *out = f;
            return DS_OK;
        }
        return ds_fail(DS_EUNSUPPORTED,
                       "%s: tokenizer.chat_template matches no known chat format "
                       "(choose one with --chat-format)", ds_gguf_path(g));
    }
    // No template: the architecture and the vocabulary's special tokens decide.
    if (!strcmp(arch, "qwen2")) *out = DS_CHAT_R1_DISTILL_QWEN;
    else if (!strcmp(arch, "llama")) *out = DS_CHAT_R1_DISTILL_LLAMA;
    else if (tok && ds_tokenizer_find(tok, CHAT_USER, strlen(CHAT_USER)) != DS_TOKEN_NONE)
        *out = DS_CHAT_DEEPSEEK_V3;
    else if (!strcmp(arch, "deepseek2")) *out = DS_CHAT_DEEPSEEK_V2;
    else
        return ds_fail(DS_EUNSUPPORTED,
                       "%s: no tokenizer.chat_template and architecture '%s' has no default chat "
                       "format (choose one with --chat-format)", ds_gguf_path(g), arch);
    return DS_OK;
}

ds_chat_params ds_chat_params_default(void) {
    return (ds_chat_params){.add_generation_prompt = true, .think = DS_THINK_DEFAULT};
}

// ---- the prompt and its content spans ----

void chat_put(chat_out *o, const char *s) {
    ds_buf_puts(o->b, s);
}

void chat_mark(chat_out *o, size_t from) {
    ds_chat_spans *sp = o->spans;
    if (!sp || from >= o->b->len) return;
    if (sp->n && sp->items[sp->n - 1].off + sp->items[sp->n - 1].len == from) {
        sp->items[sp->n - 1].len = o->b->len - sp->items[sp->n - 1].off;
        return;
    }
    if (sp->n == sp->cap) {
        sp->cap   = sp->cap ? 2 * sp->cap : 16;
        sp->items = ds_xrealloc(sp->items, sp->cap * sizeof *sp->items);
    }
    sp->items[sp->n++] = (ds_text_span){from, o->b->len - from};
}

void chat_put_content(chat_out *o, const char *s) {
    size_t from = o->b->len;
    ds_buf_puts(o->b, s);
    chat_mark(o, from);
}

void chat_truncate(chat_out *o, size_t len) {
    ds_chat_spans *sp = o->spans;
    while (sp && sp->n && sp->items[sp->n - 1].off >= len) sp->n--;
    if (sp && sp->n && sp->items[sp->n - 1].off + sp->items[sp->n - 1].len > len)
        sp->items[sp->n - 1].len = len - sp->items[sp->n - 1].off;
    if (len < o->b->len) {
        o->b->len = len;
        if (o->b->data) o->b->data[len] = '\0';
    }
}

void ds_chat_spans_free(ds_chat_spans *s) {
    if (!s) return;
    free(s->items);
    memset(s, 0, sizeof *s);
}

ds_status ds_chat_render_spans(ds_chat_format f, const ds_chat_messages *m,
                               const ds_chat_params *p, ds_buf *out, ds_chat_spans *content) {
    if ((unsigned)f >= DS_CHAT_FORMAT_COUNT)
        return ds_fail(DS_EINVAL, "chat format %d out of range", (int)f);
    const chat_family *fam = &families[f];
    if (p->think != DS_THINK_DEFAULT && !fam->think_switch)
        return ds_fail(DS_EUNSUPPORTED, "chat format %s has no thinking switch (--think)",
                       fam->name);
    if (!m || m->n == 0) return ds_fail(DS_EFORMAT, "messages: the list is empty");
    chat_out  o    = {out, content};
    size_t    len0 = out->len, n0 = content ? content->n : 0;
    ds_status st   = fam->render(m, p, p->think == DS_THINK_ON, &o);
    if (st != DS_OK) {
        chat_truncate(&o, len0);
        if (content) content->n = n0;
    }
    return st;
}

ds_status ds_chat_render(ds_chat_format f, const ds_chat_messages *m, const ds_chat_params *p,
                         ds_buf *out) {
    return ds_chat_render_spans(f, m, p, out, NULL);
}

ds_status ds_chat_encode(const ds_tokenizer *t, const char *text, size_t len,
                         const ds_chat_spans *content, unsigned flags, ds_tokens *out) {
    return ds_tokenizer_encode_spans(t, text, len, flags | DS_ENCODE_PARSE_SPECIAL,
                                     content ? content->items : NULL, content ? content->n : 0,
                                     out);
}
