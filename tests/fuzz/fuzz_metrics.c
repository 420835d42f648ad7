/* semaim-report's readers of metrics.jsonl and what the reports then do with what they
 * accepted, all in memory: the scaling report (src/report/read.c: report_add_metrics; the
 * series, statistics and the four outputs CSV, JSON, Markdown, SVG) and the run report
 * (src/report/runlog.c: report_runlog_read; every plot, report.md, curves.csv, summary.json,
 * without the pictures, which need a checkpoint). The input is the metrics file of one run
 * folder; the first byte picks the folder name (strong-, weak- or neither). Beyond not
 * crashing: both JSON outputs parse. */
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
    R = report_new(&o);
    if (!R) return 0;
    report_runlog_t L;
    if (report_runlog_read(R, dir, &L, &e) == 0) {
        long window = report_smooth_window(L.nsteps);
        for (int p = 0; p < REPORT_PLOTS; p++) free(report_run_plot(&L, p, window));
        free(report_run_markdown(R, &L, NULL, "fuzz: no pictures", "", window));
        free(report_run_csv(&L, window));
        char *j = report_run_json(R, &L, NULL, "fuzz: no pictures", "", window);
        json_t v;
        FUZZ_CHECK(!j || json_parse(j, strlen(j), &v, &e) == 0, "summary.json does not parse: %s", e.msg);
        if (j) json_free(&v);
        free(j);
        report_runlog_free(&L);
    } else FUZZ_CHECK(e.msg[0], "a refusal without a reason");
    report_free(R);
    return 0;
}
