// reasoning.c - the streaming split of generated text into reasoning, answer and tool calls.
//
// Where the reply starts is read from the end of the rendered prompt, as llama.cpp's
// "forced-open thinking" does (deepseek-gguf.md §7.5): R1's `<｜Assistant｜><think>\n` and
// V3.1/V3.2's `<think>` leave thinking open, so the model never writes the opening tag and
// the reply is reasoning until `</think>`; V3.1's `</think>` means answer only; anything else
// (V3, the first R1, R1-0528) may or may not open with `<think>`, so the start is held until
// that is decided. In the answer, the family's tool-call marker starts the tool block.
//
// Text that may still turn out to be part of a marker (`</` ... `</think>` arriving over
// several tokens), and whitespace that would be dropped if a marker followed it, are held
// back in r->hold and decided by the next piece or by ds_reasoning_finish. Whitespace
// around the reasoning and at the start of the answer is dropped (R1 writes
// `...\n</think>\n\nanswer`).
#include <string.h>

#include "chat_internal.h"

static bool is_ws(char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

static const char *tool_marker(ds_chat_format f) {
    switch (f) {
    case DS_CHAT_DEEPSEEK_V2: return NULL;
    case DS_CHAT_DEEPSEEK_V3_2: return "<" CHAT_DSML "function_calls>";
    default: return CHAT_CALLS_BEGIN;
    }
}

void ds_reasoning_init(ds_reasoning *r, ds_chat_format f, const char *prompt, size_t len) {
    *r = (ds_reasoning){.format = f, .state = DS_REASONING_START, .skip_ws = true};
    while (prompt && len > 0 && is_ws(prompt[len - 1])) len--;
    if (prompt && ends_with(prompt, len, CHAT_THINK)) r->state = DS_REASONING_THINKING;
    else if (prompt && ends_with(prompt, len, CHAT_THINK_END)) r->state = DS_REASONING_ANSWER;
}

static void emit(ds_buf *b, const char *s, size_t n) {
    if (b && n) ds_buf_append(b, s, n);
}

static const char *find(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i + k <= n; i++)
        if (!memcmp(s + i, needle, k)) return s + i;
    return NULL;
}

// Length of the longest proper suffix of s[0..n) that is a prefix of marker.
static size_t partial(const char *s, size_t n, const char *marker) {
    size_t k = marker ? strlen(marker) : 0;
    for (size_t m = k > n + 1 ? n : k - 1; marker && m > 0; m--)
        if (!memcmp(s + n - m, marker, m)) return m;
    return 0;
}

// Decides s[0..n) in the THINKING or ANSWER state; returns how many bytes it consumed (the
// rest is undecided and must be held).
static size_t step_text(ds_reasoning *r, const char *s, size_t n, bool final, ds_buf *out,
                        ds_buf *tools) {
    const char *marker = r->state == DS_REASONING_THINKING ? CHAT_THINK_END : tool_marker(r->format);
    size_t i = 0;
    if (r->skip_ws) {
        while (i < n && is_ws(s[i])) i++;
        if (i == n) return n;
        r->skip_ws = false;
    }
    const char *hit = marker ? find(s + i, n - i, marker) : NULL;
    if (hit) {
        size_t end = (size_t)(hit - s);
        while (end > i && is_ws(s[end - 1])) end--;
        emit(out, s + i, end - i);
        if (r->state == DS_REASONING_THINKING) {
            r->state   = DS_REASONING_ANSWER;
            r->closed  = true;
            r->skip_ws = true;
        } else {
            r->state = DS_REASONING_TOOLS;
            emit(tools, hit, strlen(marker));
        }
        return (size_t)(hit - s) + strlen(marker);
    }
    if (final) {
        size_t end = n;
        if (r->state == DS_REASONING_THINKING)
            while (end > i && is_ws(s[end - 1])) end--;
        emit(out, s + i, end - i);
        return n;
    }
    size_t keep = partial(s + i, n - i, marker);
    while (keep < n - i && is_ws(s[n - keep - 1])) keep++;
    if (keep > sizeof r->hold) keep = sizeof r->hold;
    emit(out, s + i, n - i - keep);
    return n - keep;
}

static void run(ds_reasoning *r, const char *s, size_t n, bool final, ds_buf *reasoning,
                ds_buf *content, ds_buf *tools) {
    size_t i = 0;
    while (i < n) {
        switch (r->state) {
        case DS_REASONING_START: {
            while (i < n && is_ws(s[i])) i++;
            size_t rem = n - i, k = strlen(CHAT_THINK);
            if (rem == 0) break;
            if (rem >= k && !memcmp(s + i, CHAT_THINK, k)) {
                i += k;
                r->state   = DS_REASONING_THINKING;
                r->skip_ws = true;
            } else if (rem < k && !memcmp(s + i, CHAT_THINK, rem) && !final) {
                memcpy(r->hold, s + i, rem);
                r->n_hold = rem;
                return;
            } else {
                r->state = DS_REASONING_ANSWER;
            }
            break;
        }
        case DS_REASONING_THINKING:
        case DS_REASONING_ANSWER: {
            ds_reasoning_state before = r->state;
            ds_buf *out = before == DS_REASONING_THINKING ? reasoning : content;
            size_t used = step_text(r, s + i, n - i, final, out, tools);
            if (i + used < n && r->state == before) {
                // undecided tail: hold it (step_text bounded it by sizeof hold)
                memcpy(r->hold, s + i + used, n - i - used);
                r->n_hold = n - i - used;
                return;
            }
            i += used;
            break;
        }
        case DS_REASONING_TOOLS:
            emit(tools, s + i, n - i);
            i = n;
            break;
        }
    }
}

void ds_reasoning_push(ds_reasoning *r, const char *text, size_t len, ds_buf *reasoning,
                       ds_buf *content, ds_buf *tools) {
    ds_buf work = {0};
    ds_buf_append(&work, r->hold, r->n_hold);
    ds_buf_append(&work, text, len);
    r->n_hold = 0;
    run(r, work.data, work.len, false, reasoning, content, tools);
    ds_buf_free(&work);
}

void ds_reasoning_finish(ds_reasoning *r, ds_buf *reasoning, ds_buf *content, ds_buf *tools) {
    char   held[sizeof r->hold];
    size_t n = r->n_hold;
    memcpy(held, r->hold, n);
    r->n_hold = 0;
    run(r, held, n, true, reasoning, content, tools);
}
