/* Writing metrics lines (semaim/metrics.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "semaim/metrics.h"

void metrics_begin(buf_t *b, const char *event) {
    b->len = 0;
    if (b->s) b->s[0] = 0;
    buf_puts(b, "{");
    json_str(b, MET_EVENT);
    buf_puts(b, ": ");
    json_str(b, event);
}

static void key(buf_t *b, const char *k) {
    buf_puts(b, ", ");
    json_str(b, k);
    buf_puts(b, ": ");
}

void metrics_num(buf_t *b, const char *k, const char *fmt, double v) {
    key(b, k);
    if (v != v || v - v != 0) buf_puts(b, "null");   /* NaN and ±Inf are not JSON */
    else buf_printf(b, fmt, v);
}

void metrics_int(buf_t *b, const char *k, long long v) {
    key(b, k);
    buf_printf(b, "%lld", v);
}

void metrics_str(buf_t *b, const char *k, const char *s) {
    key(b, k);
    if (s) json_str(b, s);
    else buf_puts(b, "null");
}

void metrics_raw(buf_t *b, const char *k, const char *json) {
    key(b, k);
    buf_puts(b, json);
}

int metrics_write(buf_t *b, FILE *f) {
    buf_puts(b, "}\n");
    if (b->oom || !f || fflush(f)) return -1;
    /* The line with write(2), not through stdio's buffer, so a failure is seen here; a line
     * the disk took only part of is cut off again (the file is only ever appended to), so a
     * full disk loses whole lines and a reader never meets a broken one in the middle. */
    int fd = fileno(f);
    off_t before = lseek(fd, 0, SEEK_END);
    if (file_write_all(fd, b->s, b->len) == 0) return 0;
    int e = errno;
    if (before >= 0 && ftruncate(fd, before)) { /* the reader skips a torn last line anyway */ }
    errno = e;
    return -1;
}
