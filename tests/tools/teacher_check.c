/* Test driver of the frozen teachers and the feature loss against PyTorch (tests/t_teacher.sh,
 * references from tests/ref/teacher_ref.py):
 *   teacher_check tokens NAME WEIGHTS DATA IMAGE PATCH TOL [GEMM PRECISION]
 *       loads the teacher for a student of IMAGE/PATCH, prints its description, runs the images
 *       of DATA (tensor "images") through teacher_forward with activations for one image more
 *       than the batch, and compares with DATA's "tokens" (max |c − ref| / max |ref| <= TOL);
 *       the second forward must be bit-identical, and one image alone must give its rows of
 *       the batch's result (within TOL)
 *   teacher_check load WEIGHTS IMAGE PATCH
 *       only the load: the description, or the error on stderr with its kind as exit status
 *   teacher_check featloss NAME DATA TOL
 *       featloss_forward/backward on DATA's pred and target against torch's loss and grad
 * PASS:/FAIL: lines on stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/ops.h"
#include "semaim/compute.h"
#include "semaim/safetensors.h"
#include "semaim/teacher_io.h"

static void die(const char *msg) {
    fprintf(stderr, "teacher_check: %s\n", msg);
    exit(2);
}

/* Tensor name of f as floats (malloc'd), with its element count. */
static float *read_tensor(const st_file_t *f, const char *name, long *n) {
    const st_entry_t *e = st_find(f, name);
    if (!e) { fprintf(stderr, "teacher_check: %s: no tensor '%s'\n", f->path, name); exit(2); }
    *n = st_numel(e);
    float *x = malloc(sizeof(float) * (size_t)(*n > 0 ? *n : 1));
    err_t err = {0};
    if (!x || st_read_f32(f, e, x, &err)) die(x ? err.msg : "out of memory");
    return x;
}

static double rel(const float *a, const float *b, long n) {
    double md = 0, mb = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static int report(int ok, const char *name, const char *what, double err, double tol) {
    printf("%s: %s.%s (rel err %.3g, tol %.3g)\n", ok ? "PASS" : "FAIL", name, what, err, tol);
    return ok ? 0 : 1;
}

static int cmd_tokens(char **v, int n) {
    const char *name = v[0], *wpath = v[1], *dpath = v[2];
    const int image = atoi(v[3]), patch = atoi(v[4]);
    const double tol = atof(v[5]);
    err_t err = {0};
    gemm_config_t gc;
    if (gemm_setup(n > 6 ? v[6] : "openblas", n > 7 ? v[7] : "fp32", &gc, &err)) die(err.msg);
    teacher_t t;
    if (teacher_load(&t, wpath, image, patch, &err)) die(err.msg);
    char desc[256];
    printf("teacher: %s (%s)\n", teacher_describe(&t.a, desc, sizeof desc), gemm_config_name(&gc));
    st_file_t f;
    if (st_open(&f, dpath, &err)) die(err.msg);
    long ni, nr;
    float *img = read_tensor(&f, "images", &ni), *ref = read_tensor(&f, "tokens", &nr);
    const int S = image, T = 1 + t.a.grid * t.a.grid, B = (int)(ni / (3L * S * S));
    const long per = (long)T * t.a.out;
    if (B < 1 || ni != (long)B * 3 * S * S || nr != B * per) die("images and tokens do not match the teacher");
    teacher_acts_t *a = teacher_acts_create(&t, B + 1, &err);
    if (!a) die(err.msg);
    printf("teacher_check: %ld floats of weights, %.2f MiB of activations for %d images\n", t.w.nparams,
           teacher_acts_bytes(a) / 1048576.0, B + 1);
    float *tok = malloc(sizeof(float) * (size_t)(B * per));
    if (!tok) die("out of memory");
    memcpy(tok, teacher_forward(&t, a, img, B), sizeof(float) * (size_t)(B * per));
    int bad = 0;
    double e = rel(tok, ref, B * per);
    bad += report(e <= tol, name, "tokens", e, tol);
    const float *again = teacher_forward(&t, a, img, B);
    bad += report(!memcmp(again, tok, sizeof(float) * (size_t)(B * per)), name, "repeat_identical", 0, 0);
    const float *one = teacher_forward(&t, a, img + (long)(B - 1) * 3 * S * S, 1);
    e = rel(one, ref + (B - 1) * per, per);
    bad += report(e <= tol, name, "one_image", e, tol);
    free(tok); free(img); free(ref);
    st_close(&f);
    teacher_acts_free(a);
    teacher_free(&t);
    return bad ? 1 : 0;
}

static int cmd_load(char **v) {
    err_t err = {0};
    teacher_t t;
    if (teacher_load(&t, v[0], atoi(v[1]), atoi(v[2]), &err)) {
        fprintf(stderr, "teacher_check: %s\n", err.msg);
        return err.kind;
    }
    char desc[256];
    printf("teacher: %s\n", teacher_describe(&t.a, desc, sizeof desc));
    teacher_free(&t);
    return 0;
}

static int cmd_featloss(char **v) {
    const char *name = v[0];
    const double tol = atof(v[2]);
    err_t err = {0};
    st_file_t f;
    if (st_open(&f, v[1], &err)) die(err.msg);
    long np, nt, nl, ng;
    float *p = read_tensor(&f, "pred", &np), *y = read_tensor(&f, "target", &nt), *l = read_tensor(&f, "loss", &nl),
          *g = read_tensor(&f, "grad", &ng);
    const st_entry_t *e = st_find(&f, "pred");
    if (e->ndim != 2 || nt != np || ng != np || nl != 1) die("pred, target, grad and loss do not match");
    const long N = e->shape[0];
    const int C = (int)e->shape[1];
    float *d = calloc((size_t)np, sizeof(float));
    if (!d) die("out of memory");
    const double loss = featloss_forward(p, y, N, C);
    featloss_backward(d, p, y, N, C, 1.0f);
    int bad = 0;
    const double el = fabs(loss - l[0]) / fabs(l[0]);
    bad += report(el <= tol, name, "loss", el, tol);
    const double eg = rel(d, g, np);
    bad += report(eg <= tol, name, "grad", eg, tol);
    free(p); free(y); free(l); free(g); free(d);
    st_close(&f);
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if ((argc == 8 || argc == 10) && !strcmp(argv[1], "tokens")) return cmd_tokens(argv + 2, argc - 2);
    if (argc == 5 && !strcmp(argv[1], "load")) return cmd_load(argv + 2);
    if (argc == 5 && !strcmp(argv[1], "featloss")) return cmd_featloss(argv + 2);
    fprintf(stderr, "usage: teacher_check tokens NAME WEIGHTS DATA IMAGE PATCH TOL [GEMM PRECISION]\n"
                    "       teacher_check load WEIGHTS IMAGE PATCH\n"
                    "       teacher_check featloss NAME DATA TOL\n");
    return 2;
}
