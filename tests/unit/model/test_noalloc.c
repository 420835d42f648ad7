/* "Activation memory sized once; no allocation inside a step": every allocation call made by
 * our code (libsemaim is linked statically, and this test is linked with --wrap for the
 * allocator, see the Makefile) is counted while a full training step runs: permutation pass,
 * forward, backward, clipping and AdamW, for every order. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "semaim/encoder.h"
#include "semaim/model.h"
#include "semaim/train_step.h"
#include "semaim/optim.h"

static long allocs = 0;
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n) { allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { allocs++; return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { allocs++; return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { allocs++; return __real_aligned_alloc(a, n); }

int main(void) {
    test_begin("no_allocation_inside_a_step");
    semaim_config_t c = {32, 8, 32, 2, 1, 2};
    err_t err_v = {0};
    model_t m;
    long before = allocs;
    CHECK(model_init(&m, &c, 1, &err_v) == 0, "init");
    CHECK(allocs > before, "the wrapper sees our allocations (%ld)", allocs - before);
    int B = 3, L = m.d.L;
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, 0);
    float *img = calloc((size_t)B * 3 * 32 * 32, sizeof(float)), *noise = calloc((size_t)B * L, sizeof(float));
    int *ranks = calloc((size_t)B * L, sizeof(int));
    for (int i = 0; i < B * 3 * 32 * 32; i++) img[i] = (float)((i * 7919) % 255) / 128.0f - 1.0f;
    for (int i = 0; i < B * L; i++) noise[i] = (float)((i * 31) % 97) / 97.0f;
    optim_cfg_t oc = optim_defaults();
    for (int o = ORDER_SEMANTIC; o <= ORDER_CENTER; o++) {
        before = allocs;
        float loss = train_step(&m, a, (order_t)o, img, noise, B, ranks, NULL);
        double gn = grad_norm(m.w.grads, m.w.nparams);
        optim_update(&m.w, &oc, 1e-3, o + 1, gn);
        float cls[3 * 32];
        encoder_features(&m, a, img, B, cls, NULL);
        CHECK(allocs == before, "order %s: %ld allocations during a step", order_name((order_t)o), allocs - before);
        CHECK(loss > 0, "loss computed");
    }
    free(img); free(noise); free(ranks);
    acts_free(a);
    model_free(&m);
    test_end();
    return test_exit();
}
