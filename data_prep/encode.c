/* --store jpeg's encoder: baseline JPEG through the libjpeg API of libjpeg-turbo, into one
 * output buffer per encoder that grows to the largest image and is then reused. Accurate
 * integer forward DCT and optimised Huffman tables: the bytes are the same on every machine
 * (the integer DCT and colour conversion are exact in every SIMD path), and the tables cost
 * a second pass over the coefficients but save about a tenth of the bytes for good. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
#include "prep.h"

struct prep_encoder {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    jmp_buf jb;
    unsigned char *buf; unsigned long cap;
};

static void on_error_exit(j_common_ptr c) {
    prep_encoder *e = (prep_encoder *)c->client_data;
    longjmp(e->jb, 1);
}

prep_encoder *prep_encoder_new(void) {
    prep_encoder *volatile e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->ci.err = jpeg_std_error(&e->jerr);
    e->jerr.error_exit = on_error_exit;
    e->ci.client_data = e;
    if (setjmp(e->jb)) { free(e); return NULL; }
    jpeg_create_compress(&e->ci);
    return e;
}

void prep_encoder_free(prep_encoder *e) {
    if (!e) return;
    jpeg_destroy_compress(&e->ci);
    free(e->buf);
    free(e);
}

int prep_encode(prep_encoder *e, const uint8_t *rgb, int w, int h, int quality, const uint8_t **out, size_t *len) {
    struct jpeg_compress_struct *ci = &e->ci;
    /* libjpeg writes into our buffer and, when it is too small, into ones it mallocs: the last
     * of those is handed to us with the result (the earlier ones it frees itself). */
    unsigned char *volatile b = e->buf;
    unsigned long sz = e->cap;
    if (setjmp(e->jb)) {
        jpeg_abort_compress(ci);
        if (b != e->buf) free(b);
        return -1;
    }
    jpeg_mem_dest(ci, (unsigned char **)&b, &sz);
    ci->image_width = (JDIMENSION)w; ci->image_height = (JDIMENSION)h;
    ci->input_components = 3; ci->in_color_space = JCS_RGB;
    jpeg_set_defaults(ci);   /* YCbCr 4:2:0, baseline, JFIF header */
    jpeg_set_quality(ci, quality, TRUE);
    ci->dct_method = JDCT_ISLOW;
    ci->optimize_coding = TRUE;
    jpeg_start_compress(ci, TRUE);
    while (ci->next_scanline < ci->image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)ci->next_scanline * w * 3);
        jpeg_write_scanlines(ci, &row, 1);
    }
    jpeg_finish_compress(ci);
    if (b != e->buf) { free(e->buf); e->buf = b; e->cap = sz; }
    *out = e->buf; *len = sz;
    return 0;
}

const char *prep_encoder_name(void) {
    static char name[128];
    if (!name[0]) {
        int v = LIBJPEG_TURBO_VERSION_NUMBER;
        snprintf(name, sizeof name, "libjpeg-turbo %d.%d.%d, baseline, YCbCr 4:2:0, islow FDCT, optimised Huffman tables",
                 v / 1000000, v / 1000 % 1000, v % 1000);
    }
    return name;
}
