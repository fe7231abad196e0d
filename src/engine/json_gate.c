// json_gate.c - a byte-level JSON recogniser for constrained sampling.
//
// The gate accepts exactly the prefixes of one JSON object (RFC 8259 grammar), so the sampler
// can ask "may this token's bytes come next?" by feeding a copy of the state. The state is a
// small plain struct (a bracket stack plus a lexer state), cheap to copy once per candidate.
// A few restrictions keep a random or looping model from wandering: the top level must be an
// object, whitespace outside strings may not run longer than one byte (a model that emits
// endless blanks is a documented failure of JSON modes elsewhere), strings stop at
// DS_JSON_MAX_STRING bytes and numbers at DS_JSON_MAX_NUMBER characters.
// ds_json_gate_complete writes the shortest text that turns the current prefix into a valid
// document; the engine uses it when max_tokens ends generation inside the object, so the
// reply is always valid JSON.
#include <string.h>

#include "engine_internal.h"

enum {
    ST_START,        // before the top-level '{'
    ST_VALUE,        // a value must come
    ST_VALUE_OR_END, // after '[': a value or ']'
    ST_KEY_OR_END,   // after '{': a key or '}'
    ST_KEY,          // after ',' in an object: a key
    ST_COLON,        // after a key
    ST_AFTER,        // after a value: ',' or the closing bracket
    ST_STRING,       // inside a string
    ST_ESC,          // after a backslash
    ST_UHEX,         // inside \uXXXX (sub = digits read)
    ST_N_MINUS,      // after '-'
    ST_N_ZERO,       // a leading 0
    ST_N_INT,        // integer digits
    ST_N_DOT,        // after '.'
    ST_N_FRAC,       // fraction digits
    ST_N_E,          // after 'e'
    ST_N_ESIGN,      // after the exponent sign
    ST_N_EXP,        // exponent digits
    ST_LITERAL,      // inside true/false/null (lit, sub = bytes matched)
    ST_DONE,         // the object is complete
};

static const char *const literals[3] = {"true", "false", "null"};

void ds_json_gate_init(ds_json_gate *g) {
    memset(g, 0, sizeof *g);
    g->st = ST_START;
}

bool ds_json_gate_done(const ds_json_gate *g) { return g->st == ST_DONE; }

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static bool is_ws(int c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// A value (string, number, literal, container) just ended.
static void value_end(ds_json_gate *g) { g->st = g->depth == 0 ? ST_DONE : ST_AFTER; }

static bool open_container(ds_json_gate *g, uint8_t c) {
    if (g->depth >= DS_JSON_MAX_DEPTH) return false;
    g->stack[g->depth++] = c;
    g->st                = c == '{' ? ST_KEY_OR_END : ST_VALUE_OR_END;
    return true;
}

static bool close_container(ds_json_gate *g, uint8_t c) {
    if (g->depth == 0 || g->stack[g->depth - 1] != (c == '}' ? '{' : '[')) return false;
    g->depth--;
    value_end(g);
    return true;
}

// The first byte of a value.
static bool start_value(ds_json_gate *g, int c) {
    if (c == '{' || c == '[') return open_container(g, (uint8_t)c);
    if (c == '"') {
        g->st     = ST_STRING;
        g->is_key = false;
        g->len    = 0;
        return true;
    }
    g->len = 0;
    if (c == '-') return g->st = ST_N_MINUS, true;
    if (c == '0') return g->st = ST_N_ZERO, true;
    if (is_digit(c)) return g->st = ST_N_INT, true;
    for (int i = 0; i < 3; i++)
        if (c == literals[i][0]) {
            g->st  = ST_LITERAL;
            g->lit = (uint8_t)i;
            g->sub = 1;
            return true;
        }
    return false;
}

// States where whitespace may come between tokens.
static bool ws_state(int st) {
    return st == ST_VALUE || st == ST_VALUE_OR_END || st == ST_KEY_OR_END || st == ST_KEY ||
           st == ST_COLON || st == ST_AFTER;
}

// Ends a number at a byte that cannot continue it; the byte is then read as structure.
static bool end_number(ds_json_gate *g, int c);

static bool step(ds_json_gate *g, int c) {
    if (ws_state(g->st) && is_ws(c)) {
        if (++g->ws > 1) return false;
        return true;
    }
    g->ws = 0;
    if (g->st >= ST_N_MINUS && g->st <= ST_N_EXP && ++g->len > DS_JSON_MAX_NUMBER &&
        (is_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
        return false; // a number may not grow forever
    switch (g->st) {
    case ST_START: return c == '{' && open_container(g, '{');
    case ST_VALUE: return start_value(g, c);
    case ST_VALUE_OR_END: return c == ']' ? close_container(g, ']') : start_value(g, c);
    case ST_KEY_OR_END:
        if (c == '}') return close_container(g, '}');
        /* fall through */
    case ST_KEY:
        if (c != '"') return false;
        g->st     = ST_STRING;
        g->is_key = true;
        g->len    = 0;
        return true;
    case ST_COLON: return c == ':' && (g->st = ST_VALUE, true);
    case ST_AFTER:
        if (c == ',') {
            g->st = g->stack[g->depth - 1] == '{' ? ST_KEY : ST_VALUE;
            return true;
        }
        return (c == '}' || c == ']') && close_container(g, (uint8_t)c);
    case ST_STRING:
        if (c == '"') {
            if (g->is_key) g->st = ST_COLON;
            else value_end(g);
            return true;
        }
        if (g->len >= DS_JSON_MAX_STRING) return false; // only the closing quote is left
        g->len++;
        if (c == '\\') return g->st = ST_ESC, true;
        return c >= 0x20; // raw control characters are not allowed in strings
    case ST_ESC:
        if (c == 'u') {
            g->st  = ST_UHEX;
            g->sub = 0;
            return true;
        }
        if (!strchr("\"\\/bfnrt", c) || c == 0) return false;
        g->st = ST_STRING;
        return true;
    case ST_UHEX:
        if (!is_hex(c)) return false;
        if (++g->sub == 4) g->st = ST_STRING;
        return true;
    case ST_N_MINUS:
        if (c == '0') return g->st = ST_N_ZERO, true;
        return is_digit(c) && (g->st = ST_N_INT, true);
    case ST_N_ZERO:
        if (c == '.') return g->st = ST_N_DOT, true;
        if (c == 'e' || c == 'E') return g->st = ST_N_E, true;
        return end_number(g, c);
    case ST_N_INT:
        if (is_digit(c)) return true;
        if (c == '.') return g->st = ST_N_DOT, true;
        if (c == 'e' || c == 'E') return g->st = ST_N_E, true;
        return end_number(g, c);
    case ST_N_DOT: return is_digit(c) && (g->st = ST_N_FRAC, true);
    case ST_N_FRAC:
        if (is_digit(c)) return true;
        if (c == 'e' || c == 'E') return g->st = ST_N_E, true;
        return end_number(g, c);
    case ST_N_E:
        if (c == '+' || c == '-') return g->st = ST_N_ESIGN, true;
        /* fall through */
    case ST_N_ESIGN: return is_digit(c) && (g->st = ST_N_EXP, true);
    case ST_N_EXP: return is_digit(c) ? true : end_number(g, c);
    case ST_LITERAL:
        if (c != literals[g->lit][g->sub]) return false;
        if (literals[g->lit][++g->sub] == 0) value_end(g);
        return true;
    default: return false; // ST_DONE: nothing may follow
    }
}

static bool end_number(ds_json_gate *g, int c) {
    value_end(g);
    if (g->st == ST_DONE) return false; // numbers never stand at the top level here
    return step(g, c);
}

bool ds_json_gate_feed(ds_json_gate *g, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!step(g, (unsigned char)s[i])) return false;
    return true;
}

void ds_json_gate_complete(const ds_json_gate *g0, ds_buf *out) {
    ds_json_gate g = *g0;
    switch (g.st) {
    case ST_START: ds_buf_puts(out, "{}"); return;
    case ST_DONE: return;
    case ST_VALUE: ds_buf_puts(out, "null"); break;
    case ST_VALUE_OR_END:
    case ST_KEY_OR_END:
    case ST_AFTER: break;
    case ST_KEY: ds_buf_puts(out, "\"\":null"); break;
    case ST_COLON: ds_buf_puts(out, ":null"); break;
    case ST_ESC: ds_buf_puts(out, "n\""); break;
    case ST_UHEX:
        for (int i = g.sub; i < 4; i++) ds_buf_puts(out, "0");
        ds_buf_puts(out, "\"");
        break;
    case ST_STRING: ds_buf_puts(out, g.is_key ? "\":null" : "\""); break;
    case ST_N_MINUS:
    case ST_N_DOT:
    case ST_N_E:
    case ST_N_ESIGN: ds_buf_puts(out, "0"); break;
    case ST_LITERAL: ds_buf_puts(out, literals[g.lit] + g.sub); break;
    default: break; // complete numbers need nothing
    }
    if (g.st == ST_ESC || g.st == ST_UHEX) {
        if (g.is_key) ds_buf_puts(out, ":null");
    }
    for (int i = g.depth - 1; i >= 0; i--) ds_buf_puts(out, g.stack[i] == '{' ? "}" : "]");
}
