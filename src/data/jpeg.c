/* The loader's JPEG decoder; see data/jpeg.h. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "data/jpeg.h"

struct jpeg_dec {
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr jerr;
    jmp_buf jb;
    int warned;
    uint8_t *pix;            /* decoded window, max_w·max_h·3 */
    JSAMPROW *rows;          /* max_h */
    void *scratch;           /* augment_scratch_bytes(max_h, max_w, S, interp) */
    int max_w, max_h, S, interp, full_scale;
};

static void on_error_exit(j_common_ptr c) { longjmp(((jpeg_dec *)c->client_data)->jb, 1); }
/* A warning (data ended early, bad Huffman code) means damaged bytes: data_prep stores none. */
static void on_emit(j_common_ptr c, int level) { if (level < 0) ((jpeg_dec *)c->client_data)->warned = 1; }
static void on_output(j_common_ptr c) { (void)c; }

jpeg_dec *jpeg_dec_new(int max_w, int max_h, int S, int interp) {
    jpeg_dec *volatile d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->max_w = max_w; d->max_h = max_h; d->S = S; d->interp = interp;
    d->pix = malloc((size_t)max_w * max_h * 3);
    d->rows = malloc(sizeof(JSAMPROW) * (size_t)max_h);
    d->scratch = malloc(augment_scratch_bytes(max_h, max_w, S, interp));
    d->ci.err = jpeg_std_error(&d->jerr);
    d->jerr.error_exit = on_error_exit;
    d->jerr.emit_message = on_emit;
    d->jerr.output_message = on_output;
    d->ci.client_data = d;
    if (!d->pix || !d->rows || !d->scratch || setjmp(d->jb)) {
        free(d->pix); free(d->rows); free(d->scratch); free(d);
        return NULL;
    }
    jpeg_create_decompress(&d->ci);
    return d;
}

void jpeg_dec_free(jpeg_dec *d) {
    if (!d) return;
    jpeg_destroy_decompress(&d->ci);
    free(d->pix); free(d->rows); free(d->scratch);
    free(d);
}

void jpeg_dec_full_scale(jpeg_dec *d, int on) { d->full_scale = on; }

int jpeg_dct_scale(double w, double h, int ow, int oh) {
    for (int m = 1; m < 8; m *= 2)
        if (w * m >= 8.0 * ow && h * m >= 8.0 * oh) return m;
    return 8;
}

/* Decodes data at m/8 into d->pix: columns [c0, c1) and rows [r0, r1) of the decoded image are
 * wanted (c1, r1 = 0: all). On return the buffer holds rows *row0.. and columns *col0.. with
 * *stride bytes per row; *dw × *dh is the decoded size. libjpeg errors longjmp to the caller. */
static const char *decode(jpeg_dec *d, const uint8_t *data, size_t n, int W, int H, int m, int c0, int c1, int r0,
                          int r1, int *col0, int *row0, size_t *stride, int *dw, int *dh, char *why, size_t wlen) {
    struct jpeg_decompress_struct *ci = &d->ci;
    if (n < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) return "not a JPEG (no SOI marker)";
    jpeg_mem_src(ci, data, (unsigned long)n);
    jpeg_read_header(ci, TRUE);
    if ((int)ci->image_width != W || (int)ci->image_height != H) {
        snprintf(why, wlen, "its JPEG header says %ux%u, /widths and /heights %dx%d", ci->image_width, ci->image_height, W, H);
        jpeg_abort_decompress(ci);
        return why;
    }
    if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK) {
        jpeg_abort_decompress(ci);
        return "a CMYK JPEG (data_prep stores RGB)";
    }
    ci->out_color_space = JCS_RGB;
    ci->scale_num = (unsigned)m; ci->scale_denom = 8;
    ci->dct_method = JDCT_ISLOW;
    jpeg_start_decompress(ci);
    *dw = (int)ci->output_width; *dh = (int)ci->output_height;
    if (*dw > d->max_w || *dh > d->max_h) {   /* cannot happen: W, H were checked against the set */
        jpeg_abort_decompress(ci);
        return "larger than the loader's buffers";
    }
    if (!c1) { c0 = 0; c1 = *dw; r0 = 0; r1 = *dh; }
    /* The window's own edge columns are upsampled as image edges (chroma replicated, not
     * interpolated with the neighbour): decode a margin and use only interior columns, so the
     * pixels equal a full decode. */
    JDIMENSION xoff = (JDIMENSION)(c0 > 16 ? c0 - 16 : 0), wid = (JDIMENSION)((c1 + 16 < *dw ? c1 + 16 : *dw) - (int)xoff);
    if ((int)wid < *dw) jpeg_crop_scanline(ci, &xoff, &wid);
    else { xoff = 0; wid = (JDIMENSION)*dw; }
    *stride = (size_t)wid * 3;
    for (int i = 0; i < r1 - r0; i++) d->rows[i] = d->pix + *stride * (size_t)i;
    if (r0 > 0) jpeg_skip_scanlines(ci, (JDIMENSION)r0);
    while ((int)ci->output_scanline < r1)
        jpeg_read_scanlines(ci, d->rows + ((int)ci->output_scanline - r0), (JDIMENSION)(r1 - (int)ci->output_scanline));
    /* the rows below the window are not needed: data_prep checked the whole stream */
    jpeg_abort_decompress(ci);
    if (d->warned) return "corrupt or truncated JPEG data";
    *col0 = (int)xoff; *row0 = r0;
    return NULL;
}

static int fail_msg(jpeg_dec *d, const char *e, char *why, size_t wlen) {
    if (e == why) return -1;
    if (!e) {   /* a libjpeg error */
        char buf[JMSG_LENGTH_MAX];
        d->ci.err->format_message((j_common_ptr)&d->ci, buf);
        snprintf(why, wlen, "corrupt JPEG: %s", buf);
        jpeg_abort_decompress(&d->ci);
    } else snprintf(why, wlen, "%s", e);
    return -1;
}

int jpeg_dec_train(jpeg_dec *d, float *out, const uint8_t *data, size_t n, int W, int H, int S, const aug_params *p,
                   int finish, char *why, size_t wlen) {
    d->warned = 0;
    if (setjmp(d->jb)) return fail_msg(d, NULL, why, wlen);
    int m = d->full_scale ? 8 : jpeg_dct_scale(p->w, p->h, S, S);
    double f = m / 8.0;   /* a power of two: the scaled box is exact */
    aug_box b = {p->x0 * f, p->y0 * f, p->w * f, p->h * f};
    /* the pixels of the box in the decoded image (its size: W·m/8 rounded up, as libjpeg) */
    int dw0 = (int)((W * (long)m + 7) / 8), dh0 = (int)((H * (long)m + 7) / 8), c0, c1, r0, r1, col0, row0, dw, dh;
    aug_box_pixels(&b, dh0, dw0, &c0, &c1, &r0, &r1);
    size_t stride;
    const char *e = decode(d, data, n, W, H, m, c0, c1, r0, r1, &col0, &row0, &stride, &dw, &dh, why, wlen);
    if (e) return fail_msg(d, e, why, wlen);
    if (resize_box_ws(out, S, S, d->pix, stride, row0, col0, dh, dw, &b, S, S, 0, 0, d->interp, d->scratch))
        return fail_msg(d, "crop box outside the image", why, wlen);
    if (finish) augment_normalize(out, S, p->flip);
    return 0;
}

int jpeg_dec_eval(jpeg_dec *d, float *out, const uint8_t *data, size_t n, int W, int H, int S, int R, char *why,
                  size_t wlen) {
    d->warned = 0;
    if (setjmp(d->jb)) return fail_msg(d, NULL, why, wlen);
    int OH, OW, oy0, ox0;
    augment_eval_geometry(H, W, S, R, &OH, &OW, &oy0, &ox0);
    int m = d->full_scale ? 8 : jpeg_dct_scale(W, H, OW, OH);
    int col0, row0, dw, dh;
    size_t stride;
    const char *e = decode(d, data, n, W, H, m, 0, 0, 0, 0, &col0, &row0, &stride, &dw, &dh, why, wlen);
    if (e) return fail_msg(d, e, why, wlen);
    aug_box b = {0, 0, W * (m / 8.0), H * (m / 8.0)};
    if (resize_box_ws(out, S, S, d->pix, stride, row0, col0, dh, dw, &b, OH, OW, oy0, ox0, d->interp, d->scratch))
        return fail_msg(d, "eval window outside the image", why, wlen);
    augment_normalize(out, S, 0);
    return 0;
}
