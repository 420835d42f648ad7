/* Step files (src/io/checkpoint.c, src/io/stepfiles.c): the header peek (ckpt_read_header),
 * the strict load into a model built from that header (pretraining or fine-tuning), and the
 * newest-valid search over a run folder (ckpt_load_latest). The first input byte chooses
 * what to repair before the rest is written as the file: bit 0 the header CRC, bit 1 the
 * payload CRC (so inputs get past the checksums to the fields behind them), bit 2 adds a
 * newer, cut copy beside it (the search must fall back past it). Beyond not crashing: a
 * load that succeeds returns the header's state, and the search finds what a load found. */
#include "core/crc.h"
#include "semaim/checkpoint.h"
#include "fuzz.h"

/* Headers whose model is larger than this are not built (the fuzzer's memory limit). */
#define MAX_BUILD_FLOATS (1L << 22)

/* Where the checksums sit: version 4 ("SEMAIMCK", 200-byte header), version 3 (120), versions 1 and 2 (104
 * bytes; the size is the u32 at 12) and fine-tuning v1 ("SEMAIMFT", 120 bytes) — the file
 * format, fixed by checkpoint.h. */
static void repair(uint8_t *b, size_t n, int fix_header, int fix_payload) {
    size_t hb, pcrc;
    uint32_t hsize = 0;
    if (n >= 16) memcpy(&hsize, b + 12, 4);
    if (n >= 200 && !memcmp(b, "SEMAIMCK", 8) && hsize == 200) { hb = 200; pcrc = 192; }
    else if (n >= 120 && !memcmp(b, "SEMAIMCK", 8) && hsize == 120) { hb = 120; pcrc = 112; }
    else if (n >= 104 && !memcmp(b, "SEMAIMCK", 8)) { hb = 104; pcrc = 96; }
    else if (n >= 120 && !memcmp(b, "SEMAIMFT", 8)) { hb = 120; pcrc = 112; }
    else return;
    if (fix_payload) { uint32_t c = crc32_bytes(b + hb, n - hb); memcpy(b + pcrc, &c, 4); }
    if (fix_header) { uint32_t c = crc32_bytes(b, pcrc + 4); memcpy(b + pcrc + 4, &c, 4); }
}

/* Parameters, or activations of one image (a fine-tuning model has an arena), if more. */
static double approx_floats(const semaim_config_t *c) {
    double D = c->width, G = c->image / c->patch, T = G * G + 1;
    double params = T * D + 3.0 * c->patch * c->patch * D + 16 * D * D * (c->depth + c->dec_depth) + 64 * D;
    double acts = c->depth * (16 * T * D + 2.0 * c->heads * T * T) + 3.0 * c->image * c->image;
    return params > acts ? params : acts;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    int mode = data[0];
    size_t len = n - 1;
    uint8_t *b = malloc(len ? len : 1);
    if (!b) return 0;
    memcpy(b, data + 1, len);
    repair(b, len, mode & 1, mode & 2);
    fuzz_reset();
    char dir[4200], path[4300];
    fuzz_path(dir, sizeof dir, "run");
    fuzz_mkdir(dir);
    ckpt_model_t id;
    ckpt_state_t st;
    err_t e;
    /* the header peek first; then the file under the name of the kind it claims, as in a run folder */
    snprintf(path, sizeof path, "%s/probe.bin", fuzz_dir());
    fuzz_write(path, b, len);
    if (ckpt_read_header(path, &id, &st, &e)) {
        FUZZ_CHECK(e.kind == ERR_INPUT && e.msg[0], "a refusal without a reason");
        free(b);
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s00000007.bin", dir, ckpt_prefix(id.kind));
    fuzz_write(path, b, len);
    if (mode & 4) {
        char newer[4300];
        snprintf(newer, sizeof newer, "%s/%s00000009.bin", dir, ckpt_prefix(id.kind));
        fuzz_write(newer, b, len / 2);
    }
    if (approx_floats(&id.cfg) > MAX_BUILD_FLOATS || id.classes < 0 || id.classes > 4096 ||
        (id.kind != CKPT_PRETRAIN && id.kind != CKPT_FINETUNE)) { free(b); return 0; }
    model_t m;
    ft_model_t f;
    params_t *w = NULL;
    ckpt_model_t want;
    if (id.kind == CKPT_PRETRAIN && model_init(&m, &id.cfg, 1, &e) == 0) { w = &m.w; want = ckpt_pretrain(&m); }
    if (id.kind == CKPT_FINETUNE && id.classes > 0 && ft_init(&f, &id.cfg, id.classes, 1, 0.75, 1, &e) == 0) {
        w = &f.w;
        want = ckpt_finetune(&f);
    }
    if (w) {
        ckpt_state_t got;
        int loaded = ckpt_load(path, &want, w, &got, &e) == 0;
        if (loaded) FUZZ_CHECK(!memcmp(&got, &st, sizeof st), "the loaded state differs from the header's");
        char found[4300];
        int rc = ckpt_load_latest(dir, &want, w, &got, found, sizeof found, &e);
        FUZZ_CHECK(rc == (loaded ? 1 : -1), "load said %d, the search %d", loaded, rc);
        if (id.kind == CKPT_PRETRAIN) model_free(&m); else ft_free(&f);
    }
    free(b);
    return 0;
}
