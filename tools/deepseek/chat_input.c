// chat_input.c - the prompt of `deepseek chat`: libedit (emacs keys, in-memory history) on a
// terminal, plain line reads on a pipe; multi-line entries; Ctrl-C.
//
// Ctrl-C: the SIGINT handler only sets a flag (the one process-wide variable here: a signal
// handler has nowhere else to write). libedit reads characters through our own function
// (EL_GETCFN) that waits with poll() and gives up as soon as the flag is set, so el_wgets
// returns with an error and the prompt can tell an interrupt from Ctrl-D. While an answer
// streams, cmd_chat.c polls the same flag and cancels the request.
#include <errno.h>
#include <histedit.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "chat_cli.h"
#include "ds/alloc.h"

// ---- Ctrl-C ----

static volatile sig_atomic_t sigint_flag, winch_flag;

static void on_signal(int sig) {
    if (sig == SIGINT) sigint_flag = 1;
    else winch_flag = 1;
}

bool chat_sigint_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: a blocked read or poll returns EINTR
    // SIGWINCH too: libedit's own handlers are off (EL_SIGNAL 0), so we tell it of a resize
    return sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGWINCH, &sa, NULL) == 0;
}

bool chat_sigint_take(void) {
    bool was    = sigint_flag != 0;
    sigint_flag = 0;
    return was;
}

bool chat_sigint_pending(void) { return sigint_flag != 0; }

// ---- the editor ----

struct chat_input {
    EditLine *el;       // NULL when stdin is not a terminal
    History  *hist;
    bool      block;    // inside a """ block: the continuation prompt
    bool      cont;     // after a trailing '\'
    bool      had_text; // the line held text when Ctrl-C came
    char      utf8[4];  // bytes of a character being read
    int       n_utf8;
};

static const char *prompt_fn(EditLine *el) {
    chat_input *in = NULL;
    el_get(el, EL_CLIENTDATA, &in);
    return in && (in->block || in->cont) ? "... " : ">>> ";
}

// Expected length of a UTF-8 sequence from its first byte (1 for a stray byte, which then
// stands for itself as U+FFFD).
static int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

static wchar_t utf8_decode(const unsigned char *s, int n) {
    if (n == 1) return s[0] < 0x80 ? (wchar_t)s[0] : (wchar_t)0xFFFD;
    uint32_t cp = s[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return (wchar_t)0xFFFD;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    return (wchar_t)cp;
}

// libedit's character source: one character from stdin; -1 on Ctrl-C (el_wgets then fails
// and we report an interrupt), 0 at the end of input.
static int getc_fn(EditLine *el, wchar_t *wc) {
    chat_input *in = NULL;
    el_get(el, EL_CLIENTDATA, &in);
    for (;;) {
        if (chat_sigint_pending()) {
            const LineInfo *li = el_line(el);
            in->had_text       = li && li->lastchar > li->buffer;
            in->n_utf8         = 0;
            errno              = EINTR;
            return -1;
        }
        if (winch_flag) {
            winch_flag = 0;
            el_resize(el);
            el_set(el, EL_REFRESH);
        }
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int           r = poll(&p, 1, 100); // the timeout closes the check-then-wait race
        if (r < 0 && errno != EINTR) return -1;
        if (r <= 0) continue;
        unsigned char c;
        ssize_t       n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n == 0 ? 0 : -1;
        in->utf8[in->n_utf8++] = (char)c;
        int need = utf8_len((unsigned char)in->utf8[0]);
        if (in->n_utf8 > 1 && (c & 0xC0) != 0x80) need = in->n_utf8; // broken: emit as is
        if (in->n_utf8 < need) continue;
        *wc        = utf8_decode((const unsigned char *)in->utf8, in->n_utf8);
        in->n_utf8 = 0;
        return 1;
    }
}

chat_input *chat_input_new(void) {
    chat_input *in = ds_xcalloc(1, sizeof *in);
    if (!isatty(STDIN_FILENO)) return in;
    in->el   = el_init("deepseek", stdin, stdout, stderr);
    in->hist = history_init();
    if (!in->el || !in->hist) {
        ds_fail(DS_EIO, "cannot start the line editor");
        chat_input_free(in);
        return NULL;
    }
    HistEvent ev;
    history(in->hist, &ev, H_SETSIZE, 1000);
    history(in->hist, &ev, H_SETUNIQUE, 1);
    el_set(in->el, EL_CLIENTDATA, in);
    el_set(in->el, EL_EDITOR, "emacs");
    el_set(in->el, EL_PROMPT, prompt_fn);
    el_set(in->el, EL_HIST, history, in->hist);
    el_set(in->el, EL_SIGNAL, 0); // ours: see the file comment
    el_set(in->el, EL_GETCFN, getc_fn);
    el_source(in->el, NULL);      // ~/.editrc, as other libedit programs
    return in;
}

void chat_input_free(chat_input *in) {
    if (!in) return;
    if (in->el) el_end(in->el);
    if (in->hist) history_end(in->hist);
    free(in);
}

// One physical line into `line` (without its newline). Returns false at the end of input or
// on an interrupt (*interrupted tells which).
static bool read_line(chat_input *in, ds_buf *line, bool *interrupted) {
    ds_buf_clear(line);
    *interrupted = false;
    if (in->el) {
        int         n = 0;
        const char *s = el_gets(in->el, &n);
        if (!s || n <= 0) {
            *interrupted = chat_sigint_take();
            if (*interrupted) fputc('\n', stdout); // the editor left the cursor on the prompt
            return false;
        }
        ds_buf_append(line, s, (size_t)n);
    } else {
        int c;
        while ((c = getchar()) != EOF && c != '\n') {
            char ch = (char)c;
            ds_buf_append(line, &ch, 1);
        }
        if (c == EOF && line->len == 0) {
            *interrupted = chat_sigint_take();
            clearerr(stdin);
            return false;
        }
    }
    while (line->len && (line->data[line->len - 1] == '\n' || line->data[line->len - 1] == '\r'))
        line->data[--line->len] = '\0';
    return true;
}

static bool ends_with(const ds_buf *b, const char *s) {
    size_t n = strlen(s);
    return b->len >= n && !memcmp(b->data + b->len - n, s, n);
}

chat_read chat_input_read(chat_input *in, ds_buf *text) {
    ds_buf line = {0};
    bool   intr = false, first = true;
    ds_buf_clear(text);
    in->block = in->cont = in->had_text = false;
    chat_read res                        = CHAT_READ_OK;
    for (;;) {
        if (!read_line(in, &line, &intr)) {
            // Ctrl-D in the middle of an entry ends the entry; on an empty prompt, the session
            if (intr) res = in->had_text || !first ? CHAT_READ_CLEARED : CHAT_READ_INTERRUPT;
            else if (first) res = CHAT_READ_EOF;
            break;
        }
        if (first && !strncmp(line.data ? line.data : "", "\"\"\"", 3)) {
            in->block = true;
            memmove(line.data, line.data + 3, line.len - 2);
            line.len -= 3;
            if (ends_with(&line, "\"\"\"") && line.len >= 3) { // """one line"""
                line.data[line.len -= 3] = '\0';
                ds_buf_append(text, line.data, line.len);
                break;
            }
            first = false;
            if (line.len) ds_buf_append(text, line.data, line.len);
            continue;
        }
        if (!first && (in->block || in->cont) && text->len) ds_buf_puts(text, "\n");
        first = false;
        if (in->block) {
            if (ends_with(&line, "\"\"\"")) {
                ds_buf_append(text, line.data, line.len - 3);
                break;
            }
            ds_buf_append(text, line.data ? line.data : "", line.len);
            continue;
        }
        in->cont = ends_with(&line, "\\");
        ds_buf_append(text, line.data ? line.data : "", line.len - (in->cont ? 1 : 0));
        if (!in->cont) break;
    }
    ds_buf_free(&line);
    in->block = in->cont = false;
    if (res != CHAT_READ_OK) ds_buf_clear(text);
    if (!text->data) ds_buf_puts(text, "");
    if (res == CHAT_READ_OK && in->hist && text->len) {
        HistEvent ev;
        history(in->hist, &ev, H_ENTER, text->data);
    }
    return res;
}
