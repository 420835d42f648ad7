/* Writes everything the PyTorch parity check (tests/ref/compare_parity.py) needs: the initial
 * weights, the inputs and orders, the loss and gradients at init, and a short AdamW
 * trajectory with clipping and the schedule. The format is documented at the top of
 * tests/ref/make_fake_dump.py. --gemm picks the backend; the precision is fp32 (the reference
 * is float64). --blur, --norm-pix, --loss, --order-signal and --target are semaim-train's, parsed
 * by the same functions; the permutation pass's signal values are dumped too (semantic_signal).
 * With a feature target the order of the whole trajectory is the one train_step's own pass gives
 * at step 0 (the pass that also gives the targets), and the targets follow the weights; --teacher
 * FILE (with --target teacher) gives them from a frozen teacher, whose tokens make the semantic
 * signal and order.
 * --ema SPE keeps the EMA teacher (ema.h) with SPE steps per epoch for its decay, updated after
 * every AdamW step as semaim-train does, and dumps it after each step; --ema-order then takes
 * each step's order from it (train_step's permutation pass on the EMA shadow, with the fixed
 * noise) and dumps that order and its signal per step. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "semaim/compute.h"
#include "semaim/ema.h"
#include "semaim/encoder.h"
#include "semaim/model.h"
#include "semaim/train_step.h"
#include "semaim/model_io.h"
#include "semaim/optim.h"
#include "semaim/rng.h"
#include "semaim/teacher_io.h"

static void die(const char *msg) { fprintf(stderr, "parity_dump: %s\n", msg); exit(2); }

int main(int argc, char **argv) {
    semaim_config_t c = {32, 8, 64, 2, 2, 2};
    int B = 3, steps = 10, warmup = 3, ema_order = 0;
    long ema_spe = 0;   /* 0: no EMA */
    long seed = 1;
    double lr = 1e-3, clip = 0.5;
    const char *out = NULL, *order_s = "raster", *gemm = "openblas", *teacher_path = NULL;
    target_cfg_t tgt = target_defaults();
    err_t err_v = {0}; char *err = err_v.msg;
    static struct option opts[] = {
        {"image", 1, 0, 'i'}, {"patch", 1, 0, 'p'}, {"width", 1, 0, 'w'}, {"depth", 1, 0, 'd'},
        {"dec-depth", 1, 0, 'q'}, {"heads", 1, 0, 'h'}, {"batch", 1, 0, 'b'}, {"order", 1, 0, 'o'},
        {"seed", 1, 0, 's'}, {"steps", 1, 0, 'n'}, {"lr", 1, 0, 'l'}, {"warmup", 1, 0, 'u'},
        {"clip", 1, 0, 'c'}, {"out", 1, 0, 'O'}, {"gemm", 1, 0, 'g'}, {"blur", 1, 0, 'B'}, {"norm-pix", 1, 0, 'N'},
        {"loss", 1, 0, 'L'}, {"order-signal", 1, 0, 'S'}, {"ema", 1, 0, 'E'}, {"ema-order", 0, 0, 'R'},
        {"target", 1, 0, 'T'}, {"teacher", 1, 0, 'X'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': c.image = atoi(optarg); break;
        case 'p': c.patch = atoi(optarg); break;
        case 'w': c.width = atoi(optarg); break;
        case 'd': c.depth = atoi(optarg); break;
        case 'q': c.dec_depth = atoi(optarg); break;
        case 'h': c.heads = atoi(optarg); break;
        case 'b': B = atoi(optarg); break;
        case 'o': order_s = optarg; break;
        case 's': seed = atol(optarg); break;
        case 'n': steps = atoi(optarg); break;
        case 'l': lr = atof(optarg); break;
        case 'u': warmup = atoi(optarg); break;
        case 'c': clip = atof(optarg); break;
        case 'O': out = optarg; break;
        case 'g': gemm = optarg; break;
        case 'B': if (target_parse_blur(optarg, &tgt, &err_v)) die(err); break;
        case 'N': if (target_parse_norm_pix(optarg, &tgt, &err_v)) die(err); break;
        case 'L': if (target_parse_loss(optarg, &tgt, &err_v)) die(err); break;
        case 'S': if (target_parse_signal(optarg, &tgt, &err_v)) die(err); break;
        case 'E': ema_spe = atol(optarg); if (ema_spe < 1) die("--ema needs steps per epoch >= 1"); break;
        case 'R': ema_order = 1; break;
        case 'T': if (target_parse_kind(optarg, &tgt, &err_v)) die(err); break;
        case 'X': teacher_path = optarg; break;
        default: die("unknown option");
        }
    }
    char path[4096];
    if (!out) die("--out DIR is required");
    gemm_config_t gc;
    if (gemm_setup(gemm, "fp32", &gc, &err_v)) die(err);
    if (config_validate(&c, B, &err_v)) die(err);
    order_t order;
    if (order_parse(order_s, &order)) die("unknown --order");
    if (mkdir(out, 0755) && errno != EEXIST) die("cannot create --out");
    if (ema_order && !ema_spe) die("--ema-order needs --ema SPE");
    if (tgt.kind == TARGET_EMA && !ema_spe) die("--target ema needs --ema SPE");
    if (ema_order && !order_uses_model(order)) die("--ema-order needs the semantic or similarity order");
    tgt.ema_order = ema_order;
    if ((tgt.kind == TARGET_TEACHER) != (teacher_path != NULL)) die("--target teacher goes with --teacher FILE");
    teacher_t teach = {0};
    target_src_t src = {NULL, NULL, NULL, NULL};
    if (teacher_path) {
        if (teacher_load(&teach, teacher_path, c.image, c.patch, &err_v) ||
            target_set_teacher(&tgt, teacher_path, teach.a.layout, teach.a.out, &err_v))
            die(err);
        src.teacher = &teach;
        if (!(src.tacts = teacher_acts_create(&teach, B, &err_v))) die(err);
    }

    model_t m;
    if (model_init_target(&m, &c, &tgt, (uint64_t)seed, &err_v)) die(err);
    ema_t ema = {0};
    if (ema_spe && ema_init(&ema, &m, &err_v)) die(err);
    src.encoder = tgt.kind == TARGET_EMA ? &ema.m : NULL;
    src.order = ema_order ? &ema.m : NULL;
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, m.out, &err_v);
    if (!a) die("out of memory");
    int L = m.d.L, H = c.image;
    float *img = malloc(sizeof(float) * B * 3 * H * H), *noise = malloc(sizeof(float) * B * L);
    int *ranks = malloc(sizeof(int) * B * L), *sem = malloc(sizeof(int) * B * L), *center = malloc(sizeof(int) * B);
    float *signal = malloc(sizeof(float) * B * L), *step_signal = malloc(sizeof(float) * B * L);
    int *ranks0 = malloc(sizeof(int) * B * L);   /* step 0's order, for inputs (--ema-order: each step has its own) */
    rng_t r = rng_make(rng_key((uint64_t)seed, 0xda7a, 0, 0, 0));
    /* smooth-ish images: a random gradient plus noise, so blur and normalisation matter */
    for (int b = 0; b < B; b++)
        for (int ch3 = 0; ch3 < 3; ch3++) {
            float gx = 2 * rng_nextf(&r) - 1, gy = 2 * rng_nextf(&r) - 1;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < H; x++)
                    img[((long)(b * 3 + ch3) * H + y) * H + x] = gx * (x - H / 2) / (H / 2.f) + gy * (y - H / 2) / (H / 2.f) +
                                                                 (2 * rng_nextf(&r) - 1);
        }
    for (long i = 0; i < (long)B * L; i++) noise[i] = rng_nextf(&r);
    if (src.teacher) {   /* the order comes from the teacher's tokens */
        const float *tok = teacher_forward(&teach, src.tacts, img, B);
        memcpy(signal, tokens_order_signal(&m, a, tok, teach.a.out, B), sizeof(float) * B * L);
        compute_order_from_tokens(&m, a, ORDER_SEMANTIC, tok, teach.a.out, noise, B, sem, center);
    } else {
        memcpy(signal, encoder_order_signal(&m, a, img, B), sizeof(float) * B * L);
        compute_order(&m, a, ORDER_SEMANTIC, img, noise, B, sem, center);
    }
    compute_order(&m, a, order, img, noise, B, ranks, NULL);
    const int feat = target_is_feature(&tgt);
    /* the initial weights before step 0 changes them: that step also gives a feature target's ranks */
    snprintf(path, sizeof path, "%s/init.safetensors", out);
    if (model_write_safetensors(&m, m.w.params, "", 1, NULL, 0, path, &err_v)) die(err);

    optim_cfg_t oc = optim_defaults();
    oc.clip = clip;
    snprintf(path, sizeof path, "%s/traj.json", out);
    FILE *tj = fopen(path, "w");
    if (!tj) die("cannot write traj.json");
    fprintf(tj, "[");
    for (int t = 0; t < steps; t++) {
        /* the order of step t from the EMA after t updates: its signal first, then the step's own pass */
        if (ema_order) memcpy(step_signal, encoder_order_signal(&ema.m, a, img, B), sizeof(float) * B * L);
        float loss = train_step(&m, a, &src, order, img, ema_order || (feat && t == 0) ? noise : NULL, B, ranks, NULL);
        if (t == 0) {
            memcpy(ranks0, ranks, sizeof(int) * B * L);
            st_tensor_t l = {"loss", ST_F32, 1, {1}, &loss};
            snprintf(path, sizeof path, "%s/step0.safetensors", out);
            if (model_write_safetensors(&m, m.w.grads, "grad.", 0, &l, 1, path, &err_v)) die(err);
        }
        double gn = grad_norm(m.w.grads, m.w.nparams);
        double lr_t = optim_lr_at(lr, 0.0, t, warmup, steps);
        optim_update(&m.w, &oc, lr_t, t + 1, gn);
        double decay = ema_spe ? ema_decay(t, ema_spe) : 0;
        if (ema_spe) {
            ema_update(&ema, m.w.params, decay);
            st_tensor_t ord[] = {{"ranks", ST_I32, 2, {B, L}, ranks}, {"signal", ST_F32, 2, {B, L}, step_signal}};
            snprintf(path, sizeof path, "%s/step-%d.safetensors", out, t);
            if (model_write_safetensors(&m, m.w.ema, "ema.", 0, ord, ema_order ? 2 : 0, path, &err_v)) die(err);
        }
        fprintf(tj, "%s\n {\"step\": %d, \"lr\": %.17g, \"loss\": %.9g, \"grad_norm\": %.9g", t ? "," : "", t, lr_t,
                loss, gn);
        if (ema_spe) fprintf(tj, ", \"ema_decay\": %.17g", decay);
        fprintf(tj, "}");
    }
    fprintf(tj, "\n]\n");
    fclose(tj);
    st_tensor_t in[] = {
        {"images", ST_F32, 4, {B, 3, H, H}, img}, {"ranks", ST_I32, 2, {B, L}, ranks0},
        {"noise", ST_F32, 2, {B, L}, noise}, {"semantic_ranks", ST_I32, 2, {B, L}, sem},
        {"semantic_center", ST_I32, 1, {B}, center}, {"semantic_signal", ST_F32, 2, {B, L}, signal}};
    snprintf(path, sizeof path, "%s/inputs.safetensors", out);
    if (st_write(path, in, 6, &err_v)) die(err);
    snprintf(path, sizeof path, "%s/final.safetensors", out);
    if (model_write_safetensors(&m, m.w.params, "", 1, NULL, 0, path, &err_v)) die(err);
    snprintf(path, sizeof path, "%s/config.json", out);
    FILE *cf = fopen(path, "w");
    if (!cf) die("cannot write config.json");
    fprintf(cf,
            "{\"image\": %d, \"patch\": %d, \"width\": %d, \"depth\": %d, \"dec_depth\": %d, \"heads\": %d, "
            "\"batch\": %d, \"order\": \"%s\", \"seed\": %ld, \"steps\": %d, \"lr\": %.17g, \"warmup_iters\": %d, "
            "\"total_iters\": %d, \"weight_decay\": %g, \"beta1\": %g, \"beta2\": %g, \"eps\": %g, \"clip\": %g, "
            "\"gemm\": \"%s\", \"blur_k\": %d, \"blur_sigma\": %.17g, \"norm_pix\": %d, \"loss\": \"%s\", \"signal\": \"%s\", "
            "\"ema_steps_per_epoch\": %ld, \"ema_order\": %d, \"target\": \"%s\"",
            c.image, c.patch, c.width, c.depth, c.dec_depth, c.heads, B, order_name(order), seed, steps, lr, warmup,
            steps, oc.weight_decay, oc.beta1, oc.beta2, oc.eps, oc.clip, gemm_backend_name(gc.backend), tgt.blur_k,
            tgt.blur_sigma, tgt.norm_pix, target_loss_name(tgt.loss), target_signal_name(tgt.signal), ema_spe, ema_order,
            target_kind_name(tgt.kind));
    if (teacher_path)
        fprintf(cf, ", \"teacher\": \"%s\", \"teacher_layout\": \"%s\", \"teacher_width\": %d, \"teacher_depth\": %d, "
                "\"teacher_heads\": %d, \"teacher_out\": %d", teacher_path, teach.a.layout == TEACHER_CLIP ? "clip" : "timm",
                teach.a.width, teach.a.depth, teach.a.heads, teach.a.out);
    fprintf(cf, "}\n");
    fclose(cf);
    free(img); free(noise); free(ranks); free(sem); free(center); free(signal); free(step_signal); free(ranks0);
    acts_free(a);
    ema_free(&ema);
    teacher_acts_free(src.tacts);
    teacher_free(&teach);
    model_free(&m);
    return 0;
}
