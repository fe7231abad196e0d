// tasks.c - the arithmetic tasks: problems, their step-by-step working, the held-out split,
// and reading an answer back out of a model's reply.
//
// Families: add and sub (operands of 1 to 3 digits; sub keeps a >= b), mul2x1 (2-digit by
// 1-digit), mul2x2, cmp (which of two numbers is larger) and word (addition, subtraction and
// multiplication told as a short story). The working is written digit by digit from the
// right, one column per line, as a person does it on paper: every line needs only digits
// that are already on the page, which is what lets a tiny model learn it.
//
// Split: a problem is the operation and its operands, whatever the phrasing; it is held out
// when a hash of (op, a, b) falls in 1/8 of the range. Training draws reject held-out
// problems and evaluation draws only them, so the two never overlap.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../train_internal.h"

static const char *const family_names[DS_TASK_COUNT] = {"add", "sub", "mul2x1", "mul2x2", "cmp",
                                                        "word"};

const char *ds_task_family_name(ds_task_family f) {
    return (unsigned)f < DS_TASK_COUNT ? family_names[f] : "unknown";
}

bool ds_task_family_from_name(const char *name, ds_task_family *out) {
    for (int f = 0; f < DS_TASK_COUNT; f++)
        if (!strcmp(name, family_names[f])) {
            *out = (ds_task_family)f;
            return true;
        }
    return false;
}

bool ds_task_is_heldout(int op, long a, long b) {
    uint64_t h = 0xcbf29ce484222325ull;
    const long v[3] = {op, a, b};
    for (int i = 0; i < 3; i++) {
        h ^= (uint64_t)v[i] + 0x9E3779B97F4A7C15ull;
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return (h & 7) == 0;
}

// ---- text helpers ----

typedef struct text {
    char  *p;
    size_t n, cap;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (k > 0) t->n = t->n + (size_t)k < t->cap ? t->n + (size_t)k : t->cap - 1;
}

static int digits(long x, int *d) { // least significant first; returns the count
    int n = 0;
    do d[n++] = (int)(x % 10), x /= 10;
    while (x);
    return n;
}

// ---- the working of each operation ----

static void work_add(text *t, long a, long b) {
    int da[8], db[8], n = digits(a, da), m = digits(b, db), c = 0;
    int w = n > m ? n : m;
    for (int i = 0; i < w; i++) {
        int x = i < n ? da[i] : 0, y = i < m ? db[i] : 0, s = x + y + c;
        put(t, "%d+%d+%d=%d, write %d, carry %d\n", x, y, c, s, s % 10, s / 10);
        c = s / 10;
    }
    put(t, "%ld+%ld=%ld\n", a, b, a + b);
}

static void work_sub(text *t, long a, long b) {
    int da[8], db[8], n = digits(a, da), m = digits(b, db), br = 0;
    for (int i = 0; i < n; i++) {
        int x = da[i], y = i < m ? db[i] : 0, s = x - y - br;
        if (s < 0)
            put(t, "%d-%d-%d is negative, %d-%d-%d=%d, write %d, borrow 1\n", x, y, br, x + 10, y,
                br, s + 10, s + 10);
        else
            put(t, "%d-%d-%d=%d, write %d, borrow 0\n", x, y, br, s, s);
        br = s < 0;
    }
    put(t, "%ld-%ld=%ld\n", a, b, a - b);
}

static void work_mul1(text *t, long a, int b) {
    int da[8], n = digits(a, da), c = 0;
    for (int i = 0; i < n; i++) {
        int p = da[i] * b + c;
        if (i + 1 < n)
            put(t, "%d*%d+%d=%d, write %d, carry %d\n", da[i], b, c, p, p % 10, p / 10);
        else
            put(t, "%d*%d+%d=%d, write %d\n", da[i], b, c, p, p);
        c = p / 10;
    }
    put(t, "%ld*%d=%ld\n", a, b, a * b);
}

static void work_mul2(text *t, long a, long b) {
    const int lo = (int)(b % 10), hi = (int)(b / 10);
    put(t, "%ld*%ld=%ld*%d+%ld*%d0\n", a, b, a, lo, a, hi);
    work_mul1(t, a, lo);
    work_mul1(t, a, hi);
    put(t, "so %ld*%d0=%ld\n", a, hi, a * hi * 10);
    work_add(t, a * lo, a * hi * 10);
    put(t, "%ld*%ld=%ld\n", a, b, a * b);
}

static void work_cmp(text *t, long a, long b) {
    int da[8], db[8], n = digits(a, da), m = digits(b, db);
    put(t, "%ld has %d digits, %ld has %d digits\n", a, n, b, m);
    if (n == m)
        for (int i = n - 1; i >= 0; i--) {
            put(t, "%d%c%d\n", da[i], da[i] > db[i] ? '>' : da[i] < db[i] ? '<' : '=', db[i]);
            if (da[i] != db[i]) break;
        }
    put(t, "%ld is larger\n", a > b ? a : b);
}

// ---- problems ----

static long uniform(uint64_t *rng, long lo, long hi) { // inclusive
    return lo + (long)(ds_train_rand(rng) % (uint64_t)(hi - lo + 1));
}

static long n_digits(uint64_t *rng, int max_digits) {
    static const long lo[] = {0, 0, 10, 100}, hi[] = {0, 9, 99, 999};
    int d = (int)uniform(rng, 1, max_digits);
    return uniform(rng, lo[d], hi[d]);
}

static const char *const names[] = {"Tom", "Ann", "Sam", "Mia", "Ben", "Lily"};
static const char *const items[] = {"apples", "coins", "books", "marbles", "stickers", "pencils"};

// Draws operands (and the op code for the split) for family f.
static void operands(ds_task_family f, uint64_t *rng, int *op, long *a, long *b) {
    switch (f) {
    case DS_TASK_ADD: *op = 0, *a = n_digits(rng, 3), *b = n_digits(rng, 3); break;
    case DS_TASK_SUB:
        *op = 1, *a = n_digits(rng, 3), *b = n_digits(rng, 3);
        if (*a < *b) {
            long x = *a;
            *a = *b, *b = x;
        }
        break;
    case DS_TASK_MUL2X1: *op = 2, *a = uniform(rng, 10, 99), *b = uniform(rng, 2, 9); break;
    case DS_TASK_MUL2X2: *op = 2, *a = uniform(rng, 10, 99), *b = uniform(rng, 10, 99); break;
    case DS_TASK_CMP:
        *op = 3, *a = n_digits(rng, 3), *b = n_digits(rng, 3);
        if (*a == *b) *b = *a + 1;
        break;
    default: { // word: add, sub or small mul
        int k = (int)uniform(rng, 0, 2);
        if (k == 2) *op = 2, *a = uniform(rng, 2, 9), *b = uniform(rng, 10, 99);
        else operands(k ? DS_TASK_SUB : DS_TASK_ADD, rng, op, a, b);
    }
    }
}

static void render(ds_task *t, uint64_t *rng) {
    text q = {t->prompt, 0, sizeof t->prompt}, w = {t->think, 0, sizeof t->think};
    const long a = t->a, b = t->b;
    const int  ph = (int)uniform(rng, 0, 2);
    switch (t->family) {
    case DS_TASK_ADD:
        put(&q, ph == 0 ? "What is %ld + %ld?" : ph == 1 ? "Compute %ld plus %ld." : "Add %ld and %ld.",
            a, b);
        work_add(&w, a, b), t->answer = a + b;
        break;
    case DS_TASK_SUB:
        if (ph == 2) put(&q, "Subtract %ld from %ld.", b, a);
        else put(&q, ph == 0 ? "What is %ld - %ld?" : "Compute %ld minus %ld.", a, b);
        work_sub(&w, a, b), t->answer = a - b;
        break;
    case DS_TASK_MUL2X1:
    case DS_TASK_MUL2X2:
        put(&q, ph == 0 ? "What is %ld * %ld?" : ph == 1 ? "Compute %ld times %ld." : "Multiply %ld by %ld.",
            a, b);
        if (t->family == DS_TASK_MUL2X1) work_mul1(&w, a, (int)b);
        else work_mul2(&w, a, b);
        t->answer = a * b;
        break;
    case DS_TASK_CMP:
        put(&q, ph == 0 ? "Which is larger, %ld or %ld?" : "Which number is bigger: %ld or %ld?", a, b);
        work_cmp(&w, a, b), t->answer = a > b ? a : b;
        break;
    default: {
        const char *nm = names[uniform(rng, 0, 5)], *it = items[uniform(rng, 0, 5)];
        const bool  she = nm[0] == 'A' || nm[0] == 'M' || nm[0] == 'L';
        if (t->op == 0) {
            put(&q, "%s has %ld %s. %s buys %ld more. How many %s does %s have now?", nm, a, it,
                she ? "She" : "He", b, it, she ? "she" : "he");
            put(&w, "%s has %ld and buys %ld more, so add\n", nm, a, b);
            work_add(&w, a, b), t->answer = a + b;
        } else if (t->op == 1) {
            put(&q, "%s had %ld %s and gave away %ld. How many %s are left?", nm, a, it, b, it);
            put(&w, "%s had %ld and gave away %ld, so subtract\n", nm, a, b);
            work_sub(&w, a, b), t->answer = a - b;
        } else {
            put(&q, "%s has %ld boxes with %ld %s in each box. How many %s are there in total?", nm,
                a, b, it, it);
            put(&w, "%ld boxes of %ld, so multiply %ld*%ld\n", a, b, b, a);
            work_mul1(&w, b, (int)a), t->answer = a * b;
        }
    }
    }
    if (w.n > 0 && t->think[w.n - 1] == '\n') t->think[--w.n] = '\0'; // no trailing newline
}

void ds_task_sample(ds_task_family f, bool heldout, uint64_t *rng, ds_task *out) {
    memset(out, 0, sizeof *out);
    out->family = f;
    for (int tries = 0;; tries++) {
        operands(f, rng, &out->op, &out->a, &out->b);
        if (ds_task_is_heldout(out->op, out->a, out->b) == heldout) break;
        DS_ASSERT(tries < 100000);
    }
    render(out, rng);
}

size_t ds_task_prompt(const ds_task *t, char *buf, size_t cap) {
    return (size_t)snprintf(buf, cap, DS_TASK_BOS DS_TASK_USER "%s" DS_TASK_ASSISTANT "<think>\n",
                            t->prompt);
}

size_t ds_task_reply(const ds_task *t, char *buf, size_t cap) {
    return (size_t)snprintf(buf, cap, "%s\n</think>\n\n%ld", t->think, t->answer);
}

// ---- reading a reply ----

bool ds_task_parse_reply(const char *s, size_t len, long *answer, bool *well_formed) {
    // the reply as generated after the prompt's "<think>\n": working, "</think>", the answer
    const char *end = s + len, *close = NULL;
    for (const char *p = s; p + 8 <= end; p++)
        if (!memcmp(p, "</think>", 8)) {
            close = p;
            break;
        }
    *well_formed = false;
    if (!close) return false;
    bool open_again = false;
    for (const char *p = s; p + 7 <= close; p++) open_again |= !memcmp(p, "<think>", 7);
    const char *p = close + 8;
    while (p < end && (*p == '\n' || *p == ' ')) p++;
    bool neg = p < end && *p == '-';
    if (neg) p++;
    if (p >= end || *p < '0' || *p > '9') return false;
    long v = 0;
    int  nd = 0;
    for (; p < end && *p >= '0' && *p <= '9' && nd < 12; p++, nd++) v = v * 10 + (*p - '0');
    while (p < end && (*p == ' ' || *p == '\n' || *p == '.')) p++;
    *answer = neg ? -v : v;
    *well_formed = !open_again && close > s && p == end;
    return true;
}
