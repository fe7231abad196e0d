// test_openai_request.c - request validation (ds_openai_parse) without a model or a socket:
// the malformed bodies the server must refuse, each with its status and the field named, and
// well-formed bodies with the values they must produce.
#include "test.h"

#include <string.h>

#include "ds/server.h"

static const ds_openai_limits LIM = {.max_tokens = 4096, .n_vocab = 971, .max_messages = 64};

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

typedef struct bad_case {
    ds_openai_kind kind;
    const char    *body;
    int            status;
    const char    *param;  // expected err.param ("" for none)
    const char    *phrase; // must occur in the message
} bad_case;

// Each of these must be refused with the status, the field and a message that says what is
// wrong. (The HTTP-level cases - oversized body, wrong key, unknown route - are in
// tests/server/malformed.py, which also checks the server answers after each.)
static const bad_case bad_cases[] = {
    {DS_OPENAI_CHAT, "", 400, "", "empty"},
    {DS_OPENAI_CHAT, "{", 400, "", "not valid JSON"},
    {DS_OPENAI_CHAT, "{\"messages\":[}", 400, "", "not valid JSON"},
    {DS_OPENAI_CHAT, "[1,2]", 400, "", "JSON object"},
    {DS_OPENAI_CHAT, "\"hello\"", 400, "", "not valid JSON"},
    {DS_OPENAI_CHAT, "null", 400, "", "not valid JSON"},
    {DS_OPENAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", 400, "", "not valid JSON"},
    {DS_OPENAI_CHAT, "{\"a\":1,\"a\":2," MSG "}", 400, "", "duplicate"},
    {DS_OPENAI_CHAT, "{}", 400, "messages", "required"},
    {DS_OPENAI_CHAT, "{\"messages\":null}", 400, "messages", "must be an array"},
    {DS_OPENAI_CHAT, "{\"messages\":[]}", 400, "messages", "must not be empty"},
    {DS_OPENAI_CHAT, "{\"messages\":\"hi\"}", 400, "messages", "must be an array"},
    {DS_OPENAI_CHAT, "{\"messages\":[1]}", 400, "messages", "must be an object"},
    {DS_OPENAI_CHAT, "{\"messages\":[{\"content\":\"hi\"}]}", 400, "messages", "role"},
    {DS_OPENAI_CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, "messages", "wizard"},
    {DS_OPENAI_CHAT, "{\"messages\":[{\"role\":7,\"content\":\"hi\"}]}", 400, "messages", "role"},
    {DS_OPENAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":42}]}", 400, "messages", "message"},
    {DS_OPENAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":{\"x\":1}}]}", 400, "messages", "message"},
    {DS_OPENAI_CHAT, "{\"max_tokens\":-1," MSG "}", 422, "max_tokens", "range"},
    {DS_OPENAI_CHAT, "{\"max_tokens\":0," MSG "}", 422, "max_tokens", "range"},
    {DS_OPENAI_CHAT, "{\"max_tokens\":100000000000," MSG "}", 422, "max_tokens", "4096"},
    {DS_OPENAI_CHAT, "{\"max_tokens\":\"ten\"," MSG "}", 422, "max_tokens", "integer"},
    {DS_OPENAI_CHAT, "{\"max_tokens\":1.5," MSG "}", 422, "max_tokens", "integer"},
    {DS_OPENAI_CHAT, "{\"max_completion_tokens\":-5," MSG "}", 422, "max_completion_tokens", "range"},
    {DS_OPENAI_CHAT, "{\"temperature\":-0.1," MSG "}", 422, "temperature", "range"},
    {DS_OPENAI_CHAT, "{\"temperature\":2.5," MSG "}", 422, "temperature", "range"},
    {DS_OPENAI_CHAT, "{\"temperature\":\"hot\"," MSG "}", 422, "temperature", "number"},
    {DS_OPENAI_CHAT, "{\"temperature\":1e999," MSG "}", 400, "", "not valid JSON"},
    {DS_OPENAI_CHAT, "{\"top_p\":1.01," MSG "}", 422, "top_p", "range"},
    {DS_OPENAI_CHAT, "{\"top_p\":-1," MSG "}", 422, "top_p", "range"},
    {DS_OPENAI_CHAT, "{\"frequency_penalty\":3," MSG "}", 422, "frequency_penalty", "range"},
    {DS_OPENAI_CHAT, "{\"presence_penalty\":-2.5," MSG "}", 422, "presence_penalty", "range"},
    {DS_OPENAI_CHAT, "{\"seed\":\"abc\"," MSG "}", 422, "seed", "integer"},
    {DS_OPENAI_CHAT, "{\"seed\":1e30," MSG "}", 422, "seed", "integer"},
    {DS_OPENAI_CHAT, "{\"stream\":\"yes\"," MSG "}", 422, "stream", "boolean"},
    {DS_OPENAI_CHAT, "{\"stream\":1," MSG "}", 422, "stream", "boolean"},
    {DS_OPENAI_CHAT, "{\"logprobs\":\"true\"," MSG "}", 422, "logprobs", "boolean"},
    {DS_OPENAI_CHAT, "{\"top_logprobs\":21,\"logprobs\":true," MSG "}", 422, "top_logprobs", "range"},
    {DS_OPENAI_CHAT, "{\"top_logprobs\":-1,\"logprobs\":true," MSG "}", 422, "top_logprobs", "range"},
    {DS_OPENAI_CHAT, "{\"top_logprobs\":3," MSG "}", 422, "top_logprobs", "logprobs"},
    {DS_OPENAI_CHAT, "{\"n\":2," MSG "}", 422, "n", "range"},
    {DS_OPENAI_CHAT, "{\"model\":5," MSG "}", 422, "model", "string"},
    {DS_OPENAI_CHAT, "{\"stop\":5," MSG "}", 422, "stop", "string"},
    {DS_OPENAI_CHAT, "{\"stop\":\"\"," MSG "}", 422, "stop", "bytes"},
    {DS_OPENAI_CHAT, "{\"stop\":[\"a\",3]," MSG "}", 422, "stop", "stop[1]"},
    {DS_OPENAI_CHAT, "{\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]," MSG "}", 422, "stop", "16"},
    {DS_OPENAI_CHAT, "{\"stream_options\":{\"include_usage\":\"y\"}," MSG "}", 422, "stream_options", "include_usage"},
    {DS_OPENAI_CHAT, "{\"stream_options\":[]," MSG "}", 422, "stream_options", "include_usage"},
    {DS_OPENAI_CHAT, "{\"response_format\":{\"type\":\"xml\"}," MSG "}", 422, "response_format", "json_object"},
    {DS_OPENAI_CHAT, "{\"response_format\":\"json\"," MSG "}", 422, "response_format", "json_object"},
    {DS_OPENAI_CHAT, "{\"tools\":{}," MSG "}", 422, "tools", "array"},
    {DS_OPENAI_CHAT, "{\"tools\":[{\"type\":\"function\"}]," MSG "}", 422, "tools", "tools[0]"},
    {DS_OPENAI_CHAT, "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"bad name!\"}}]," MSG "}", 422, "tools", "tools[0]"},
    {DS_OPENAI_CHAT, "{\"tools\":[{\"type\":\"retrieval\",\"function\":{\"name\":\"f\"}}]," MSG "}", 422, "tools", "tools[0]"},
    {DS_OPENAI_CHAT, "{\"tool_choice\":\"sometimes\"," MSG "}", 422, "tool_choice", "required"},
    {DS_OPENAI_CHAT, "{\"tool_choice\":\"required\"," MSG "}", 422, "tool_choice", "no tools"},
    {DS_OPENAI_CHAT, "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}," MSG "}", 422, "tool_choice", "not in 'tools'"},
    {DS_OPENAI_CHAT, "{\"thinking\":{\"type\":\"maybe\"}," MSG "}", 422, "thinking", "enabled"},
    {DS_OPENAI_CHAT, "{\"thinking\":true," MSG "}", 422, "thinking", "enabled"},
    {DS_OPENAI_CHAT, "{\"chat_template_kwargs\":{\"enable_thinking\":\"no\"}," MSG "}", 422, "chat_template_kwargs", "boolean"},
    {DS_OPENAI_CHAT, "{\"user\":[]," MSG "}", 422, "user", "string"},
    {DS_OPENAI_CHAT, "{\"reasoning_budget\":-3," MSG "}", 422, "reasoning_budget", "range"},
    {DS_OPENAI_COMPLETION, "{}", 400, "prompt", "required"},
    {DS_OPENAI_COMPLETION, "{\"prompt\":12}", 422, "prompt", "string"},
    {DS_OPENAI_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":-7}", 422, "max_tokens", "range"},
    {DS_OPENAI_TOKENIZE, "{}", 400, "content", "required"},
    {DS_OPENAI_TOKENIZE, "{\"content\":[1,2]}", 422, "content", "string"},
    {DS_OPENAI_TOKENIZE, "{\"content\":\"x\",\"add_special\":\"yes\"}", 422, "add_special", "boolean"},
    {DS_OPENAI_DETOKENIZE, "{}", 400, "tokens", "required"},
    {DS_OPENAI_DETOKENIZE, "{\"tokens\":\"1 2\"}", 422, "tokens", "array"},
    {DS_OPENAI_DETOKENIZE, "{\"tokens\":[1,-1]}", 400, "tokens", "tokens[1]"},
    {DS_OPENAI_DETOKENIZE, "{\"tokens\":[971]}", 400, "tokens", "[0, 971)"},
    {DS_OPENAI_DETOKENIZE, "{\"tokens\":[99999999999]}", 400, "tokens", "tokens[0]"},
    {DS_OPENAI_DETOKENIZE, "{\"tokens\":[1.5]}", 400, "tokens", "tokens[0]"},
};

static void malformed_requests_are_refused(void **state) {
    (void)state;
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const bad_case   *c = &bad_cases[i];
        ds_openai_request r;
        ds_openai_error   err;
        ds_status st = ds_openai_parse(c->kind, c->body, strlen(c->body), &LIM, &r, &err);
        if (st == DS_OK || err.status != c->status || strcmp(err.param, c->param) ||
            !strstr(err.message, c->phrase)) {
            print_error("case %zu: %s\n  got status %d param '%s' message '%s'\n", i, c->body,
                        st == DS_OK ? 200 : err.status, err.param, err.message);
            fail();
        }
        assert_null(r.root); // nothing left to free on failure
    }
}

static ds_openai_request parse_ok(ds_openai_kind kind, const char *body) {
    ds_openai_request r;
    ds_openai_error   err;
    if (ds_openai_parse(kind, body, strlen(body), &LIM, &r, &err)) {
        print_error("%s\n  refused: %d %s\n", body, err.status, err.message);
        fail();
    }
    return r;
}

static void defaults_and_values(void **state) {
    (void)state;
    ds_openai_request r = parse_ok(DS_OPENAI_CHAT, "{" MSG "}");
    assert_int_equal(r.messages.n, 1);
    assert_false(r.stream);
    assert_int_equal(r.gen.max_tokens, 0);
    assert_float_equal(r.gen.temperature, 1.0, 1e-6);
    assert_int_equal(r.gen.tool_choice, DS_TOOL_CHOICE_NONE);
    ds_openai_request_free(&r);

    r = parse_ok(DS_OPENAI_CHAT,
                 "{\"model\":\"deepseek-chat\",\"max_tokens\":12,\"temperature\":0.5,\"top_p\":0.9,"
                 "\"seed\":-42,\"stop\":[\"a\",\"bc\"],\"stream\":true,\"stream_options\":"
                 "{\"include_usage\":true},\"logprobs\":true,\"top_logprobs\":3,\"unknown\":[1],"
                 "\"response_format\":{\"type\":\"json_object\"},\"thinking\":{\"type\":\"disabled\"},"
                 "\"frequency_penalty\":null," MSG "}");
    assert_string_equal(r.model, "deepseek-chat");
    assert_int_equal(r.gen.max_tokens, 12);
    assert_float_equal(r.gen.temperature, 0.5, 1e-6);
    assert_float_equal(r.gen.top_p, 0.9, 1e-6);
    assert_true(r.seed_set);
    assert_int_equal((int64_t)r.gen.seed, -42);
    assert_int_equal(r.gen.n_stop, 2);
    assert_string_equal(r.gen.stop[1], "bc");
    assert_true(r.stream && r.include_usage && r.gen.logprobs && r.gen.json_object);
    assert_int_equal(r.gen.top_logprobs, 3);
    assert_int_equal(r.gen.think, DS_THINK_OFF);
    ds_openai_request_free(&r);

    // max_completion_tokens is the newer name of max_tokens; top_p 0 means greedy.
    r = parse_ok(DS_OPENAI_CHAT, "{\"max_completion_tokens\":7,\"top_p\":0," MSG "}");
    assert_int_equal(r.gen.max_tokens, 7);
    assert_float_equal(r.gen.temperature, 0, 0);
    ds_openai_request_free(&r);

    // Content parts, all roles, a tool round trip.
    r = parse_ok(DS_OPENAI_CHAT,
                 "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":{\"type\":\"function\","
                 "\"function\":{\"name\":\"get_weather\"}},\"messages\":["
                 "{\"role\":\"system\",\"content\":\"be brief\"},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather\"}]},"
                 "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
                 "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny\"}]}");
    assert_int_equal(r.messages.n, 4);
    assert_int_equal(r.gen.tool_choice, DS_TOOL_CHOICE_NAMED);
    assert_string_equal(r.gen.tool_name, "get_weather");
    assert_non_null(r.tools_json);
    ds_openai_request_free(&r);
    ds_openai_request_free(&r); // idempotent
}

static void other_endpoints(void **state) {
    (void)state;
    ds_openai_request r = parse_ok(DS_OPENAI_COMPLETION, "{\"prompt\":\"Once\",\"max_tokens\":3}");
    assert_string_equal(r.prompt, "Once");
    ds_openai_request_free(&r);
    r = parse_ok(DS_OPENAI_TOKENIZE, "{\"content\":\"a b\",\"with_pieces\":true}");
    assert_true(r.with_pieces);
    assert_int_equal(r.prompt_len, 3);
    ds_openai_request_free(&r);
    r = parse_ok(DS_OPENAI_DETOKENIZE, "{\"tokens\":[0,970,5]}");
    assert_int_equal(r.n_tokens, 3);
    assert_int_equal(r.tokens[1], 970);
    ds_openai_request_free(&r);
    r = parse_ok(DS_OPENAI_DETOKENIZE, "{\"tokens\":[]}");
    assert_int_equal(r.n_tokens, 0);
    ds_openai_request_free(&r);
}

// Random byte flips of valid bodies: never a crash, always either OK or a 400/422 with a
// message (run under ASan in CI).
static void mutated_bodies(void **state) {
    (void)state;
    const char *seeds[] = {
        "{\"model\":\"m\",\"max_tokens\":12,\"stop\":[\"a\"],\"tools\":[{\"type\":\"function\","
        "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"required\"," MSG "}",
        "{\"tokens\":[1,2,3]}",
        "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
    };
    uint64_t rng = 12345;
    for (int it = 0; it < 3000; it++) {
        const char *s = seeds[it % 3];
        char        buf[512];
        size_t      n = strlen(s);
        memcpy(buf, s, n);
        for (int k = 0; k < 3; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            buf[(rng >> 33) % n] = (char)(rng >> 13);
        }
        ds_openai_kind    kind = it % 3 == 0 ? DS_OPENAI_CHAT : it % 3 == 1 ? DS_OPENAI_DETOKENIZE : DS_OPENAI_COMPLETION;
        ds_openai_request r;
        ds_openai_error   err;
        if (ds_openai_parse(kind, buf, n, &LIM, &r, &err) == DS_OK) ds_openai_request_free(&r);
        else assert_true((err.status == 400 || err.status == 422) && err.message[0]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_requests_are_refused),
        cmocka_unit_test(defaults_and_values),
        cmocka_unit_test(other_endpoints),
        cmocka_unit_test(mutated_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
