/* The safetensors reader (src/io/safetensors.c) and what import / --weights do with a file
 * it accepts (src/io/model_io.c): st_open, every tensor read as floats, the model config
 * inferred from names and shapes, and, when that config is small enough to build here, the
 * strict load into a model. Beyond not crashing: an accepted header has its tensors inside
 * the data section without overlaps, and a load that succeeds leaves only finite values. */
#include <math.h>
#include "semaim/model_io.h"
#include "fuzz.h"

/* Inferred configs larger than this are refused before building (the fuzzer's memory limit). */
#define MAX_BUILD_PARAMS (1L << 20)
#define MAX_READ_FLOATS (1L << 20)

static double approx_params(const semaim_config_t *c) {
    double D = c->width, G = c->image / c->patch, T = G * G + 1;
    return T * D + 3.0 * c->patch * c->patch * D + 16 * D * D * (c->depth + c->dec_depth) + 64 * D;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char path[4200];
    fuzz_path(path, sizeof path, "weights.safetensors");
    fuzz_write(path, data, n);
    st_file_t f;
    err_t e;
    if (st_open(&f, path, &e)) {
        FUZZ_CHECK(e.kind && e.msg[0], "a refusal without a reason");
        return 0;
    }
    uint64_t dsize = (uint64_t)n - f.data_start;
    for (int i = 0; i < f.n; i++) {
        const st_entry_t *t = &f.t[i];
        FUZZ_CHECK(t->begin <= t->end && t->end <= dsize, "tensor %d outside the data section", i);
        long k = st_numel(t);
        if (k > MAX_READ_FLOATS) continue;
        float *dst = malloc(sizeof(float) * (size_t)(k ? k : 1));
        if (!dst) continue;
        (void)st_read_f32(&f, t, dst, &e);
        free(dst);
    }
    (void)st_meta(&f, "semaim_config");
    semaim_config_t cfg;
    int has_dec = 0;
    if (model_infer_config(&f, NULL, &cfg, &has_dec, &e) == 0 && approx_params(&cfg) <= MAX_BUILD_PARAMS) {
        model_t m;
        if (model_init(&m, &cfg, 1, &e) == 0) {
            int ignored = 0;
            if (model_load_safetensors(&m, &f, has_dec, &ignored, &e) == 0) {
                for (long i = 0; i < m.w.nparams; i++) FUZZ_CHECK(isfinite(m.w.params[i]), "a loaded value is not finite");
                FUZZ_CHECK(ignored >= 0 && ignored <= f.n, "ignored %d of %d tensors", ignored, f.n);
            }
            model_free(&m);
        }
    }
    st_close(&f);
    return 0;
}
