// chat_session.c - `deepseek chat` without a model: prices and the stats line, slash
// commands, and the /save file (a message list `deepseek template --messages` reads).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_cli.h"
#include "commands.h"

// ---- prices and statistics ----

ds_status chat_prices_parse(const char *s, chat_prices *out) {
    double v[3];
    const char *p = s ? s : "";
    for (int i = 0; i < 3; i++) {
        char *end = NULL;
        errno     = 0;
        v[i]      = strtod(p, &end);
        if (end == p || errno || !(v[i] >= 0) || v[i] > 1e6)
            return ds_fail(DS_EINVAL, "prices must be three numbers >= 0 as HIT,MISS,OUT "
                                      "(USD per million tokens), got '%s'", s ? s : "");
        p = end;
        if (i < 2 && *p++ != ',')
            return ds_fail(DS_EINVAL, "prices must be HIT,MISS,OUT (three numbers), got '%s'", s);
    }
    if (*p) return ds_fail(DS_EINVAL, "prices: unexpected '%s' after the third number", p);
    *out = (chat_prices){.hit = v[0], .miss = v[1], .out = v[2]};
    return DS_OK;
}

double chat_api_cost(const chat_prices *p, int prompt_tokens, int cache_hit_tokens,
                     int completion_tokens) {
    int hit  = cache_hit_tokens < prompt_tokens ? cache_hit_tokens : prompt_tokens;
    int miss = prompt_tokens - hit;
    return ((double)hit * p->hit + (double)miss * p->miss + (double)completion_tokens * p->out) /
           1e6;
}

double chat_tokens_per_s(const chat_turn_stats *s) {
    if (s->completion_tokens <= 0) return 0;
    // The first streamed token marks the end of the prompt; the tokens after it took decode_s.
    if (s->decode_s > 0 && s->completion_tokens >= 2)
        return (s->completion_tokens - 1) / s->decode_s;
    return s->wall_s > 0 ? s->completion_tokens / s->wall_s : 0;
}

// Money with enough digits to show a turn's fraction of a cent.
static void put_usd(ds_buf *b, double usd) {
    if (usd == 0) ds_buf_puts(b, "$0");
    else if (usd < 0.01) ds_buf_printf(b, "$%.6f", usd);
    else ds_buf_printf(b, "$%.4f", usd);
}

void chat_stats_line(ds_buf *b, const chat_turn_stats *s, const chat_prices *p) {
    ds_buf_printf(b, "in %d", s->prompt_tokens);
    if (s->cache_hit_tokens > 0) ds_buf_printf(b, " (%d cached)", s->cache_hit_tokens);
    ds_buf_printf(b, " | out %d", s->completion_tokens);
    if (s->reasoning_tokens > 0) ds_buf_printf(b, " (%d reasoning)", s->reasoning_tokens);
    ds_buf_printf(b, " | %.1f tok/s | ctx %d/%d | API ", chat_tokens_per_s(s), s->ctx_used,
                  s->n_ctx);
    put_usd(b, chat_api_cost(p, s->prompt_tokens, s->cache_hit_tokens, s->completion_tokens));
    ds_buf_printf(b, " | local %.2f CPU-s", s->cpu_s);
}

// ---- slash commands ----

const char chat_help_text[] =
    "commands:\n"
    "  /help            this text\n"
    "  /reset           forget the conversation (the context starts empty)\n"
    "  /think on|off    thinking before the answer (no argument: show the setting)\n"
    "  /budget N        stop thinking after N tokens; 0 = no limit (no argument: show it)\n"
    "  /save FILE       write the conversation as a JSON message list\n"
    "                   (readable by deepseek template --messages and chat --messages)\n"
    "  /exit, /bye      leave (also Ctrl-D, or Ctrl-C twice at the prompt)\n"
    "input: a line ending in \\ continues on the next line; \"\"\" starts a block that ends\n"
    "with a line ending in \"\"\". Ctrl-C stops an answer.\n";

static chat_cmd cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static chat_cmd cmd_error(const char *fmt, ...) {
    chat_cmd c = {.kind = CHAT_CMD_ERROR};
    va_list  ap;
    va_start(ap, fmt);
    vsnprintf(c.err, sizeof c.err, fmt, ap);
    va_end(ap);
    return c;
}

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

chat_cmd chat_command_parse(char *line) {
    if (line[0] != '/') return (chat_cmd){.kind = CHAT_CMD_NONE};
    char *name = line + 1, *arg = name;
    while (*arg && !is_blank(*arg)) arg++;
    size_t name_len = (size_t)(arg - name);
    while (is_blank(*arg)) arg++;
    for (size_t n = strlen(arg); n > 0 && is_blank(arg[n - 1]); n--) arg[n - 1] = '\0';
    bool has_arg = *arg != '\0';
    char cmd[16]  = "";
    if (name_len < sizeof cmd) memcpy(cmd, name, name_len);
    cmd[name_len < sizeof cmd ? name_len : 0] = '\0';

    if (!strcmp(cmd, "help") || !strcmp(cmd, "?")) return (chat_cmd){.kind = CHAT_CMD_HELP};
    if (!strcmp(cmd, "exit") || !strcmp(cmd, "bye") || !strcmp(cmd, "quit"))
        return (chat_cmd){.kind = CHAT_CMD_EXIT};
    if (!strcmp(cmd, "reset") || !strcmp(cmd, "clear")) {
        if (has_arg) return cmd_error("/reset takes no argument (got '%s')", arg);
        return (chat_cmd){.kind = CHAT_CMD_RESET};
    }
    if (!strcmp(cmd, "think")) {
        chat_cmd c = {.kind = CHAT_CMD_THINK, .value = -1};
        if (!has_arg) return c;
        if (!strcmp(arg, "on")) c.value = DS_THINK_ON;
        else if (!strcmp(arg, "off")) c.value = DS_THINK_OFF;
        else return cmd_error("/think takes on or off (got '%s')", arg);
        return c;
    }
    if (!strcmp(cmd, "budget")) {
        chat_cmd c = {.kind = CHAT_CMD_BUDGET, .value = -1};
        if (!has_arg) return c;
        int64_t v = 0;
        if (cli_parse_int(arg, INT32_MIN, INT32_MAX, &v) && v < 0)
            return cmd_error("the reasoning budget cannot be negative (got %s); give a number "
                             "of tokens, or 0 for no limit", arg);
        if (!cli_parse_int(arg, 0, 1 << 24, &v))
            return cmd_error("/budget takes a number of tokens from 0 (no limit) to 16777216 "
                             "(got '%s')", arg);
        c.value = (int)v;
        return c;
    }
    if (!strcmp(cmd, "save")) {
        if (!has_arg) return cmd_error("%s", "/save needs a file name: /save FILE");
        return (chat_cmd){.kind = CHAT_CMD_SAVE, .arg = arg};
    }
    line[1 + name_len] = '\0'; // the name alone, for the message
    return cmd_error("unknown command '%s' (see /help)", line);
}

// ---- /save ----

static void put_str_field(ds_buf *b, const char *key, const char *s) {
    ds_buf_printf(b, ",\"%s\":", key);
    if (s) ds_buf_json_str(b, s, strlen(s));
    else ds_buf_puts(b, "null");
}

static const char *role_name(ds_chat_role r) {
    switch (r) {
    case DS_ROLE_SYSTEM: return "system";
    case DS_ROLE_USER: return "user";
    case DS_ROLE_ASSISTANT: return "assistant";
    case DS_ROLE_TOOL: return "tool";
    }
    return "user";
}

void chat_messages_json(ds_buf *b, const ds_chat_messages *m) {
    ds_buf_puts(b, "[");
    for (size_t i = 0; i < m->n; i++) {
        const ds_chat_message *msg = &m->items[i];
        ds_buf_printf(b, "%s\n  {\"role\":\"%s\"", i ? "," : "", role_name(msg->role));
        put_str_field(b, "content", msg->content);
        if (msg->reasoning_content) put_str_field(b, "reasoning_content", msg->reasoning_content);
        if (msg->n_tool_calls) {
            ds_buf_puts(b, ",\"tool_calls\":[");
            for (size_t k = 0; k < msg->n_tool_calls; k++) {
                const ds_chat_tool_call *tc = &msg->tool_calls[k];
                ds_buf_puts(b, k ? ",{" : "{");
                ds_buf_puts(b, "\"type\":\"function\"");
                if (tc->id) put_str_field(b, "id", tc->id);
                ds_buf_puts(b, ",\"function\":{\"name\":");
                ds_buf_json_str(b, tc->name ? tc->name : "", tc->name ? strlen(tc->name) : 0);
                // arguments travel as a JSON string holding the JSON text, as in the API
                put_str_field(b, "arguments", tc->arguments ? tc->arguments : "{}");
                ds_buf_puts(b, "}}");
            }
            ds_buf_puts(b, "]");
        }
        if (msg->tool_call_id) put_str_field(b, "tool_call_id", msg->tool_call_id);
        ds_buf_puts(b, "}");
    }
    ds_buf_puts(b, m->n ? "\n]\n" : "]\n");
}

ds_status chat_messages_save(const char *path, const ds_chat_messages *m) {
    ds_buf b = {0};
    chat_messages_json(&b, m);
    ds_status st = DS_OK;
    FILE     *f  = fopen(path, "wb");
    if (!f) {
        st = ds_fail(DS_EIO, "%s: cannot write: %s", path, strerror(errno));
    } else {
        bool ok = fwrite(b.data, 1, b.len, f) == b.len;
        int  e  = errno;
        if (fclose(f) != 0 && ok) ok = false, e = errno;
        if (!ok) st = ds_fail(DS_EIO, "%s: write failed: %s", path, strerror(e));
    }
    ds_buf_free(&b);
    return st;
}
