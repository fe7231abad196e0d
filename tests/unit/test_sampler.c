// test_sampler.c - the sampler's properties, checked against slow reference computations
// written here from the definitions in sampler.h (full sort in double precision), never
// against the sampler itself.
#include "test.h"

#include <math.h>

#include "ds/sampler.h"

// ---- reference ----

static const float *ref_logits; // for the qsort comparator

static int ref_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (ref_logits[x] != ref_logits[y]) return ref_logits[x] > ref_logits[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

// Ids in candidate order and their softmax probabilities at temperature 1 (double).
static void ref_order(const float *l, int n, int32_t *ids, double *p) {
    ref_logits = l;
    for (int i = 0; i < n; i++) ids[i] = i;
    qsort(ids, (size_t)n, sizeof *ids, ref_cmp);
    double z = 0;
    for (int i = 0; i < n; i++) z += exp((double)l[i] - l[ids[0]]);
    for (int i = 0; i < n; i++) p[i] = exp((double)l[ids[i]] - l[ids[0]]) / z;
}

static void random_logits(float *l, int n, uint64_t seed, float scale) {
    for (int i = 0; i < n; i++) l[i] = scale * test_randf(&seed);
}

static ds_sampler *make(ds_sampler_params p, int n) {
    ds_sampler *s = NULL;
    if (ds_sampler_new(&p, n, &s) != DS_OK) fail_msg("ds_sampler_new: %s", ds_errmsg());
    return s;
}

static ds_sampler_params plain(void) { // temperature 1, every filter off, fixed seed
    ds_sampler_params p = ds_sampler_params_default();
    p.temperature       = 1.0f;
    p.top_p             = 1.0f;
    p.seed              = 1234;
    return p;
}

// The sampler's candidate set after one sample must be exactly want[0..m), in that order.
static void expect_set(ds_sampler *s, const int32_t *want, size_t m) {
    enum { CAP = 8192 };
    static int32_t got[CAP];
    static float   prob[CAP];
    size_t n = ds_sampler_candidates(s, got, prob, CAP);
    if (n != m) fail_msg("kept %zu candidates, want %zu", n, m);
    double sum = 0;
    for (size_t i = 0; i < m; i++) {
        if (got[i] != want[i]) fail_msg("candidate %zu is %d, want %d", i, got[i], want[i]);
        sum += prob[i];
    }
    assert_true(fabs(sum - 1.0) < 1e-4);
}

// ---- filters keep exactly the right set ----

static void top_k_keeps_the_k_best(void **state) {
    (void)state;
    enum { N = 3000 };
    static float l[N];
    static int32_t ids[N];
    static double p[N];
    random_logits(l, N, 7, 5.0f);
    l[10] = l[11] = 4.99f; // a tie at the border is broken by id
    ref_order(l, N, ids, p);
    for (int k = 1; k <= 300; k = k * 3 + 1) {
        ds_sampler_params sp = plain();
        sp.top_k             = k;
        ds_sampler *s        = make(sp, N);
        ds_sampler_sample(s, l, N);
        expect_set(s, ids, (size_t)k);
        ds_sampler_free(s);
    }
}

static void top_p_keeps_the_shortest_prefix(void **state) {
    (void)state;
    enum { N = 5000 };
    static float l[N];
    static int32_t ids[N];
    static double p[N];
    const float scales[] = {0.5f, 4.0f, 20.0f}; // flat (thousands kept) to peaked (a few)
    const float ps[]     = {0.1f, 0.5f, 0.9f, 0.99f};
    for (int a = 0; a < 3; a++) {
        random_logits(l, N, 100 + (uint64_t)a, scales[a]);
        ref_order(l, N, ids, p);
        for (int b = 0; b < 4; b++) {
            size_t m   = 0;
            double cum = 0;
            while (m < N && cum < ps[b]) cum += p[m++];
            ds_sampler_params sp = plain();
            sp.top_p             = ps[b];
            ds_sampler *s        = make(sp, N);
            ds_sampler_sample(s, l, N);
            expect_set(s, ids, m);
            ds_sampler_free(s);
        }
    }
}

static void min_p_keeps_tokens_near_the_best(void **state) {
    (void)state;
    enum { N = 2000 };
    static float l[N];
    static int32_t ids[N];
    static double p[N];
    random_logits(l, N, 9, 6.0f);
    ref_order(l, N, ids, p);
    const float mps[] = {0.01f, 0.05f, 0.3f, 1.0f};
    for (int b = 0; b < 4; b++) {
        size_t m = 0;
        while (m < N && p[m] >= mps[b] * p[0] * (1 - 1e-6)) m++;
        ds_sampler_params sp = plain();
        sp.min_p             = mps[b];
        ds_sampler *s        = make(sp, N);
        ds_sampler_sample(s, l, N);
        expect_set(s, ids, m);
        ds_sampler_free(s);
    }
}

static void filters_chain_in_order(void **state) {
    (void)state;
    enum { N = 1000 };
    static float l[N];
    static int32_t ids[N];
    static double p[N];
    random_logits(l, N, 21, 3.0f);
    ref_order(l, N, ids, p);
    // top-k 200, then top-p 0.6 of the renormalised 200, then min-p 0.2 of what is left.
    double z = 0;
    for (int i = 0; i < 200; i++) z += p[i];
    size_t m   = 0;
    double cum = 0;
    while (m < 200 && cum < 0.6) cum += p[m++] / z;
    size_t k = 0;
    while (k < m && p[k] >= 0.2 * p[0]) k++;
    ds_sampler_params sp = plain();
    sp.top_k             = 200;
    sp.top_p             = 0.6f;
    sp.min_p             = 0.2f;
    sp.temperature       = 0.7f;
    ds_sampler *s        = make(sp, N);
    int32_t id           = ds_sampler_sample(s, l, N);
    expect_set(s, ids, k);
    // temperature reshapes what is kept: p_i ∝ exp(l_i / T)
    float pr[2];
    int32_t two[2];
    assert_true(ds_sampler_candidates(s, two, pr, 2) >= 2);
    assert_float_equal(pr[0] / pr[1], exp((l[two[0]] - l[two[1]]) / 0.7), 1e-3);
    bool found = false;
    for (size_t i = 0; i < k; i++) found |= ids[i] == id;
    assert_true(found);
    ds_sampler_free(s);
}

static void greedy_takes_the_highest_lowest_id_on_ties(void **state) {
    (void)state;
    float l[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, NAN};
    ds_sampler_params sp = plain();
    sp.temperature       = 0;
    ds_sampler *s        = make(sp, 6);
    assert_int_equal(ds_sampler_sample(s, l, 6), 1);
    ds_sampler_free(s);
}

// ---- penalties, bias ----

static void penalties_follow_the_formula(void **state) {
    (void)state;
    float l[4] = {2.0f, -1.0f, 1.0f, 0.5f};
    ds_sampler_params sp = plain();
    sp.repeat_penalty    = 1.25f;
    sp.frequency_penalty = 0.5f;
    sp.presence_penalty  = 0.25f;
    sp.penalty_last_n    = 3;
    ds_sampler *s        = make(sp, 4);
    int32_t hist[]       = {3, 0, 1, 1}; // the window of 3 drops the first token (3)
    ds_sampler_add_history(s, hist, 4);
    ds_sampler_sample(s, l, 4);
    int32_t ids[4];
    float pr[4];
    assert_int_equal(ds_sampler_candidates(s, ids, pr, 4), 4);
    double want[4] = {2.0 / 1.25 - 0.5 - 0.25, -1.0 * 1.25 - 2 * 0.5 - 0.25, 1.0, 0.5};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            assert_float_equal(log(pr[i] / pr[j]), want[ids[i]] - want[ids[j]], 1e-4);
    ds_sampler_free(s);
}

static void repeat_penalty_changes_the_greedy_pick(void **state) {
    (void)state;
    float l[2] = {2.0f, 1.9f};
    ds_sampler_params sp = plain();
    sp.temperature       = 0;
    sp.repeat_penalty    = 1.1f;
    ds_sampler *s        = make(sp, 2);
    assert_int_equal(ds_sampler_sample(s, l, 2), 0);
    assert_int_equal(ds_sampler_accept(s, 0), DS_SAMPLE_GO_ON);
    assert_int_equal(ds_sampler_sample(s, l, 2), 1); // 2.0 / 1.1 < 1.9
    ds_sampler_free(s);
}

static void logit_bias_bans_and_promotes(void **state) {
    (void)state;
    float l[3] = {5.0f, 1.0f, 0.0f};
    ds_sampler_params sp = plain();
    sp.temperature       = 0;
    ds_sampler *s        = make(sp, 3);
    int32_t ids[2]       = {0, 2};
    float bias[2]        = {-INFINITY, 1.5f};
    assert_int_equal(ds_sampler_set_logit_bias(s, ids, bias, 2), DS_OK);
    assert_int_equal(ds_sampler_sample(s, l, 3), 2);
    int32_t bad = 3;
    assert_int_equal(ds_sampler_set_logit_bias(s, &bad, bias, 1), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "out of range"));
    ds_sampler_free(s);
}

// ---- determinism and the draw ----

static void same_seed_same_tokens(void **state) {
    (void)state;
    enum { N = 500, T = 200 };
    static float l[N];
    random_logits(l, N, 5, 2.0f);
    int32_t a[T], b[T], c[T];
    for (int run = 0; run < 3; run++) {
        ds_sampler_params sp = plain();
        sp.top_p             = 0.9f;
        sp.repeat_penalty    = 1.1f;
        sp.seed              = run == 2 ? 99 : 42;
        ds_sampler *s        = make(sp, N);
        int32_t *out         = run == 0 ? a : run == 1 ? b : c;
        for (int t = 0; t < T; t++) {
            out[t] = ds_sampler_sample(s, l, N);
            ds_sampler_accept(s, out[t]);
        }
        ds_sampler_free(s);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
}

static void draws_follow_the_distribution(void **state) {
    (void)state;
    float l[4] = {1.0f, 0.0f, -1.0f, 0.5f};
    ds_sampler_params sp = plain();
    ds_sampler *s        = make(sp, 4);
    enum { DRAWS = 40000 };
    int hits[4] = {0};
    for (int i = 0; i < DRAWS; i++) hits[ds_sampler_sample(s, l, 4)]++;
    double z = exp(1.0) + 1 + exp(-1.0) + exp(0.5);
    const double p[4] = {exp(1.0) / z, 1 / z, exp(-1.0) / z, exp(0.5) / z};
    for (int i = 0; i < 4; i++) { // 5 standard deviations
        double sd = sqrt(DRAWS * p[i] * (1 - p[i]));
        assert_true(fabs(hits[i] - DRAWS * p[i]) < 5 * sd);
    }
    ds_sampler_free(s);
}

// ---- limits, budget, params ----

static void limits_end_generation(void **state) {
    (void)state;
    ds_sampler_params sp = plain();
    sp.max_tokens        = 3;
    ds_sampler *s        = make(sp, 10);
    int32_t eog          = 9;
    assert_int_equal(ds_sampler_set_eog(s, &eog, 1), DS_OK);
    assert_int_equal(ds_sampler_accept(s, 1), DS_SAMPLE_GO_ON);
    assert_int_equal(ds_sampler_accept(s, 9), DS_SAMPLE_STOP);
    assert_int_equal(ds_sampler_accept(s, 2), DS_SAMPLE_LENGTH);
    ds_sampler_free(s);
}

static void reasoning_budget_forces_the_end_of_thinking(void **state) {
    (void)state;
    float l[8] = {3, 1, 0, 0, 0, 0, 0, -5}; // the model would never close on its own
    for (int budget = 0; budget <= 3; budget += 3) {
        ds_sampler_params sp = plain();
        sp.temperature       = 0;
        sp.reasoning_budget  = budget;
        sp.think_end_id      = 7;
        sp.start_thinking    = true;
        ds_sampler *s        = make(sp, 8);
        for (int t = 0; t < budget; t++) {
            assert_true(ds_sampler_in_thinking(s));
            int32_t id = ds_sampler_sample(s, l, 8);
            assert_int_equal(id, 0);
            ds_sampler_accept(s, id);
        }
        assert_int_equal(ds_sampler_n_thinking(s), budget);
        assert_int_equal(ds_sampler_sample(s, l, 8), 7);
        ds_sampler_accept(s, 7);
        assert_false(ds_sampler_in_thinking(s));
        assert_int_equal(ds_sampler_sample(s, l, 8), 0); // after thinking: free again
        ds_sampler_free(s);
    }
}

static bool even_only(void *ud, int32_t id) {
    (*(int *)ud)++;
    return id % 2 == 0;
}

static bool none_allowed(void *ud, int32_t id) {
    (void)ud;
    (void)id;
    return false;
}

// The allow predicate drops tokens before every filter: greedy takes the best allowed one,
// a draw never yields a disallowed one, and nothing allowed gives -1. Tokens banned by the
// bias are not even asked about.
static void allow_predicate_constrains_the_pick(void **state) {
    (void)state;
    float l[6] = {1, 5, 4, 3, 2, 0};
    ds_sampler_params sp = plain();
    sp.temperature       = 0;
    ds_sampler *s        = make(sp, 6);
    int         asked    = 0;
    assert_int_equal(ds_sampler_sample_allowed(s, l, 6, even_only, &asked), 2);
    assert_int_equal(asked, 6);
    assert_int_equal(ds_sampler_sample_allowed(s, l, 6, none_allowed, NULL), -1);
    assert_int_equal(ds_sampler_sample(s, l, 6), 1);
    int32_t ban = 2;
    float   inf = -INFINITY;
    assert_int_equal(ds_sampler_set_logit_bias(s, &ban, &inf, 1), DS_OK);
    asked = 0;
    assert_int_equal(ds_sampler_sample_allowed(s, l, 6, even_only, &asked), 4);
    assert_int_equal(asked, 5);
    ds_sampler_free(s);
    sp = plain();
    s  = make(sp, 6);
    for (int i = 0; i < 200; i++) {
        int32_t id = ds_sampler_sample_allowed(s, l, 6, even_only, &asked);
        assert_true(id >= 0 && id % 2 == 0);
        int32_t ids[6];
        float   probs[6];
        assert_int_equal(ds_sampler_candidates(s, ids, probs, 6), 3);
    }
    ds_sampler_free(s);
}

// A model that opens <think> itself: the first token think_start_id opens the block (not
// counted), later ones do not; forced tokens count in the budget and the limits as sampled
// ones do.
static void thinking_opened_by_the_model_and_forced_tokens(void **state) {
    (void)state;
    float l[8] = {3, 1, 0, 0, 0, 0, 0, -5};
    ds_sampler_params sp = plain();
    sp.temperature       = 0;
    sp.reasoning_budget  = 2;
    sp.think_end_id      = 7;
    sp.think_start_id    = 6;
    sp.max_tokens        = 6;
    ds_sampler *s        = make(sp, 8);
    assert_false(ds_sampler_in_thinking(s));
    assert_int_equal(ds_sampler_accept(s, 6), DS_SAMPLE_GO_ON); // forced <think>
    assert_true(ds_sampler_in_thinking(s));
    assert_int_equal(ds_sampler_n_thinking(s), 0);
    ds_sampler_accept(s, 3); // forced, inside thinking: counts
    ds_sampler_accept(s, ds_sampler_sample(s, l, 8));
    assert_int_equal(ds_sampler_n_thinking(s), 2);
    assert_int_equal(ds_sampler_sample(s, l, 8), 7); // the budget is spent
    ds_sampler_accept(s, 7);
    assert_false(ds_sampler_in_thinking(s));
    assert_int_equal(ds_sampler_accept(s, 6), DS_SAMPLE_GO_ON);
    assert_false(ds_sampler_in_thinking(s)); // <think> later in the reply opens nothing
    assert_int_equal(ds_sampler_accept(s, 0), DS_SAMPLE_LENGTH); // 6 accepted, forced included
    ds_sampler_free(s);
    // the same first token without think_start_id: no thinking
    sp.think_start_id = -1;
    s                 = make(sp, 8);
    ds_sampler_accept(s, 6);
    assert_false(ds_sampler_in_thinking(s));
    ds_sampler_free(s);
}

static void bad_params_get_clear_messages(void **state) {
    (void)state;
    ds_sampler_params p = ds_sampler_params_default();
    assert_int_equal(ds_sampler_params_check(&p), DS_OK);
#define BAD(field, value, needle)                                                                  \
    do {                                                                                           \
        ds_sampler_params q = ds_sampler_params_default();                                        \
        q.field             = value;                                                               \
        assert_int_equal(ds_sampler_params_check(&q), DS_EINVAL);                                  \
        if (!strstr(ds_errmsg(), needle)) fail_msg("'%s' lacks '%s'", ds_errmsg(), needle);       \
    } while (0)
    BAD(reasoning_budget, -1, "reasoning budget must be >= 0");
    BAD(temperature, -0.5f, "temperature");
    BAD(temperature, NAN, "temperature");
    BAD(top_p, 0.0f, "top-p");
    BAD(top_p, 1.5f, "top-p");
    BAD(min_p, -0.1f, "min-p");
    BAD(top_k, -3, "top-k");
    BAD(repeat_penalty, 0.0f, "repeat penalty");
    BAD(presence_penalty, 3.0f, "presence penalty");
    BAD(frequency_penalty, -2.5f, "frequency penalty");
    BAD(penalty_last_n, -2, "penalty window");
    BAD(max_tokens, -1, "max tokens");
#undef BAD
    ds_sampler *s = NULL;
    p.top_p       = 2;
    assert_int_equal(ds_sampler_new(&p, 10, &s), DS_EINVAL);
    assert_null(s);
}

// ---- logprobs ----

static void top_logprobs_match_log_softmax(void **state) {
    (void)state;
    enum { N = 1000 };
    static float l[N];
    static int32_t ids[N];
    static double p[N];
    random_logits(l, N, 77, 4.0f);
    ref_order(l, N, ids, p);
    ds_sampler_logprob top[5];
    float chosen;
    assert_int_equal(ds_sampler_top_logprobs(l, N, 123, 5, top, &chosen), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(top[i].id, ids[i]);
        assert_float_equal(top[i].logprob, log(p[i]), 1e-4);
    }
    for (int i = 0; i < N; i++)
        if (ids[i] == 123) assert_float_equal(chosen, log(p[i]), 1e-4);
}

// ---- stop strings ----

static void stop_strings_across_pieces(void **state) {
    (void)state;
    const char *stops[] = {"</s>", "STOP"};
    ds_stop *st         = NULL;
    assert_int_equal(ds_stop_new(stops, 2, &st), DS_OK);
    ds_buf out = {0};
    ds_buf_puts(&out, "");
    assert_int_equal(ds_stop_push(st, "hello <", 7, &out), DS_SAMPLE_GO_ON);
    assert_string_equal(out.data, "hello "); // "<" is held: it may start "</s>"
    assert_int_equal(ds_stop_push(st, "b", 1, &out), DS_SAMPLE_GO_ON);
    assert_string_equal(out.data, "hello <b");
    assert_int_equal(ds_stop_push(st, " ST", 3, &out), DS_SAMPLE_GO_ON);
    assert_string_equal(out.data, "hello <b ");
    assert_int_equal(ds_stop_push(st, "O", 1, &out), DS_SAMPLE_GO_ON);
    assert_int_equal(ds_stop_push(st, "P and </s>", 10, &out), DS_SAMPLE_STOP);
    assert_string_equal(out.data, "hello <b "); // earliest match wins, the rest is dropped
    assert_int_equal(ds_stop_push(st, "more", 4, &out), DS_SAMPLE_STOP);
    ds_stop_free(st);

    assert_int_equal(ds_stop_new(stops, 2, &st), DS_OK);
    ds_buf_clear(&out);
    assert_int_equal(ds_stop_push(st, "end </", 6, &out), DS_SAMPLE_GO_ON);
    ds_stop_flush(st, &out); // generation ended for another reason: held text comes out
    assert_string_equal(out.data, "end </");
    ds_stop_free(st);
    ds_buf_free(&out);

    const char *empty[] = {""};
    assert_int_equal(ds_stop_new(empty, 1, &st), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "empty"));
    assert_int_equal(ds_stop_new(stops, DS_SAMPLER_MAX_STOPS + 1, &st), DS_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(top_k_keeps_the_k_best),
        cmocka_unit_test(top_p_keeps_the_shortest_prefix),
        cmocka_unit_test(min_p_keeps_tokens_near_the_best),
        cmocka_unit_test(filters_chain_in_order),
        cmocka_unit_test(greedy_takes_the_highest_lowest_id_on_ties),
        cmocka_unit_test(penalties_follow_the_formula),
        cmocka_unit_test(repeat_penalty_changes_the_greedy_pick),
        cmocka_unit_test(logit_bias_bans_and_promotes),
        cmocka_unit_test(same_seed_same_tokens),
        cmocka_unit_test(draws_follow_the_distribution),
        cmocka_unit_test(limits_end_generation),
        cmocka_unit_test(reasoning_budget_forces_the_end_of_thinking),
        cmocka_unit_test(allow_predicate_constrains_the_pick),
        cmocka_unit_test(thinking_opened_by_the_model_and_forced_tokens),
        cmocka_unit_test(bad_params_get_clear_messages),
        cmocka_unit_test(top_logprobs_match_log_softmax),
        cmocka_unit_test(stop_strings_across_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
