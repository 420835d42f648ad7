/* The frozen teacher's model-room pieces without a file (include/semaim/teacher.h): the table
 * holds the layout's names and shapes in view order, inconsistent sizes are refused, the
 * description line, CLIP's derived transposed proj, the patch targets' gather, and the
 * forward's independence of the batch a row is computed in (the PyTorch parity of the tokens
 * is tests/t_teacher.sh). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "semaim/teacher.h"

static teacher_arch_t arch(teacher_layout_t l) {
    teacher_arch_t a = {l, 48, 2, 3, 80, 4, 3, l == TEACHER_CLIP ? 20 : 48, ""};
    return a;
}

static void test_table(void) {
    test_begin("teacher_table");
    err_t e = {0};
    for (int l = TEACHER_TIMM; l <= TEACHER_CLIP; l++) {
        teacher_arch_t a = arch((teacher_layout_t)l);
        if (l == TEACHER_CLIP) strcpy(a.prefix, "visual.");
        teacher_t t;
        if (teacher_init(&t, &a, &e)) { CHECK(0, "init: %s", e.msg); continue; }
        const int D = 48, T = 10;
        /* the tensor count: embeddings, 12 per block, the final norm, (CLIP) proj and its transpose */
        CHECK(t.nfile == (l ? 5 : 4) + 12 * 2 + 2 + l && t.w.ntensors == t.nfile + l, "%d tensors, %d from the file",
              t.w.ntensors, t.nfile);
        const param_info_t *p = params_find(&t.w, l ? "visual.transformer.resblocks.1.mlp.c_fc.weight" : "blocks.1.mlp.fc1.weight");
        CHECK(p && p->ndim == 2 && p->shape[0] == 80 && p->shape[1] == D && t.w.params + p->offset == t.blk[1].fc1_w,
              "fc1 of block 1: the table entry and the view agree");
        p = params_find(&t.w, l ? "visual.positional_embedding" : "pos_embed");
        CHECK(p && p->ndim == (l ? 2 : 3) && p->shape[l ? 0 : 1] == T && t.w.params + p->offset == t.pos, "pos table entry");
        CHECK(!t.w.grads && !t.w.m && !t.w.v, "a frozen buffer has no gradients or moments");
        CHECK((t.patch_b != NULL) == (l == TEACHER_TIMM) && (t.pre_w != NULL) == (l == TEACHER_CLIP) &&
              (t.proj_t != NULL) == (l == TEACHER_CLIP), "the layout's own tensors");
        if (l == TEACHER_CLIP) {
            for (int i = 0; i < D * 20; i++) t.proj[i] = (float)i;
            teacher_ready(&t);
            CHECK(t.proj_t[3 * D + 5] == t.proj[5 * 20 + 3], "proj transposed");
        }
        teacher_free(&t);
    }
    teacher_arch_t a = arch(TEACHER_TIMM);
    a.heads = 5;
    teacher_t t;
    CHECK(teacher_init(&t, &a, &e) == -1 && e.kind == ERR_INPUT && strstr(e.msg, "width 48") && strstr(e.msg, "5 heads"),
          "heads not dividing the width: %s", e.msg);
    a = arch(TEACHER_TIMM);
    a.depth = 0;
    CHECK(teacher_init(&t, &a, &e) == -1 && e.kind == ERR_INPUT, "depth 0 refused");
    char buf[160];
    a = arch(TEACHER_CLIP);
    CHECK(!strcmp(teacher_describe(&a, buf, sizeof buf), "OpenAI CLIP visual tower, width 48, depth 2, heads 3, mlp 80, "
                  "patch 4, grid 3, tokens 10x20"), "description: %s", buf);
    CHECK(teacher_ln_eps(TEACHER_TIMM) == 1e-6f && teacher_ln_eps(TEACHER_CLIP) == 1e-5f, "LayerNorm eps");
    test_end();
}

static void test_gather(void) {
    test_begin("teacher_patch_targets");
    const int B = 2, L = 4, O = 3;
    float tok[2 * 5 * 3], dst[2 * 4 * 3];
    for (int i = 0; i < B * (L + 1) * O; i++) tok[i] = (float)i;
    const int perm[8] = {2, 0, 3, 1, 3, 2, 1, 0};
    teacher_patch_targets(dst, tok, perm, B, L, O);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < L; k++)
            for (int c = 0; c < O; c++)
                CHECK(dst[(b * L + k) * O + c] == tok[(b * (L + 1) + 1 + perm[b * L + k]) * O + c], "b %d k %d c %d", b, k, c);
    teacher_patch_targets(dst, tok, NULL, B, L, O);
    CHECK(dst[0] == tok[O] && dst[L * O] == tok[(L + 2) * O] && dst[B * L * O - 1] == tok[B * (L + 1) * O - 1], "natural order drops each cls row");
    test_end();
}

/* Each image's tokens are the same computed alone or in a batch, and images do not mix. */
static void test_batch_rows(void) {
    test_begin("teacher_forward_batch_rows");
    err_t e = {0};
    for (int l = TEACHER_TIMM; l <= TEACHER_CLIP; l++) {
        teacher_arch_t a = arch((teacher_layout_t)l);
        teacher_t t;
        if (teacher_init(&t, &a, &e)) { CHECK(0, "init: %s", e.msg); continue; }
        for (long i = 0; i < t.w.nparams; i++) t.w.params[i] = (float)sin(0.37 * (double)i) * 0.3f;
        teacher_ready(&t);
        teacher_acts_t *ac = teacher_acts_create(&t, 3, &e);
        const int S = 12, n = 3 * S * S, per = 10 * a.out;
        float *img = malloc(sizeof(float) * 3 * n), *all = malloc(sizeof(float) * 3 * per);
        if (!ac || !img || !all) { CHECK(0, "arena: %s", e.msg); teacher_free(&t); free(img); free(all); continue; }
        for (int i = 0; i < 3 * n; i++) img[i] = (float)cos(0.11 * i);
        memcpy(all, teacher_forward(&t, ac, img, 3), sizeof(float) * 3 * per);
        double worst = 0, spread = 0;
        for (int b = 0; b < 3; b++) {
            const float *one = teacher_forward(&t, ac, img + b * n, 1);
            for (int i = 0; i < per; i++) worst = fmax(worst, fabs(one[i] - all[b * per + i]));
        }
        for (int i = 0; i < per; i++) spread = fmax(spread, fabs(all[i] - all[per + i]));
        CHECK(worst < 1e-5 && spread > 1e-3, "%s: alone vs batch %.3g, images differ by %.3g", teacher_layout_name(a.layout),
              worst, spread);
        free(img); free(all);
        teacher_acts_free(ac);
        teacher_free(&t);
    }
    test_end();
}

/* A timm teacher of the student's own size costs what one encoder pass of the student costs
 * (the step's FLOP figure adds one or the other); CLIP adds its output projection. */
static void test_flops(void) {
    test_begin("teacher_flops_per_image");
    semaim_config_t c;
    CHECK(config_preset("tiny", &c) == 0, "preset tiny");
    model_t m;
    err_t err_v = {0};
    CHECK(model_init(&m, &c, 1, &err_v) == 0, "init: %s", err_v.msg);
    teacher_arch_t t = {TEACHER_TIMM, c.width, c.depth, c.heads, 4 * c.width, c.patch, c.image / c.patch, c.width, ""};
    double pass = semaim_flops_per_image(&m, 1) - semaim_flops_per_image(&m, 0), f = teacher_flops_per_image(&t);
    CHECK(fabs(f - pass) <= 1e-9 * pass, "timm teacher of the student's size %.6g GFLOP, one student pass %.6g", f / 1e9,
          pass / 1e9);
    teacher_arch_t clip = t;
    clip.layout = TEACHER_CLIP;
    clip.out = 512;
    double T = 1.0 + (double)t.grid * t.grid;
    CHECK(fabs(teacher_flops_per_image(&clip) - f - 2.0 * T * t.width * 512) <= 1e-9 * f, "CLIP adds its projection");
    CHECK(semaim_flops_per_image(&m, 2) > semaim_flops_per_image(&m, 1), "a second pass costs more");
    model_free(&m);
    test_end();
}

int main(void) {
    test_table();
    test_gather();
    test_batch_rows();
    test_flops();
    return test_exit();
}
