/* Text the report writers share: strings made safe for tables and SVG, and series names. */
#include <stdio.h>
#include <string.h>
#include <math.h>
#include "core/json.h"
#include "report/text.h"
#include "semaim/report.h"

void report_clean_text(const char *s, char *out, size_t n) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && o + 5 < n) {
        unsigned c = *p;
        int len = json_utf8_len(p);
        if (!len || c < 0x20 || c == 0x7f) { out[o++] = '?'; p++; continue; }
        memcpy(out + o, p, (size_t)len);
        o += (size_t)len;
        p += len;
    }
    out[o] = 0;
}

void report_series_label(const report_t *R, int s, char *out, size_t n) {
    const report_series_t *S = &R->series[s];
    char base[128];
    if (S->kind == REPORT_STRONG) snprintf(base, sizeof base, "strong, global batch %ld", S->batch_key);
    else snprintf(base, sizeof base, "weak, batch %ld per rank", S->batch_key);
    /* series of different models or thread counts can share a batch: number them */
    int same = 0, index = 0;
    for (int t = 0; t < R->nseries; t++)
        if (R->series[t].kind == S->kind && R->series[t].batch_key == S->batch_key) {
            same++;
            if (t <= s) index++;
        }
    if (same > 1) snprintf(out, n, "%s (%d)", base, index);
    else snprintf(out, n, "%s", base);
}

void report_md_text(buf_t *b, const char *s) {
    char c[2048];
    report_clean_text(s, c, sizeof c);
    for (const char *p = c; *p; p++) {
        if (strchr("|*_`<>[]\\", *p)) buf_add(b, "\\", 1);
        buf_add(b, p, 1);
    }
}

void report_num(buf_t *b, double x) {
    if (isfinite(x)) buf_printf(b, "%.10g", x);
    else buf_puts(b, "null");
}

void report_jkey(buf_t *b, const char *k) {
    json_str(b, k);
    buf_add(b, ": ", 2);
}
