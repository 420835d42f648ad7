/* The loader's decoder of jpeg shards (src/data/jpeg.c: jpeg_dec_train, jpeg_dec_eval) on
 * arbitrary bytes: a shard's /jpeg bytes are outside input like any file, whatever the
 * converter meant to store. Six bytes of choices, then the file:
 *   [0] bit 0 evaluation transform (else training), bit 1 full-scale decode (no DCT scaling),
 *       bit 2 the width and height the shard claims come from [4], [5] (else the file's
 *       own, from its header: the deep paths), bit 3 torch interpolation (else PIL's), bit 4
 *       training output left for the fine-tuning chain (finish = 0: 0..255, unnormalised);
 *   [1] output size S = 1 + [1] % 64;  [2], [3] the sample key of RandomResizedCrop (train,
 *       the loader's own sampler, so the box fits the claimed size) or R − S (eval);
 *   [4], [5] claimed width, height 1..256.
 * One decoder per claimed size, as one loader thread has for its data set. Beyond not
 * crashing: a refusal has a reason and a decoded image is finite. */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <jpeglib.h>
#include "data/jpeg.h"
#include "fuzz.h"

typedef struct { struct jpeg_error_mgr pub; jmp_buf jb; } header_err;
static void header_exit(j_common_ptr c) { longjmp(((header_err *)c->err)->jb, 1); }
static void header_quiet(j_common_ptr c, int level) { (void)c; (void)level; }

/* The size in the file's header, or 0 when it has none libjpeg accepts. */
static void header_size(const uint8_t *p, size_t n, int *w, int *h) {
    struct jpeg_decompress_struct c;
    header_err e;
    c.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = header_exit;
    e.pub.emit_message = header_quiet;
    *w = *h = 0;
    if (setjmp(e.jb)) { jpeg_destroy_decompress(&c); *w = *h = 0; return; }
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, p, (unsigned long)n);
    if (jpeg_read_header(&c, TRUE) == JPEG_HEADER_OK) { *w = (int)c.image_width; *h = (int)c.image_height; }
    jpeg_destroy_decompress(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 6) return 0;
    const uint8_t *file = data + 6;
    size_t len = n - 6;
    int eval = data[0] & 1, full = (data[0] >> 1) & 1, claimed = (data[0] >> 2) & 1, interp = (data[0] >> 3) & 1;
    int S = 1 + data[1] % 64, W, H;
    if (claimed) { W = 1 + data[4]; H = 1 + data[5]; }
    else header_size(file, len, &W, &H);
    if (W < 1 || H < 1 || W > 4096 || H > 4096 || (long)W * H > (1L << 22)) return 0;   /* the scan bounds real sizes */
    jpeg_dec *d = jpeg_dec_new(W, H, S, interp ? INTERP_TORCH : INTERP_PIL);
    if (!d) return 0;
    jpeg_dec_full_scale(d, full);
    float *out = malloc(sizeof(float) * 3 * (size_t)S * S);
    char why[256] = "";
    int rc = -1;
    if (out) {
        if (eval) rc = jpeg_dec_eval(d, out, file, len, W, H, S, S + (data[2] % 64), why, sizeof why);
        else {
            aug_params p;
            augment_sample(&p, H, W, (uint64_t)data[2] | (uint64_t)data[3] << 8);
            rc = jpeg_dec_train(d, out, file, len, W, H, S, &p, !((data[0] >> 4) & 1), why, sizeof why);
        }
        FUZZ_NOTE("decode: %s", rc ? why : "ok");
        FUZZ_CHECK(rc == 0 || why[0], "a refusal without a reason");
        for (long i = 0; rc == 0 && i < 3L * S * S; i++) FUZZ_CHECK(isfinite(out[i]), "value %ld is %g", i, out[i]);
    }
    free(out);
    jpeg_dec_free(d);
    return 0;
}
