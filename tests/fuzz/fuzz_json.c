/* The JSON reader (src/core/json.c) on arbitrary bytes. Beyond not crashing: a tree it
 * accepts is written back (json_write) to text it accepts again, and that text is a fixed
 * point (the manifest assembly rewrites recipe and classes this way). */
#include "core/buf.h"
#include "core/json.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    json_t v;
    err_t e;
    if (json_parse((const char *)data, n, &v, &e)) {
        FUZZ_CHECK(e.kind == ERR_INPUT && e.msg[0], "a refusal without a reason");
        return 0;
    }
    (void)json_gets(&v, "event");
    double x;
    (void)json_getnum(&v, "step", &x);
    buf_t a = {0}, b = {0};
    json_write(&a, &v);
    json_free(&v);
    FUZZ_CHECK(!a.oom, "out of memory");
    json_t w;
    FUZZ_CHECK(json_parse(a.s, a.len, &w, &e) == 0, "written text does not parse (%s): %.200s", e.msg, a.s);
    json_write(&b, &w);
    json_free(&w);
    FUZZ_CHECK(a.len == b.len && !memcmp(a.s, b.s, a.len), "write(parse(write(v))) differs:\n%.200s\n%.200s", a.s, b.s);
    buf_free(&a);
    buf_free(&b);
    return 0;
}
