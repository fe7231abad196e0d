// test_chat_cli.c - the model-free parts of `deepseek chat`: prices and the stats line,
// slash commands, the /save message list (read back by the library's own parser), and the
// rendering of thinking vs answer. Expected values are worked out by hand in the comments.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#include "chat_cli.h"

// ---- prices and stats ----

static void prices_parse(void **state) {
    (void)state;
    chat_prices p;
    assert_int_equal(chat_prices_parse("0.028,0.28,0.42", &p), DS_OK);
    assert_true(p.hit == 0.028 && p.miss == 0.28 && p.out == 0.42);
    assert_int_equal(chat_prices_parse("0,0,0", &p), DS_OK);
    const char *bad[] = {"", "1,2", "1,2,3,", "1,2,3x", "-1,2,3", "1;2;3", "nan,1,1", "1,inf,1",
                         "1,,3", "2e7,1,1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chat_prices_parse(bad[i], &p), DS_EINVAL);
        assert_non_null(strstr(ds_errmsg(), "prices"));
    }
}

static void api_cost(void **state) {
    (void)state;
    chat_prices p = CHAT_PRICES_DEFAULT;
    // 400 hits * 0.028 + 600 misses * 0.28 + 2000 out * 0.42 = 11.2 + 168 + 840 = 1019.2 per 1M
    assert_float_equal(chat_api_cost(&p, 1000, 400, 2000), 1019.2e-6, 1e-12);
    // hits beyond the prompt (cannot happen, but must not go negative): all 10 are hits
    assert_float_equal(chat_api_cost(&p, 10, 50, 0), 10 * 0.028e-6, 1e-15);
    assert_float_equal(chat_api_cost(&p, 0, 0, 0), 0, 0);
    // a million output tokens cost the output price
    assert_float_equal(chat_api_cost(&p, 0, 0, 1000000), 0.42, 1e-12);
}

static void tokens_per_s(void **state) {
    (void)state;
    // 11 tokens, the last 10 over 2 s of decoding: 5 tok/s
    assert_float_equal(chat_tokens_per_s(&(chat_turn_stats){.completion_tokens = 11,
                                                            .decode_s = 2, .wall_s = 3}),
                       5.0, 1e-9);
    // one token: over the whole turn
    assert_float_equal(
        chat_tokens_per_s(&(chat_turn_stats){.completion_tokens = 1, .decode_s = 0.1, .wall_s = 0.5}),
        2.0, 1e-9);
    assert_float_equal(chat_tokens_per_s(&(chat_turn_stats){.wall_s = 1}), 0, 0);
    assert_float_equal(chat_tokens_per_s(&(chat_turn_stats){.completion_tokens = 5}), 0, 0);
}

static void stats_line(void **state) {
    (void)state;
    chat_prices     p = CHAT_PRICES_DEFAULT;
    chat_turn_stats s = {.prompt_tokens = 35, .cache_hit_tokens = 12, .completion_tokens = 64,
                         .reasoning_tokens = 60, .wall_s = 10, .decode_s = 5, .cpu_s = 2.314,
                         .ctx_used = 99, .n_ctx = 4096};
    ds_buf b = {0};
    chat_stats_line(&b, &s, &p);
    // API: 12 * 0.028 + 23 * 0.28 + 64 * 0.42 = 0.336 + 6.44 + 26.88 = 33.656 per 1M;
    // speed: 63 tokens after the first over 5 s = 12.6
    assert_string_equal(b.data, "in 35 (12 cached) | out 64 (60 reasoning) | 12.6 tok/s | "
                                "ctx 99/4096 | API $0.000034 | local 2.31 CPU-s");
    ds_buf_clear(&b);
    s = (chat_turn_stats){.prompt_tokens = 100000, .completion_tokens = 50000, .wall_s = 100,
                          .cpu_s = 800, .ctx_used = 150000, .n_ctx = 163840};
    chat_stats_line(&b, &s, &p);
    // 100000 * 0.28 + 50000 * 0.42 = 28000 + 21000 = 49000 per 1M = $0.049
    assert_string_equal(b.data, "in 100000 | out 50000 | 500.0 tok/s | ctx 150000/163840 | "
                                "API $0.0490 | local 800.00 CPU-s");
    ds_buf_clear(&b);
    chat_stats_line(&b, &(chat_turn_stats){.n_ctx = 8}, &(chat_prices){0});
    assert_string_equal(b.data, "in 0 | out 0 | 0.0 tok/s | ctx 0/8 | API $0 | local 0.00 CPU-s");
    ds_buf_free(&b);
}

// ---- slash commands ----

static chat_cmd parse(const char *text) {
    static char line[256];
    snprintf(line, sizeof line, "%s", text);
    return chat_command_parse(line);
}

static void commands(void **state) {
    (void)state;
    assert_int_equal(parse("hello /there").kind, CHAT_CMD_NONE);
    assert_int_equal(parse(" /help").kind, CHAT_CMD_NONE); // only a leading slash
    assert_int_equal(parse("/help").kind, CHAT_CMD_HELP);
    assert_int_equal(parse("/reset").kind, CHAT_CMD_RESET);
    assert_int_equal(parse("/reset   ").kind, CHAT_CMD_RESET);
    assert_int_equal(parse("/exit").kind, CHAT_CMD_EXIT);
    assert_int_equal(parse("/bye").kind, CHAT_CMD_EXIT);

    chat_cmd c = parse("/think on");
    assert_true(c.kind == CHAT_CMD_THINK && c.value == DS_THINK_ON);
    c = parse("/think\toff ");
    assert_true(c.kind == CHAT_CMD_THINK && c.value == DS_THINK_OFF);
    c = parse("/think");
    assert_true(c.kind == CHAT_CMD_THINK && c.value == -1);
    c = parse("/think maybe");
    assert_int_equal(c.kind, CHAT_CMD_ERROR);
    assert_string_equal(c.err, "/think takes on or off (got 'maybe')");

    c = parse("/budget 12  ");
    assert_true(c.kind == CHAT_CMD_BUDGET && c.value == 12);
    c = parse("/budget 0");
    assert_true(c.kind == CHAT_CMD_BUDGET && c.value == 0);
    c = parse("/budget");
    assert_true(c.kind == CHAT_CMD_BUDGET && c.value == -1);
    c = parse("/budget -1");
    assert_int_equal(c.kind, CHAT_CMD_ERROR);
    assert_string_equal(c.err, "the reasoning budget cannot be negative (got -1); give a number "
                               "of tokens, or 0 for no limit");
    const char *bad_budget[] = {"/budget abc", "/budget 1.5", "/budget 99999999999",
                                "/budget 3 4", "/budget 16777217"};
    for (size_t i = 0; i < sizeof bad_budget / sizeof bad_budget[0]; i++) {
        c = parse(bad_budget[i]);
        assert_int_equal(c.kind, CHAT_CMD_ERROR);
        assert_non_null(strstr(c.err, "/budget takes a number of tokens"));
    }

    c = parse("/save  my chat.json  ");
    assert_int_equal(c.kind, CHAT_CMD_SAVE);
    assert_string_equal(c.arg, "my chat.json");
    c = parse("/save");
    assert_int_equal(c.kind, CHAT_CMD_ERROR);
    assert_string_equal(c.err, "/save needs a file name: /save FILE");
    c = parse("/reset now");
    assert_int_equal(c.kind, CHAT_CMD_ERROR);
    assert_string_equal(c.err, "/reset takes no argument (got 'now')");

    c = parse("/frobnicate the thing");
    assert_int_equal(c.kind, CHAT_CMD_ERROR);
    assert_string_equal(c.err, "unknown command '/frobnicate' (see /help)");
    c = parse("/averyveryverylongcommandname");
    assert_int_equal(c.kind, CHAT_CMD_ERROR);
    assert_string_equal(c.err, "unknown command '/averyveryverylongcommandname' (see /help)");
    c = parse("/");
    assert_int_equal(c.kind, CHAT_CMD_ERROR);
    for (const char *h = "/help|/reset|/think on|off|/budget N|/save FILE|/exit"; *h;) {
        const char *bar = strchr(h, '|');
        size_t      n   = bar ? (size_t)(bar - h) : strlen(h);
        char        want[32];
        snprintf(want, sizeof want, "%.*s", (int)n, h);
        assert_non_null(strstr(chat_help_text, want));
        h += n + (bar != NULL);
    }
}

// ---- /save ----

static void save_round_trip(void **state) {
    (void)state;
    ds_chat_messages m = {0};
    ds_chat_messages_add(&m, DS_ROLE_SYSTEM, "Be \"brief\".\n", NULL);
    ds_chat_messages_add(&m, DS_ROLE_USER, "Hello\twörld \\ 🙂", NULL);
    ds_chat_messages_add(&m, DS_ROLE_ASSISTANT, "Hi.", "they said hello");
    ds_chat_messages_add(&m, DS_ROLE_ASSISTANT, NULL, NULL);
    ds_chat_message *a = &m.items[3];
    a->n_tool_calls    = 1;
    a->tool_calls      = calloc(1, sizeof *a->tool_calls);
    a->tool_calls[0]   = (ds_chat_tool_call){.id = strdup("call_1"), .type = strdup("function"),
                                             .name = strdup("get_weather"),
                                             .arguments = strdup("{\"city\":\"Paris\"}")};
    ds_chat_messages_add(&m, DS_ROLE_TOOL, "sunny", NULL);
    m.items[4].tool_call_id = strdup("call_1");

    ds_buf b = {0};
    chat_messages_json(&b, &m);
    assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
    ds_chat_messages back = {0};
    assert_int_equal(ds_chat_messages_parse(b.data, b.len, &back), DS_OK);
    assert_int_equal(back.n, m.n);
    for (size_t i = 0; i < m.n; i++) {
        assert_int_equal(back.items[i].role, m.items[i].role);
        if (m.items[i].content) assert_string_equal(back.items[i].content, m.items[i].content);
        else assert_null(back.items[i].content);
        if (m.items[i].reasoning_content)
            assert_string_equal(back.items[i].reasoning_content, m.items[i].reasoning_content);
        else assert_null(back.items[i].reasoning_content);
    }
    assert_int_equal(back.items[3].n_tool_calls, 1);
    assert_string_equal(back.items[3].tool_calls[0].name, "get_weather");
    assert_string_equal(back.items[3].tool_calls[0].id, "call_1");
    assert_non_null(strstr(back.items[3].tool_calls[0].arguments, "Paris"));
    assert_string_equal(back.items[4].tool_call_id, "call_1");
    ds_chat_messages_free(&back);

    // through a file
    char path[] = "/tmp/test_chat_cli_XXXXXX";
    int  fd     = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chat_messages_save(path, &m), DS_OK);
    FILE *f = fopen(path, "rb");
    char  got[4096];
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    unlink(path);
    assert_int_equal(n, b.len);
    assert_memory_equal(got, b.data, n);

    assert_int_equal(chat_messages_save("/nonexistent-dir/x.json", &m), DS_EIO);
    assert_non_null(strstr(ds_errmsg(), "/nonexistent-dir/x.json: cannot write"));

    ds_chat_messages empty = {0};
    ds_buf_clear(&b);
    chat_messages_json(&b, &empty);
    assert_string_equal(b.data, "[]\n");
    ds_buf_free(&b);
    ds_chat_messages_free(&m);
}

// ---- rendering ----

typedef struct capture {
    char  *data;
    size_t len;
    FILE  *f;
} capture;

static void cap_open(capture *c) {
    *c = (capture){0};
    c->f = open_memstream(&c->data, &c->len);
    assert_non_null(c->f);
}

static void cap_close(capture *c) {
    fclose(c->f);
    free(c->data);
}

static void render_reply(chat_render *r) {
    chat_render_reasoning(r, "let me ", 7);
    chat_render_reasoning(r, "think", 5);
    chat_render_content(r, "The answer", 10);
    chat_render_content(r, " is 4.", 6);
    chat_render_end(r);
}

static void render(void **state) {
    (void)state;
    capture     c;
    chat_render r;

    cap_open(&c);
    chat_render_init(&r, c.f, c.f, true, false);
    render_reply(&r);
    fflush(c.f);
    assert_string_equal(c.data, "\033[2mlet me think\033[0m\n\nThe answer is 4.\n");
    cap_close(&c);

    cap_open(&c);
    chat_render_init(&r, c.f, c.f, false, false);
    render_reply(&r);
    fflush(c.f);
    assert_string_equal(c.data, "Thinking...\nlet me think\n...done thinking.\n\nThe answer is 4.\n");
    cap_close(&c);

    cap_open(&c);
    chat_render_init(&r, c.f, c.f, true, true);
    render_reply(&r);
    fflush(c.f);
    assert_string_equal(c.data, "The answer is 4.\n");
    cap_close(&c);

    // interrupted while thinking: the dim state is closed and the line ended
    cap_open(&c);
    chat_render_init(&r, c.f, c.f, true, false);
    chat_render_reasoning(&r, "hmm", 3);
    chat_render_end(&r);
    fflush(c.f);
    assert_string_equal(c.data, "\033[2mhmm\033[0m\n");
    cap_close(&c);

    // two streams (-p): the thinking on one, the answer alone on the other
    capture t;
    cap_open(&c);
    cap_open(&t);
    chat_render_init(&r, c.f, t.f, false, false);
    render_reply(&r);
    fflush(c.f);
    fflush(t.f);
    assert_string_equal(c.data, "The answer is 4.\n");
    assert_string_equal(t.data, "Thinking...\nlet me think\n...done thinking.\n");
    cap_close(&t);
    cap_close(&c);

    // reasoning text ending in a newline gets no extra one; nothing at all prints nothing
    cap_open(&c);
    chat_render_init(&r, c.f, c.f, false, false);
    chat_render_reasoning(&r, "x\n", 2);
    chat_render_end(&r);
    chat_render_end(&r);
    fflush(c.f);
    assert_string_equal(c.data, "Thinking...\nx\n...done thinking.\n");
    cap_close(&c);

    cap_open(&c);
    chat_render_note(c.f, true, "[stats]");
    chat_render_note(c.f, false, "[stats]");
    fflush(c.f);
    assert_string_equal(c.data, "\033[2m[stats]\033[0m\n[stats]\n");
    assert_false(chat_use_color(c.f)); // not a terminal
    cap_close(&c);
}

static void no_color(void **state) {
    (void)state;
    setenv("NO_COLOR", "1", 1);
    assert_false(chat_use_color(stdout));
    unsetenv("NO_COLOR");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prices_parse), cmocka_unit_test(api_cost),
        cmocka_unit_test(tokens_per_s), cmocka_unit_test(stats_line),
        cmocka_unit_test(commands),     cmocka_unit_test(save_round_trip),
        cmocka_unit_test(render),       cmocka_unit_test(no_color),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
