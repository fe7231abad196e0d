// test_reasoning.c - the reasoning split (every family's start, markers split across tokens,
// unclosed thinking, V3.1 non-thinking, tool calls after reasoning) and the tool-call parser.
//
// Each reply is fed whole, byte by byte, and cut in two at every position: the three outputs
// must be the same every time, since a token boundary may fall anywhere.
#include "test.h"

#include "ds/chat.h"

#define R1_PROMPT   "<｜User｜>q<｜Assistant｜><think>\n"
#define BARE_PROMPT "<｜User｜>q<｜Assistant｜>"
#define V31_OFF     "<｜User｜>q<｜Assistant｜></think>"
#define V31_ON      "<｜User｜>q<｜Assistant｜><think>"
#define CALLS_V3                                                                                   \
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"     \
    "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"

typedef struct split {
    ds_buf r, c, t;
} split;

static void feed(ds_chat_format f, const char *prompt, const char *const *pieces, int n, split *o) {
    *o = (split){0};
    ds_buf_puts(&o->r, "");
    ds_buf_puts(&o->c, "");
    ds_buf_puts(&o->t, "");
    ds_reasoning rs;
    ds_reasoning_init(&rs, f, prompt, prompt ? strlen(prompt) : 0);
    for (int i = 0; i < n; i++) ds_reasoning_push(&rs, pieces[i], strlen(pieces[i]), &o->r, &o->c, &o->t);
    ds_reasoning_finish(&rs, &o->r, &o->c, &o->t);
}

static void split_free(split *o) {
    ds_buf_free(&o->r);
    ds_buf_free(&o->c);
    ds_buf_free(&o->t);
}

static void check(const split *o, const char *r, const char *c, const char *t, const char *how) {
    if (strcmp(o->r.data, r) || strcmp(o->c.data, c) || strcmp(o->t.data, t))
        fail_msg("%s: got reasoning '%s' content '%s' tools '%s'; want '%s' '%s' '%s'", how,
                 o->r.data, o->c.data, o->t.data, r, c, t);
}

static void expect(ds_chat_format f, const char *prompt, const char *reply, const char *r,
                   const char *c, const char *t) {
    split o;
    const char *whole[] = {reply};
    feed(f, prompt, whole, 1, &o);
    check(&o, r, c, t, "whole");
    split_free(&o);
    size_t n = strlen(reply);
    char bytes[512][2];
    const char *per[512];
    assert_true(n < 512);
    for (size_t i = 0; i < n; i++) {
        bytes[i][0] = reply[i];
        bytes[i][1] = '\0';
        per[i]      = bytes[i];
    }
    feed(f, prompt, per, (int)n, &o);
    check(&o, r, c, t, "byte by byte");
    split_free(&o);
    char a[512];
    for (size_t cut = 0; cut <= n; cut++) {
        memcpy(a, reply, cut);
        a[cut]              = '\0';
        const char *two[2]  = {a, reply + cut};
        feed(f, prompt, two, 2, &o);
        char how[32];
        snprintf(how, sizeof how, "cut at %zu", cut);
        check(&o, r, c, t, how);
        split_free(&o);
    }
}

// ---- each family's start ----

static void r1_forced_open(void **state) {
    (void)state;
    expect(DS_CHAT_DEEPSEEK_R1, R1_PROMPT, "Okay, 2+2.\nSo 4.\n</think>\n\nIt is **4**.\n",
           "Okay, 2+2.\nSo 4.", "It is **4**.\n", "");
    expect(DS_CHAT_R1_DISTILL_QWEN, R1_PROMPT, "\n\n</think>\n\nNo thought.", "", "No thought.", "");
}

static void model_opens_thinking_itself(void **state) {
    (void)state;
    // The first R1 template, R1-0528 and V3 end at <｜Assistant｜>: the model may open <think>.
    expect(DS_CHAT_DEEPSEEK_R1_ORIGINAL, BARE_PROMPT, "<think>\nHmm.\n</think>\n\nA", "Hmm.", "A", "");
    expect(DS_CHAT_DEEPSEEK_R1_ORIGINAL, BARE_PROMPT, "\n<think>\n\n</think>\n\nA", "", "A", "");
    expect(DS_CHAT_DEEPSEEK_V3, BARE_PROMPT, "Plain answer.", "", "Plain answer.", "");
    expect(DS_CHAT_DEEPSEEK_V3, BARE_PROMPT, "<tha", "", "<tha", "");
    expect(DS_CHAT_DEEPSEEK_V3, BARE_PROMPT, "<th", "", "<th", ""); // ended undecided: answer
}

static void v31_thinking_on_and_off(void **state) {
    (void)state;
    expect(DS_CHAT_DEEPSEEK_V3_1, V31_ON, "Let me see.</think>Four.", "Let me see.", "Four.", "");
    // Non-thinking: everything is answer, even text that looks like a tag.
    expect(DS_CHAT_DEEPSEEK_V3_1, V31_OFF, "Four. <think>x</think>", "", "Four. <think>x</think>", "");
}

static void thinking_never_closed(void **state) {
    (void)state;
    split o;
    const char *pieces[] = {"I keep thinking", " and thinking\n", "</th"};
    feed(DS_CHAT_DEEPSEEK_R1, R1_PROMPT, pieces, 3, &o);
    check(&o, "I keep thinking and thinking\n</th", "", "", "unclosed");
    split_free(&o);
    ds_reasoning rs;
    ds_reasoning_init(&rs, DS_CHAT_DEEPSEEK_R1, R1_PROMPT, strlen(R1_PROMPT));
    assert_true(ds_reasoning_is_thinking(&rs));
}

static void close_tag_split_across_tokens_never_leaks(void **state) {
    (void)state;
    ds_reasoning rs;
    ds_buf r = {0}, c = {0};
    ds_buf_puts(&r, "");
    ds_buf_puts(&c, "");
    ds_reasoning_init(&rs, DS_CHAT_DEEPSEEK_R1, R1_PROMPT, strlen(R1_PROMPT));
    ds_reasoning_push(&rs, "step one\n</", 11, &r, &c, NULL);
    assert_string_equal(r.data, "step one"); // "\n</" is held: it may be the end tag
    assert_string_equal(c.data, "");
    ds_reasoning_push(&rs, "think", 5, &r, &c, NULL);
    assert_string_equal(r.data, "step one");
    ds_reasoning_push(&rs, ">\n\nAns", 6, &r, &c, NULL);
    assert_string_equal(r.data, "step one");
    assert_string_equal(c.data, "Ans");
    assert_false(ds_reasoning_is_thinking(&rs));
    assert_true(rs.closed);
    ds_buf_free(&r);
    ds_buf_free(&c);
}

// ---- tool calls ----

static void tool_calls_after_reasoning(void **state) {
    (void)state;
    expect(DS_CHAT_DEEPSEEK_R1, R1_PROMPT, "Need weather.\n</think>\n\nChecking.\n" CALLS_V3,
           "Need weather.", "Checking.", CALLS_V3);
    ds_chat_tool_call *calls;
    size_t n;
    assert_int_equal(ds_chat_parse_tool_calls(DS_CHAT_DEEPSEEK_R1, CALLS_V3, strlen(CALLS_V3),
                                              &calls, &n),
                     DS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(calls[0].name, "get_weather");
    assert_string_equal(calls[0].arguments, "{\"city\":\"Paris\"}");
    ds_chat_tool_calls_free(calls, n);
}

static void parse_each_family(void **state) {
    (void)state;
    ds_chat_tool_call *calls;
    size_t n;
    // V3.1: NAME<｜tool▁sep｜>ARGS, arguments as an object or as the template's JSON string.
    const char *v31 = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{\"tz\": \"CET\"}"
                      "<｜tool▁call▁end｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>\"{\\\"a\\\": [1, 2]}\""
                      "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
    assert_int_equal(ds_chat_parse_tool_calls(DS_CHAT_DEEPSEEK_V3_1, v31, strlen(v31), &calls, &n),
                     DS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(calls[0].name, "get_time");
    assert_string_equal(calls[0].arguments, "{\"tz\":\"CET\"}");
    assert_string_equal(calls[1].arguments, "{\"a\":[1,2]}");
    ds_chat_tool_calls_free(calls, n);
    // V3.2 DSML, reached through the splitter.
    const char *dsml = "<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
                       "<｜DSML｜parameter name=\"city\" string=\"true\">Paris \"center\"</｜DSML｜parameter>\n"
                       "<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n"
                       "</｜DSML｜invoke>\n</｜DSML｜function_calls>";
    char reply[1024];
    snprintf(reply, sizeof reply, "Sure.\n\n%s", dsml);
    expect(DS_CHAT_DEEPSEEK_V3_2, "<｜Assistant｜></think>", reply, "", "Sure.", dsml);
    assert_int_equal(ds_chat_parse_tool_calls(DS_CHAT_DEEPSEEK_V3_2, dsml, strlen(dsml), &calls, &n),
                     DS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(calls[0].name, "get_weather");
    assert_string_equal(calls[0].arguments, "{\"city\":\"Paris \\\"center\\\"\",\"days\":3}");
    ds_chat_tool_calls_free(calls, n);
    // A reply that stopped at end-of-sentence before <｜tool▁calls▁end｜> still parses.
    const char *open = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n"
                       "{}\n```<｜tool▁call▁end｜>";
    assert_int_equal(ds_chat_parse_tool_calls(DS_CHAT_DEEPSEEK_V3, open, strlen(open), &calls, &n),
                     DS_OK);
    assert_int_equal(n, 1);
    ds_chat_tool_calls_free(calls, n);
}

static void bad_tool_blocks(void **state) {
    (void)state;
    ds_chat_tool_call *calls;
    size_t n;
    const char *cut = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\"";
    assert_int_equal(ds_chat_parse_tool_calls(DS_CHAT_DEEPSEEK_R1, cut, strlen(cut), &calls, &n),
                     DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "incomplete"));
    const char *notjson = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{oops}"
                          "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
    assert_int_equal(ds_chat_parse_tool_calls(DS_CHAT_DEEPSEEK_V3_1, notjson, strlen(notjson),
                                              &calls, &n),
                     DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "not a JSON object"));
    assert_int_equal(ds_chat_parse_tool_calls(DS_CHAT_DEEPSEEK_V2, "x", 1, &calls, &n),
                     DS_EUNSUPPORTED);
    assert_null(calls);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(r1_forced_open),
        cmocka_unit_test(model_opens_thinking_itself),
        cmocka_unit_test(v31_thinking_on_and_off),
        cmocka_unit_test(thinking_never_closed),
        cmocka_unit_test(close_tag_split_across_tokens_never_leaks),
        cmocka_unit_test(tool_calls_after_reasoning),
        cmocka_unit_test(parse_each_family),
        cmocka_unit_test(bad_tool_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
