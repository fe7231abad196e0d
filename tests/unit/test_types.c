// test_types.c - the type table and the reference kernels of src/kernels/ref/.
//
// Reference values come from outside the code under test:
//   - dequantization: llama.cpp's floats for random blocks of every type
//     (testdata/quant-tables/dequant-vectors.json), compared bit for bit;
//   - fp16/bf16: the IEEE definition evaluated in double, and the nearest-value property;
//   - quantize -> dequantize: error bounds derived from each format (quant_bounds.h).
#include <float.h>
#include <jansson.h>
#include <math.h>

#include "test.h"

#include "ds/quant.h"
#include "ds/types.h"
#include "quant_bounds.h"

// ---- the table ----

static const struct {
    ds_type     type;
    const char *name;
    int64_t     elems;
    size_t      bytes;
} k_expected[] = {
    {DS_TYPE_F32, "f32", 1, 4},           {DS_TYPE_F16, "f16", 1, 2},
    {DS_TYPE_BF16, "bf16", 1, 2},         {DS_TYPE_Q4_0, "q4_0", 32, 18},
    {DS_TYPE_Q4_1, "q4_1", 32, 20},       {DS_TYPE_Q5_0, "q5_0", 32, 22},
    {DS_TYPE_Q5_1, "q5_1", 32, 24},       {DS_TYPE_Q8_0, "q8_0", 32, 34},
    {DS_TYPE_Q8_1, "q8_1", 32, 36},       {DS_TYPE_Q2_K, "q2_K", 256, 84},
    {DS_TYPE_Q3_K, "q3_K", 256, 110},     {DS_TYPE_Q4_K, "q4_K", 256, 144},
    {DS_TYPE_Q5_K, "q5_K", 256, 176},     {DS_TYPE_Q6_K, "q6_K", 256, 210},
    {DS_TYPE_Q8_K, "q8_K", 256, 292},     {DS_TYPE_IQ2_XXS, "iq2_xxs", 256, 66},
    {DS_TYPE_IQ2_XS, "iq2_xs", 256, 74},  {DS_TYPE_IQ2_S, "iq2_s", 256, 82},
    {DS_TYPE_IQ3_XXS, "iq3_xxs", 256, 98}, {DS_TYPE_IQ3_S, "iq3_s", 256, 110},
    {DS_TYPE_IQ1_S, "iq1_s", 256, 50},    {DS_TYPE_IQ1_M, "iq1_m", 256, 56},
    {DS_TYPE_IQ4_NL, "iq4_nl", 32, 18},   {DS_TYPE_IQ4_XS, "iq4_xs", 256, 136},
    {DS_TYPE_I8, "i8", 1, 1},             {DS_TYPE_I16, "i16", 1, 2},
    {DS_TYPE_I32, "i32", 1, 4},           {DS_TYPE_I64, "i64", 1, 8},
    {DS_TYPE_F64, "f64", 1, 8},
};
#define N_EXPECTED (sizeof k_expected / sizeof k_expected[0])

static void table_rows_match_format(void **state) {
    (void)state;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const ds_type_traits *tt = ds_type_traits_get((int32_t)k_expected[i].type);
        assert_non_null(tt);
        assert_string_equal(tt->name, k_expected[i].name);
        assert_int_equal(tt->block_elems, k_expected[i].elems);
        assert_int_equal(tt->block_bytes, k_expected[i].bytes);
        assert_int_equal(tt->quantized, k_expected[i].elems > 1);
        assert_non_null(tt->to_float);
        assert_string_equal(ds_type_name((int32_t)k_expected[i].type), k_expected[i].name);
    }
    // The block structs are the layouts the table describes.
    const struct { ds_type t; size_t size; } structs[] = {
        {DS_TYPE_Q4_0, sizeof(ds_block_q4_0)},       {DS_TYPE_Q4_1, sizeof(ds_block_q4_1)},
        {DS_TYPE_Q5_0, sizeof(ds_block_q5_0)},       {DS_TYPE_Q5_1, sizeof(ds_block_q5_1)},
        {DS_TYPE_Q8_0, sizeof(ds_block_q8_0)},       {DS_TYPE_Q8_1, sizeof(ds_block_q8_1)},
        {DS_TYPE_Q2_K, sizeof(ds_block_q2_k)},       {DS_TYPE_Q3_K, sizeof(ds_block_q3_k)},
        {DS_TYPE_Q4_K, sizeof(ds_block_q4_k)},       {DS_TYPE_Q5_K, sizeof(ds_block_q5_k)},
        {DS_TYPE_Q6_K, sizeof(ds_block_q6_k)},       {DS_TYPE_Q8_K, sizeof(ds_block_q8_k)},
        {DS_TYPE_IQ4_NL, sizeof(ds_block_iq4_nl)},   {DS_TYPE_IQ4_XS, sizeof(ds_block_iq4_xs)},
        {DS_TYPE_IQ2_XXS, sizeof(ds_block_iq2_xxs)}, {DS_TYPE_IQ2_XS, sizeof(ds_block_iq2_xs)},
        {DS_TYPE_IQ2_S, sizeof(ds_block_iq2_s)},     {DS_TYPE_IQ3_XXS, sizeof(ds_block_iq3_xxs)},
        {DS_TYPE_IQ3_S, sizeof(ds_block_iq3_s)},     {DS_TYPE_IQ1_S, sizeof(ds_block_iq1_s)},
        {DS_TYPE_IQ1_M, sizeof(ds_block_iq1_m)},
    };
    for (size_t i = 0; i < sizeof structs / sizeof structs[0]; i++)
        assert_int_equal(ds_type_traits_get((int32_t)structs[i].t)->block_bytes, structs[i].size);
    // Quantizers the rest of the program relies on (fallback types included).
    const ds_type need_quant[] = {DS_TYPE_F16,  DS_TYPE_BF16, DS_TYPE_Q4_0,   DS_TYPE_Q4_1,
                                  DS_TYPE_Q5_0, DS_TYPE_Q5_1, DS_TYPE_Q8_0,   DS_TYPE_Q4_K,
                                  DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_Q8_K,   DS_TYPE_IQ4_NL,
                                  DS_TYPE_IQ4_XS};
    for (size_t i = 0; i < sizeof need_quant / sizeof need_quant[0]; i++)
        assert_non_null(ds_type_traits_get((int32_t)need_quant[i])->from_float);
}

static void unknown_ids_have_no_row(void **state) {
    (void)state;
    const int32_t bad[] = {-1, 4, 5, 31, 32, 33, 34, 39, 1000, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(ds_type_traits_get(bad[i]));
        assert_string_equal(ds_type_name(bad[i]), "unknown");
    }
}

static void lookup_by_name(void **state) {
    (void)state;
    ds_type t = DS_TYPE_F32;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        assert_int_equal(ds_type_from_name(k_expected[i].name, &t), DS_OK);
        assert_int_equal(t, k_expected[i].type);
    }
    const struct { const char *name; ds_type t; } mixed[] = {
        {"Q4_K", DS_TYPE_Q4_K}, {"q4_k", DS_TYPE_Q4_K}, {"IQ4_XS", DS_TYPE_IQ4_XS},
        {"BF16", DS_TYPE_BF16}, {"Q8_0", DS_TYPE_Q8_0}, {"iQ2_xXs", DS_TYPE_IQ2_XXS},
    };
    for (size_t i = 0; i < sizeof mixed / sizeof mixed[0]; i++) {
        assert_int_equal(ds_type_from_name(mixed[i].name, &t), DS_OK);
        assert_int_equal(t, mixed[i].t);
    }
    const char *bad[] = {"", "q4_k_m", "Q4_K_M", "q4", "f32 ", "unknown", "q4_0_4_4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(ds_type_from_name(bad[i], &t), DS_OK);
}

static void row_bytes(void **state) {
    (void)state;
    size_t b = 0;
    assert_int_equal(ds_type_row_bytes(DS_TYPE_Q4_K, 512), 288);
    assert_int_equal(ds_type_row_bytes(DS_TYPE_Q8_0, 4096), 4352);
    assert_int_equal(ds_type_row_bytes(DS_TYPE_F16, 7), 14);
    assert_int_equal(ds_type_row_bytes_checked(DS_TYPE_IQ1_M, 768, &b), DS_OK);
    assert_int_equal(b, 168);
    assert_int_equal(ds_type_row_bytes_checked(DS_TYPE_Q4_K, 0, &b), DS_OK);
    assert_int_equal(b, 0);
    assert_int_equal(ds_type_row_bytes_checked(DS_TYPE_Q4_K, 255, &b), DS_EFORMAT);
    assert_int_equal(ds_type_row_bytes_checked(DS_TYPE_Q8_0, 48, &b), DS_EFORMAT);
    assert_int_equal(ds_type_row_bytes_checked(DS_TYPE_Q8_0, -32, &b), DS_EFORMAT);
    assert_int_equal(ds_type_row_bytes_checked(DS_TYPE_F32, INT64_MAX, &b), DS_EFORMAT);
    assert_int_equal(ds_type_row_bytes_checked(DS_TYPE_F64, (int64_t)(SIZE_MAX / 8) + 1, &b),
                     DS_EFORMAT);
    assert_int_equal(ds_type_row_bytes_checked(DS_TYPE_F64, (int64_t)(SIZE_MAX / 16), &b), DS_OK);
    assert_int_equal(b, (SIZE_MAX / 16) * 8);
    assert_int_equal(ds_type_row_bytes_checked((ds_type)4, 32, &b), DS_EUNSUPPORTED);
    assert_true(fabs(ds_type_bpw(DS_TYPE_Q4_K) - 4.5) < 1e-12);
    assert_true(fabs(ds_type_bpw(DS_TYPE_IQ1_S) - 1.5625) < 1e-12);
}

// ---- fp16 / bf16 ----

// The value of an fp16 bit pattern by the IEEE 754 definition, in double.
static double fp16_value(uint16_t h) {
    const int    s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    const double sign = s ? -1.0 : 1.0;
    if (e == 31) return m ? NAN : sign * INFINITY;
    if (e == 0) return sign * ldexp(m, -24);
    return sign * ldexp(1024 + m, e - 25);
}

static void fp16_decode_all_patterns(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float  got = ds_fp16_to_fp32((uint16_t)h);
        const double ref = fp16_value((uint16_t)h);
        if (isnan(ref)) {
            assert_true(isnan(got));
            assert_int_equal(ds_fp32_to_fp16(got) & 0x7C00, 0x7C00); // still NaN
            assert_int_not_equal(ds_fp32_to_fp16(got) & 0x03FF, 0);
            continue;
        }
        assert_true((double)got == ref);
        assert_int_equal(signbit(got) != 0, (h & 0x8000) != 0); // -0 stays -0
        assert_int_equal(ds_fp32_to_fp16(got), h);               // exact round trip
    }
}

// Checks that ds_fp32_to_fp16(x) is the nearest fp16 value, ties to an even mantissa, and
// that values at or beyond 65520 (halfway to 2^16) become infinity.
static void check_fp16_nearest(float x) {
    const uint16_t h = ds_fp32_to_fp16(x);
    const double   ax = fabs((double)x);
    if (ax >= 65520.0) {
        assert_int_equal(h & 0x7FFF, 0x7C00);
        return;
    }
    const uint16_t mag = h & 0x7FFF;
    assert_true(mag < 0x7C00);
    assert_int_equal((h >> 15) != 0, signbit(x) != 0);
    const double err = fabs(ax - fp16_value(mag));
    if (mag > 0) assert_true(err <= fabs(ax - fp16_value((uint16_t)(mag - 1))));
    const double up = fabs(ax - fp16_value((uint16_t)(mag + 1)));
    assert_true(err <= up);
    if (err == up || (mag > 0 && err == fabs(ax - fp16_value((uint16_t)(mag - 1)))))
        assert_int_equal(mag & 1, 0);
}

static void fp16_rounding(void **state) {
    (void)state;
    // Every halfway point between neighbouring fp16 values (exact in f32), and a point just
    // either side of it.
    for (uint16_t m = 0; m < 0x7BFF; m++) {
        const float mid = (float)((fp16_value(m) + fp16_value((uint16_t)(m + 1))) / 2);
        check_fp16_nearest(mid);
        check_fp16_nearest(-mid);
        check_fp16_nearest(nextafterf(mid, 0.f));
        check_fp16_nearest(nextafterf(mid, INFINITY));
    }
    uint64_t seed = 7;
    for (int i = 0; i < 200000; i++) { // random f32 bit patterns, all magnitudes
        const uint32_t u = (uint32_t)test_rand_u64(&seed);
        float          f;
        memcpy(&f, &u, sizeof f);
        if (!isnan(f)) check_fp16_nearest(f);
    }
    assert_int_equal(ds_fp32_to_fp16(65504.f), 0x7BFF);
    assert_int_equal(ds_fp32_to_fp16(65519.996f), 0x7BFF);
    assert_int_equal(ds_fp32_to_fp16(65520.f), 0x7C00);
    assert_int_equal(ds_fp32_to_fp16(INFINITY), 0x7C00);
    assert_int_equal(ds_fp32_to_fp16(-INFINITY), 0xFC00);
    assert_int_equal(ds_fp32_to_fp16(-0.f), 0x8000);
    assert_int_equal(ds_fp32_to_fp16(0x1p-24f), 0x0001);
    assert_int_equal(ds_fp32_to_fp16(0x1p-25f), 0x0000);   // tie -> even (0)
    assert_int_equal(ds_fp32_to_fp16(0x1.8p-24f), 0x0002); // tie 1.5 -> 2
    assert_int_equal(ds_fp32_to_fp16(0x1p-14f), 0x0400);
    assert_int_equal(ds_fp32_to_fp16(0.1f), 0x2E66);
    assert_int_equal(ds_fp32_to_fp16(1.f + 0x1p-11f), 0x3C00);     // tie -> even
    assert_int_equal(ds_fp32_to_fp16(1.f + 3 * 0x1p-11f), 0x3C02); // tie -> even (up)
    const uint16_t qnan = ds_fp32_to_fp16(NAN), snan_like = ds_fp32_to_fp16(-nanf(""));
    assert_true(isnan(ds_fp16_to_fp32(qnan)) && isnan(ds_fp16_to_fp32(snan_like)));
    float payload_low; // NaN whose payload sits only in bits that fp16 drops
    const uint32_t nb = 0x7F800001u;
    memcpy(&payload_low, &nb, sizeof payload_low);
    assert_true(isnan(ds_fp16_to_fp32(ds_fp32_to_fp16(payload_low))));
}

static void check_bf16_nearest(float x) {
    const uint16_t h = ds_fp32_to_bf16(x);
    const float    v = ds_bf16_to_fp32(h);
    if (isinf(v)) { // only when x is beyond the largest bf16 by at least half a step
        assert_true(fabs((double)x) >= 0x1.FFp127 || isinf(x));
        return;
    }
    const uint16_t mag = h & 0x7FFF;
    const double   ax = fabs((double)x), err = fabs(ax - (double)fabsf(v));
    const double   up = fabs(ax - (double)ds_bf16_to_fp32((uint16_t)(mag + 1)));
    assert_true(err <= up || isinf(ds_bf16_to_fp32((uint16_t)(mag + 1))));
    if (mag > 0) {
        const double down = fabs(ax - (double)ds_bf16_to_fp32((uint16_t)(mag - 1)));
        assert_true(err <= down);
        if (err == down) assert_int_equal(mag & 1, 0);
    }
    if (err == up) assert_int_equal(mag & 1, 0);
}

static void bf16_rounding(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = ds_bf16_to_fp32((uint16_t)h);
        uint32_t    bits;
        memcpy(&bits, &f, sizeof bits);
        assert_int_equal(bits, h << 16); // bf16 is the top half of an f32
        if (isnan(f)) assert_true(isnan(ds_bf16_to_fp32(ds_fp32_to_bf16(f))));
        else assert_int_equal(ds_fp32_to_bf16(f), h);
    }
    uint64_t seed = 11;
    for (int i = 0; i < 200000; i++) {
        const uint32_t u = (uint32_t)test_rand_u64(&seed);
        float          f;
        memcpy(&f, &u, sizeof f);
        if (isnan(f)) assert_true(isnan(ds_bf16_to_fp32(ds_fp32_to_bf16(f))));
        else check_bf16_nearest(f);
    }
    assert_int_equal(ds_fp32_to_bf16(1.f + 0x1p-8f), 0x3F80);     // tie -> even
    assert_int_equal(ds_fp32_to_bf16(1.f + 3 * 0x1p-8f), 0x3F82); // tie -> even
    assert_int_equal(ds_fp32_to_bf16(FLT_MAX), 0x7F80);          // rounds to inf
    float nan_low;
    const uint32_t nb = 0xFF800001u;
    memcpy(&nan_low, &nb, sizeof nan_low);
    assert_true(isnan(ds_bf16_to_fp32(ds_fp32_to_bf16(nan_low))));
}

// ---- dequantization against llama.cpp's output ----

static int hex_nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void dequant_reference_vectors(void **state) {
    (void)state;
    char path[1024];
    if (!test_shared_path(path, sizeof path, "testdata/quant-tables/dequant-vectors.json")) skip();
    json_error_t jerr;
    json_t      *root = json_load_file(path, 0, &jerr);
    if (!root) fail_msg("%s: %s", path, jerr.text);
    const char *tname;
    json_t     *entry;
    int         n_types = 0;
    json_object_foreach(root, tname, entry) {
        ds_type t;
        if (ds_type_from_name(tname, &t) != DS_OK) fail_msg("JSON type '%s' is unknown", tname);
        const ds_type_traits *tt = ds_type_traits_get((int32_t)t);
        const json_int_t elems = json_integer_value(json_object_get(entry, "block_elems"));
        const json_int_t nbyte = json_integer_value(json_object_get(entry, "block_bytes"));
        assert_int_equal(tt->block_elems, elems);
        assert_int_equal(tt->block_bytes, nbyte);
        size_t  ir;
        json_t *row;
        json_array_foreach(json_object_get(entry, "rows"), ir, row) {
            const char  *hex    = json_string_value(json_object_get(row, "hex"));
            json_t      *floats = json_object_get(row, "floats");
            const size_t nbytes = strlen(hex) / 2;
            assert_int_equal(nbytes % tt->block_bytes, 0);
            const int64_t n = (int64_t)(nbytes / tt->block_bytes) * tt->block_elems;
            assert_int_equal((size_t)n, json_array_size(floats));
            uint8_t *bytes = malloc(nbytes); // malloc: aligned for every block struct
            float   *got = malloc((size_t)n * sizeof *got), *one = malloc((size_t)n * sizeof *one);
            assert_non_null(bytes);
            for (size_t k = 0; k < nbytes; k++)
                bytes[k] = (uint8_t)(hex_nibble(hex[2 * k]) << 4 | hex_nibble(hex[2 * k + 1]));
            tt->to_float(bytes, got, n); // all blocks of the row in one call
            for (int64_t j = 0; j < n; j += tt->block_elems) // and block by block
                tt->to_float(bytes + (size_t)(j / tt->block_elems) * tt->block_bytes, one + j,
                             tt->block_elems);
            for (int64_t j = 0; j < n; j++) {
                // 9 significant digits identify an f32 exactly: compare bit for bit.
                const float want = (float)json_number_value(json_array_get(floats, (size_t)j));
                if (got[j] != want || one[j] != want)
                    fail_msg("%s row %zu element %lld: got %.9g (block-wise %.9g), want %.9g",
                             tname, ir, (long long)j, got[j], one[j], want);
            }
            free(bytes);
            free(got);
            free(one);
        }
        n_types++;
    }
    assert_true(n_types >= 21);
    json_decref(root);
}

// ---- quantize -> dequantize ----

enum { QN = 8192 }; // 32 super-blocks

// Approximately N(0, 1): the sum of 4 uniforms, rescaled (enough for error statistics).
static float gaussish(uint64_t *s) {
    return (test_randf(s) + test_randf(s) + test_randf(s) + test_randf(s)) * 0.8660254f;
}

static void fill(float *x, int dist, uint64_t seed) {
    for (int i = 0; i < QN; i++) {
        switch (dist) {
        case 0: x[i] = test_randf(&seed); break;                      // uniform [-1, 1)
        case 1: x[i] = 0.02f * gaussish(&seed); break;                // weight-like scale
        case 2:                                                       // heavy outliers
            x[i] = gaussish(&seed);
            if (test_rand_u64(&seed) % 97 == 0) x[i] *= 25.f;
            break;
        default: x[i] = 3.f + 0.5f * gaussish(&seed); break;          // all positive, offset
        }
    }
}

static void quantize_round_trip_within_bounds(void **state) {
    (void)state;
    float   *x = malloc(QN * sizeof *x), *y = malloc(QN * sizeof *y), *y2 = malloc(QN * sizeof *y2);
    uint8_t *q = malloc(QN * 4), *q2 = malloc(QN * 4);
    assert_non_null(x);
    const char *dist_name[] = {"uniform", "gauss", "outliers", "offset"};
    for (int t = 0; t < DS_TYPE_COUNT; t++) {
        const ds_type_traits *tt = ds_type_traits_get(t);
        if (!tt || !tt->from_float || t == DS_TYPE_F32) continue;
        for (int dist = 0; dist < 4; dist++) {
            fill(x, dist, 1234 + (uint64_t)dist);
            tt->from_float(x, q, QN);
            tt->to_float(q, y, QN);
            const double err = quant_rel_rms(x, y, QN);
            if (t == DS_TYPE_F16 || t == DS_TYPE_BF16) {
                // Element-wise: half a unit in the last place, 2^-11 (f16) / 2^-8 (bf16)
                // relative in the normal range; below 2^-14 f16's spacing is 2^-24, so the
                // error is at most 2^-25 there.
                const double rel = t == DS_TYPE_F16 ? 0x1p-11 : 0x1p-8;
                const double abs_floor = t == DS_TYPE_F16 ? 0x1p-25 : 0.0;
                for (int i = 0; i < QN; i++)
                    assert_true(fabs((double)y[i] - x[i]) <= fmax(rel * fabs(x[i]), abs_floor));
                continue;
            }
            const double bound = quant_rel_rms_bound((ds_type)t, x, QN);
            print_message("  %-7s %-8s rel rms %.4f%% (bound %.4f%%)\n", tt->name, dist_name[dist],
                          100 * err, 100 * bound);
            assert_true(bound > 0);
            if (!(err <= bound))
                fail_msg("%s %s: relative RMS error %.5f over the bound %.5f", tt->name,
                         dist_name[dist], err, bound);
            // Rows are independent: quantizing the blocks one call at a time gives the same.
            const size_t bb = tt->block_bytes;
            for (int64_t j = 0; j < QN; j += tt->block_elems)
                tt->from_float(x + j, q2 + (size_t)(j / tt->block_elems) * bb, tt->block_elems);
            assert_memory_equal(q, q2, (size_t)(QN / tt->block_elems) * bb);
            tt->to_float(q2, y2, QN);
            assert_memory_equal(y, y2, QN * sizeof *y);
        }
    }
    free(x);
    free(y);
    free(y2);
    free(q);
    free(q2);
}

static void quantize_all_zero(void **state) {
    (void)state;
    enum { N = 512 };
    float   x[N], y[N];
    uint8_t q[N * 4];
    for (int t = 0; t < DS_TYPE_COUNT; t++) {
        const ds_type_traits *tt = ds_type_traits_get(t);
        if (!tt || !tt->from_float) continue;
        for (int i = 0; i < N; i++) x[i] = 0.f;
        tt->from_float(x, q, N);
        tt->to_float(q, y, N);
        for (int i = 0; i < N; i++)
            if (y[i] != 0.f) fail_msg("%s: zero row decodes to %g at %d", tt->name, y[i], i);
    }
}

// Weights read from a damaged or hostile file may hold NaN, infinities, huge or subnormal
// values. Quantizing them must stay memory-safe and free of undefined behaviour (run under
// ASan+UBSan); the finite, ordinary blocks of the same row must still come out right.
static void quantize_non_finite_input(void **state) {
    (void)state;
    enum { N = 1024 };
    float   x[N], y[N];
    uint8_t q[N * 4];
    uint64_t seed = 5;
    for (int t = 0; t < DS_TYPE_COUNT; t++) {
        const ds_type_traits *tt = ds_type_traits_get(t);
        if (!tt || !tt->from_float) continue;
        for (int i = 0; i < N; i++) x[i] = test_randf(&seed);
        // The first 256 values (one super-block, 8 legacy blocks) get the poison.
        x[0] = NAN, x[3] = INFINITY, x[40] = -INFINITY, x[77] = 3e38f, x[100] = -3e38f;
        x[130] = 1e-40f, x[200] = NAN, x[255] = 1e30f;
        tt->from_float(x, q, N);
        tt->to_float(q, y, N);
        const int64_t first_clean = 256;
        if (t == DS_TYPE_F32 || t == DS_TYPE_F16 || t == DS_TYPE_BF16) continue;
        const double err = quant_rel_rms(x + first_clean, y + first_clean, N - first_clean);
        assert_true(err <= quant_rel_rms_bound((ds_type)t, x + first_clean, N - first_clean));
    }
}

static void q8_k_sums_and_q8_1_sum(void **state) {
    (void)state;
    enum { N = 1024 };
    float         x[N];
    ds_block_q8_k k[N / DS_QK_K];
    ds_block_q8_1 b[N / DS_QK8_1];
    uint64_t      seed = 99;
    for (int i = 0; i < N; i++) x[i] = test_randf(&seed) * 3.f;
    ds_quantize_row_q8_k(x, k, N);
    for (int i = 0; i < N / DS_QK_K; i++) {
        int amax = 0;
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) {
                sum += k[i].qs[16 * g + l];
                amax = abs(k[i].qs[16 * g + l]) > amax ? abs(k[i].qs[16 * g + l]) : amax;
            }
            assert_int_equal(k[i].bsums[g], sum);
        }
        assert_int_equal(amax, 127); // the extreme maps to ±127
    }
    ds_quantize_row_q8_1(x, b, N);
    for (int i = 0; i < N / DS_QK8_1; i++) {
        int sum = 0;
        for (int l = 0; l < 32; l++) sum += b[i].qs[l];
        const float s = ds_fp16_to_fp32(b[i].s), d = ds_fp16_to_fp32(b[i].d);
        assert_true(fabsf(s - d * (float)sum) <= 2e-3f * (fabsf(d * (float)sum) + d));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_rows_match_format),
        cmocka_unit_test(unknown_ids_have_no_row),
        cmocka_unit_test(lookup_by_name),
        cmocka_unit_test(row_bytes),
        cmocka_unit_test(fp16_decode_all_patterns),
        cmocka_unit_test(fp16_rounding),
        cmocka_unit_test(bf16_rounding),
        cmocka_unit_test(dequant_reference_vectors),
        cmocka_unit_test(quantize_round_trip_within_bounds),
        cmocka_unit_test(quantize_all_zero),
        cmocka_unit_test(quantize_non_finite_input),
        cmocka_unit_test(q8_k_sums_and_q8_1_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
