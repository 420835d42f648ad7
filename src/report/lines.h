/* Reading a metrics.jsonl line by line, for every reader of run folders in this room (the
 * scaling report and the run report): one place decides what a usable line is. */
#ifndef SEMAIM_REPORT_LINES_H
#define SEMAIM_REPORT_LINES_H
#include "core/json.h"
#include "semaim/report.h"

/* Called with each JSON object line that has an "event" string (ln: its line number).
 * Returns NULL (fine), a reason the line cannot be used (warned about with file and line and
 * counted in R->bad_lines), report_line_stop (the rest of the file is not wanted) or
 * report_line_oom. */
typedef const char *(*report_line_fn)(void *ctx, const json_t *o, const char *event, long ln);
extern const char report_line_stop[], report_line_oom[];
/* Every line of path through fn. Blank lines are skipped; a line that is not JSON (a cut last
 * line: a job killed mid-write, or a run that is writing it now), not an object or without an
 * event is warned about and counted. 0, or -1 with err: the file cannot be read (ERR_INPUT),
 * or out of memory (ERR_RUNTIME). */
int report_read_lines(report_t *R, const char *path, report_line_fn fn, void *ctx, err_t *err);

/* Fields of a line: a finite number (0, or -1), an integer in lo..hi (0, or -1), and text for
 * tables and labels (strings as they are, numbers printed, true/false, anything else ""). */
int report_get_num(const json_t *o, const char *key, double *v);
int report_get_int(const json_t *o, const char *key, long lo, long hi, long *v);
/* The model for people, from run_start's settings: the preset and what overrides it, the
 * parameter count, the order and the all-reduce ("tiny image 32 patch 4, 1.2 M params, ..."). */
void report_model_text(const json_t *settings, long params, char *out, size_t n);
#endif
