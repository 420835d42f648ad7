/* One pretraining step's local work (semaim/train_step.h). */
#include "core/clock.h"
#include "semaim/train_step.h"

int train_step_encoder_passes(const model_t *m, const target_src_t *src, order_t order, int with_order) {
    const model_t *om = src && src->order ? src->order : m;
    int order_pass = with_order && order_uses_model(order);
    if (!target_is_feature(&m->tgt)) return order_pass;
    if (m->tgt.kind == TARGET_TEACHER) return om != m && order_pass;   /* else the teacher's tokens give it */
    const model_t *enc = src && src->encoder ? src->encoder : m;
    return 1 + (enc != om && order_pass);
}

double train_step_flops_per_image(const model_t *m, const target_src_t *src, order_t order) {
    double f = semaim_flops_per_image(m, train_step_encoder_passes(m, src, order, 1));
    return src && src->teacher ? f + teacher_flops_per_image(&src->teacher->a) : f;
}

float train_step(model_t *m, acts_t *a, const target_src_t *src, order_t order, const float *images, const float *noise,
                 int B, int *ranks, double *phase_s) {
    double t0 = clock_now();
    model_t *om = src && src->order ? src->order : m;
    if (!target_is_feature(&m->tgt)) {
        if (noise) compute_order(om, a, order, images, noise, B, ranks, NULL);
    } else if (m->tgt.kind == TARGET_TEACHER) {
        ERR_ASSERT(src && src->teacher && src->tacts, "train_step: the teacher target without a teacher");
        /* the teacher sees the student's images; its tokens give the targets, and the order
         * unless another encoder's pass is asked for it (--ema-order) */
        if (noise && om != m) compute_order(om, a, order, images, noise, B, ranks, NULL);
        const float *tok = teacher_forward(src->teacher, src->tacts, images, B);
        if (noise && om == m) compute_order_from_tokens(m, a, order, tok, src->teacher->a.out, noise, B, ranks, NULL);
        semaim_feature_targets(m, a, tok, ranks, B);
    } else {
        model_t *enc = src && src->encoder ? src->encoder : m;
        /* the order first: a pass of another encoder would overwrite its signal; when the
         * order's encoder is the target's, its one pass gives both */
        if (noise && enc != om) compute_order(om, a, order, images, noise, B, ranks, NULL);
        const float *tok = encoder_target_tokens(enc, a, images, B);
        if (noise && enc == om) compute_order_from_pass(m, a, order, noise, B, ranks, NULL);
        semaim_feature_targets(m, a, tok, ranks, B);
    }
    double t1 = clock_now();
    params_zero_grad(&m->w);
    float loss = semaim_forward(m, a, images, ranks, B);
    double t2 = clock_now();
    semaim_backward(m, a);
    if (phase_s) { phase_s[0] = t1 - t0; phase_s[1] = t2 - t1; phase_s[2] = clock_now() - t2; }
    return loss;
}
