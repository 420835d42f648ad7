/* The scaling report as CSV (one row per series and rank count), JSON (everything, for
 * scripts) and Markdown (for people). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "report/text.h"
#include "semaim/report.h"

static const char *const kind_name[] = {"any", "strong", "weak"};
static const char *const iv_name[] = {"none", "min-max over repeats", "bootstrap 95% of the median"};

/* Comma-separated union of a per-run text field over a point's runs. */
static void point_union(const report_t *R, const report_point_t *P, int jobs, char *out, size_t n) {
    out[0] = 0;
    size_t o = 0;
    for (int i = 0; i < P->nruns; i++) {
        const char *list = jobs ? R->runs[P->runs[i]].slurm_jobs : R->runs[P->runs[i]].nodes;
        char item[256];
        for (const char *p = list; p && *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            snprintf(item, sizeof item, "%.*s", (int)len, p);
            p = e ? e + 1 : p + len;
            int dup = 0;
            for (const char *q = out; *q && !dup;) {
                const char *f = strchr(q, ',');
                size_t l = f ? (size_t)(f - q) : strlen(q);
                dup = l == strlen(item) && !memcmp(q, item, l);
                q = f ? f + 1 : q + l;
            }
            if (!dup && o + strlen(item) + 2 < n) o += (size_t)snprintf(out + o, n - o, "%s%s", o ? "," : "", item);
        }
    }
}

/* ------------------------------------------------------------------ CSV */

static void csv_field(buf_t *b, const char *s) {
    char c[2048];
    report_clean_text(s, c, sizeof c);
    if (!strpbrk(c, ",\"")) { buf_puts(b, c); return; }
    buf_add(b, "\"", 1);
    for (const char *p = c; *p; p++) {
        if (*p == '"') buf_add(b, "\"", 1);   /* a quote inside a quoted field is doubled */
        buf_add(b, p, 1);
    }
    buf_add(b, "\"", 1);
}


char *report_csv(const report_t *R) {
    buf_t b = {0};
    buf_puts(&b, "kind,series,grouped_by,ranks,nodes,threads,global_batch,batch_per_rank,repeats,steady_steps,"
                      "throughput_images_per_s,throughput_lo,throughput_hi,interval,per_rank_images_per_s,step_s,"
                      "data_wait_s,compute_s,comm_s,speedup,efficiency,slurm_job_ids,runs,model\n");
    for (int s = 0; s < R->nseries; s++) {
        const report_series_t *S = &R->series[s];
        char label[256], text[4096];
        report_series_label(R, s, label, sizeof label);
        for (int p = 0; p < S->npoints; p++) {
            const report_point_t *P = &S->points[p];
            const report_run_t *r0 = &R->runs[P->runs[0]];
            buf_printf(&b, "%s,", kind_name[S->kind]);
            csv_field(&b, label);
            buf_printf(&b, ",%s,%d,", S->inferred ? "batches" : "folder name", P->ranks);
            point_union(R, P, 0, text, sizeof text);
            csv_field(&b, text);
            buf_printf(&b, ",%d,%ld,%ld,%d,%ld,", r0->threads, r0->global_batch, r0->batch, P->nruns, P->steps);
            report_num(&b, P->throughput); buf_add(&b, ",", 1);
            report_num(&b, P->lo); buf_add(&b, ",", 1);
            report_num(&b, P->hi); buf_add(&b, ",", 1);
            csv_field(&b, iv_name[P->interval]); buf_add(&b, ",", 1);
            report_num(&b, P->throughput / P->ranks); buf_add(&b, ",", 1);
            report_num(&b, P->step_s); buf_add(&b, ",", 1);
            report_num(&b, P->wait_s); buf_add(&b, ",", 1);
            report_num(&b, P->compute_s); buf_add(&b, ",", 1);
            report_num(&b, P->comm_s); buf_add(&b, ",", 1);
            report_num(&b, P->speedup); buf_add(&b, ",", 1);
            report_num(&b, P->efficiency); buf_add(&b, ",", 1);
            point_union(R, P, 1, text, sizeof text);
            csv_field(&b, text);
            buf_add(&b, ",", 1);
            size_t o = 0;
            text[0] = 0;
            for (int i = 0; i < P->nruns && o + 2 < sizeof text; i++)
                o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i ? ";" : "", R->runs[P->runs[i]].name);
            csv_field(&b, text);
            buf_add(&b, ",", 1);
            csv_field(&b, r0->model);
            buf_add(&b, "\n", 1);
        }
    }
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}

/* ------------------------------------------------------------------ JSON */


static void jlist(buf_t *b, const char *commas) {
    buf_add(b, "[", 1);
    int first = 1;
    char item[256];
    for (const char *p = commas; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        if (!first) buf_add(b, ", ", 2);
        json_str(b, item);
        first = 0;
        p = e ? e + 1 : p + len;
    }
    buf_add(b, "]", 1);
}

static const char *const formula_ar = "T_ar(N) = 2(N-1)*alpha + 2(N-1)/N * bytes/beta";
static const char *const formula_eff = "E(N) = t_c / (t_c + T_ar(N))";

static void method_text(const report_t *R, char *warm, size_t n) {
    snprintf(warm, n, "the first max(%d, ceil(%g x steps)) steps of every invocation are warm-up and dropped",
             R->opt.warmup_min, R->opt.warmup_frac);
}

char *report_json(const report_t *R) {
    buf_t b = {0};
    char warm[256], text[4096];
    method_text(R, warm, sizeof warm);
    buf_puts(&b, "{\n");
    report_jkey(&b, "name"); json_str(&b, R->name); buf_puts(&b, ",\n");
    report_jkey(&b, "created"); json_str(&b, R->created); buf_puts(&b, ",\n");
    report_jkey(&b, "command"); json_str(&b, R->command); buf_puts(&b, ",\n");
    report_jkey(&b, "runs_dir"); json_str(&b, R->runs_dir); buf_puts(&b, ",\n");
    report_jkey(&b, "method"); buf_puts(&b, "{");
    report_jkey(&b, "warmup"); json_str(&b, warm); buf_puts(&b, ", ");
    report_jkey(&b, "throughput"); json_str(&b, "global batch / median steady-state step seconds (each step the slowest rank's)");
    buf_puts(&b, ", ");
    report_jkey(&b, "repeats"); json_str(&b, "runs of a series with the same rank count; the point takes the median of their median step times");
    buf_puts(&b, ", ");
    report_jkey(&b, "interval"); buf_printf(&b, "\"min-max of the repeats' throughputs; a lone run: percentile bootstrap 95%% of "
                                              "its median step time, %d resamples\", ", R->opt.bootstrap);
    report_jkey(&b, "strong_efficiency"); json_str(&b, "X(N) / ((N/N0) * X(N0))"); buf_puts(&b, ", ");
    report_jkey(&b, "weak_efficiency"); json_str(&b, "t(N0) / t(N)"); buf_puts(&b, ", ");
    report_jkey(&b, "speedup"); json_str(&b, "X(N) / X(N0)"); buf_puts(&b, "},\n");

    report_jkey(&b, "runs"); buf_puts(&b, "[\n");
    for (int i = 0; i < R->nruns; i++) {
        const report_run_t *r = &R->runs[i];
        buf_puts(&b, i ? ",\n  {" : "  {");
        report_jkey(&b, "name"); json_str(&b, r->name); buf_puts(&b, ", ");
        report_jkey(&b, "metrics"); json_str(&b, r->path); buf_puts(&b, ", ");
        report_jkey(&b, "folder_kind"); json_str(&b, kind_name[r->kind_hint]); buf_puts(&b, ", ");
        buf_printf(&b, "\"ranks\": %d, \"threads\": %d, ", r->ranks, r->threads);
        report_jkey(&b, "nodes"); jlist(&b, r->nodes); buf_puts(&b, ", ");
        buf_printf(&b, "\"global_batch\": %ld, \"batch_per_rank\": %ld, \"params\": %ld, \"gflop_per_image\": ",
                        r->global_batch, r->batch, r->params);
        report_num(&b, r->gflop_per_image); buf_puts(&b, ", ");
        report_jkey(&b, "model"); json_str(&b, r->model); buf_puts(&b, ", ");
        report_jkey(&b, "config"); json_str(&b, r->config); buf_puts(&b, ", ");
        report_jkey(&b, "slurm_job_ids"); jlist(&b, r->slurm_jobs); buf_puts(&b, ", ");
        buf_printf(&b, "\"invocations\": %d, \"step_lines\": %ld, \"steady_steps\": %ld, \"step_s\": ", r->invocations,
                        r->step_lines, r->nsteps);
        report_num(&b, r->step_s); buf_puts(&b, ", \"data_wait_s\": ");
        report_num(&b, r->wait_s); buf_puts(&b, ", \"compute_s\": ");
        report_num(&b, r->compute_s); buf_puts(&b, ", \"comm_s\": ");
        report_num(&b, r->comm_s); buf_puts(&b, ", \"throughput\": ");
        report_num(&b, r->throughput); buf_puts(&b, ", \"per_rank_throughput\": ");
        report_num(&b, r->throughput / r->ranks); buf_puts(&b, ", ");
        report_jkey(&b, "versions"); buf_puts(&b, "{");
        report_jkey(&b, "mpi"); json_str(&b, r->version_mpi); buf_puts(&b, ", ");
        report_jkey(&b, "hdf5"); json_str(&b, r->version_hdf5); buf_puts(&b, ", ");
        report_jkey(&b, "openblas"); json_str(&b, r->version_openblas);
        buf_printf(&b, "}, \"in_series\": %d}", R->in_series ? R->in_series[i] : 0);
    }
    buf_puts(&b, "\n],\n");

    report_jkey(&b, "series"); buf_puts(&b, "[\n");
    for (int s = 0; s < R->nseries; s++) {
        const report_series_t *S = &R->series[s];
        char label[256];
        report_series_label(R, s, label, sizeof label);
        buf_puts(&b, s ? ",\n  {" : "  {");
        report_jkey(&b, "label"); json_str(&b, label); buf_puts(&b, ", ");
        report_jkey(&b, "kind"); json_str(&b, kind_name[S->kind]); buf_puts(&b, ", ");
        report_jkey(&b, "grouped_by"); json_str(&b, S->inferred ? "batches" : "folder name"); buf_puts(&b, ", ");
        buf_printf(&b, "\"%s\": %ld, ", S->kind == REPORT_STRONG ? "global_batch" : "batch_per_rank", S->batch_key);
        report_jkey(&b, "model"); json_str(&b, R->runs[S->run0].model); buf_puts(&b, ", ");
        buf_printf(&b, "\"threads\": %d, \"baseline_ranks\": %d, \"points\": [", R->runs[S->run0].threads,
                        S->points[0].ranks);
        for (int p = 0; p < S->npoints; p++) {
            const report_point_t *P = &S->points[p];
            const report_run_t *r0 = &R->runs[P->runs[0]];
            buf_puts(&b, p ? ",\n    {" : "\n    {");
            buf_printf(&b, "\"ranks\": %d, \"global_batch\": %ld, \"batch_per_rank\": %ld, \"repeats\": %d, "
                                "\"steady_steps\": %ld, \"throughput\": ", P->ranks, r0->global_batch, r0->batch, P->nruns, P->steps);
            report_num(&b, P->throughput); buf_puts(&b, ", \"interval\": {\"lo\": ");
            report_num(&b, P->lo); buf_puts(&b, ", \"hi\": ");
            report_num(&b, P->hi); buf_puts(&b, ", \"kind\": ");
            json_str(&b, iv_name[P->interval]); buf_puts(&b, "}, \"per_rank_throughput\": ");
            report_num(&b, P->throughput / P->ranks); buf_puts(&b, ", \"step_s\": ");
            report_num(&b, P->step_s); buf_puts(&b, ", \"data_wait_s\": ");
            report_num(&b, P->wait_s); buf_puts(&b, ", \"compute_s\": ");
            report_num(&b, P->compute_s); buf_puts(&b, ", \"comm_s\": ");
            report_num(&b, P->comm_s); buf_puts(&b, ", \"speedup\": ");
            report_num(&b, P->speedup); buf_puts(&b, ", \"efficiency\": ");
            report_num(&b, P->efficiency); buf_puts(&b, ", ");
            point_union(R, P, 0, text, sizeof text);
            report_jkey(&b, "nodes"); jlist(&b, text); buf_puts(&b, ", ");
            point_union(R, P, 1, text, sizeof text);
            report_jkey(&b, "slurm_job_ids"); jlist(&b, text); buf_puts(&b, ", ");
            report_jkey(&b, "runs"); buf_puts(&b, "[");
            for (int i = 0; i < P->nruns; i++) {
                if (i) buf_puts(&b, ", ");
                json_str(&b, R->runs[P->runs[i]].name);
            }
            buf_puts(&b, "]}");
        }
        buf_puts(&b, "]}");
    }
    buf_puts(&b, "\n],\n");

    const report_proj_t *J = &R->proj;
    report_jkey(&b, "projection");
    if (!J->have) buf_puts(&b, "null");
    else {
        buf_puts(&b, "{");
        report_jkey(&b, "label"); json_str(&b, "model, not a measurement"); buf_puts(&b, ", ");
        report_jkey(&b, "allreduce_formula"); json_str(&b, formula_ar); buf_puts(&b, ", ");
        report_jkey(&b, "efficiency_formula"); json_str(&b, formula_eff); buf_puts(&b, ", ");
        report_jkey(&b, "assumes"); json_str(&b, "fixed per-rank batch (weak scaling), one fp32 gradient all-reduce per step "
                                               "after the backward pass, no overlap, data loading hidden, each rank's link "
                                               "at the given bandwidth");
        buf_puts(&b, ", ");
        report_jkey(&b, "benchmark"); json_str(&b, J->source);
        buf_printf(&b, ", \"benchmark_ranks\": %d, \"benchmark_points\": %d, \"alpha_s\": ", J->bench_ranks, J->npts);
        report_num(&b, J->alpha); buf_puts(&b, ", \"beta_bytes_per_s\": ");
        report_num(&b, J->beta); buf_puts(&b, ", \"fit_max_rel_err\": ");
        report_num(&b, J->fit_max_rel_err); buf_puts(&b, ", \"latency_s\": ");
        report_num(&b, J->latency); buf_printf(&b, ", \"latency_given\": %s, ", J->latency_given ? "true" : "false");
        report_jkey(&b, "reference_run"); json_str(&b, R->runs[J->ref_run].name);
        buf_puts(&b, ", \"t_compute_s\": ");
        report_num(&b, J->t_compute);
        buf_printf(&b, ", \"batch_per_rank\": %ld, \"grad_bytes\": ", J->batch);
        report_num(&b, J->grad_bytes);
        buf_puts(&b, ", \"ranks\": [");
        for (int k = 0; k < J->nranks; k++) buf_printf(&b, "%s%d", k ? ", " : "", J->ranks[k]);
        buf_puts(&b, "], \"rows\": [");
        for (int w = 0; w <= J->nbw; w++) {
            buf_puts(&b, w ? ",\n    {" : "\n    {");
            if (w < J->nbw) {
                buf_printf(&b, "\"bandwidth_gbit_s\": %.10g, \"beta_bytes_per_s\": ", J->gbit[w]);
                report_num(&b, J->gbit[w] * 1e9 / 8);
            } else {
                buf_puts(&b, "\"bandwidth_gbit_s\": null, \"measured_beta\": true, \"beta_bytes_per_s\": ");
                report_num(&b, J->beta);
            }
            const char *names[3] = {"efficiency", "throughput", "allreduce_s"};
            for (int q = 0; q < 3; q++) {
                buf_printf(&b, ", \"%s\": [", names[q]);
                for (int k = 0; k < J->nranks; k++) {
                    if (k) buf_puts(&b, ", ");
                    report_num(&b, q == 0 ? J->eff[w][k] : q == 1 ? J->tput[w][k] : J->t_ar[w][k]);
                }
                buf_puts(&b, "]");
            }
            buf_puts(&b, "}");
        }
        buf_puts(&b, "]}");
    }
    buf_puts(&b, ",\n");
    report_jkey(&b, "projection_note"); json_str(&b, J->note); buf_puts(&b, ",\n");
    buf_printf(&b, "\"skipped_lines\": %ld, \"warnings_total\": %d, \"warnings\": [", R->bad_lines, R->nwarn_total);
    for (int i = 0; i < R->nwarn; i++) {
        buf_puts(&b, i ? ",\n  " : "\n  ");
        json_str(&b, R->warn[i]);
    }
    buf_puts(&b, "]\n}\n");
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}

/* ------------------------------------------------------------------ Markdown */


static void md_scaling_table(buf_t *b, const report_t *R, int kind) {
    int any = 0;
    for (int s = 0; s < R->nseries; s++) {
        const report_series_t *S = &R->series[s];
        if (S->kind != kind) continue;
        any = 1;
        char label[256], text[4096];
        report_series_label(R, s, label, sizeof label);
        buf_puts(b, "**");
        report_md_text(b, label);
        buf_puts(b, "** — ");
        report_md_text(b, R->runs[S->run0].model);
        buf_printf(b, ", %d thread%s per rank; grouped by %s; N0 = %d.\n\n", R->runs[S->run0].threads,
                        R->runs[S->run0].threads == 1 ? "" : "s", S->inferred ? "equal batches" : "folder name",
                        S->points[0].ranks);
        buf_puts(b, "| ranks | nodes | global batch | per rank | repeats | steps | images/s | interval | "
                         "images/s per rank | speedup | efficiency | Slurm jobs |\n"
                         "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |\n");
        for (int p = 0; p < S->npoints; p++) {
            const report_point_t *P = &S->points[p];
            const report_run_t *r0 = &R->runs[P->runs[0]];
            buf_printf(b, "| %d | ", P->ranks);
            point_union(R, P, 0, text, sizeof text);
            report_md_text(b, *text ? text : "?");
            buf_printf(b, " | %ld | %ld | %d | %ld | %.1f | ", r0->global_batch, r0->batch, P->nruns, P->steps, P->throughput);
            if (P->interval == REPORT_IV_NONE) buf_puts(b, "—");
            else buf_printf(b, "%.1f – %.1f%s", P->lo, P->hi, P->interval == REPORT_IV_REPEATS ? " (repeats)" : " (bootstrap)");
            buf_printf(b, " | %.1f | %.3f | %.3f | ", P->throughput / P->ranks, P->speedup, P->efficiency);
            point_union(R, P, 1, text, sizeof text);
            report_md_text(b, *text ? text : "—");
            buf_puts(b, " |\n");
        }
        buf_puts(b, "\n");
    }
    if (!any) buf_printf(b, "No %s-scaling series among these runs.\n\n", kind == REPORT_STRONG ? "strong" : "weak");
}

char *report_markdown(const report_t *R) {
    buf_t b = {0};
    char warm[256], text[4096];
    method_text(R, warm, sizeof warm);
    buf_puts(&b, "# Scaling report: ");
    report_md_text(&b, R->name);
    buf_printf(&b, "\n\nMade %s by `", R->created);
    report_clean_text(R->command, text, sizeof text);
    for (char *p = text; *p; p++) if (*p == '`') *p = '\'';
    buf_puts(&b, text);
    buf_printf(&b, "` from %d run%s in `", R->nruns, R->nruns == 1 ? "" : "s");
    report_clean_text(R->runs_dir, text, sizeof text);
    for (char *p = text; *p; p++) if (*p == '`') *p = '\'';
    buf_puts(&b, text);
    buf_puts(&b, "`.\n\n![throughput and efficiency against ranks](scaling.svg)\n\n## Method\n\n");
    buf_printf(&b, "- Steady state: %s; the rest of each run's steps count.\n", warm);
    buf_puts(&b, "- Throughput X = global batch ÷ median step time, each step timed as the slowest rank's. "
                      "Per-rank throughput = X ÷ ranks.\n"
                      "- Repeats (runs of a series at the same rank count): the point takes the median of their "
                      "median step times; the interval is min–max of their throughputs. A lone run's interval is a "
                      "percentile bootstrap 95 % interval of its median step time");
    buf_printf(&b, " (%d resamples).\n", R->opt.bootstrap);
    buf_puts(&b, "- Strong scaling (fixed global batch): speedup X(N)/X(N0), efficiency E(N) = X(N) / ((N/N0)·X(N0)).\n"
                      "- Weak scaling (fixed batch per rank): efficiency E(N) = t(N0)/t(N) with t the step time; "
                      "speedup X(N)/X(N0).\n"
                      "- Series come from folder names starting with `strong` or `weak`; other runs form a strong "
                      "series where their global batches agree and a weak one where their per-rank batches agree, "
                      "over two rank counts or more. Runs of one series share model, threads, order and all-reduce.\n\n");
    buf_puts(&b, "## Strong scaling\n\n");
    md_scaling_table(&b, R, REPORT_STRONG);
    buf_puts(&b, "## Weak scaling\n\n");
    md_scaling_table(&b, R, REPORT_WEAK);

    buf_puts(&b, "## Where the step time goes\n\nMedians over steady-state steps, each the slowest rank's, so the "
                      "parts need not add up to the step exactly. Communication includes waiting for the slowest rank.\n\n"
                      "| series | ranks | step ms | data wait ms | compute ms | comm ms | comm share |\n"
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int s = 0; s < R->nseries; s++) {
        char label[256];
        report_series_label(R, s, label, sizeof label);
        for (int p = 0; p < R->series[s].npoints; p++) {
            const report_point_t *P = &R->series[s].points[p];
            double parts = P->wait_s + P->compute_s + P->comm_s;
            buf_puts(&b, "| ");
            report_md_text(&b, label);
            buf_printf(&b, " | %d | %.2f | %.2f | %.2f | %.2f | %.1f %% |\n", P->ranks, 1e3 * P->step_s, 1e3 * P->wait_s,
                            1e3 * P->compute_s, 1e3 * P->comm_s, parts > 0 ? 100 * P->comm_s / parts : 0);
        }
    }

    buf_puts(&b, "\n## Runs\n\n| run | ranks | nodes | threads | global batch | per rank | invocations | steady steps | "
                      "images/s | Slurm jobs | model | in series |\n"
                      "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |\n");
    for (int i = 0; i < R->nruns; i++) {
        const report_run_t *r = &R->runs[i];
        buf_puts(&b, "| ");
        report_md_text(&b, r->name);
        buf_printf(&b, " | %d | ", r->ranks);
        report_md_text(&b, *r->nodes ? r->nodes : "?");
        buf_printf(&b, " | %d | %ld | %ld | %d | %ld/%ld | %.1f | ", r->threads, r->global_batch, r->batch,
                        r->invocations, r->nsteps, r->step_lines, r->throughput);
        report_md_text(&b, *r->slurm_jobs ? r->slurm_jobs : "—");
        buf_puts(&b, " | ");
        report_md_text(&b, r->model);
        buf_printf(&b, " | %d |\n", R->in_series ? R->in_series[i] : 0);
    }
    buf_puts(&b, "\nLibrary versions:\n\n| MPI | HDF5 | OpenBLAS | runs |\n| --- | --- | --- | ---: |\n");
    for (int i = 0; i < R->nruns; i++) {
        const report_run_t *r = &R->runs[i];
        int seen = 0, count = 0;
        for (int j = 0; j < R->nruns; j++) {
            const report_run_t *q = &R->runs[j];
            int same = !strcmp(q->version_mpi, r->version_mpi) && !strcmp(q->version_hdf5, r->version_hdf5) &&
                       !strcmp(q->version_openblas, r->version_openblas);
            if (same && j < i) seen = 1;
            count += same;
        }
        if (seen) continue;
        buf_puts(&b, "| ");
        report_md_text(&b, *r->version_mpi ? r->version_mpi : "?");
        buf_puts(&b, " | ");
        report_md_text(&b, *r->version_hdf5 ? r->version_hdf5 : "?");
        buf_puts(&b, " | ");
        report_md_text(&b, *r->version_openblas ? r->version_openblas : "?");
        buf_printf(&b, " | %d |\n", count);
    }

    const report_proj_t *J = &R->proj;
    buf_puts(&b, "\n## Projection beyond this machine (a model, not a measurement)\n\n");
    if (!J->have) {
        buf_puts(&b, "Not made: ");
        report_md_text(&b, *J->note ? J->note : "no all-reduce benchmark");
        buf_puts(&b, ".\n");
    } else {
        const report_run_t *r = &R->runs[J->ref_run];
        buf_printf(&b, "Ring all-reduce time on N ranks: **%s**; predicted weak-scaling efficiency "
                            "**%s**, relative to a rank that never communicates.\n\n", formula_ar, formula_eff);
        buf_printf(&b, "- alpha = %.2f µs per message step, %s; beta = %.3g GB/s fitted on this machine "
                            "(%d-rank ring benchmark, %d message sizes, worst relative misfit %.0f %%, `",
                        1e6 * J->latency, J->latency_given ? "given with --latency-us" : "fitted", J->beta / 1e9,
                        J->bench_ranks, J->npts, 100 * J->fit_max_rel_err);
        report_clean_text(J->source, text, sizeof text);
        for (char *p = text; *p; p++) if (*p == '`') *p = '\'';
        buf_puts(&b, text);
        if (J->latency_given) buf_printf(&b, "`; fitted alpha %.2f µs).\n", 1e6 * J->alpha);
        else buf_puts(&b, "`). Between ranks of one machine that is shared-memory latency; a network's is "
                               "usually higher, so pass your interconnect's with --latency-us.\n");
        buf_printf(&b, "- bytes = 4 × %ld parameters = %.1f MB of fp32 gradients per step.\n",
                        (long)(J->grad_bytes / 4), J->grad_bytes / 1e6);
        buf_puts(&b, "- t_c = ");
        buf_printf(&b, "%.2f ms, the median compute time per step of run `", 1e3 * J->t_compute);
        report_clean_text(r->name, text, sizeof text);
        for (char *p = text; *p; p++) if (*p == '`') *p = '\'';
        buf_puts(&b, text);
        buf_printf(&b, "` (%ld images per rank, %d thread%s per rank).\n", J->batch, r->threads, r->threads == 1 ? "" : "s");
        buf_puts(&b, "- Assumes: fixed batch per rank; one all-reduce per step after the backward pass, not overlapped "
                          "(as semaim-train does); data loading hidden behind compute; every rank's link runs at the "
                          "bandwidth shown (ranks sharing a network card share its bandwidth).\n\n");
        buf_puts(&b, "| ranks |");
        for (int w = 0; w < J->nbw; w++) buf_printf(&b, " %g Gb/s |", J->gbit[w]);
        buf_printf(&b, " this machine (%.3g GB/s) |\n| ---: |", J->beta / 1e9);
        for (int w = 0; w <= J->nbw; w++) buf_puts(&b, " ---: |");
        buf_puts(&b, "\n");
        for (int k = 0; k < J->nranks; k++) {
            buf_printf(&b, "| %d |", J->ranks[k]);
            for (int w = 0; w <= J->nbw; w++)
                buf_printf(&b, " %.1f %% (%.1f ms) |", 100 * J->eff[w][k], 1e3 * J->t_ar[w][k]);
            buf_puts(&b, "\n");
        }
        buf_puts(&b, "\nEach cell: predicted efficiency (all-reduce time per step).\n");
    }

    buf_printf(&b, "\n## Warnings\n\n");
    if (R->nwarn_total == 0) buf_puts(&b, "None: every metrics line was read.\n");
    else {
        buf_printf(&b, "%d warning%s, %ld metrics line%s skipped:\n\n", R->nwarn_total, R->nwarn_total == 1 ? "" : "s",
                        R->bad_lines, R->bad_lines == 1 ? "" : "s");
        for (int i = 0; i < R->nwarn; i++) {
            buf_puts(&b, "- ");
            report_md_text(&b, R->warn[i]);
            buf_puts(&b, "\n");
        }
        if (R->nwarn < R->nwarn_total) buf_printf(&b, "- … %d more (see scaling.json's count)\n", R->nwarn_total - R->nwarn);
    }
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}
