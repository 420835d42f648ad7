/* JPEG decoding through the libjpeg API of libjpeg-turbo.
 *
 * The libjpeg API rather than TurboJPEG because we need what TurboJPEG 2.1 hides: CMYK and
 * YCCK files must be decoded as CMYK and converted by us (with Adobe's inverted storage),
 * warnings must be told apart from truncation, and only the window the crop needs is
 * decoded (jpeg_crop_scanline / jpeg_skip_scanlines). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "prep.h"

struct prep_jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int eof, nwarn;
    char warn[JMSG_LENGTH_MAX];
    const char *fatal;    /* our own reason for aborting (scan limit), else NULL */
};

struct prep_decoder {
    struct jpeg_decompress_struct ci;
    struct prep_jerr jerr;
    struct jpeg_progress_mgr prog;
    uint8_t *pix; size_t pix_cap;
    JSAMPROW *rows; size_t rows_cap;
    uint8_t *img; size_t img_cap;   /* --store jpeg: the resized image before encoding */
    prep_encoder *enc;
    prep_resampler rs;
    int full_window, no_dct_scale;
};

static void on_error_exit(j_common_ptr c) {
    struct prep_jerr *e = (struct prep_jerr *)c->err;
    longjmp(e->jb, 1);
}

static void on_emit_message(j_common_ptr c, int level) {
    struct prep_jerr *e = (struct prep_jerr *)c->err;
    if (level >= 0) return;  /* trace output */
    if (c->err->msg_code == JWRN_JPEG_EOF) e->eof = 1;
    if (e->nwarn++ == 0) c->err->format_message(c, e->warn);
    c->err->num_warnings++;
}

static void on_output_message(j_common_ptr c) { (void)c; }

static void on_progress(j_common_ptr c) {
    /* A progressive file can hold thousands of tiny scans that each cost a full pass over
     * the coefficients; real encoders write about ten. */
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > PREP_MAX_SCANS) {
        struct prep_jerr *e = (struct prep_jerr *)c->err;
        e->fatal = "corrupt JPEG: more than 500 progressive scans";
        longjmp(e->jb, 1);
    }
}

static void jerr_init(struct jpeg_decompress_struct *ci, struct prep_jerr *e) {
    ci->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error_exit;
    e->pub.emit_message = on_emit_message;
    e->pub.output_message = on_output_message;
}

static void jerr_reset(struct prep_jerr *e) {
    e->eof = 0; e->nwarn = 0; e->warn[0] = 0; e->fatal = NULL;
    e->pub.num_warnings = 0;
}

prep_decoder *prep_decoder_new(void) {
    prep_decoder *volatile d = calloc(1, sizeof *d);
    if (!d) return NULL;
    jerr_init(&d->ci, &d->jerr);
    if (setjmp(d->jerr.jb)) { free(d); return NULL; }
    jpeg_create_decompress(&d->ci);
    if (!(d->enc = prep_encoder_new())) { jpeg_destroy_decompress(&d->ci); free(d); return NULL; }
    d->ci.mem->max_memory_to_use = PREP_DECODER_MEM;
    d->prog.progress_monitor = on_progress;
    return d;
}

void prep_decoder_free(prep_decoder *d) {
    if (!d) return;
    jpeg_destroy_decompress(&d->ci);
    prep_encoder_free(d->enc);
    free(d->pix); free(d->rows); free(d->img);
    prep_resampler_free(&d->rs);
    free(d);
}

void prep_decoder_options(prep_decoder *d, int full_window, int no_dct_scale) {
    d->full_window = full_window; d->no_dct_scale = no_dct_scale;
}

int prep_sniff(const uint8_t *p, size_t n, char *why, size_t len) {
    if (n == 0) { snprintf(why, len, "empty file"); return 1; }
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return 0;
    const char *what = NULL;
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) what = "PNG";
    else if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6))) what = "GIF";
    else if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) what = "WebP";
    else if (n >= 4 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4))) what = "TIFF";
    else if (n >= 2 && p[0] == 'B' && p[1] == 'M') what = "BMP";
    else if (n >= 2 && p[0] == 0xFF && p[1] == 0xD8) {
        snprintf(why, len, "corrupt JPEG: no marker after SOI"); return 1;
    }
    if (what) snprintf(why, len, "not a JPEG (%s data)", what);
    else snprintf(why, len, "not a JPEG (starts with 0x%02x 0x%02x)", p[0], n > 1 ? p[1] : 0);
    return 1;
}

void prep_cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int n, int inverted) {
    /* Multiplicative model: white paper times (1 - ink) per channel. In-place safe
     * (rgb may equal cmyk) because the write index never passes the read index. */
    for (int i = 0; i < n; i++) {
        int c = cmyk[4 * i], m = cmyk[4 * i + 1], y = cmyk[4 * i + 2], k = cmyk[4 * i + 3];
        if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        rgb[3 * i] = (uint8_t)((c * k + 127) / 255);
        rgb[3 * i + 1] = (uint8_t)((m * k + 127) / 255);
        rgb[3 * i + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

/* Chooses the output colour space; returns 0 for RGB output, 1 for CMYK, -1 unsupported. */
static int choose_colorspace(struct jpeg_decompress_struct *ci) {
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE: case JCS_YCbCr: case JCS_RGB: ci->out_color_space = JCS_RGB; return 0;
    case JCS_CMYK: case JCS_YCCK: ci->out_color_space = JCS_CMYK; return 1;
    default: return -1;
    }
}

static void fail_reason(struct prep_jerr *e, j_common_ptr c, prep_img_info *info) {
    if (e->fatal) { snprintf(info->msg, sizeof info->msg, "%s", e->fatal); return; }
    char buf[JMSG_LENGTH_MAX];
    c->err->format_message(c, buf);
    int code = c->err->msg_code;
    if (code == JERR_NO_BACKING_STORE || code == JERR_OUT_OF_MEMORY)
        snprintf(info->msg, sizeof info->msg, "image too large to decode (libjpeg: %.150s)", buf);
    else if (code == JERR_BAD_PRECISION || code == JERR_SOF_UNSUPPORTED || code == JERR_ARITH_NOTIMPL ||
             code == JERR_NOT_COMPILED || code == JERR_CONVERSION_NOTIMPL)
        snprintf(info->msg, sizeof info->msg, "unsupported JPEG: %.150s", buf);   /* valid, but not 8-bit baseline/progressive */
    else
        snprintf(info->msg, sizeof info->msg, "corrupt JPEG: %.150s", buf);
}

/* Decodes the file whose header ci holds, with geometry g, into out (g->ch rows of g->cw RGB
 * pixels): DCT prescale, window decode, CMYK conversion, resample. libjpeg errors longjmp to
 * the caller's setjmp. Returns PREP_IMG_*. */
static int decode_body(prep_decoder *d, int cmyk, const prep_geom *g, uint8_t *out, prep_img_info *info) {
    struct jpeg_decompress_struct *ci = &d->ci;
    int m = d->no_dct_scale ? 8 : prep_dct_scale(info->w, info->h, g);
    ci->scale_num = (unsigned)m; ci->scale_denom = 8;
    ci->dct_method = JDCT_ISLOW;
    info->scale = m;
    jpeg_start_decompress(ci);
    int dw = (int)ci->output_width, dh = (int)ci->output_height;
    if (prep_resample_plan(&d->rs, g, info->w * m / 8.0, info->h * m / 8.0, dw, dh)) {
        snprintf(info->msg, sizeof info->msg, "out of memory");
        jpeg_abort_decompress(ci);
        return PREP_IMG_SKIP;
    }
    /* Decode only the window the resample reads: for a 4:3 photo cropped square this skips a
     * quarter of the IDCT and colour work. Huffman decoding of skipped rows still happens,
     * so truncation anywhere in the file is still seen. */
    JDIMENSION xoff = 0, wid = (JDIMENSION)dw;
    int r0 = 0, r1 = dh;
    if (!d->full_window) {
        /* The cropped region's own edge columns are upsampled as image edges (chroma
         * replicated instead of interpolated with the neighbour), so ask for a margin and
         * use only interior columns: the result then equals a full decode exactly. */
        int margin = 16, c0 = d->rs.cx0 - margin, c1 = d->rs.cx1 + margin;
        if (c0 < 0) c0 = 0;
        if (c1 > dw) c1 = dw;
        xoff = (JDIMENSION)c0; wid = (JDIMENSION)(c1 - c0);
        if ((int)wid < dw) jpeg_crop_scanline(ci, &xoff, &wid);
        else { xoff = 0; wid = (JDIMENSION)dw; }
        r0 = d->rs.cy0; r1 = d->rs.cy1;
    }
    int nc = cmyk ? 4 : 3;
    size_t stride = (size_t)wid * nc;
    int nrows = r1 - r0;
    if (mem_grow(&d->pix, &d->pix_cap, stride * (size_t)nrows) ||
        mem_grow(&d->rows, &d->rows_cap, sizeof(JSAMPROW) * (size_t)nrows)) {
        snprintf(info->msg, sizeof info->msg, "out of memory");
        jpeg_abort_decompress(ci);
        return PREP_IMG_SKIP;
    }
    for (int i = 0; i < nrows; i++) d->rows[i] = d->pix + stride * (size_t)i;
    if (r0 > 0) jpeg_skip_scanlines(ci, (JDIMENSION)r0);
    while ((int)ci->output_scanline < r1) {
        int got = (int)ci->output_scanline - r0;
        jpeg_read_scanlines(ci, d->rows + got, (JDIMENSION)(r1 - (int)ci->output_scanline));
    }
    if (r1 < dh) jpeg_skip_scanlines(ci, (JDIMENSION)(dh - r1));
    jpeg_finish_decompress(ci);
    if (d->jerr.eof) {
        snprintf(info->msg, sizeof info->msg, "truncated JPEG (premature end of data)");
        return PREP_IMG_SKIP;
    }
    if (cmyk)
        for (int i = 0; i < nrows; i++) prep_cmyk_to_rgb(d->rows[i], d->rows[i], (int)wid, info->adobe);
    prep_resample_run(&d->rs, d->pix, stride, (int)xoff, r0, out);
    if (d->jerr.nwarn) {
        snprintf(info->msg, sizeof info->msg, "%s", d->jerr.warn);
        return PREP_IMG_WARN;
    }
    return PREP_IMG_OK;
}

/* Starts on data: source, header, scan limit, info; the colour choice of choose_colorspace
 * (-1: unsupported, info->msg says why). libjpeg errors longjmp to the caller's setjmp. */
static int decode_header(prep_decoder *d, const uint8_t *data, size_t n, prep_img_info *info) {
    struct jpeg_decompress_struct *ci = &d->ci;
    jpeg_mem_src(ci, data, (unsigned long)n);
    jpeg_read_header(ci, TRUE);
    ci->progress = &d->prog;
    info->w = (int)ci->image_width; info->h = (int)ci->image_height;
    info->colorspace = ci->jpeg_color_space; info->adobe = ci->saw_Adobe_marker;
    info->progressive = ci->progressive_mode;
    info->ycc = ci->jpeg_color_space == JCS_YCbCr && ci->num_components == 3;
    int cmyk = choose_colorspace(ci);
    if (cmyk < 0) {
        snprintf(info->msg, sizeof info->msg, "unsupported JPEG colour space (%d components)", ci->num_components);
        jpeg_abort_decompress(ci);
    }
    return cmyk;
}

int prep_header(prep_decoder *d, const uint8_t *data, size_t n, prep_img_info *info) {
    memset(info, 0, sizeof *info);
    if (prep_sniff(data, n, info->msg, sizeof info->msg)) return -1;
    jerr_reset(&d->jerr);
    if (setjmp(d->jerr.jb)) {
        fail_reason(&d->jerr, (j_common_ptr)&d->ci, info);
        jpeg_abort_decompress(&d->ci);
        return -1;
    }
    int cmyk = decode_header(d, data, n, info);
    jpeg_abort_decompress(&d->ci);
    return cmyk < 0 ? -1 : 0;
}

int prep_decode(prep_decoder *d, const uint8_t *data, size_t n, int resize, int crop,
                uint8_t *out, prep_img_info *info) {
    memset(info, 0, sizeof *info);
    if (prep_sniff(data, n, info->msg, sizeof info->msg)) return PREP_IMG_SKIP;
    jerr_reset(&d->jerr);
    if (setjmp(d->jerr.jb)) {
        fail_reason(&d->jerr, (j_common_ptr)&d->ci, info);
        jpeg_abort_decompress(&d->ci);
        return PREP_IMG_SKIP;
    }
    int cmyk = decode_header(d, data, n, info);
    if (cmyk < 0) return PREP_IMG_SKIP;
    prep_geom g;
    prep_geometry(info->w, info->h, resize, crop, &g);
    return decode_body(d, cmyk, &g, out, info);
}

int prep_store_jpeg(prep_decoder *d, const uint8_t *data, size_t n, int max_side, int quality,
                    const uint8_t **out, size_t *len, prep_img_info *info) {
    memset(info, 0, sizeof *info);
    *out = NULL; *len = 0;
    if (prep_sniff(data, n, info->msg, sizeof info->msg)) return PREP_IMG_SKIP;
    struct jpeg_decompress_struct *ci = &d->ci;
    jerr_reset(&d->jerr);
    if (setjmp(d->jerr.jb)) {
        fail_reason(&d->jerr, (j_common_ptr)ci, info);
        jpeg_abort_decompress(ci);
        return PREP_IMG_SKIP;
    }
    int cmyk = decode_header(d, data, n, info);
    if (cmyk < 0) return PREP_IMG_SKIP;
    prep_geom g;
    prep_geometry_cap(info->w, info->h, max_side, &g);
    info->sw = g.rw; info->sh = g.rh;
    /* What every JPEG decoder reads, as the loader will: sequential Huffman-coded 8-bit
     * YCbCr (4:4:4, 4:2:2, 4:2:0, ...), already within the cap. */
    int keep = !ci->progressive_mode && !ci->arith_code && ci->data_precision == 8 && ci->num_components == 3 &&
               ci->jpeg_color_space == JCS_YCbCr && g.rw == info->w && g.rh == info->h;
    if (keep) {
        /* Check it decodes: at 1/8 scale the IDCT is nearly free, but every Huffman-coded bit
         * is still read, so truncation, corruption and warnings show as in a full decode. */
        ci->scale_num = 1; ci->scale_denom = 8;
        ci->dct_method = JDCT_ISLOW;
        jpeg_start_decompress(ci);
        size_t stride = (size_t)ci->output_width * 3;
        if (mem_grow(&d->pix, &d->pix_cap, stride)) {
            snprintf(info->msg, sizeof info->msg, "out of memory");
            jpeg_abort_decompress(ci);
            return PREP_IMG_SKIP;
        }
        while (ci->output_scanline < ci->output_height) {
            JSAMPROW row = d->pix;
            jpeg_read_scanlines(ci, &row, 1);
        }
        jpeg_finish_decompress(ci);
        if (d->jerr.eof) {
            snprintf(info->msg, sizeof info->msg, "truncated JPEG (premature end of data)");
            return PREP_IMG_SKIP;
        }
        if (!d->jerr.nwarn) { *out = data; *len = n; return PREP_IMG_OK; }
        /* It decodes, with a warning: store a clean re-encode, so the loader never meets a
         * damaged stream; the warning is still reported. */
        cmyk = decode_header(d, data, n, info);
    }
    if (mem_grow(&d->img, &d->img_cap, (size_t)g.cw * g.ch * 3)) {
        snprintf(info->msg, sizeof info->msg, "out of memory");
        jpeg_abort_decompress(ci);
        return PREP_IMG_SKIP;
    }
    int st = decode_body(d, cmyk, &g, d->img, info);
    if (st == PREP_IMG_SKIP) return st;
    if (prep_encode(d->enc, d->img, g.cw, g.ch, quality, out, len)) {
        snprintf(info->msg, sizeof info->msg, "out of memory encoding a %dx%d JPEG", g.cw, g.ch);
        return PREP_IMG_SKIP;
    }
    info->reencoded = 1;
    return st;
}

int prep_decode_raw(const uint8_t *data, size_t n, int m, int keep_cmyk, uint8_t **out,
                    int *w, int *h, int *channels, prep_img_info *info) {
    memset(info, 0, sizeof *info);
    *out = NULL;
    if (prep_sniff(data, n, info->msg, sizeof info->msg)) return PREP_IMG_SKIP;
    struct jpeg_decompress_struct ci;
    struct prep_jerr jerr;
    uint8_t *volatile pix = NULL;
    jerr_init(&ci, &jerr);
    jerr_reset(&jerr);
    if (setjmp(jerr.jb)) {
        fail_reason(&jerr, (j_common_ptr)&ci, info);
        jpeg_destroy_decompress(&ci);
        free(pix);
        return PREP_IMG_SKIP;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    info->w = (int)ci.image_width; info->h = (int)ci.image_height;
    info->colorspace = ci.jpeg_color_space; info->adobe = ci.saw_Adobe_marker;
    info->progressive = ci.progressive_mode;
    int cmyk = choose_colorspace(&ci);
    if (cmyk < 0) {
        snprintf(info->msg, sizeof info->msg, "unsupported JPEG colour space");
        jpeg_destroy_decompress(&ci);
        return PREP_IMG_SKIP;
    }
    ci.scale_num = (unsigned)m; ci.scale_denom = 8;
    info->scale = m;
    jpeg_start_decompress(&ci);
    int nc = cmyk ? 4 : 3;
    size_t stride = (size_t)ci.output_width * nc;
    pix = malloc(stride * ci.output_height);
    if (!pix) ERREXIT1(&ci, JERR_OUT_OF_MEMORY, 0);
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = pix + stride * ci.output_scanline;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    *w = (int)ci.output_width; *h = (int)ci.output_height;
    jpeg_destroy_decompress(&ci);
    if (jerr.eof) {
        free(pix);
        snprintf(info->msg, sizeof info->msg, "truncated JPEG (premature end of data)");
        return PREP_IMG_SKIP;
    }
    *channels = nc;
    if (cmyk && !keep_cmyk) {
        for (int i = 0; i < *h; i++) prep_cmyk_to_rgb(pix + stride * i, pix + (size_t)*w * 3 * i, *w, info->adobe);
        *channels = 3;
    }
    *out = pix;
    if (jerr.nwarn) { snprintf(info->msg, sizeof info->msg, "%s", jerr.warn); return PREP_IMG_WARN; }
    return PREP_IMG_OK;
}

const char *prep_decoder_name(void) {
    static char name[96];
    if (!name[0]) {
        int v = LIBJPEG_TURBO_VERSION_NUMBER;
        snprintf(name, sizeof name, "libjpeg-turbo %d.%d.%d, islow IDCT, fancy upsampling", v / 1000000, v / 1000 % 1000, v % 1000);
    }
    return name;
}
