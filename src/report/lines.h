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
#endif
