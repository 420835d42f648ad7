/* The frozen teacher ViT (semaim/teacher.h): its table, its activation memory and its forward.
 * The forward is the encoder's pass (encoder.c; its blocks are vit_block_forward, blocks.h)
 * with what the two layouts change — LayerNorm eps, GELU or QuickGELU, the MLP width, CLIP's
 * bias-free patch embed, ln_pre and proj — on the teacher's own sizes, so it has its own small
 * arena instead of the model's. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/ops.h"
#include "model/blocks.h"
#include "model/carve.h"
#include "model/table.h"
#include "semaim/teacher.h"

float teacher_ln_eps(teacher_layout_t layout) { return layout == TEACHER_CLIP ? 1e-5f : 1e-6f; }

const char *teacher_layout_name(teacher_layout_t layout) {
    return layout == TEACHER_CLIP ? "OpenAI CLIP visual tower" : "timm ViT";
}

double teacher_flops_per_image(const teacher_arch_t *a) {
    double D = a->width, T = 1.0 + (double)a->grid * a->grid, L = (double)a->grid * a->grid;
    double embed = L * 3.0 * a->patch * a->patch * D;
    double block = T * (4.0 * D * D + 2.0 * D * a->hidden) + 2.0 * T * T * D;
    double proj = a->layout == TEACHER_CLIP ? T * D * a->out : 0;
    return 2.0 * (embed + a->depth * block + proj);
}

const char *teacher_describe(const teacher_arch_t *a, char *buf, size_t n) {
    snprintf(buf, n, "%s, width %d, depth %d, heads %d, mlp %d, patch %d, grid %d, tokens %dx%d",
             teacher_layout_name(a->layout), a->width, a->depth, a->heads, a->hidden, a->patch, a->grid,
             1 + a->grid * a->grid, a->out);
    return buf;
}

/* ---- the table: the file's names and shapes, in the order of the views below */
static void list_teacher(table_t *t, const void *ctx) {
    const teacher_arch_t *a = ctx;
    const int D = a->width, H = a->hidden, P = a->patch, T = 1 + a->grid * a->grid;
    const char *x = a->prefix;
    const int clip = a->layout == TEACHER_CLIP;
    if (clip) {
        table_add(t, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, "%sclass_embedding", x);
        table_add(t, INIT_ZERO, 0, 0, 2, T, D, 0, 0, "%spositional_embedding", x);
        table_add(t, INIT_ZERO, 0, 0, 4, D, 3, P, P, "%sconv1.weight", x);
        table_add(t, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, "%sln_pre.weight", x);
        table_add(t, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, "%sln_pre.bias", x);
    } else {
        table_add(t, INIT_ZERO, 0, 0, 3, 1, 1, D, 0, "%scls_token", x);
        table_add(t, INIT_ZERO, 0, 0, 3, 1, T, D, 0, "%spos_embed", x);
        table_add(t, INIT_ZERO, 0, 0, 4, D, 3, P, P, "%spatch_embed.proj.weight", x);
        table_add(t, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, "%spatch_embed.proj.bias", x);
    }
    /* per block: ln1 w b, qkv w b, proj w b, ln2 w b, fc1 w b, fc2 w b (enc_block_t's order) */
    static const char *const timm[12] = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
        "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
        "mlp.fc2.weight", "mlp.fc2.bias"};
    static const char *const openai[12] = {"ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias",
        "attn.out_proj.weight", "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
        "mlp.c_proj.weight", "mlp.c_proj.bias"};
    const int rows[12] = {D, D, 3 * D, 3 * D, D, D, D, D, H, H, D, D}, cols[12] = {0, 0, D, 0, D, 0, 0, 0, D, 0, H, 0};
    for (int i = 0; i < a->depth; i++)
        for (int k = 0; k < 12; k++)
            table_add(t, INIT_ZERO, 0, 0, cols[k] ? 2 : 1, rows[k], cols[k], 0, 0, clip ? "%stransformer.resblocks.%d.%s"
                      : "%sblocks.%d.%s", x, i, clip ? openai[k] : timm[k]);
    table_add(t, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, clip ? "%sln_post.weight" : "%snorm.weight", x);
    table_add(t, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, clip ? "%sln_post.bias" : "%snorm.bias", x);
    if (clip) {
        table_add(t, INIT_ZERO, 0, 0, 2, D, a->out, 0, 0, "%sproj", x);
        table_add(t, INIT_ZERO, 0, 0, 2, a->out, D, 0, 0, "(%sproj transposed)", x);   /* derived */
    }
}

int teacher_init(teacher_t *t, const teacher_arch_t *a, err_t *err) {
    memset(t, 0, sizeof *t);
    if (a->width < 1 || a->depth < 1 || a->heads < 1 || a->hidden < 1 || a->patch < 1 || a->grid < 1 || a->out < 1)
        return err_set(err, ERR_INPUT, "teacher: width %d, depth %d, heads %d, mlp %d, patch %d, grid %d, out %d: "
                       "every size must be at least 1", a->width, a->depth, a->heads, a->hidden, a->patch, a->grid, a->out);
    if (a->width % a->heads)
        return err_set(err, ERR_INPUT, "teacher: width %d is not a multiple of the %d heads", a->width, a->heads);
    t->a = *a;
    t->blk = calloc((size_t)a->depth, sizeof *t->blk);
    if (!t->blk || params_build_frozen(&t->w, list_teacher, a, err)) {
        free(t->blk);
        t->blk = NULL;
        return err_set(err, ERR_RUNTIME, "out of memory for the teacher's %d-block weights", a->depth);
    }
    if (params_add_half(&t->w)) { teacher_free(t); return err_set(err, ERR_RUNTIME, "out of memory for the teacher's bf16 weights"); }
    const int clip = a->layout == TEACHER_CLIP;
    t->nfile = t->w.ntensors - clip;
    float *base = t->w.params;
    int k = 0;
#define NEXT (base + t->w.info[k++].offset)
    t->cls = NEXT; t->pos = NEXT; t->patch_w = NEXT;
    if (clip) { t->pre_w = NEXT; t->pre_b = NEXT; }
    else t->patch_b = NEXT;
    for (int i = 0; i < a->depth; i++) {
        enc_block_t *e = &t->blk[i];
        e->ln1_w = NEXT; e->ln1_b = NEXT; e->qkv_w = NEXT; e->qkv_b = NEXT;
        e->proj_w = NEXT; e->proj_b = NEXT; e->ln2_w = NEXT; e->ln2_b = NEXT;
        e->fc1_w = NEXT; e->fc1_b = NEXT; e->fc2_w = NEXT; e->fc2_b = NEXT;
    }
    t->norm_w = NEXT; t->norm_b = NEXT;
    if (clip) { t->proj = NEXT; t->proj_t = NEXT; }
#undef NEXT
    return 0;
}

void teacher_ready(teacher_t *t) {
    if (t->proj_t) {
        const int D = t->a.width, O = t->a.out;
        for (int o = 0; o < O; o++)
            for (int d = 0; d < D; d++) t->proj_t[(long)o * D + d] = t->proj[(long)d * O + o];
    }
    params_sync_half(&t->w);
}

void teacher_free(teacher_t *t) {
    params_free(&t->w);
    free(t->blk);
    memset(t, 0, sizeof *t);
}

/* ---- activation memory: one block's buffers, shared by every block */
struct teacher_acts {
    teacher_arch_t a;
    int B, bf16;
    lin_plan_t patch, qkv, proj, fc1, fc2, head;   /* head: CLIP's proj */
    att_plan_t att;
    workspace_t ws;
    void *block;
    size_t bytes;
    gemm_in_t *patches, *ln, *qkv_out, *att_p, *atty, *gelu;
    float *emb, *x, *y, *mean, *rstd, *mid, *fc1_out, *stage, *tok;
};

static void carve(void *ctx, carve_t *c) {
    teacher_acts_t *a = ctx;
    const teacher_arch_t *t = &a->a;
    const size_t B = a->B, L = (size_t)t->grid * t->grid, T = L + 1, BT = B * T, D = t->width, H = t->hidden;
    const size_t es = a->bf16 ? 2 : 4, f = sizeof(float);
    size_t slot0 = 0, slotn = a->att.thread_bytes;
    const lin_plan_t *l[] = {&a->patch, &a->qkv, &a->proj, &a->fc1, &a->fc2, &a->head};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (l[i]->fwd && linear_plan_scratch(l[i]) > slot0) slot0 = linear_plan_scratch(l[i]);
    if (slotn > slot0) slot0 = slotn;
    void *wsmem = carve_take(c, workspace_bytes(slot0, slotn, a->ws.nslots), 1);
    if (c->base) workspace_init(&a->ws, wsmem, slot0, slotn, a->ws.nslots);
    a->patches = carve_take(c, B * L * 3 * t->patch * t->patch, es);
    a->emb = carve_take(c, B * L * D, f);
    a->x = carve_take(c, BT * D, f); a->y = carve_take(c, BT * D, f);
    a->ln = carve_take(c, BT * D, es); a->mean = carve_take(c, BT, f); a->rstd = carve_take(c, BT, f);
    a->qkv_out = carve_take(c, BT * 3 * D, es);
    a->stage = a->bf16 ? carve_take(c, BT * 3 * D, f) : NULL;
    a->att_p = carve_take(c, B * t->heads * T * T, es);
    a->atty = carve_take(c, BT * D, es);
    a->mid = carve_take(c, BT * D, f);
    a->fc1_out = carve_take(c, BT * H, f); a->gelu = carve_take(c, BT * H, es);
    a->tok = carve_take(c, BT * t->out, f);
}

teacher_acts_t *teacher_acts_create(const teacher_t *t, int B, err_t *err) {
    if (B < 1) { err_set(err, ERR_INPUT, "teacher activations: need at least one image"); return NULL; }
    teacher_acts_t *a = calloc(1, sizeof *a);
    if (!a) { err_set(err, ERR_RUNTIME, "out of memory for the teacher's activations"); return NULL; }
    const teacher_arch_t *r = &t->a;
    const gemm_config_t *g = gemm_global_config();
    a->a = *r;
    a->B = B;
    a->bf16 = g->precision == GEMM_PREC_BF16;
    a->ws.nslots = omp_get_max_threads();
    ERR_ASSERT(a->bf16 == (t->w.half != NULL), "a %s teacher arena for a teacher built for %s (build both after "
               "gemm_global_init)", a->bf16 ? "bf16" : "fp32", t->w.half ? "bf16" : "fp32");
    const long L = (long)r->grid * r->grid, N = (long)B * (L + 1);
    const int D = r->width, clip = r->layout == TEACHER_CLIP;
    if (linear_plan(&a->patch, g, (long)B * L, 3 * r->patch * r->patch, D, clip ? 0 : LIN_ACCUMULATE, err) ||
        linear_plan(&a->qkv, g, N, D, 3 * D, 0, err) || linear_plan(&a->proj, g, N, D, D, LIN_ACCUMULATE, err) ||
        linear_plan(&a->fc1, g, N, D, r->hidden, 0, err) ||
        linear_plan(&a->fc2, g, N, r->hidden, D, LIN_ACCUMULATE, err) ||
        (clip && linear_plan(&a->head, g, N, D, r->out, 0, err)) ||
        attention_plan(&a->att, g, (int)L + 1, r->heads, D / r->heads, 3 * D, 3 * D, ATTN_FULL, 0, err)) {
        err_prefix(err, "teacher");
        teacher_acts_free(a);
        return NULL;
    }
    a->block = carve_alloc(carve, a, &a->bytes);
    if (!a->block) {
        err_set(err, ERR_RUNTIME, "out of memory for the teacher's activations (%.2f GiB for batch %d)",
                a->bytes / 1073741824.0, B);
        teacher_acts_free(a);
        return NULL;
    }
    return a;
}

void teacher_acts_free(teacher_acts_t *a) {
    if (!a) return;
    lin_plan_t *l[] = {&a->patch, &a->qkv, &a->proj, &a->fc1, &a->fc2, &a->head};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++) linear_plan_free(l[i]);
    attention_plan_free(&a->att);
    free(a->block);
    free(a);
}

size_t teacher_acts_bytes(const teacher_acts_t *a) { return a->bytes; }

/* ---- the forward */
static const gemm_in_t *wt(const teacher_t *t, const float *view) {
    return t->w.half ? (const gemm_in_t *)(t->w.half + (view - t->w.params)) : (const gemm_in_t *)view;
}

/* The block forward is the student's (blocks.h) with the layout's eps, GELU and MLP width on
 * the teacher's plans; nothing is kept for a backward, so both LayerNorms share one buffer. */
static void block_forward(float *out, const float *in, const enc_block_t *w, const teacher_t *t, teacher_acts_t *a,
                          int B) {
    const block_env_t k = {.D = a->a.width, .H = a->a.hidden, .T = 1 + a->a.grid * a->a.grid,
                           .eps = teacher_ln_eps(a->a.layout), .quick = a->a.layout == TEACHER_CLIP, .h = a->bf16,
                           .qkv = &a->qkv, .proj = &a->proj, .fc1 = &a->fc1, .fc2 = &a->fc2, .ws = &a->ws,
                           .stage = a->stage, .wf = t->w.params, .wh = (const bf16_t *)t->w.half};
    const enc_saved_t s = {.ln1 = a->ln, .ln1_mean = a->mean, .ln1_rstd = a->rstd, .qkv = a->qkv_out, .att = a->att_p,
                           .atty = a->atty, .mid = a->mid, .ln2 = a->ln, .ln2_mean = a->mean, .ln2_rstd = a->rstd,
                           .fc1 = a->fc1_out, .gelu = a->gelu};
    vit_block_forward(out, &s, in, w, &k, &a->att, B, NULL, NULL);
}

const float *teacher_forward(const teacher_t *t, teacher_acts_t *a, const float *images, int B) {
    ERR_ASSERT(B >= 1 && B <= a->B, "teacher batch %d outside the activations' capacity 1..%d", B, a->B);
    ERR_ASSERT(memcmp(&a->a, &t->a, sizeof t->a) == 0, "teacher activations made for another teacher");
    const teacher_arch_t *r = &t->a;
    const int D = r->width, L = r->grid * r->grid, T = L + 1, S = r->patch * r->grid, clip = r->layout == TEACHER_CLIP;
    const long N = (long)B * T;
    const float eps = teacher_ln_eps(r->layout);
    patchify(a->patches, a->bf16, images, NULL, B, S, S, r->patch, PATCH_CPP);
    linear_forward(a->emb, a->patches, wt(t, t->patch_w), t->patch_b, NULL, (long)B * L, 3 * r->patch * r->patch, D,
                   &a->patch, &a->ws);
    /* both layouts add the learned position embedding to every token, the class token's too */
    float *x = a->x, *y = a->y;
#pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        const long b = n / T, k = n % T;
        const float *src = k == 0 ? t->cls : a->emb + (b * L + k - 1) * D, *pe = t->pos + k * D;
        float *o = x + n * D;
        for (int d = 0; d < D; d++) o[d] = src[d] + pe[d];
    }
    if (clip) {
        layernorm_forward_eps(y, 0, a->mean, a->rstd, x, t->pre_w, t->pre_b, N, D, eps);
        float *s = x; x = y; y = s;
    }
    for (int i = 0; i < r->depth; i++) {
        block_forward(y, x, &t->blk[i], t, a, B);
        float *s = x; x = y; y = s;
    }
    if (!clip) {
        layernorm_forward_eps(a->tok, 0, a->mean, a->rstd, x, t->norm_w, t->norm_b, N, D, eps);
    } else {
        layernorm_forward_eps(a->ln, a->bf16, a->mean, a->rstd, x, t->norm_w, t->norm_b, N, D, eps);
        linear_forward(a->tok, a->ln, wt(t, t->proj_t), NULL, NULL, N, D, r->out, &a->head, &a->ws);
    }
    return a->tok;
}

void teacher_patch_targets(float *dst, const float *tok, const int *perm, int B, int L, int out) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * L; r++) {
        const long b = r / L, p = perm ? perm[r] : r % L;
        memcpy(dst + r * out, tok + (b * (L + 1) + 1 + p) * out, sizeof(float) * (size_t)out);
    }
}
