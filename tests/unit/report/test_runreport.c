/* The run report's pieces with known answers: the moving average; a requeued run folder read
 * as one continuous run (repeated steps superseded, restarts, a cut last line, wall time);
 * the PNG encoder (chunks, CRCs, inflated rows) and base64; and the order pictures, whose
 * heat maps must give back exactly the ranks compute_order returns. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "check.h"
#include "../tools/shard_fixture.h"
#include "core/files.h"
#include "report/png.h"
#include "semaim/encoder.h"
#include "semaim/loader.h"
#include "semaim/report.h"

static char root[] = "/tmp/semaim-runreport-XXXXXX";

static void test_smooth(void) {
    test_begin("run_report_moving_average");
    double x[6] = {1, 2, 3, 4, 5, NAN}, y[6];
    report_smooth(x, 5, 3, y);
    CHECK(y[0] == 1.5 && y[1] == 2 && y[2] == 3 && y[3] == 4 && y[4] == 4.5, "window 3: %g %g %g %g %g", y[0], y[1], y[2], y[3], y[4]);
    report_smooth(x, 6, 5, y);   /* the NaN is left out of the sums */
    CHECK(y[0] == 2 && y[1] == 2.5 && y[2] == 3 && y[3] == 3.5 && y[4] == 4 && y[5] == 4.5, "window 5 with a NaN: %g %g %g %g %g %g",
          y[0], y[1], y[2], y[3], y[4], y[5]);
    report_smooth(x, 5, 1, y);
    CHECK(!memcmp(x, y, 5 * sizeof(double)), "window 1 is the identity");
    CHECK(report_smooth_window(10) == 1 && report_smooth_window(100) == 3 && report_smooth_window(1000) == 21 &&
              report_smooth_window(1050) == 21, "auto windows");
    test_end();
}

static void start(FILE *f, long start_step, int restart) {
    fprintf(f, "{\"event\": \"run_start\", \"kind\": \"pretrain\", \"time\": 1000, \"ranks\": 2, \"threads\": 3, "
               "\"slurm_job_id\": \"77\", \"slurm_restart_count\": %d, \"start_step\": %ld, \"global_batch\": 16, "
               "\"steps_per_epoch\": 10, \"total_steps\": 30, \"peak_lr\": 0.001, \"params\": 123456, \"gemm\": \"openblas\", "
               "\"precision\": \"fp32\", \"gflop_per_image\": 0.5, \"settings\": {\"preset\": \"tiny\", \"image\": 32, "
               "\"monitor-every\": 10, \"data\": \"/nowhere\", \"resume\": \"auto\"}}\n", restart, start_step);
}

static void step(FILE *f, long s, double loss) {
    fprintf(f, "{\"event\": \"step\", \"step\": %ld, \"epoch\": %ld, \"loss\": %.17g, \"lr\": 0.001, \"grad_norm\": 1.5, "
               "\"images_per_s\": 160, \"step_s\": 0.1, \"data_wait_s\": 0.01, \"compute_s\": 0.07, \"comm_s\": 0.02}\n",
            s, (s - 1) / 10, loss);
}

static void monitor(FILE *f, long s, double v) {
    fprintf(f, "{\"event\": \"monitor\", \"step\": %ld, \"epoch\": %.4f, \"bank\": 200, \"queries\": 100, \"k\": 20, "
               "\"classes\": 10, \"knn_top1_cls\": %.4f, \"knn_top5_cls\": 90, \"knn_top1_mean\": %.4f, \"knn_top5_mean\": 91, "
               "\"knn_top1_gap\": %.4f, \"knn_top5_gap\": 92, \"features_s\": 0.4, \"knn_s\": 0.1, \"seconds\": 0.5}\n",
            s, s / 10.0, v, v + 1, v + 2);
}

/* Three invocations: steps 1..14 (checkpoint at 10, killed without run_end after 14), the
 * requeue resumes at 10 and runs 11..25 (checkpoint 20, stopped by a signal at 25 after a
 * checkpoint), the next resumes at 25 and is still writing: steps 26..28 and a cut line. The
 * loss of step s is s in the first invocation, 100 + s later, so the kept lines show which
 * invocation they came from. */
static void test_runlog(void) {
    test_begin("run_report_requeued_run_is_one_curve");
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/run", root);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "w");
    start(f, 0, 0);
    monitor(f, 0, 10);
    for (long s = 1; s <= 14; s++) {
        step(f, s, (double)s);
        if (s == 10) {
            monitor(f, 10, 20);
            fprintf(f, "{\"event\": \"checkpoint\", \"step\": 10, \"epoch\": 1, \"seconds\": 0.25}\n");
        }
    }
    start(f, 10, 1);
    for (long s = 11; s <= 25; s++) {
        step(f, s, 100.0 + s);
        if (s == 20) monitor(f, 20, 30);
    }
    fprintf(f, "{\"event\": \"checkpoint\", \"step\": 25, \"epoch\": 2, \"seconds\": 0.25}\n");
    fprintf(f, "{\"event\": \"run_end\", \"step\": 25, \"reason\": \"signal\", \"signal\": \"SIGUSR1\", \"exit_code\": 0, "
               "\"seconds\": 7.5, \"peak_rss_gib\": 0.1, \"grad_allreduces\": 15}\n");
    start(f, 25, 2);
    for (long s = 26; s <= 28; s++) step(f, s, 100.0 + s);
    fprintf(f, "{\"event\": \"step\", \"step\": 29, \"epoch\": 2, \"lo");   /* the line being written */
    fclose(f);

    report_t *R = report_new(NULL);
    report_runlog_t L;
    err_t e = {0};
    CHECK(report_runlog_read(R, dir, &L, &e) == 0, "read: %s", e.msg);
    if (e.kind) { report_free(R); test_end(); return; }
    int continuous = L.nsteps == 28;
    for (long i = 0; i < L.nsteps && continuous; i++) continuous = L.steps[i].step == i + 1;
    CHECK(continuous, "%ld steps kept, want 1..28 once each", L.nsteps);
    CHECK(L.steps[9].loss == 10 && L.steps[10].loss == 111 && L.steps[13].loss == 114 && L.steps[27].loss == 128,
          "the later invocation's lines are kept (losses %g %g %g %g)", L.steps[9].loss, L.steps[10].loss,
          L.steps[13].loss, L.steps[27].loss);
    CHECK(L.superseded == 4, "4 repeated step lines (11..14) superseded, got %ld", L.superseded);
    CHECK(L.ninv == 3 && L.inv[1].start_step == 10 && L.inv[2].start_step == 25 && L.inv[1].restart_count == 1 &&
              L.inv[0].line == 1, "invocations and restarts");
    CHECK(R->bad_lines == 1 && R->nwarn >= 1 && strstr(R->warn[0], "metrics.jsonl:42: not JSON (truncated line"),
          "the cut last line is skipped with its line number (%ld bad, '%s')", R->bad_lines, R->nwarn ? R->warn[0] : "");
    CHECK(L.nmon == 3 && L.mon[0].step == 0 && L.mon[1].step == 10 && L.mon[2].step == 20 && L.mon[2].top1[0] == 30 &&
              L.mon[2].top1[2] == 32 && L.mon[1].bank == 200 && L.mon[0].seconds == 0.5, "monitor points");
    int complete;
    double wall = report_runlog_wall(&L, &complete);
    /* invocation 1: no run_end, busy 14 x 0.1 + 2 x 0.5 (monitor) + 0.25 (checkpoint); 2: 7.5; 3: 3 x 0.1 */
    CHECK(!complete && fabs(wall - (1.4 + 1.0 + 0.25 + 7.5 + 0.3)) < 1e-9, "wall %.6f, complete %d", wall, complete);
    CHECK(L.inv[1].ended && !strcmp(L.inv[1].reason, "signal") && !L.inv[2].ended && L.inv[2].last_step == 28, "ends");
    CHECK(!strcmp(L.precision, "fp32") && !strcmp(L.gemm, "openblas") && L.params == 123456 && L.total_steps == 30 &&
              !strcmp(report_runlog_setting(&L, "monitor-every"), "10") && !strcmp(report_runlog_setting(&L, "nope"), ""),
          "header fields");
    /* the outputs exist and carry the known answers */
    char *md = report_run_markdown(R, &L, NULL, "no checkpoint", "", 3), *js = report_run_json(R, &L, NULL, "x", "", 3),
         *csv = report_run_csv(&L, 3);
    CHECK(md && strstr(md, "| restarts | 2: at step 10 (Slurm requeue), step 25 (Slurm requeue) |") &&
              strstr(md, "running, or ended without a run\\_end line") && strstr(md, "| 20 | 2.00 | 30.00 | 31.00 | 32.00 | 0.50 |") &&
              strstr(md, "Not drawn: no checkpoint") && strstr(md, "| precision | fp32 (GEMM backend openblas) |"),
          "report.md");
    CHECK(js && strstr(js, "\"step_lines\": 28, \"first_step\": 1, \"last_step\": 28, \"superseded_lines\": 4") &&
              strstr(js, "\"restarts\": [10, 25]") && strstr(js, "\"wall_complete\": false"), "summary.json");
    /* curves.csv: step 2's smoothed loss is the mean of the losses of steps 1..3 */
    CHECK(csv && strstr(csv, "\n2,0,2,2,0.001,1.5,160,0.1,0.01,0.07,0.02\n") && strstr(csv, "\n12,1,112,112,"), "curves.csv");
    for (int p = 0; p < REPORT_PLOTS; p++) {
        char *svg = report_run_plot(&L, p, 3);
        CHECK(svg && strstr(svg, "<svg") && strstr(svg, "</svg>") && strstr(svg, "restart 1") && strstr(svg, "<polyline"),
              "%s", report_plot_names[p]);
        free(svg);
    }
    free(md); free(js); free(csv);
    report_runlog_free(&L);
    report_free(R);
    test_end();
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void test_png(void) {
    test_begin("png_encoder_and_base64");
    int w = 7, h = 5;
    uint8_t rgb[7 * 5 * 3];
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 37 + 11);
    buf_t b = {0};
    CHECK(png_encode(&b, rgb, w, h) == 0, "encode");
    const unsigned char *p = (const unsigned char *)b.s;
    CHECK(b.len > 8 + 25 + 12 + 12 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8), "signature");
    size_t o = 8;
    int chunks = 0, crc_ok = 1, have_end = 0;
    unsigned char raw[5 * (7 * 3 + 1)];
    uLongf rn = sizeof raw;
    while (o + 12 <= b.len) {
        uint32_t n = be32(p + o);
        const unsigned char *type = p + o + 4, *data = p + o + 8;
        crc_ok &= (uint32_t)crc32(crc32(0, type, 4), data, n) == be32(data + n);   /* zlib's CRC, not ours */
        if (!memcmp(type, "IHDR", 4)) CHECK(be32(data) == 7 && be32(data + 4) == 5 && data[8] == 8 && data[9] == 2, "IHDR");
        if (!memcmp(type, "IDAT", 4)) CHECK(uncompress(raw, &rn, data, n) == Z_OK && rn == sizeof raw, "IDAT inflates");
        if (!memcmp(type, "IEND", 4)) have_end = 1;
        o += 12 + n;
        chunks++;
    }
    CHECK(chunks == 3 && crc_ok && have_end && o == b.len, "%d chunks, CRCs %s", chunks, crc_ok ? "ok" : "bad");
    int rows = 1;
    for (int y = 0; y < h; y++) rows &= raw[y * 22] == 0 && !memcmp(raw + y * 22 + 1, rgb + y * 21, 21);
    CHECK(rows, "rows come back");
    buf_free(&b);
    const char *in[4] = {"Man", "Ma", "M", "any carnal pleas"}, *want[4] = {"TWFu", "TWE=", "TQ==", "YW55IGNhcm5hbCBwbGVhcw=="};
    for (int i = 0; i < 4; i++) {
        buf_t s = {0};
        base64_append(&s, (const uint8_t *)in[i], strlen(in[i]));
        buf_add(&s, "", 1);
        CHECK(s.s && !strcmp(s.s, want[i]), "base64(%s) = %s, want %s", in[i], s.s ? s.s : "", want[i]);
        buf_free(&s);
    }
    test_end();
}

/* The order pictures against compute_order on the same images and noise. */
static void test_orders(void) {
    test_begin("order_heat_maps_equal_compute_order_ranks");
    char dir[300], sh[400];
    snprintf(dir, sizeof dir, "%s/shards/val", root);
    file_mkdirs(dir);
    snprintf(sh, sizeof sh, "%s/val-00000-of-00001.h5", dir);
    CHECK(fx_write_shard(sh, "val", 0, 1, 9, 32, 32, 0, 0) == 0, "shard");
    snprintf(dir, sizeof dir, "%s/shards", root);
    semaim_config_t c = {32, 4, 32, 2, 1, 2};
    model_t m;
    err_t e = {0};
    CHECK(model_init(&m, &c, 3, &e) == 0, "model");
    report_orders_t O;
    CHECK(report_orders_compute(&O, &m, 42, dir, "val", 5, &e) == 0, "compute: %s", e.msg);
    if (e.kind) { model_free(&m); test_end(); return; }
    int n = O.n, L = O.L;
    CHECK(n == 5 && O.G == 8 && L == 64 && O.S == 32, "n %d G %d", n, O.G);
    /* the same images and noise, straight through compute_order */
    loader_config lc = {.data_dir = dir, .split = "val", .image_size = 32, .batch = 5, .world = 1, .train = 0, .threads = 1,
                        .limit = 5};
    loader *ld;
    const loader_batch *bt;
    CHECK(loader_open(&ld, &lc, &e) == 0 && loader_next(ld, &bt, NULL, &e) == 0, "loader: %s", e.msg);
    acts_t *a = acts_create(&m.cfg, 5, ACTS_ENCODER, 0, &e);
    float noise[5 * 64], sim[5 * 64];
    int ranks[5 * 64], center[5];
    order_noise(noise, 42, 0, bt->ids, 5, L);
    memcpy(sim, encoder_order_signal(&m, a, bt->images, 5), sizeof sim);
    CHECK(!memcmp(sim, O.sim, sizeof sim), "similarities");
    uint8_t heat[64][3];
    for (int r = 0; r < L; r++) report_heat_rgb(1.0 - (double)r / (L - 1), heat[r]);
    int distinct = 1;
    for (int r = 0; r < L; r++)
        for (int q = 0; q < r; q++) distinct &= memcmp(heat[r], heat[q], 3) != 0;
    CHECK(distinct, "every rank has its own colour (%d ranks)", L);
    int zoom, panel, gap;
    report_orders_layout(&O, &zoom, &panel, &gap);
    for (int k = 0; k < REPORT_ORDERS; k++) {
        compute_order(&m, a, report_order_kinds[k], bt->images, noise, 5, ranks, center);
        CHECK(!memcmp(ranks, O.ranks + (long)k * n * L, sizeof ranks), "%s: ranks", order_name(report_order_kinds[k]));
        if (k == 0) CHECK(!memcmp(center, O.center, sizeof center), "centres");
        for (int i = 0; i < n; i++) {
            int w, h;
            uint8_t *pic = report_orders_picture(&O, i, &w, &h);
            int exact = pic && w == REPORT_PANELS * panel + (REPORT_PANELS - 1) * gap && h == panel, got[64];
            /* read the rank of every patch back from its colour, at every pixel of the patch */
            for (int p = 0; exact && p < L; p++) {
                got[p] = -1;
                int x0 = (REPORT_PANEL_ORDER0 + k) * (panel + gap) + (p % O.G) * O.P * zoom, y0 = (p / O.G) * O.P * zoom;
                for (int y = y0; y < y0 + O.P * zoom && exact; y++)
                    for (int x = x0; x < x0 + O.P * zoom && exact; x++) {
                        const uint8_t *px = pic + ((size_t)y * w + x) * 3;
                        int r = 0;
                        while (r < L && memcmp(px, heat[r], 3)) r++;
                        if (got[p] < 0) got[p] = r;
                        exact = r < L && r == got[p];
                    }
            }
            CHECK(exact && !memcmp(got, ranks + i * L, sizeof got), "%s image %d: the heat map is not the ranks",
                  order_name(report_order_kinds[k]), i);
            if (k == 0 && pic) {   /* the centre: the most cls-like patch, outlined on the image and similarity panels */
                int best = 0;
                for (int p = 1; p < L; p++) if (sim[i * L + p] > sim[i * L + best]) best = p;
                const uint8_t *corner = pic + ((size_t)(best / O.G) * O.P * zoom * w + (best % O.G) * O.P * zoom) * 3;
                const uint8_t *corner2 = corner + (size_t)(panel + gap) * 3;
                CHECK(best == O.center[i] && corner[0] == 0 && corner[1] == 255 && corner[2] == 255 && corner2[0] == 0 &&
                          corner2[1] == 255, "image %d: centre %d outlined (argmax %d)", i, O.center[i], best);
                CHECK(ranks[i * L + best] == 0, "the centre is predicted first");
            }
            free(pic);
        }
    }
    buf_t png = {0};
    CHECK(report_orders_png(&O, 0, &png) == 0 && png.len > 100, "png");
    char *svg = report_orders_svg(&O);
    CHECK(svg && strstr(svg, "xlink:href=\"data:image/png;base64,iVBORw0KGgo") && strstr(svg, "semantic order") &&
              strstr(svg, "stochastic order"), "orders.svg embeds the PNGs");
    free(svg);
    buf_free(&png);
    acts_free(a);
    loader_close(ld);
    report_orders_free(&O);
    model_free(&m);
    test_end();
}

int main(void) {
    if (!mkdtemp(root)) return 1;
    test_smooth();
    test_runlog();
    test_png();
    test_orders();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd)) printf("  (could not remove %s)\n", root);
    return test_exit();
}
