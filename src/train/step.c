/* One pretraining step's local work (semaim/train_step.h). */
#include "core/clock.h"
#include "semaim/train_step.h"

float train_step(model_t *m, model_t *order_m, acts_t *a, order_t order, const float *images, const float *noise, int B,
                 int *ranks, double *phase_s) {
    double t0 = clock_now();
    if (noise) compute_order(order_m ? order_m : m, a, order, images, noise, B, ranks, NULL);
    double t1 = clock_now();
    params_zero_grad(&m->w);
    float loss = semaim_forward(m, a, images, ranks, B);
    double t2 = clock_now();
    semaim_backward(m, a);
    if (phase_s) { phase_s[0] = t1 - t0; phase_s[1] = t2 - t1; phase_s[2] = clock_now() - t2; }
    return loss;
}
