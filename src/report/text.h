/* Text the report writers share (internal to the report room): Markdown-safe text, numbers
 * for CSV and JSON, JSON keys. */
#ifndef SEMAIM_REPORT_TEXT_H
#define SEMAIM_REPORT_TEXT_H
#include "core/buf.h"

/* s made safe for a Markdown table cell or line (report_clean_text, then |*_`<>[]\ escaped). */
void report_md_text(buf_t *b, const char *s);
/* x as %.10g, or null when it is not finite. */
void report_num(buf_t *b, double x);
/* "k": */
void report_jkey(buf_t *b, const char *k);
#endif
