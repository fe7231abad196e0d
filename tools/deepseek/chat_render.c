// chat_render.c - shows a streamed reply: the reasoning dimmed (SGR 2, only on a terminal
// and without NO_COLOR, https://no-color.org), the answer as normal text.
//
// Without color the reasoning is framed by "Thinking..." / "...done thinking." lines so a
// log still tells it from the answer. The SGR state is closed at every part change and at the
// end, so an interrupted reply never leaves the terminal dimmed.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_cli.h"

#define SGR_DIM   "\033[2m"
#define SGR_RESET "\033[0m"

bool chat_use_color(FILE *f) {
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc) return false;
    int fd = fileno(f);
    return fd >= 0 && isatty(fd);
}

void chat_render_init(chat_render *r, FILE *out, FILE *think, bool color, bool hide_thinking) {
    *r = (chat_render){.out = out, .think = think, .color = color, .hide_thinking = hide_thinking};
}

static void put(chat_render *r, FILE *f, const char *text, size_t len) {
    if (!len) return;
    fwrite(text, 1, len, f);
    r->line_open = text[len - 1] != '\n';
}

static void close_reasoning(chat_render *r) {
    if (r->part != 1) return;
    if (r->color) fputs(SGR_RESET, r->think);
    if (r->line_open) fputc('\n', r->think);
    if (!r->color) fputs("...done thinking.\n", r->think);
    r->line_open = false;
    fflush(r->think);
}

void chat_render_reasoning(chat_render *r, const char *text, size_t len) {
    if (r->hide_thinking || !len) return;
    if (r->part == 2) return; // reasoning after the answer began: not shown out of place
    if (r->part == 0) {
        fputs(r->color ? SGR_DIM : "Thinking...\n", r->think);
        r->part = 1;
    }
    put(r, r->think, text, len);
    fflush(r->think);
}

void chat_render_content(chat_render *r, const char *text, size_t len) {
    if (!len) return;
    if (r->part == 1) {
        close_reasoning(r);
        if (r->think == r->out) fputc('\n', r->out); // a blank line between the two parts
    }
    r->part = 2;
    put(r, r->out, text, len);
    fflush(r->out);
}

void chat_render_end(chat_render *r) {
    if (r->part == 1) close_reasoning(r);
    else if (r->part == 2 && r->line_open) fputc('\n', r->out);
    r->part      = 0;
    r->line_open = false;
    fflush(r->out);
    fflush(r->think);
}

void chat_render_note(FILE *f, bool color, const char *text) {
    fprintf(f, color ? SGR_DIM "%s" SGR_RESET "\n" : "%s\n", text);
    fflush(f);
}
