/* semaim-prep image path: geometry, filter taps, resampling, JPEG decoding of every flavour,
 * window decoding, DCT prescaling, and the skip/warn classification of broken files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "prep.h"
#include "../prep/fixtures.h"

static unsigned char *jpeg_of(int w, int h, int kind, int q, uint64_t seed, double grain, unsigned long *n, uint8_t **rgb_out) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    fx_synth(rgb, w, h, seed, grain);
    unsigned char *buf = fx_encode(rgb, w, h, kind, q, n);
    if (rgb_out) *rgb_out = rgb; else free(rgb);
    return buf;
}

/* Reference resample in double precision straight from the definition: resize the whole
 * image (shorter side to R) with the PIL/torch antialiased triangle, then crop. */
static void ref_resize(const uint8_t *src, int w, int h, int R, int C, double *out) {
    prep_geom g;
    prep_geometry(w, h, R, C, &g);
    double sx = (double)w / g.rw, sy = (double)h / g.rh;
    for (int i = 0; i < C; i++) {
        double cy = (g.y0 + i + 0.5) * sy, suy = sy > 1 ? sy : 1;
        int ylo = (int)(cy - suy + 0.5), yhi = (int)(cy + suy + 0.5);
        if (ylo < 0) ylo = 0;
        if (yhi > h) yhi = h;
        for (int j = 0; j < C; j++) {
            double cx = (g.x0 + j + 0.5) * sx, sux = sx > 1 ? sx : 1;
            int xlo = (int)(cx - sux + 0.5), xhi = (int)(cx + sux + 0.5);
            if (xlo < 0) xlo = 0;
            if (xhi > w) xhi = w;
            double acc[3] = {0, 0, 0}, tw = 0;
            for (int y = ylo; y < yhi; y++) {
                double wy = 1 - fabs((y + 0.5 - cy) / suy);
                if (wy <= 0) continue;
                for (int x = xlo; x < xhi; x++) {
                    double wx = 1 - fabs((x + 0.5 - cx) / sux);
                    if (wx <= 0) continue;
                    for (int c = 0; c < 3; c++) acc[c] += wx * wy * src[((size_t)y * w + x) * 3 + c];
                    tw += wx * wy;
                }
            }
            for (int c = 0; c < 3; c++) out[((size_t)i * C + j) * 3 + c] = acc[c] / tw;
        }
    }
}

static void test_geometry(void) {
    test_begin("geometry: shorter side to R (long side truncated), centre crop rounded down");
    prep_geom g;
    prep_geometry(500, 375, 256, 256, &g);
    CHECK(g.rw == 341 && g.rh == 256 && g.x0 == 42 && g.y0 == 0, "500x375: %d %d %d %d", g.rw, g.rh, g.x0, g.y0);
    prep_geometry(375, 500, 256, 224, &g);
    CHECK(g.rw == 256 && g.rh == 341 && g.x0 == 16 && g.y0 == 58, "375x500: %d %d %d %d", g.rw, g.rh, g.x0, g.y0);
    prep_geometry(1, 1, 256, 256, &g);
    CHECK(g.rw == 256 && g.rh == 256 && g.x0 == 0 && g.y0 == 0, "1x1");
    prep_geometry(600, 100, 32, 32, &g);
    CHECK(g.rw == 192 && g.rh == 32 && g.x0 == 80, "600x100: %d %d %d", g.rw, g.rh, g.x0);
    prep_geometry(28, 28, 32, 32, &g);
    CHECK(g.rw == 32 && g.rh == 32 && g.x0 == 0, "28x28 upscale");
    prep_geometry(500, 375, 256, 256, &g);
    CHECK(prep_dct_scale(500, 375, &g) == 8, "500x375 -> 256 needs a full decode");
    prep_geometry(2400, 1800, 256, 256, &g);
    CHECK(prep_dct_scale(2400, 1800, &g) == 2, "2400x1800 -> 256 decodes at 2/8, got %d", prep_dct_scale(2400, 1800, &g));
    prep_geometry(4000, 3000, 256, 256, &g);
    CHECK(prep_dct_scale(4000, 3000, &g) == 1, "4000x3000 -> 256 decodes at 1/8");
    prep_geometry(1000, 750, 256, 256, &g);
    CHECK(prep_dct_scale(1000, 750, &g) == 4, "1000x750 -> 256 decodes at 4/8 (6/8 never)");
    test_end();
}

static void test_taps(void) {
    test_begin("filter taps: normalised, inside the input, triangle of the right width");
    prep_taps t = {0};
    double scales[] = {0.1, 0.5, 1.0, 1.4648, 3.0, 17.3};
    for (int si = 0; si < 6; si++) {
        int n_in = 300, n_out = (int)(n_in / scales[si]);
        if (n_out > 2000) n_out = 2000;
        CHECK(!prep_taps_build(&t, n_out, 0, scales[si], n_in), "build");
        for (int j = 0; j < n_out; j++) {
            double sum = 0;
            for (int k = 0; k < t.len[j]; k++) { sum += t.w[(size_t)j * t.k + k]; CHECK(t.w[(size_t)j * t.k + k] >= 0, "negative weight"); }
            CHECK(fabs(sum - 1) < 1e-5, "scale %g out %d: weights sum to %g", scales[si], j, sum);
            CHECK(t.start[j] >= 0 && t.start[j] + t.len[j] <= n_in, "window out of range");
            CHECK(t.len[j] <= 2 * (int)ceil(scales[si] > 1 ? scales[si] : 1) + 1, "window too long: %d", t.len[j]);
        }
    }
    prep_taps_free(&t);
    test_end();
}

static void test_resample_ramp(void) {
    test_begin("resample: constant stays constant, a linear ramp lands at the mapped centres");
    int w = 240, h = 160;
    uint8_t *src = malloc((size_t)w * h * 3), *out = malloc(64 * 64 * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) { uint8_t *p = src + ((size_t)y * w + x) * 3; p[0] = 77; p[1] = (uint8_t)x; p[2] = (uint8_t)(y + 40); }
    prep_resampler r = {0};
    prep_geom g;
    prep_geometry(w, h, 64, 64, &g);   /* 96x64, crop x0 = 16; scale 2.5 */
    CHECK(!prep_resample_plan(&r, &g, w, h, w, h), "plan");
    prep_resample_run(&r, src, (size_t)w * 3, 0, 0, out);
    int bad = 0;
    for (int i = 2; i < 62; i++)
        for (int j = 2; j < 62; j++) {
            const uint8_t *p = out + ((size_t)i * 64 + j) * 3;
            double cx = (g.x0 + j + 0.5) * 2.5 - 0.5, cy = (g.y0 + i + 0.5) * 2.5 - 0.5;
            if (p[0] != 77 || fabs(p[1] - cx) > 0.51 || fabs(p[2] - (cy + 40)) > 0.51) bad++;
        }
    CHECK(!bad, "%d interior pixels off the ramp", bad);
    /* The same plan run on a sub-window (as the windowed decoder hands it) gives the same. */
    uint8_t *out2 = malloc(64 * 64 * 3);
    const uint8_t *sub = src + ((size_t)r.cy0 * w + r.cx0) * 3;
    prep_resample_run(&r, sub, (size_t)w * 3, r.cx0, r.cy0, out2);
    CHECK(!memcmp(out, out2, 64 * 64 * 3), "window offsets change the result");
    CHECK(r.cx0 > 0 && r.cx1 < w, "crop window should exclude columns: %d..%d", r.cx0, r.cx1);
    prep_resampler_free(&r);
    free(src); free(out); free(out2);
    test_end();
}

static void test_resample_reference(void) {
    test_begin("resample: equals a double-precision reference within 1 level (down and up)");
    int sizes[][4] = {{320, 240, 256, 256}, {200, 300, 256, 224}, {40, 30, 64, 64}, {600, 100, 48, 40}, {1, 1, 16, 16}, {97, 211, 64, 50}};
    for (int t = 0; t < 6; t++) {
        int w = sizes[t][0], h = sizes[t][1], R = sizes[t][2], C = sizes[t][3];
        uint8_t *src = malloc((size_t)w * h * 3), *out = malloc((size_t)C * C * 3);
        double *ref = malloc(sizeof(double) * C * C * 3);
        fx_synth(src, w, h, 9 + t, 30);
        prep_geom g;
        prep_geometry(w, h, R, C, &g);
        prep_resampler r = {0};
        CHECK(!prep_resample_plan(&r, &g, w, h, w, h), "plan");
        prep_resample_run(&r, src, (size_t)w * 3, 0, 0, out);
        ref_resize(src, w, h, R, C, ref);
        double md = 0;
        for (size_t i = 0; i < (size_t)C * C * 3; i++) { double d = fabs(out[i] - floor(ref[i] + 0.5)); if (d > md) md = d; }
        CHECK(md <= 1, "%dx%d -> %d/%d: max diff %g", w, h, R, C, md);
        prep_resampler_free(&r);
        free(src); free(out); free(ref);
    }
    test_end();
}

static void test_cmyk(void) {
    test_begin("CMYK -> RGB: Adobe (inverted) and plain conventions");
    uint8_t in[8] = {255, 255, 255, 255, 0, 128, 255, 200}, out[6];
    prep_cmyk_to_rgb(in, out, 2, 1);
    CHECK(out[0] == 255 && out[1] == 255 && out[2] == 255, "inverted 255s are white");
    CHECK(out[3] == 0 && out[4] == (128 * 200 + 127) / 255 && out[5] == 200, "inverted mix: %d %d %d", out[3], out[4], out[5]);
    prep_cmyk_to_rgb(in, out, 2, 0);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0, "plain full ink is black");
    CHECK(out[3] == (255 * 55 + 127) / 255 && out[5] == 0, "plain mix: %d %d %d", out[3], out[4], out[5]);
    test_end();
}

static void test_sniff(void) {
    test_begin("sniff: empty, PNG, GIF, unknown data and JPEG are told apart");
    char why[128];
    CHECK(prep_sniff((const uint8_t *)"", 0, why, sizeof why) && !strcmp(why, "empty file"), "%s", why);
    CHECK(prep_sniff((const uint8_t *)"\x89PNG\r\n\x1a\nxxxx", 12, why, sizeof why) && !strcmp(why, "not a JPEG (PNG data)"), "%s", why);
    CHECK(prep_sniff((const uint8_t *)"GIF89a....", 10, why, sizeof why) && !strcmp(why, "not a JPEG (GIF data)"), "%s", why);
    CHECK(prep_sniff((const uint8_t *)"hello", 5, why, sizeof why) && strstr(why, "not a JPEG"), "%s", why);
    CHECK(!prep_sniff((const uint8_t *)"\xff\xd8\xff\xe0", 4, why, sizeof why), "JPEG SOI not recognised");
    test_end();
}

static void test_decode_kinds(void) {
    test_begin("decode: RGB 4:2:0/4:4:4, grayscale, progressive, CMYK (Adobe), YCCK, plain CMYK match the picture");
    const char *names[] = {"rgb420", "rgb444", "gray", "progressive", "cmyk-adobe", "ycck", "cmyk-plain"};
    for (int kind = FX_RGB420; kind <= FX_CMYK_PLAIN; kind++) {
        unsigned long n;
        uint8_t *rgb, *pix;
        unsigned char *jpg = jpeg_of(160, 120, kind, 95, 3 + kind, 4, &n, &rgb);
        int w, h, c;
        prep_img_info info;
        int st = prep_decode_raw(jpg, n, 8, 0, &pix, &w, &h, &c, &info);
        CHECK(st == PREP_IMG_OK && w == 160 && h == 120 && c == 3, "%s: status %d (%s) %dx%dx%d", names[kind], st, info.msg, w, h, c);
        if (st == PREP_IMG_OK) {
            double sum = 0;
            for (int i = 0; i < w * h; i++)
                for (int ch = 0; ch < 3; ch++) {
                    double want = kind == FX_GRAY ? (299 * rgb[3 * i] + 587 * rgb[3 * i + 1] + 114 * rgb[3 * i + 2]) / 1000.0 : rgb[3 * i + ch];
                    sum += fabs(pix[3 * i + ch] - want);
                }
            double mean = sum / (w * h * 3);
            CHECK(mean < 4, "%s: mean |decoded - picture| = %.2f", names[kind], mean);
            CHECK(info.progressive == (kind == FX_PROG), "%s: progressive flag", names[kind]);
            CHECK(info.adobe == (kind == FX_CMYK_ADOBE || kind == FX_YCCK), "%s: Adobe marker flag %d", names[kind], info.adobe);
        }
        free(pix); free(rgb); free(jpg);
    }
    test_end();
}

static void test_decode_window(void) {
    test_begin("decode: window decoding (crop + skipped rows) is bit-identical to a full decode");
    prep_decoder *d = prep_decoder_new();
    int shapes[][2] = {{320, 240}, {240, 320}, {333, 199}, {600, 100}, {90, 400}};
    int geoms[][2] = {{256, 256}, {256, 224}, {64, 64}, {128, 96}};
    uint8_t *a = malloc(256 * 256 * 3), *b = malloc(256 * 256 * 3);
    int bad = 0, cases = 0;
    for (int kind = FX_RGB420; kind <= FX_CMYK_PLAIN; kind++)
        for (int s = 0; s < 5; s++) {
            unsigned long n;
            unsigned char *jpg = jpeg_of(shapes[s][0], shapes[s][1], kind, 90, 50 + s, 8, &n, NULL);
            for (int gi = 0; gi < 4; gi++) {
                prep_img_info i1, i2;
                int R = geoms[gi][0], C = geoms[gi][1];
                prep_decoder_options(d, 0, 0);
                int s1 = prep_decode(d, jpg, n, R, C, a, &i1);
                prep_decoder_options(d, 1, 0);
                int s2 = prep_decode(d, jpg, n, R, C, b, &i2);
                cases++;
                if (s1 != PREP_IMG_OK || s2 != PREP_IMG_OK || memcmp(a, b, (size_t)C * C * 3)) {
                    bad++;
                    printf("  kind %d %dx%d -> %d/%d differs (status %d %d)\n", kind, shapes[s][0], shapes[s][1], R, C, s1, s2);
                }
            }
            free(jpg);
        }
    CHECK(!bad, "%d of %d cases differ", bad, cases);
    prep_decoder_free(d);
    free(a); free(b);
    test_end();
}

static void test_decode_vs_reference(void) {
    test_begin("decode+resize equals full decode + reference resize within 1 level; DCT prescale within mean 1, max 16");
    prep_decoder *d = prep_decoder_new();
    uint8_t *out = malloc(256 * 256 * 3);
    double *ref = malloc(sizeof(double) * 256 * 256 * 3);
    struct { int w, h, R, C, kind; } cs[] = {{320, 240, 256, 256, FX_RGB420}, {200, 300, 256, 224, FX_GRAY},
                                             {50, 40, 64, 64, FX_CMYK_ADOBE}, {1600, 1200, 256, 256, FX_RGB420},
                                             {2000, 900, 128, 112, FX_PROG}};
    for (int t = 0; t < 5; t++) {
        unsigned long n;
        unsigned char *jpg = jpeg_of(cs[t].w, cs[t].h, cs[t].kind, 90, 70 + t, 4, &n, NULL);
        uint8_t *full;
        int w, h, c;
        prep_img_info info, di;
        CHECK(prep_decode_raw(jpg, n, 8, 0, &full, &w, &h, &c, &info) == PREP_IMG_OK, "raw decode");
        ref_resize(full, w, h, cs[t].R, cs[t].C, ref);
        int st = prep_decode(d, jpg, n, cs[t].R, cs[t].C, out, &di);
        CHECK(st == PREP_IMG_OK, "decode status %d: %s", st, di.msg);
        double md = 0, sum = 0;
        size_t m = (size_t)cs[t].C * cs[t].C * 3;
        for (size_t i = 0; i < m; i++) { double e = fabs(out[i] - floor(ref[i] + 0.5)); sum += e; if (e > md) md = e; }
        if (di.scale == 8) CHECK(md <= 1, "%dx%d: max diff %g", cs[t].w, cs[t].h, md);
        else CHECK(sum / m <= 1.0 && md <= 16, "%dx%d prescaled %d/8: mean %.3f max %g", cs[t].w, cs[t].h, di.scale, sum / m, md);
        if (t >= 3) CHECK(di.scale < 8, "%dx%d should be DCT-prescaled", cs[t].w, cs[t].h);
        free(full); free(jpg);
    }
    prep_decoder_free(d);
    free(out); free(ref);
    test_end();
}

static void test_decode_broken(void) {
    test_begin("decode: truncated and corrupt files are skipped with a reason, warnings convert, decoder recovers");
    prep_decoder *d = prep_decoder_new();
    uint8_t *out = malloc(64 * 64 * 3), *ok = malloc(64 * 64 * 3);
    unsigned long n;
    unsigned char *jpg = jpeg_of(200, 150, FX_RGB420, 90, 5, 6, &n, NULL);
    prep_img_info info;
    CHECK(prep_decode(d, jpg, n, 64, 64, ok, &info) == PREP_IMG_OK, "good file: %s", info.msg);
    int st = prep_decode(d, jpg, n / 2, 64, 64, out, &info);
    CHECK(st == PREP_IMG_SKIP && !strcmp(info.msg, "truncated JPEG (premature end of data)"), "half file: %d %s", st, info.msg);
    st = prep_decode(d, jpg, n - 2, 64, 64, out, &info);
    CHECK(st == PREP_IMG_SKIP && strstr(info.msg, "truncated"), "missing EOI counts as truncated: %d %s", st, info.msg);
    st = prep_decode(d, jpg, 200, 64, 64, out, &info);
    CHECK(st == PREP_IMG_SKIP, "header only: %d %s", st, info.msg);
    unsigned char *bad = malloc(n + 8);
    memcpy(bad, jpg, n);
    for (unsigned long k = 2; k + 9 < n; k++)
        if (bad[k] == 0xFF && bad[k + 1] == 0xC0) { bad[k + 9] = 7; break; }   /* 7 components */
    st = prep_decode(d, bad, n, 64, 64, out, &info);
    CHECK(st == PREP_IMG_SKIP && !strncmp(info.msg, "corrupt JPEG: ", 14), "bad SOF: %d %s", st, info.msg);
    unsigned long sos = 2;   /* junk between header segments: libjpeg warns and skips it */
    while (sos + 1 < n && !(jpg[sos] == 0xFF && jpg[sos + 1] == 0xDA)) sos++;
    memcpy(bad, jpg, sos);
    memcpy(bad + sos, "\x12\x34\x56\x78\x9a", 5);
    memcpy(bad + sos + 5, jpg + sos, n - sos);
    st = prep_decode(d, bad, n + 5, 64, 64, out, &info);
    CHECK(st == PREP_IMG_WARN && strstr(info.msg, "extraneous bytes"), "junk before EOI: %d %s", st, info.msg);
    CHECK(!memcmp(out, ok, 64 * 64 * 3), "a warning must not change the pixels");
    memset(out, 0, 64 * 64 * 3);
    CHECK(prep_decode(d, jpg, n, 64, 64, out, &info) == PREP_IMG_OK && !memcmp(out, ok, 64 * 64 * 3), "decoder reuse after errors");
    unsigned char *one = jpeg_of(1, 1, FX_RGB420, 90, 1, 0, &n, NULL);
    CHECK(prep_decode(d, one, n, 64, 64, out, &info) == PREP_IMG_OK, "1x1: %s", info.msg);
    int flat = 1;
    for (int i = 3; i < 64 * 64 * 3; i++) flat &= out[i] == out[i % 3];
    CHECK(flat, "1x1 upscales to a flat image");
    prep_decoder_free(d);
    free(out); free(ok); free(bad); free(jpg); free(one);
    test_end();
}

/* --store jpeg: which files keep their bytes, which are re-encoded, at what size; skips as
 * prep_decode; the encoder's buffer is reused (run under ASan too). */
static void test_store_jpeg(void) {
    test_begin("store jpeg: originals kept, others re-encoded to the cap, broken files skipped");
    prep_geom g;
    prep_geometry_cap(2400, 1800, 512, &g);
    CHECK(g.rw == 512 && g.rh == 384 && g.cw == 512 && g.ch == 384, "2400x1800 cap 512: %dx%d", g.rw, g.rh);
    prep_geometry_cap(375, 500, 256, &g);
    CHECK(g.rw == 192 && g.rh == 256, "375x500 cap 256: %dx%d", g.rw, g.rh);
    prep_geometry_cap(1000, 3, 100, &g);
    CHECK(g.rw == 100 && g.rh == 1, "1000x3 cap 100 keeps a pixel: %dx%d", g.rw, g.rh);
    prep_geometry_cap(300, 200, 512, &g);
    CHECK(g.rw == 300 && g.rh == 200, "never enlarged: %dx%d", g.rw, g.rh);
    prep_decoder *d = prep_decoder_new();
    const struct { int w, h, kind, keep, sw, sh; } cs[] = {
        {320, 240, FX_RGB420, 1, 320, 240}, {200, 300, FX_RGB444, 1, 200, 300}, {700, 300, FX_RGB420, 0, 512, 219},
        {150, 100, FX_GRAY, 0, 150, 100}, {260, 200, FX_PROG, 0, 260, 200}, {240, 180, FX_CMYK_ADOBE, 0, 240, 180},
        {180, 240, FX_YCCK, 0, 180, 240}, {1, 1, FX_RGB420, 1, 1, 1}};
    for (unsigned t = 0; t < sizeof cs / sizeof cs[0]; t++) {
        unsigned long n;
        unsigned char *jpg = jpeg_of(cs[t].w, cs[t].h, cs[t].kind, 90, 40 + t, 6, &n, NULL);
        const uint8_t *out;
        size_t len;
        prep_img_info info;
        int st = prep_store_jpeg(d, jpg, n, 512, 90, &out, &len, &info);
        CHECK(st == PREP_IMG_OK, "case %u: status %d %s", t, st, info.msg);
        CHECK(info.sw == cs[t].sw && info.sh == cs[t].sh, "case %u: stored %dx%d, want %dx%d", t, info.sw, info.sh, cs[t].sw, cs[t].sh);
        CHECK(cs[t].keep ? out == jpg && len == n && !info.reencoded : out != jpg && info.reencoded, "case %u: kept %d", t, out == jpg);
        prep_img_info hi;
        CHECK(!prep_header(d, out, len, &hi) && hi.w == cs[t].sw && hi.h == cs[t].sh && hi.ycc && !hi.progressive,
              "case %u: stored bytes are a %dx%d baseline YCbCr JPEG (got %dx%d)", t, cs[t].sw, cs[t].sh, hi.w, hi.h);
        if (t == 0) {
            int s2 = prep_store_jpeg(d, jpg, n / 2, 512, 90, &out, &len, &info);
            CHECK(s2 == PREP_IMG_SKIP && strstr(info.msg, "truncated"), "truncated original: %d %s", s2, info.msg);
        }
        free(jpg);
    }
    prep_decoder_free(d);
    test_end();
}

int main(void) {
    test_geometry();
    test_taps();
    test_resample_ramp();
    test_resample_reference();
    test_cmyk();
    test_sniff();
    test_decode_kinds();
    test_decode_window();
    test_decode_vs_reference();
    test_decode_broken();
    test_store_jpeg();
    return test_exit();
}
