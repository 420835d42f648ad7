/* semaim-report's reader of metrics.jsonl (src/report/read.c: report_add_metrics) and what
 * the report then does with the runs it accepted: the series, statistics and the four
 * outputs (CSV, JSON, Markdown, SVG), all in memory. The input is the metrics file of one
 * run folder; the first byte picks the folder name (strong-, weak- or neither). Beyond not
 * crashing: the JSON report parses. */
#include "core/json.h"
#include "semaim/report.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    static const char *const names[] = {"strong-1", "weak-2", "run"};
    fuzz_reset();
    char dir[4200], path[4300];
    fuzz_path(dir, sizeof dir, names[data[0] % 3]);
    fuzz_mkdir(dir);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    fuzz_write(path, data + 1, n - 1);
    report_opts_t o;
    report_default_opts(&o);
    o.bootstrap = 20;   /* the resampling count changes nothing the reader sees; keep inputs fast */
    report_t *R = report_new(&o);
    if (!R) return 0;
    err_t e;
    if (report_add_folder(R, fuzz_dir(), &e) > 0) {
        report_analyse(R);
        char *t[4] = {report_csv(R), report_json(R), report_markdown(R), report_svg(R)};
        json_t v;
        FUZZ_CHECK(!t[1] || json_parse(t[1], strlen(t[1]), &v, &e) == 0, "scaling.json does not parse: %s", e.msg);
        if (t[1]) json_free(&v);
        for (int i = 0; i < 4; i++) free(t[i]);
    }
    report_free(R);
    return 0;
}
