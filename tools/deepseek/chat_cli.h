// chat_cli.h - the parts of `deepseek chat` that do not need a model: slash commands, the
// turn statistics and API price comparison, terminal rendering of reasoning vs answer,
// the /save file, and the line editor (libedit) with its Ctrl-C handling.
//
// cmd_chat.c joins them to the engine. Everything here except the line editor is plain
// functions over caller-owned buffers, so tests/unit/test_chat_cli.c checks them without a
// terminal.
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "ds/buf.h"
#include "ds/chat.h"
#include "ds/err.h"

// ---- prices (chat_session.c) ----

// USD per million tokens. DeepSeek's API price list (api-docs.deepseek.com/quick_start/pricing,
// the same for deepseek-chat and deepseek-reasoner since the V3.2 price cut of 2025-09-29 and
// still listed in April 2026; /work/shared/docs/api.md §1.9): input cache hit $0.028, input
// cache miss $0.28, output $0.42. Reasoning tokens are billed as output.
typedef struct chat_prices {
    double hit, miss, out;
} chat_prices;

#define CHAT_PRICES_DEFAULT ((chat_prices){.hit = 0.028, .miss = 0.28, .out = 0.42})
// The help text's paragraph on the prices: what they are and where they come from.
#define CHAT_PRICES_SOURCE                                                                         \
    "API prices for the comparison, USD per million tokens: input cache hit 0.028, input cache\n"   \
    "miss 0.28, output 0.42 (reasoning is output). Source: DeepSeek's price list,\n"               \
    "api-docs.deepseek.com/quick_start/pricing, the same for deepseek-chat and deepseek-reasoner\n" \
    "since the V3.2 price cut of 2025-09-29 and still listed in April 2026. --price overrides.\n"

// "HIT,MISS,OUT" (three non-negative numbers). DS_EINVAL naming what is wrong.
ds_status chat_prices_parse(const char *s, chat_prices *out);

// What a turn would have cost at the API, in USD. Cache hits are the prompt tokens the engine
// reused from its prefix cache (the API bills the prefix it has cached the same way).
double chat_api_cost(const chat_prices *p, int prompt_tokens, int cache_hit_tokens,
                     int completion_tokens);

// ---- one turn's statistics ----

typedef struct chat_turn_stats {
    int    prompt_tokens, cache_hit_tokens, completion_tokens, reasoning_tokens;
    double wall_s;      // submit to final event
    double decode_s;    // first streamed token to final event (0: unknown)
    double cpu_s;       // CPU-seconds of the whole process (all threads) over the turn
    int    ctx_used;    // tokens in the sequence after the turn
    int    n_ctx;       // context size of the slot
} chat_turn_stats;

// Generation speed in tokens/s: completion tokens over the decode time (over the whole turn
// when the decode time is unknown or the turn made fewer than two tokens); 0 for no tokens.
double chat_tokens_per_s(const chat_turn_stats *s);

// Appends one line (no newline), e.g.
// "in 35 (12 cached) | out 64 (60 reasoning) | 12.3 tok/s | ctx 99/4096 | API $0.000037 |
//  local 2.31 CPU-s": the API figure is what the turn would have cost at DeepSeek, the local
// one what it cost here.
void chat_stats_line(ds_buf *b, const chat_turn_stats *s, const chat_prices *p);

// ---- slash commands ----

typedef enum chat_cmd_kind {
    CHAT_CMD_NONE,   // not a command: a message for the model
    CHAT_CMD_ERROR,  // a command with a bad argument, or an unknown one (see err)
    CHAT_CMD_HELP,
    CHAT_CMD_RESET,
    CHAT_CMD_THINK,  // value: DS_THINK_ON / DS_THINK_OFF; -1 = show the setting
    CHAT_CMD_BUDGET, // value: tokens (0 = no limit); -1 = show the setting
    CHAT_CMD_SAVE,   // arg: the file
    CHAT_CMD_EXIT,
} chat_cmd_kind;

typedef struct chat_cmd {
    chat_cmd_kind kind;
    int           value;
    const char   *arg;      // points into the parsed line
    char          err[160]; // CHAT_CMD_ERROR: the message to show
} chat_cmd;

// Parses one input line. Lines not starting with '/' are messages. The line is modified (the
// argument is cut at its trailing blanks).
chat_cmd chat_command_parse(char *line);

// The /help text.
extern const char chat_help_text[];

// ---- /save ----

// Appends the messages as a JSON array that `deepseek template --messages` and
// ds_chat_messages_parse read back: {"role", "content", "reasoning_content" (when present),
// "tool_calls" (when present), "tool_call_id" (when present)}; a newline at the end.
void chat_messages_json(ds_buf *b, const ds_chat_messages *m);
// Writes them to path (replaced). DS_EIO with the file and the reason.
ds_status chat_messages_save(const char *path, const ds_chat_messages *m);

// ---- rendering (chat_render.c) ----

// Streams a reply to a terminal: reasoning dimmed (ANSI SGR 2) when color is on, or between
// "Thinking..." and "...done thinking." lines when it is off, or not at all when hidden;
// the answer as normal text after a blank line.
typedef struct chat_render {
    FILE *out;      // the answer goes here
    FILE *think;    // the reasoning goes here (may be the same stream)
    bool  color;    // SGR codes on `think`
    bool  hide_thinking;
    int   part;     // 0 nothing yet, 1 in reasoning, 2 in the answer
    bool  line_open; // the last byte written was not a newline
} chat_render;

// True when a stream should get SGR codes: it is a terminal and NO_COLOR is unset or empty.
bool chat_use_color(FILE *f);

void chat_render_init(chat_render *r, FILE *out, FILE *think, bool color, bool hide_thinking);
void chat_render_reasoning(chat_render *r, const char *text, size_t len);
void chat_render_content(chat_render *r, const char *text, size_t len);
// Closes whatever part is open (resets the SGR state) and ends the line.
void chat_render_end(chat_render *r);
// Writes one dimmed (when color) note line, e.g. the stats line.
void chat_render_note(FILE *f, bool color, const char *text);

// ---- Ctrl-C and the line editor (chat_input.c) ----

// Installs the SIGINT handler (it only sets a flag) without SA_RESTART, so a blocked read
// returns, and a SIGWINCH one for the editor. Returns true on success.
bool chat_sigint_install(void);
// Reads and clears the flag.
bool chat_sigint_take(void);
// Reads the flag without clearing it.
bool chat_sigint_pending(void);

typedef struct chat_input chat_input;

typedef enum chat_read {
    CHAT_READ_OK,        // text holds the entry (lines joined by '\n', no final newline)
    CHAT_READ_EOF,       // Ctrl-D on an empty line, or the end of piped input
    CHAT_READ_INTERRUPT, // Ctrl-C on an empty prompt
    CHAT_READ_CLEARED,   // Ctrl-C with text typed (the entry is dropped)
} chat_read;

// The line editor: libedit with emacs keys and in-memory history when stdin is a terminal,
// plain line reads otherwise. NULL on failure (with ds_errmsg()).
chat_input *chat_input_new(void);
void        chat_input_free(chat_input *in);

// Reads one entry. A line ending in '\' continues on the next line; a line starting with
// """ opens a block that runs to a line ending with """. Entries go into the history.
chat_read chat_input_read(chat_input *in, ds_buf *text);
