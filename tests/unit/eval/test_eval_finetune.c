/* The fine-tuning network: backward against finite differences (with drop-path active, and
 * for the new fc_norm/head; and with the whole recipe: RandAugment, erasing, Mixup or CutMix
 * with soft targets), drop-path off = the plain path, layer-wise lr scales, a tiny
 * batch is overfitted, checkpoints round-trip and refuse another model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "data/augment.h"
#include "data/mixup.h"
#include "semaim/checkpoint.h"
#include "semaim/eval.h"
#include "semaim/finetune.h"
#include "semaim/optim.h"
#include "semaim/rng.h"

static void random_fill(float *x, long n, uint64_t seed, float scale) {
    rng_t r = rng_make(seed);
    for (long i = 0; i < n; i++) x[i] = scale * (2 * rng_nextf(&r) - 1);
}

typedef struct { const float *img; const int32_t *lab; const float *targets; int B; } loss_ctx_t;

static double loss_of(ft_model_t *f, const loss_ctx_t *c) {
    return c->targets ? ft_forward_targets(f, c->img, c->targets, c->B, 1) : ft_forward(f, c->img, c->lab, c->B, 1, 0.1f);
}

/* f->w.grads holds the gradient of c's loss at the current parameters: one random direction
 * per tensor (every 5th encoder tensor, then fc_norm weight and bias, head weight, head bias)
 * against the central difference. p0, dir: nparams floats of scratch. */
static void fd_directions(ft_model_t *f, const loss_ctx_t *c, float *p0, float *dir, const char *what) {
    long np = f->w.nparams, D = f->d.D;
    int C = f->C;
    memcpy(p0, f->w.params, sizeof(float) * np);
    int ntest = 0;
    int nt = 3 + 12 * f->cfg.depth;
    const param_info_t *fcn = params_find(&f->w, "fc_norm.weight"), *hw = params_find(&f->w, "head.weight"),
                       *hb = params_find(&f->w, "head.bias");
    CHECK(fcn && hw && hb && fcn - f->w.info == nt && f->w.ntensors == nt + 4, "table: encoder, fc_norm, head");
    for (int k = 0; k < nt + 3; k += (k < nt ? 5 : 1)) {
        memset(dir, 0, sizeof(float) * np);
        long off, n;
        const char *name;
        if (k < nt) { const param_info_t *t = &f->w.info[k]; off = t->offset; n = t->numel; name = t->name; }
        else if (k == nt) { off = fcn->offset; n = 2 * D; name = "fc_norm"; }
        else if (k == nt + 1) { off = hw->offset; n = C * D; name = "head.weight"; }
        else { off = hb->offset; n = C; name = "head.bias"; }
        float *dv = dir + off;
        const float *gv = f->w.grads + off;
        random_fill(dv, n, 50 + k, 1.0f);
        double norm = 0, gd = 0;
        for (long i = 0; i < n; i++) norm += (double)dv[i] * dv[i];
        for (long i = 0; i < n; i++) { dv[i] /= (float)sqrt(norm); gd += (double)dv[i] * gv[i]; }
        double eps = 1e-2, lp, lm;
        for (long i = 0; i < np; i++) f->w.params[i] = p0[i] + (float)eps * dir[i];
        lp = loss_of(f, c);
        for (long i = 0; i < np; i++) f->w.params[i] = p0[i] - (float)eps * dir[i];
        lm = loss_of(f, c);
        double fd = (lp - lm) / (2 * eps);
        CHECK(fabs(fd - gd) <= 2e-2 * fabs(gd) + 2e-4, "%s%s: fd %g vs grad %g", what, name, fd, gd);
        ntest++;
    }
    memcpy(f->w.params, p0, sizeof(float) * np);
    CHECK(ntest >= 8, "%s%d directions checked", what, ntest);
}

int main(void) {
    semaim_config_t c = {16, 4, 32, 3, 1, 2};
    err_t err_v = {0};
    const char *err = err_v.msg;
    int B = 4, C = 5, S = 16;
    double d = 0.65;   /* layer decay */
    ft_model_t f;
    if (ft_init(&f, &c, C, B, d, 7, &err_v)) { printf("FAIL: ft_init (%s)\n", err); return 1; }
    float *img = malloc(sizeof(float) * B * 3 * S * S);
    random_fill(img, (long)B * 3 * S * S, 1, 1.5f);
    int32_t lab[4] = {0, 3, 4, 3};
    int64_t ids[4] = {10, 11, 12, 13};
    long D = f.d.D;
    /* a head that is not ~0, so its gradient paths carry signal */
    random_fill(f.p.head_w, (long)C * D, 2, 0.3f);
    random_fill(f.p.fcn_w, 2 * D, 3, 0.2f);   /* fc_norm weight and bias, adjacent in the buffer */
    for (int k = 0; k < D; k++) f.p.fcn_w[k] += 1.0f;

    test_begin("finetune_backward_directional_fd_with_drop_path");
    ft_drop_path(&f, 0.5, 99, 3, ids, B);
    int dropped = 0;
    for (long i = 0; i < 2L * c.depth * B; i++) dropped += f.dp[i] == 0.0f;
    CHECK(dropped > 0, "some branch dropped");
    CHECK(f.dp[0] == 1.0f && f.dp[B] == 1.0f, "block 0 never dropped (rate 0)");
    params_zero_grad(&f.w);
    ft_forward(&f, img, lab, B, 1, 0.1f);
    ft_backward(&f);
    long np = f.w.nparams;
    float *p0 = malloc(sizeof(float) * np), *dir = calloc(np, sizeof(float));
    loss_ctx_t lc = {img, lab, NULL, B};
    fd_directions(&f, &lc, p0, dir, "");
    test_end();

    test_begin("finetune_backward_directional_fd_with_the_whole_recipe");
    {
        /* the images through the loader's chain (RandAugment and erasing forced on), then Mixup
         * or CutMix with the partner batch of another rank, the smoothing in the soft targets */
        enum { HS = 24, WS = 20 };
        aug_recipe r = augment_recipe_finetune();
        r.ra.prob = 1; r.re.prob = 1;
        uint8_t *src = malloc(HS * WS * 3);
        void *work = malloc(augment_finetune_work_bytes(HS, WS, S, r.interp));
        float *aug = malloc(sizeof(float) * 2 * B * 3 * S * S), *mixed = malloc(sizeof(float) * B * 3 * S * S);
        float tg[4 * 5];
        int32_t plab[4] = {2, 2, 1, 0};
        for (int i = 0; i < 2 * B; i++) {
            rng_t rr = rng_make(700 + i);
            for (int k = 0; k < HS * WS * 3; k++) src[k] = (uint8_t)rng_below(&rr, 256);
            augment_finetune(aug + (long)i * 3 * S * S, src, HS, WS, S, &r, 11, 0, i, work);
        }
        int erased = 0;   /* pixel-mode erasing leaves values outside the normalised pixel range */
        for (long k = 0; k < 2L * B * 3 * S * S; k++) erased += aug[k] < -2.2f || aug[k] > 2.7f;
        CHECK(erased > 0, "erasing ran");
        for (int cm = 0; cm < 2; cm++) {
            mixup_params mp = {1, cm, 0.37, 0, 0, 0, 0};
            if (cm) mixup_box(&mp, S, S, 0.6, 7, 9, 1);
            mixup_images(mixed, aug, aug + (long)B * 3 * S * S, B, 3, S, S, &mp);
            mixup_targets(tg, lab, plab, B, C, mp.lam, 0.1);
            ft_drop_path(&f, 0.5, 99, 4, ids, B);
            params_zero_grad(&f.w);
            ft_forward_targets(&f, mixed, tg, B, 1);
            ft_backward(&f);
            loss_ctx_t lm = {mixed, NULL, tg, B};
            fd_directions(&f, &lm, p0, dir, cm ? "cutmix: " : "mixup: ");
        }
        free(src); free(work); free(aug); free(mixed);
    }
    test_end();

    test_begin("finetune_drop_path_off_is_plain_path");
    float *l1 = malloc(sizeof(float) * B * C), *l2 = malloc(sizeof(float) * B * C);
    ft_drop_path(&f, 0.0, 99, 3, ids, B);
    double a1 = ft_forward(&f, img, lab, B, 1, 0.1f);
    memcpy(l1, ft_logits(&f), sizeof(float) * B * C);
    ft_drop_path(&f, 0.5, 99, 3, ids, B);
    double a2 = ft_forward(&f, img, lab, B, 0, 0.1f);   /* evaluation ignores drop-path */
    memcpy(l2, ft_logits(&f), sizeof(float) * B * C);
    CHECK(a1 == a2 && !memcmp(l1, l2, sizeof(float) * B * C), "train without drop-path == eval");
    ft_drop_path(&f, 0.5, 99, 3, ids, B);
    double a3 = ft_forward(&f, img, lab, B, 1, 0.1f);
    CHECK(a3 != a1, "drop-path changes the training forward");
    /* the drop-path draws are a function of (seed, step, id): the same sample in another slot */
    int64_t ids2[4] = {13, 12, 11, 10};
    float *dpa = malloc(sizeof(float) * 2 * c.depth * B);
    memcpy(dpa, f.dp, sizeof(float) * 2 * c.depth * B);
    ft_drop_path(&f, 0.5, 99, 3, ids2, B);
    int same = 1;
    for (int i = 0; i < 2 * c.depth; i++)
        for (int b = 0; b < B; b++) same &= dpa[i * B + b] == f.dp[i * B + (B - 1 - b)];
    CHECK(same, "scales follow the sample id");
    free(dpa);
    test_end();

    test_begin("finetune_layerwise_lr_scales");
    CHECK(fabs(ft_layer_lr_scale("cls_token", c.depth, d) - pow(d, 4)) < 1e-12, "cls_token: decay^(depth+1)");
    CHECK(fabs(ft_layer_lr_scale("blocks.0.attn.qkv.weight", c.depth, d) - pow(d, 3)) < 1e-12, "blocks.0: decay^depth");
    CHECK(fabs(ft_layer_lr_scale("blocks.2.mlp.fc2.bias", c.depth, d) - d) < 1e-12, "blocks.2 (last): decay^1");
    CHECK(ft_layer_lr_scale("head.weight", c.depth, d) == 1.0, "head: 1");
    /* the table carries them, with the decay exclusions */
    int table_ok = 1;
    for (int k = 0; k < f.w.ntensors; k++) {
        const param_info_t *t = &f.w.info[k];
        table_ok &= t->lr_scale == ft_layer_lr_scale(t->name, c.depth, d);
        table_ok &= t->decay == (t->ndim >= 2 && strcmp(t->name, "cls_token") != 0);
    }
    CHECK(table_ok, "table lr scales and decay flags");
    test_end();

    test_begin("finetune_overfits_a_tiny_batch");
    optim_cfg_t o = {5e-4, 0, 0.05, 0.9, 0.999, 1e-8, 0, 0, 0};
    double first = 0, last = 0;
    for (int t = 1; t <= 40; t++) {
        ft_drop_path(&f, 0.1, 5, t, ids, B);
        params_zero_grad(&f.w);
        double l = ft_forward(&f, img, lab, B, 1, 0.0f);
        ft_backward(&f);
        adamw_step(&f.w, 3e-3, &o, t);
        if (t == 1) first = l;
        last = l;
    }
    ft_forward(&f, img, lab, B, 0, 0.0f);
    int32_t p5[4 * 5];
    ft_top5(&f, p5);
    int correct = 0;
    for (int b = 0; b < B; b++) correct += p5[b * 5] == lab[b];
    CHECK(last < 0.3 * first && correct == B, "loss %.4f -> %.4f, %d/%d correct", first, last, correct, B);
    test_end();

    test_begin("finetune_checkpoint_round_trip_and_refusals");
    char dir_[] = "/tmp/semaim-ft-XXXXXX";
    CHECK(mkdtemp(dir_) != NULL, "tmpdir");
    ckpt_state_t st = {12, 1, 2, 99, 2, 4}, st2;
    ckpt_model_t id = ckpt_finetune(&f);
    const param_info_t *hw = params_find(&f.w, "head.weight");
    for (long i = hw->offset; i < np; i++) { f.w.m[i] = 0.1f * i; f.w.v[i] = 0.2f * i; }
    CHECK(ckpt_save(dir_, &id, &f.w, &st, 2, &err_v) == 0, "save: %s", err);
    st.step = 13;
    CHECK(ckpt_save(dir_, &id, &f.w, &st, 2, &err_v) == 0, "save: %s", err);
    st.step = 14;
    CHECK(ckpt_save(dir_, &id, &f.w, &st, 2, &err_v) == 0, "save: %s", err);
    ft_model_t g;
    ft_init(&g, &c, C, B, d, 8, &err_v);
    char path[4200];
    CHECK(ckpt_load_latest(dir_, &id, &g.w, &st2, path, sizeof path, &err_v) == 1 && st2.step == 14 && st2.seed == 99,
          "latest: %s", err);
    CHECK(!memcmp(g.w.params, f.w.params, sizeof(float) * np) && !memcmp(g.w.v, f.w.v, sizeof(float) * np) &&
              !memcmp(g.w.m, f.w.m, sizeof(float) * np),
          "bit-exact");
    snprintf(path, sizeof path, "%s/ft-%08d.bin", dir_, 12);
    CHECK(access(path, F_OK) != 0, "rotation kept 2");
    ft_model_t h;
    ft_init(&h, &c, C + 1, B, d, 8, &err_v);
    ckpt_model_t hid = ckpt_finetune(&h);
    snprintf(path, sizeof path, "%s/ft-%08d.bin", dir_, 14);
    CHECK(ckpt_load(path, &hid, &h.w, &st2, &err_v) == -1 && strstr(err, "another model") && strstr(err, "5 classes"),
          "other classes: %s", err);
    ft_free(&h);
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 300, SEEK_SET);
    fputc(0x5a, fp);
    fclose(fp);
    CHECK(ckpt_load(path, &id, &g.w, &st2, &err_v) == -1 && strstr(err, "CRC"), "corrupt: %s", err);
    CHECK(ckpt_load_latest(dir_, &id, &g.w, &st2, NULL, 0, &err_v) == 1 && st2.step == 13, "fell back to 13");
    ft_free(&g);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir_);
    if (system(cmd)) printf("  (could not remove %s)\n", dir_);
    test_end();

    free(img); free(p0); free(dir); free(l1); free(l2);
    ft_free(&f);
    return test_exit();
}
