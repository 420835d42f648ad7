/* results/README.md: the current benchmark figures (results/bench-*.json, written by
 * tests/bench.sh) with the command, machine and date of each record, and the scaling reports
 * found under results/. Generated, so it never disagrees with the records. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "semaim/report.h"

static void md_cell(buf_t *b, const char *s) {
    char c[2048];
    report_clean_text(s, c, sizeof c);
    for (const char *p = c; *p; p++) {
        if (strchr("|*_`<>[]\\", *p)) buf_add(b, "\\", 1);
        buf_add(b, p, 1);
    }
}

/* Text inside `code`: backticks cannot be escaped there, so they become quotes; '|' is escaped
 * as GitHub's tables want. */
static void md_code(buf_t *b, const char *s) {
    char c[2048];
    report_clean_text(s, c, sizeof c);
    buf_add(b, "`", 1);
    for (char *p = c; *p; p++) {
        if (*p == '`') *p = '\'';
        if (*p == '|') buf_add(b, "\\", 1);   /* a table cell ends at '|' even inside code */
        buf_add(b, p, 1);
    }
    buf_add(b, "`", 1);
}

static int is_bench_record(const struct dirent *e) {
    size_t n = strlen(e->d_name);
    return !strncmp(e->d_name, "bench-", 6) && n > 11 && !strcmp(e->d_name + n - 5, ".json");
}

static void skipped(buf_t *sk, FILE *log, const char *file, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void skipped(buf_t *sk, FILE *log, const char *file, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log) fprintf(log, "semaim-report: %s: %s\n", file, msg);
    buf_puts(sk, "- ");
    md_code(sk, file);
    buf_puts(sk, ": ");
    md_cell(sk, msg);
    buf_puts(sk, "\n");
}

/* One record's section; returns 0, or -1 (with the reason in sk) when it is not a record. */
static int bench_section(buf_t *idx, buf_t *sec, buf_t *sk, FILE *log, const char *dir, const char *file) {
    char path[4200];
    err_t je;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text = NULL;
    size_t n = 0;
    if (file_slurp(path, &text, &n)) { skipped(sk, log, path, "cannot read: %s", strerror(errno)); return -1; }
    json_t root;
    if (json_parse(text, n, &root, &je)) {
        free(text);
        skipped(sk, log, path, "not JSON (%s)", je.msg);
        return -1;
    }
    free(text);
    const char *name = json_gets(&root, "bench");
    const json_t *figs = json_get(&root, "figures");
    if (root.type != JSON_OBJ || !name || !figs || figs->type != JSON_ARR) {
        json_free(&root);
        skipped(sk, log, path, "not a benchmark record (needs \"bench\" and a \"figures\" array)");
        return -1;
    }
    const char *cmd = json_gets(&root, "command"), *machine = json_gets(&root, "machine"),
               *date = json_gets(&root, "date");
    buf_puts(idx, "| [");
    md_cell(idx, name);
    buf_puts(idx, "](#");
    /* the anchor GitHub makes of the section heading "bench: NAME" */
    char anchor[256] = "bench-";
    size_t an = strlen(anchor);
    for (const char *p = name; *p && an + 1 < sizeof anchor; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') anchor[an++] = c;
        else if (c == ' ') anchor[an++] = '-';
    }
    anchor[an] = 0;
    md_cell(idx, anchor);
    buf_puts(idx, ") | ");
    md_cell(idx, date ? date : "unknown");
    buf_puts(idx, " | ");
    md_cell(idx, machine ? machine : "unknown");
    buf_printf(idx, " | %zu |\n", figs->n);

    buf_puts(sec, "\n### bench: ");
    md_cell(sec, name);
    buf_puts(sec, "\n\n- record: ");
    md_code(sec, file);
    buf_puts(sec, "\n- command: ");
    if (cmd) md_code(sec, cmd); else buf_puts(sec, "unknown");
    buf_puts(sec, "\n- machine: ");
    md_cell(sec, machine ? machine : "unknown");
    buf_puts(sec, "\n- date: ");
    md_cell(sec, date ? date : "unknown");
    const json_t *env = json_get(&root, "env");
    if (env && env->type == JSON_OBJ && env->n) {
        buf_puts(sec, "\n- environment: ");
        for (size_t i = 0; i < env->n; i++) {
            char kv[512];
            if (env->items[i].type == JSON_STR) snprintf(kv, sizeof kv, "%s=%s", env->keys[i], env->items[i].str);
            else if (env->items[i].type == JSON_NUM) snprintf(kv, sizeof kv, "%s=%g", env->keys[i], env->items[i].num);
            else continue;
            if (i) buf_puts(sec, ", ");
            md_code(sec, kv);
        }
    }
    buf_puts(sec, "\n\n| figure | value | unit |\n| --- | ---: | --- |\n");
    int bad = 0;
    for (size_t i = 0; i < figs->n; i++) {
        const json_t *f = &figs->items[i];
        const char *fn = json_gets(f, "name"), *unit = json_gets(f, "unit");
        double v;
        if (!fn || json_getnum(f, "value", &v) || !isfinite(v)) { bad++; continue; }
        buf_puts(sec, "| ");
        md_code(sec, fn);
        buf_printf(sec, " | %.6g | ", v);
        md_cell(sec, unit ? unit : "");
        buf_puts(sec, " |\n");
    }
    if (!figs->n) buf_puts(sec, "| (no figures: the benchmark printed none) | | |\n");
    if (bad) {
        buf_printf(sec, "\n%d figure%s without a name or a finite value left out.\n", bad, bad == 1 ? "" : "s");
        if (log) fprintf(log, "semaim-report: %s: %d figure(s) without a name or a finite value left out\n", path, bad);
    }
    json_free(&root);
    return 0;
}

/* Folders under results/ holding a scaling report. */
static void scaling_list(buf_t *b, FILE *log, const char *dir) {
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, versionsort), found = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        char p[4200];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s/scaling.json", dir, nm);
        if (nm[0] != '.' && !stat(p, &st) && S_ISREG(st.st_mode)) {
            char *text = NULL;
            err_t je;
            size_t len = 0;
            json_t root;
            buf_puts(b, "- [");
            md_cell(b, nm);
            buf_puts(b, "](");
            md_cell(b, nm);
            buf_puts(b, "/scaling.md)");
            if (!file_slurp(p, &text, &len) && !json_parse(text, len, &root, &je)) {
                const char *created = json_gets(&root, "created");
                const json_t *runs = json_get(&root, "runs"), *series = json_get(&root, "series");
                buf_printf(b, ": made %s, %zu runs, %zu series",
                                created ? created : "unknown", runs && runs->type == JSON_ARR ? runs->n : 0,
                                series && series->type == JSON_ARR ? series->n : 0);
                json_free(&root);
            } else {
                buf_puts(b, ": its scaling.json cannot be read");
                if (log) fprintf(log, "semaim-report: %s: cannot be read as JSON; listed without details\n", p);
            }
            free(text);
            buf_puts(b, "\n");
            found++;
        }
        free(ents[i]);
    }
    free(ents);
    if (!found)
        buf_puts(b, "None yet. Make one from a folder of run folders (e.g. a scaling sweep): "
                         "`bin/semaim-report --runs SWEEP_DIR --name NAME`.\n");
}

int report_bench_readme(const char *results_dir, const char *out_path, FILE *log, err_t *err) {
    struct stat st;
    if (stat(results_dir, &st)) { err_set(err, ERR_INPUT, "%s: %s", results_dir, strerror(errno)); return -1; }
    if (!S_ISDIR(st.st_mode)) { err_set(err, ERR_INPUT, "%s: not a folder", results_dir); return -1; }
    struct dirent **ents = NULL;
    int n = scandir(results_dir, &ents, is_bench_record, versionsort);
    if (n < 0) { err_set(err, ERR_RUNTIME, "%s: cannot list: %s", results_dir, strerror(errno)); return -1; }
    buf_t idx = {0}, sec = {0}, sk = {0}, out = {0};
    int listed = 0;
    for (int i = 0; i < n; i++) {
        if (!bench_section(&idx, &sec, &sk, log, results_dir, ents[i]->d_name)) listed++;
        free(ents[i]);
    }
    free(ents);
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_puts(&out, "# Results\n\n"
                        "Generated by `bin/semaim-report bench --results ");
    {
        char c[1024];
        report_clean_text(results_dir, c, sizeof c);
        for (char *p = c; *p; p++) if (*p == '`') *p = '\'';
        buf_puts(&out, c);
    }
    buf_printf(&out, "` on %s from the records in this folder; do not edit by hand, run it again.\n\n"
                          "- `make bench` runs `tests/bench/*.sh`; `tests/bench.sh` records each script's "
                          "`bench <name>: <value> <unit>` lines with the command, machine and date in "
                          "`bench-<script>.json`. `tests/bench.sh PATTERN` reruns some of them.\n"
                          "- Scaling reports (`NAME/scaling.{md,csv,json,svg}`) come from `bin/semaim-report --runs DIR "
                          "--name NAME`, reading the `metrics.jsonl` of a folder of training runs.\n"
                          "- Figures are from whichever machine ran them, shown with each record: compare like with "
                          "like.\n\n## Benchmark records\n\n", now);
    if (listed) {
        buf_puts(&out, "| record | date | machine | figures |\n| --- | --- | --- | ---: |\n");
        if (idx.s) buf_puts(&out, idx.s);
        if (sec.s) buf_puts(&out, sec.s);
    } else buf_puts(&out, "None yet: run `make bench`.\n");
    buf_puts(&out, "\n## Scaling reports\n\n");
    scaling_list(&out, log, results_dir);
    if (sk.s) {
        buf_puts(&out, "\n## Records skipped\n\n");
        buf_puts(&out, sk.s);
    }
    int rc = listed;
    if (idx.oom || sec.oom || sk.oom || out.oom) { err_set(err, ERR_RUNTIME, "out of memory"); rc = -1; }
    else if (file_write_atomic(out_path, &(span_t){out.s, out.len}, 1, err)) rc = -1;
    buf_free(&idx); buf_free(&sec); buf_free(&sk); buf_free(&out);
    return rc;
}
