/* The semantic order, drawn (semaim/report.h): the permutation pass of the model over a few
 * images, and the pictures of what it decides. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "data/augment.h"
#include "report/png.h"
#include "semaim/encoder.h"
#include "semaim/loader.h"
#include "semaim/report.h"

const order_t report_order_kinds[REPORT_ORDERS] = {ORDER_SEMANTIC, ORDER_RASTER, ORDER_STOCHASTIC};

void report_orders_free(report_orders_t *O) {
    free(O->ids); free(O->labels); free(O->rgb); free(O->sim); free(O->center); free(O->ranks);
    memset(O, 0, sizeof *O);
}

int report_orders_compute(report_orders_t *O, model_t *m, uint64_t seed, const char *data, const char *split, int n,
                          err_t *err) {
    memset(O, 0, sizeof *O);
    int S = m->cfg.image;
    loader_config lc = {.data_dir = data, .split = split, .image_size = S, .batch = n, .rank = 0, .world = 1,
                        .train = 0, .threads = 1, .limit = n, .no_upsample = 1};
    loader *ld = NULL;
    if (loader_open(&ld, &lc, err)) return -1;
    const loader_batch *b;
    if (loader_next(ld, &b, NULL, err)) { loader_close(ld); return -1; }
    n = b->n;   /* the split may hold fewer */
    O->n = n; O->S = S; O->P = m->cfg.patch; O->G = m->d.G; O->L = m->d.L;
    int L = O->L;
    O->ids = malloc(sizeof(int64_t) * n);
    O->labels = malloc(sizeof(int32_t) * n);
    O->rgb = malloc((size_t)n * S * S * 3);
    O->sim = malloc(sizeof(float) * n * L);
    O->center = malloc(sizeof(int) * n);
    O->ranks = malloc(sizeof(int) * REPORT_ORDERS * n * L);
    float *noise = malloc(sizeof(float) * n * L);
    acts_t *a = acts_create(&m->cfg, n, ACTS_ENCODER, 0, err);
    int rc = -1;
    if (!a) { err_prefix(err, "orders"); goto out; }
    if (!O->ids || !O->labels || !O->rgb || !O->sim || !O->center || !O->ranks || !noise) {
        err_set(err, ERR_RUNTIME, "orders: out of memory for %d images", n);
        goto out;
    }
    memcpy(O->ids, b->ids, sizeof(int64_t) * n);
    memcpy(O->labels, b->labels, sizeof(int32_t) * n);
    /* back from the normalised input the model saw to 8-bit RGB */
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (long p = 0; p < (long)S * S; p++) {
                double v = (b->images[((long)i * 3 + c) * S * S + p] * aug_std[c] + aug_mean[c]) * 255.0;
                O->rgb[((size_t)i * S * S + p) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
            }
    order_noise(noise, seed, 0, b->ids, n, L);
    memcpy(O->sim, encoder_order_signal(m, a, b->images, n), sizeof(float) * n * L);
    O->signal = m->tgt.signal;
    for (int k = 0; k < REPORT_ORDERS; k++)
        compute_order(m, a, report_order_kinds[k], b->images, noise, n, O->ranks + (long)k * n * L,
                      k == 0 ? O->center : NULL);
    rc = 0;
out:
    free(noise);
    acts_free(a);
    loader_close(ld);
    if (rc) report_orders_free(O);
    return rc;
}

const char *report_signal_label(int signal) {
    return signal == SIGNAL_GAP ? "mean-token similarity" : signal == SIGNAL_SELF ? "cls attention" : "cls similarity";
}

const char *report_signal_sentence(int signal) {
    return signal == SIGNAL_GAP ? "the cosine similarity of the mean patch token to each patch token after the final norm"
           : signal == SIGNAL_SELF ? "the last encoder block's attention from the cls token to each patch, averaged over heads"
                                   : "the cosine similarity of the cls token to each patch token after the final norm";
}

void report_heat_rgb(double t, uint8_t rgb[3]) {
    static const double stop[5][3] = {{0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double u = t * 4;
    int k = (int)u;
    if (k > 3) k = 3;
    double f = u - k;
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)(stop[k][c] + f * (stop[k + 1][c] - stop[k][c]) + 0.5);
}

void report_orders_layout(const report_orders_t *O, int *zoom, int *panel, int *gap) {
    *zoom = O->S >= 128 ? 1 : (128 + O->S - 1) / O->S;
    *panel = O->S * *zoom;
    *gap = 8;
}

uint8_t *report_orders_picture(const report_orders_t *O, int i, int *w, int *h) {
    int z, panel, gap, S = O->S, P = O->P, G = O->G, L = O->L;
    report_orders_layout(O, &z, &panel, &gap);
    *w = REPORT_PANELS * panel + (REPORT_PANELS - 1) * gap;
    *h = panel;
    uint8_t *pic = malloc((size_t)*w * *h * 3);
    if (!pic) return NULL;
    memset(pic, 255, (size_t)*w * *h * 3);
    const float *sim = O->sim + (long)i * L;
    float lo = sim[0], hi = sim[0];
    for (int p = 1; p < L; p++) { lo = sim[p] < lo ? sim[p] : lo; hi = sim[p] > hi ? sim[p] : hi; }
    int c = O->center[i], cr = c / G, cc = c % G, edge = z > 1 ? z / 2 + 1 : 2;
    for (int k = 0; k < REPORT_PANELS; k++)
        for (int y = 0; y < panel; y++)
            for (int x = 0; x < panel; x++) {
                uint8_t *o = pic + ((size_t)y * *w + k * (panel + gap) + x) * 3;
                int iy = y / z, ix = x / z, p = (iy / P) * G + ix / P;
                if (k == REPORT_PANEL_IMAGE) memcpy(o, O->rgb + (((size_t)i * S + iy) * S + ix) * 3, 3);
                else if (k == REPORT_PANEL_SIM) report_heat_rgb(hi > lo ? (sim[p] - lo) / (hi - lo) : 1, o);
                else {
                    int r = O->ranks[((long)(k - REPORT_PANEL_ORDER0) * O->n + i) * L + p];
                    report_heat_rgb(L > 1 ? 1.0 - (double)r / (L - 1) : 1, o);
                }
                /* the centre patch outlined on the image and on the map it came from */
                int by = y - cr * P * z, bx = x - cc * P * z, side = P * z;
                if (k <= REPORT_PANEL_SIM && by >= 0 && by < side && bx >= 0 && bx < side &&
                    (by < edge || bx < edge || by >= side - edge || bx >= side - edge)) {
                    o[0] = 0; o[1] = 255; o[2] = 255;
                }
            }
    return pic;
}

int report_orders_png(const report_orders_t *O, int i, buf_t *out) {
    int w, h;
    uint8_t *pic = report_orders_picture(O, i, &w, &h);
    int rc = pic ? png_encode(out, pic, w, h) : -1;
    free(pic);
    return rc;
}
