/* The fine-tuning network: backward against finite differences (with drop-path active, and
 * for the new fc_norm/head), drop-path off = the plain path, layer-wise lr scales, a tiny
 * batch is overfitted, checkpoints round-trip and refuse another model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "semaim/finetune.h"
#include "semaim/rng.h"

static void random_fill(float *x, long n, uint64_t seed, float scale) {
    rng_t r = rng_make(seed);
    for (long i = 0; i < n; i++) x[i] = scale * (2 * rng_nextf(&r) - 1);
}

int main(void) {
    semaim_config_t c = {16, 4, 32, 3, 1, 2};
    char err[512];
    int B = 4, C = 5, S = 16;
    ft_model_t f;
    if (ft_init(&f, &c, C, B, 7, err, sizeof err)) { printf("FAIL: ft_init (%s)\n", err); return 1; }
    float *img = malloc(sizeof(float) * B * 3 * S * S);
    random_fill(img, (long)B * 3 * S * S, 1, 1.5f);
    int32_t lab[4] = {0, 3, 4, 3};
    int64_t ids[4] = {10, 11, 12, 13};
    /* a head that is not ~0, so its gradient paths carry signal */
    random_fill(f.head + 2 * f.m.D, (long)C * f.m.D, 2, 0.3f);
    random_fill(f.head, 2 * f.m.D, 3, 0.2f);
    for (int d = 0; d < f.m.D; d++) f.head[d] += 1.0f;

    test_begin("finetune_backward_directional_fd_with_drop_path");
    ft_drop_path(&f, 0.5, 99, 3, ids, B);
    int dropped = 0;
    for (long i = 0; i < 2L * c.depth * B; i++) dropped += f.dp[i] == 0.0f;
    CHECK(dropped > 0, "some branch dropped");
    CHECK(f.dp[0] == 1.0f && f.dp[B] == 1.0f, "block 0 never dropped (rate 0)");
    ft_zero_grad(&f);
    ft_forward(&f, img, lab, B, 1, 0.1f);
    ft_backward(&f);
    long ne = f.n_enc, nh = f.nhead;
    float *p0 = malloc(sizeof(float) * ne), *h0 = malloc(sizeof(float) * nh);
    float *dir = calloc(ne, sizeof(float)), *dirh = calloc(nh, sizeof(float));
    memcpy(p0, f.m.params, sizeof(float) * ne);
    memcpy(h0, f.head, sizeof(float) * nh);
    int ntest = 0;
    /* one direction per tensor: every 5th encoder tensor, then fc_norm, head weight, head bias */
    int nt = 3 + 12 * c.depth;
    for (int k = 0; k < nt + 3; k += (k < nt ? 5 : 1)) {
        if (k >= nt && k < nt) continue;
        memset(dir, 0, sizeof(float) * ne);
        memset(dirh, 0, sizeof(float) * nh);
        float *dv; const float *gv; long n; const char *name;
        long D = f.m.D;
        if (k < nt) { const param_info_t *t = &f.m.info[k]; dv = dir + t->offset; gv = f.m.grads + t->offset; n = t->numel; name = t->name; }
        else if (k == nt) { dv = dirh; gv = f.ghead; n = 2 * D; name = "fc_norm"; }
        else if (k == nt + 1) { dv = dirh + 2 * D; gv = f.ghead + 2 * D; n = C * D; name = "head.weight"; }
        else { dv = dirh + 2 * D + C * D; gv = f.ghead + 2 * D + C * D; n = C; name = "head.bias"; }
        random_fill(dv, n, 50 + k, 1.0f);
        double norm = 0, gd = 0;
        for (long i = 0; i < n; i++) norm += (double)dv[i] * dv[i];
        for (long i = 0; i < n; i++) { dv[i] /= (float)sqrt(norm); gd += (double)dv[i] * gv[i]; }
        double eps = 1e-2, lp, lm;
        for (long i = 0; i < ne; i++) f.m.params[i] = p0[i] + (float)eps * dir[i];
        for (long i = 0; i < nh; i++) f.head[i] = h0[i] + (float)eps * dirh[i];
        lp = ft_forward(&f, img, lab, B, 1, 0.1f);
        for (long i = 0; i < ne; i++) f.m.params[i] = p0[i] - (float)eps * dir[i];
        for (long i = 0; i < nh; i++) f.head[i] = h0[i] - (float)eps * dirh[i];
        lm = ft_forward(&f, img, lab, B, 1, 0.1f);
        double fd = (lp - lm) / (2 * eps);
        CHECK(fabs(fd - gd) <= 2e-2 * fabs(gd) + 2e-4, "%s: fd %g vs grad %g", name, fd, gd);
        ntest++;
    }
    memcpy(f.m.params, p0, sizeof(float) * ne);
    memcpy(f.head, h0, sizeof(float) * nh);
    CHECK(ntest >= 8, "%d directions checked", ntest);
    test_end();

    test_begin("finetune_drop_path_off_is_plain_path");
    float *l1 = malloc(sizeof(float) * B * C), *l2 = malloc(sizeof(float) * B * C);
    ft_drop_path(&f, 0.0, 99, 3, ids, B);
    double a1 = ft_forward(&f, img, lab, B, 1, 0.1f);
    memcpy(l1, f.logits, sizeof(float) * B * C);
    ft_drop_path(&f, 0.5, 99, 3, ids, B);
    double a2 = ft_forward(&f, img, lab, B, 0, 0.1f);   /* evaluation ignores drop-path */
    memcpy(l2, f.logits, sizeof(float) * B * C);
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
    double d = 0.65;
    CHECK(fabs(ft_lr_scale(&f, 0, d) - pow(d, 4)) < 1e-12, "cls_token: decay^(depth+1)");
    const param_info_t *b0 = model_find(&f.m, "blocks.0.attn.qkv.weight"), *b2 = model_find(&f.m, "blocks.2.mlp.fc2.bias");
    CHECK(fabs(ft_lr_scale(&f, (int)(b0 - f.m.info), d) - pow(d, 3)) < 1e-12, "blocks.0: decay^depth");
    CHECK(fabs(ft_lr_scale(&f, (int)(b2 - f.m.info), d) - d) < 1e-12, "blocks.2 (last): decay^1");
    CHECK(ft_lr_scale(&f, -2, d) == 1.0, "head: 1");
    test_end();

    test_begin("finetune_overfits_a_tiny_batch");
    ft_optim_t o = {5e-4, 0, 0.05, 0.9, 0.999, 1e-8, 0.65, 0, 0, 0};
    double first = 0, last = 0;
    for (int t = 1; t <= 40; t++) {
        ft_drop_path(&f, 0.1, 5, t, ids, B);
        ft_zero_grad(&f);
        double l = ft_forward(&f, img, lab, B, 1, 0.0f);
        ft_backward(&f);
        ft_adamw(&f, 3e-3, &o, t);
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
    for (long i = 0; i < f.nhead; i++) { f.mhead[i] = 0.1f * i; f.vhead[i] = 0.2f * i; }
    CHECK(ft_ckpt_save(dir_, &f, &st, 2, err, sizeof err) == 0, "save: %s", err);
    st.step = 13;
    CHECK(ft_ckpt_save(dir_, &f, &st, 2, err, sizeof err) == 0, "save: %s", err);
    st.step = 14;
    CHECK(ft_ckpt_save(dir_, &f, &st, 2, err, sizeof err) == 0, "save: %s", err);
    ft_model_t g;
    ft_init(&g, &c, C, B, 8, err, sizeof err);
    char path[4200];
    CHECK(ft_ckpt_load_latest(dir_, &g, &st2, path, sizeof path, err, sizeof err) == 1 && st2.step == 14 && st2.seed == 99,
          "latest: %s", err);
    CHECK(!memcmp(g.m.params, f.m.params, sizeof(float) * f.n_enc) && !memcmp(g.head, f.head, sizeof(float) * f.nhead) &&
              !memcmp(g.vhead, f.vhead, sizeof(float) * f.nhead) && !memcmp(g.m.m, f.m.m, sizeof(float) * f.n_enc),
          "bit-exact");
    snprintf(path, sizeof path, "%s/ft-%08d.bin", dir_, 12);
    CHECK(access(path, F_OK) != 0, "rotation kept 2");
    ft_model_t h;
    ft_init(&h, &c, C + 1, B, 8, err, sizeof err);
    snprintf(path, sizeof path, "%s/ft-%08d.bin", dir_, 14);
    CHECK(ft_ckpt_load(path, &h, &st2, err, sizeof err) == -1 && strstr(err, "another model") && strstr(err, "5 classes"),
          "other classes: %s", err);
    ft_free(&h);
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 300, SEEK_SET);
    fputc(0x5a, fp);
    fclose(fp);
    CHECK(ft_ckpt_load(path, &g, &st2, err, sizeof err) == -1 && strstr(err, "CRC"), "corrupt: %s", err);
    CHECK(ft_ckpt_load_latest(dir_, &g, &st2, NULL, 0, err, sizeof err) == 1 && st2.step == 13, "fell back to 13");
    ft_free(&g);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir_);
    if (system(cmd)) printf("  (could not remove %s)\n", dir_);
    test_end();

    free(img); free(p0); free(h0); free(dir); free(dirh); free(l1); free(l2);
    ft_free(&f);
    return test_exit();
}
