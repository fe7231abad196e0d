// cmd_template.c - `deepseek template`: print the prompt a chat format renders for a message
// list, exactly (nothing added, not even a newline), so it can be compared with the official
// Jinja template or fed to `deepseek tokenize`; or, with --ids, the token ids the engine feeds
// the model for it (special tokens parsed in the template's text only, message text as text).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ds/chat.h"
#include "ds/gguf.h"
#include "ds/hub.h"
#include "ds/tokenizer.h"

const char cmd_template_usage[] =
    "usage: deepseek template [-m MODEL] --messages FILE.json [--chat-format NAME]\n"
    "                         [--tools FILE.json] [--think on|off] [--no-generation-prompt]\n"
    "                         [--ids]\n"
    "\n"
    "Prints the prompt that MODEL's chat format renders for an OpenAI-style message list,\n"
    "byte for byte as the official template renders it (no newline is added).\n"
    "\n"
    "  -m MODEL              a GGUF file or a model name; its chat format is recognised from\n"
    "                        tokenizer.chat_template, its special tokens and architecture\n"
    "  --messages FILE       a JSON array of messages (or an object with \"messages\"); - = stdin\n"
    "  --chat-format NAME    deepseek-v3, deepseek-r1, deepseek-r1-original, deepseek-v3.1,\n"
    "                        deepseek-v3.2, r1-distill-qwen, r1-distill-llama, deepseek-v2\n"
    "                        (needed without -m; overrides the recognised format)\n"
    "  --tools FILE          a JSON array of OpenAI tool definitions (only deepseek-v3.2's\n"
    "                        template writes them)\n"
    "  --think on|off        thinking switch of deepseek-v3.1 / deepseek-v3.2\n"
    "  --no-generation-prompt  do not end with the assistant's opening\n"
    "  --ids                 print the prompt's token ids as a JSON array instead (needs -m):\n"
    "                        the template's markers are special tokens, the messages' text is\n"
    "                        tokenized as plain text (a <｜User｜> in a message stays text)\n";

static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char  *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            char *bigger = cap < ((size_t)1 << 30) ? realloc(buf, 2 * cap) : NULL;
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    if (f != stdin) fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

typedef struct template_opts {
    const char *model, *messages, *format, *tools;
    ds_chat_think think;
    bool no_gen, ids;
} template_opts;

static int parse(int argc, char **argv, template_opts *o) {
    *o = (template_opts){.think = DS_THINK_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--no-generation-prompt") || !strcmp(a, "--ids")) {
            *(a[2] == 'i' ? &o->ids : &o->no_gen) = true;
            continue;
        }
        if (strcmp(a, "-m") && strcmp(a, "--messages") && strcmp(a, "--chat-format") &&
            strcmp(a, "--tools") && strcmp(a, "--think"))
            return cli_usage_error("template", "unknown option '%s'", a);
        if (!(v = cli_value("template", argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--messages")) o->messages = v;
        else if (!strcmp(a, "--chat-format")) o->format = v;
        else if (!strcmp(a, "--tools")) o->tools = v;
        else if (!strcmp(v, "on")) o->think = DS_THINK_ON;
        else if (!strcmp(v, "off")) o->think = DS_THINK_OFF;
        else return cli_usage_error("template", "--think takes on or off (got '%s')", v);
    }
    if (!o->messages) return cli_usage_error("template", "--messages FILE is required");
    if (!o->model && !o->format)
        return cli_usage_error("template", "give -m MODEL or --chat-format NAME");
    if (o->ids && !o->model) return cli_usage_error("template", "--ids needs -m MODEL");
    return 0;
}

// The model's chat format (unless --chat-format), BOS text (into bos, "" if none) and, when
// tok_out is not NULL, its tokenizer (the caller frees it).
static int from_model(const template_opts *o, ds_chat_format *f, char *bos, size_t cap,
                      ds_tokenizer **tok_out) {
    char path[4096];
    if (ds_model_resolve(o->model, path, sizeof path) != DS_OK)
        return cli_error("template", "%s", ds_errmsg());
    ds_gguf *g = NULL;
    if (ds_gguf_open(path, &g) != DS_OK) return cli_error("template", "%s", ds_errmsg());
    ds_tokenizer *tok = NULL;
    if (ds_tokenizer_load(g, &tok) == DS_OK && ds_tokenizer_bos(tok) != DS_TOKEN_NONE &&
        ds_tokenizer_piece(tok, ds_tokenizer_bos(tok), bos, cap) >= cap)
        bos[0] = '\0';
    int rc = 0;
    if (!o->format && ds_chat_detect(g, tok, f) != DS_OK)
        rc = cli_error("template", "%s", ds_errmsg());
    else if (tok_out && !tok)
        rc = cli_error("template", "%s", ds_errmsg());
    if (tok_out && !rc) *tok_out = tok;
    else ds_tokenizer_free(tok);
    ds_gguf_close(g);
    return rc;
}

// The prompt as the engine tokenizes it, printed as a JSON array.
static int print_ids(const ds_tokenizer *tok, const ds_buf *text, const ds_chat_spans *content) {
    ds_tokens ids = {0};
    if (ds_chat_encode(tok, text->data ? text->data : "", text->len, content, 0, &ids) != DS_OK)
        return cli_error("template", "%s", ds_errmsg());
    ds_buf b = {0};
    ds_buf_puts(&b, "[");
    for (size_t i = 0; i < ids.n; i++) ds_buf_printf(&b, "%s%d", i ? "," : "", ids.ids[i]);
    ds_buf_puts(&b, "]\n");
    int rc = 0;
    if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout))
        rc = cli_error("template", "cannot write the ids");
    ds_buf_free(&b);
    ds_tokens_free(&ids);
    return rc;
}

int cmd_template(int argc, char **argv) {
    template_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    ds_chat_format f = DS_CHAT_FORMAT_COUNT;
    if (o.format && ds_chat_format_from_name(o.format, &f) != DS_OK)
        return cli_usage_error("template", "%s", ds_errmsg());
    char          bos[256] = "";
    ds_tokenizer *tok      = NULL;
    if (o.model && (rc = from_model(&o, &f, bos, sizeof bos, o.ids ? &tok : NULL))) return rc;

    size_t len = 0, tlen = 0;
    char *text = read_all(o.messages, &len), *tools = NULL;
    if (!text) {
        ds_tokenizer_free(tok);
        return cli_error("template", "%s: cannot read", o.messages);
    }
    if (o.tools && !(tools = read_all(o.tools, &tlen))) {
        free(text);
        ds_tokenizer_free(tok);
        return cli_error("template", "%s: cannot read", o.tools);
    }
    ds_chat_messages m;
    ds_buf           out     = {0};
    ds_chat_spans    content = {0};
    ds_chat_params p        = ds_chat_params_default();
    p.add_generation_prompt = !o.no_gen;
    p.think                 = o.think;
    p.tools_json            = tools;
    p.bos                   = bos[0] ? bos : NULL;
    if (ds_chat_messages_parse(text, len, &m) != DS_OK) {
        rc = cli_error("template", "%s: %s", o.messages, ds_errmsg());
    } else {
        if (ds_chat_render_spans(f, &m, &p, &out, &content) != DS_OK)
            rc = cli_error("template", "%s: %s", ds_chat_format_name(f), ds_errmsg());
        else if (tok)
            rc = print_ids(tok, &out, &content);
        else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout))
            rc = cli_error("template", "cannot write the prompt");
        ds_chat_messages_free(&m);
    }
    ds_buf_free(&out);
    ds_chat_spans_free(&content);
    ds_tokenizer_free(tok);
    free(text);
    free(tools);
    return rc;
}
