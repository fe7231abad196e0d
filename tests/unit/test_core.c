// test_core.c - the core module: error messages, the byte buffer and its JSON escaping.
#include "test.h"

#include "ds/alloc.h"
#include "ds/buf.h"
#include "ds/err.h"

static void fail_records_message_and_returns_code(void **state) {
    (void)state;
    assert_int_equal(ds_fail(DS_EFORMAT, "%s: bad %d", "x.gguf", 7), DS_EFORMAT);
    assert_string_equal(ds_errmsg(), "x.gguf: bad 7");
    // The previous message may be folded into the next one.
    ds_fail(DS_EIO, "outer: %s", ds_errmsg());
    assert_string_equal(ds_errmsg(), "outer: x.gguf: bad 7");
    assert_string_equal(ds_status_name(DS_ENOMEM), "out of memory");
}

static void long_message_is_truncated_not_overflowed(void **state) {
    (void)state;
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ds_fail(DS_EINVAL, "%s", big);
    assert_true(strlen(ds_errmsg()) < sizeof big);
    assert_true(strlen(ds_errmsg()) > 100);
}

static void buf_appends_and_formats(void **state) {
    (void)state;
    ds_buf b = {0};
    ds_buf_puts(&b, "abc");
    ds_buf_printf(&b, "-%d-%s", 42, "x");
    for (int i = 0; i < 1000; i++) ds_buf_append(&b, "z", 1);
    assert_int_equal(b.len, 3 + 5 + 1000);
    assert_memory_equal(b.data, "abc-42-xz", 9);
    assert_int_equal(b.data[b.len], '\0');
    ds_buf_clear(&b);
    assert_int_equal(b.len, 0);
    ds_buf_free(&b);
    assert_null(b.data);
}

static void json_strings_are_escaped_and_utf8_repaired(void **state) {
    (void)state;
    ds_buf b = {0};
    const char in[] = "q\"b\\n\n\t\x01 \xe6\xb7\xb1 \xff end \xe2\x82";
    ds_buf_json_str(&b, in, sizeof in - 1);
    assert_string_equal(b.data, "\"q\\\"b\\\\n\\n\\t\\u0001 \xe6\xb7\xb1 \xef\xbf\xbd end "
                                "\xef\xbf\xbd\xef\xbf\xbd\"");
    ds_buf_clear(&b);
    // Overlong encodings and surrogates are invalid UTF-8 too.
    ds_buf_json_str(&b, "\xc0\xaf\xed\xa0\x80", 5);
    assert_string_equal(b.data, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    ds_buf_free(&b);
}

static void strndup_stops_at_limit(void **state) {
    (void)state;
    char *s = ds_xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fail_records_message_and_returns_code),
        cmocka_unit_test(long_message_is_truncated_not_overflowed),
        cmocka_unit_test(buf_appends_and_formats),
        cmocka_unit_test(json_strings_are_escaped_and_utf8_repaired),
        cmocka_unit_test(strndup_stops_at_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
