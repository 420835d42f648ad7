/* Test fixtures for semaim-prep: synthetic photo-like images written as JPEG (every flavour
 * ImageNet contains) plus the broken files a real tree holds. Header-only so that the C unit
 * tests and tests/tools/prep_fixtures.c share it. Uses the libjpeg API directly, not the
 * code under test. */
#ifndef SEMAIM_PREP_FIXTURES_H
#define SEMAIM_PREP_FIXTURES_H
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jpeglib.h>
#include <zlib.h>

/* Not every includer uses every helper. */
#define FX_FN static __attribute__((unused))

FX_FN uint64_t fx_next(uint64_t *s) {  /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
FX_FN double fx_unif(uint64_t *s) { return (fx_next(s) >> 11) * (1.0 / 9007199254740992.0); }

/* Photo-like content: a lit gradient background, a few shaded ellipses, multi-octave value
 * noise for texture and fine grain, so JPEG sizes and decode costs resemble real photos. */
FX_FN void fx_synth(uint8_t *rgb, int w, int h, uint64_t seed, double grain) {
    uint64_t s = seed * 7919 + 1;
    double bg[2][3];
    for (int i = 0; i < 2; i++) for (int c = 0; c < 3; c++) bg[i][c] = 40 + 180 * fx_unif(&s);
    enum { NE = 6, G = 9 };
    double ex[NE], ey[NE], ea[NE], eb[NE], ecol[NE][3];
    for (int e = 0; e < NE; e++) {
        ex[e] = fx_unif(&s) * w; ey[e] = fx_unif(&s) * h;
        ea[e] = (0.08 + 0.3 * fx_unif(&s)) * w; eb[e] = (0.08 + 0.3 * fx_unif(&s)) * h;
        for (int c = 0; c < 3; c++) ecol[e][c] = 255 * fx_unif(&s);
    }
    double lat[3][G][G];   /* coarse lattices for value noise, 3 octaves */
    for (int o = 0; o < 3; o++) for (int i = 0; i < G; i++) for (int j = 0; j < G; j++) lat[o][i][j] = fx_unif(&s) - 0.5;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double u = (x + 0.5) / w, v = (y + 0.5) / h, px[3];
            for (int c = 0; c < 3; c++) px[c] = bg[0][c] * (1 - v) + bg[1][c] * v + 20 * sin(6.3 * u + c);
            for (int e = 0; e < NE; e++) {
                double dx = (x - ex[e]) / ea[e], dy = (y - ey[e]) / eb[e], r = dx * dx + dy * dy;
                if (r < 1) for (int c = 0; c < 3; c++) px[c] = ecol[e][c] * (1 - 0.4 * r) + 0.4 * r * px[c];
            }
            double tex = 0;
            for (int o = 0; o < 3; o++) {
                double f = (double)(2 << o), gx = u * f, gy = v * f;
                int ix = (int)gx, iy = (int)gy;
                double fx = gx - ix, fy = gy - iy;
                ix %= G - 1; iy %= G - 1;
                double a = lat[o][iy][ix] * (1 - fx) + lat[o][iy][ix + 1] * fx;
                double b = lat[o][iy + 1][ix] * (1 - fx) + lat[o][iy + 1][ix + 1] * fx;
                tex += (a * (1 - fy) + b * fy) * (60.0 / (1 + o));
            }
            for (int c = 0; c < 3; c++) {
                double val = px[c] + tex + grain * (fx_unif(&s) - 0.5);
                rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val + 0.5);
            }
        }
    }
}

enum { FX_RGB420, FX_RGB444, FX_GRAY, FX_PROG, FX_CMYK_ADOBE, FX_YCCK, FX_CMYK_PLAIN };

/* Encodes rgb (w x h) as a JPEG in the given flavour into a malloc'd buffer. CMYK flavours
 * store ink derived from the RGB picture: Adobe ones inverted, as Photoshop writes them. */
static unsigned char *fx_encode(const uint8_t *rgb, int w, int h, int kind, int quality, unsigned long *size) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;
    *size = 0;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, size);
    ci.image_width = (JDIMENSION)w; ci.image_height = (JDIMENSION)h;
    int nc = 3;
    uint8_t *src = NULL;
    if (kind == FX_GRAY) {
        nc = 1; ci.in_color_space = JCS_GRAYSCALE;
        src = malloc((size_t)w * h);
        for (size_t i = 0; i < (size_t)w * h; i++)
            src[i] = (uint8_t)((299 * rgb[3 * i] + 587 * rgb[3 * i + 1] + 114 * rgb[3 * i + 2] + 500) / 1000);
    } else if (kind == FX_CMYK_ADOBE || kind == FX_YCCK || kind == FX_CMYK_PLAIN) {
        nc = 4; ci.in_color_space = JCS_CMYK;
        src = malloc((size_t)w * h * 4);
        for (size_t i = 0; i < (size_t)w * h; i++) {
            int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
            int kk = r > g ? (r > b ? r : b) : (g > b ? g : b);  /* inverted K = max channel */
            int v[4];
            v[0] = kk ? (r * 255 + kk / 2) / kk : 255; v[1] = kk ? (g * 255 + kk / 2) / kk : 255;
            v[2] = kk ? (b * 255 + kk / 2) / kk : 255; v[3] = kk;
            for (int c = 0; c < 4; c++) {
                if (v[c] > 255) v[c] = 255;
                src[4 * i + c] = (uint8_t)(kind == FX_CMYK_PLAIN ? 255 - v[c] : v[c]);
            }
        }
    } else {
        ci.in_color_space = JCS_RGB;
    }
    ci.input_components = nc;
    jpeg_set_defaults(&ci);
    if (kind == FX_CMYK_ADOBE || kind == FX_CMYK_PLAIN) jpeg_set_colorspace(&ci, JCS_CMYK);
    if (kind == FX_YCCK) jpeg_set_colorspace(&ci, JCS_YCCK);
    if (kind == FX_CMYK_PLAIN) ci.write_Adobe_marker = FALSE;
    if (kind == FX_RGB444) for (int c = 0; c < 3; c++) ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
    jpeg_set_quality(&ci, quality, TRUE);
    if (kind == FX_PROG) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    const uint8_t *pix = src ? src : rgb;
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)ci.next_scanline * w * nc);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(src);
    return buf;
}

FX_FN int fx_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "fixtures: %s: %s\n", path, strerror(errno)); return -1; }
    if (n && fwrite(data, 1, n, f) != n) { fclose(f); return -1; }
    return fclose(f) ? -1 : 0;
}

FX_FN int fx_jpeg(const char *path, int w, int h, int kind, int quality, uint64_t seed, double grain) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    fx_synth(rgb, w, h, seed, grain);
    unsigned long n;
    unsigned char *buf = fx_encode(rgb, w, h, kind, quality, &n);
    int rc = fx_write(path, buf, n);
    free(buf); free(rgb);
    return rc;
}

/* A genuine 2x2 RGB PNG (stored deflate), so "a PNG named .JPEG" is a real PNG. */
FX_FN void fx_png_chunk(unsigned char **p, const char *type, const unsigned char *d, unsigned n) {
    unsigned char *q = *p;
    q[0] = (unsigned char)(n >> 24); q[1] = (unsigned char)(n >> 16); q[2] = (unsigned char)(n >> 8); q[3] = (unsigned char)n;
    memcpy(q + 4, type, 4);
    if (n) memcpy(q + 8, d, n);
    uLong crc = crc32(0, q + 4, 4 + n);
    q[8 + n] = (unsigned char)(crc >> 24); q[9 + n] = (unsigned char)(crc >> 16);
    q[10 + n] = (unsigned char)(crc >> 8); q[11 + n] = (unsigned char)crc;
    *p = q + 12 + n;
}
FX_FN int fx_png(const char *path) {
    unsigned char raw[2 * (1 + 6)] = {0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255};
    unsigned char z[64]; uLongf zn = sizeof z;
    compress(z, &zn, raw, sizeof raw);
    unsigned char ihdr[13] = {0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0};
    unsigned char out[256], *p = out + 8;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    fx_png_chunk(&p, "IHDR", ihdr, 13);
    fx_png_chunk(&p, "IDAT", z, (unsigned)zn);
    fx_png_chunk(&p, "IEND", NULL, 0);
    return fx_write(path, out, (size_t)(p - out));
}

FX_FN int fx_mkdir(const char *path) {
    if (mkdir(path, 0777) && errno != EEXIST) { fprintf(stderr, "fixtures: mkdir %s: %s\n", path, strerror(errno)); return -1; }
    return 0;
}

/* n photo-like 500x375 (every fifth 375x500) quality-90 4:2:0 JPEGs in 10 class folders; the
 * grain brings them to ~90 KB each, the size of a typical ImageNet photo of that shape. */
FX_FN int fx_bench_tree(const char *root, int n) {
    char p[4096];
    snprintf(p, sizeof p, "%s", root); if (fx_mkdir(p)) return -1;
    snprintf(p, sizeof p, "%s/train", root); if (fx_mkdir(p)) return -1;
    for (int c = 0; c < 10; c++) { snprintf(p, sizeof p, "%s/train/n%08d", root, c); if (fx_mkdir(p)) return -1; }
    for (int i = 0; i < n; i++) {
        int portrait = i % 5 == 4;
        snprintf(p, sizeof p, "%s/train/n%08d/img_%05d.JPEG", root, i % 10, i);
        if (fx_jpeg(p, portrait ? 375 : 500, portrait ? 500 : 375, FX_RGB420, 90, 1000 + i, 60)) return -1;
    }
    return 0;
}

/* n ImageNet-like photos of varied sizes in 10 class folders, quality 90 4:2:0: by index mod
 * 10, five 500x375 (ImageNet's commonest size), then 640x480, 800x600, 1024x768, 1600x1200
 * and 3000x2250 (6.75 MP, the tail of camera originals); every third one is portrait. Median
 * 0.19 MP like ImageNet-1k's train set, but a heavier tail (mean 1.1 MP against ImageNet's
 * ~0.15 MP), so rates measured on it are on the slow side. */
FX_FN int fx_photo_tree(const char *root, int n) {
    static const int sz[10][2] = {{500, 375}, {500, 375}, {500, 375}, {500, 375}, {500, 375},
                                  {640, 480}, {800, 600}, {1024, 768}, {1600, 1200}, {3000, 2250}};
    char p[4096];
    snprintf(p, sizeof p, "%s", root); if (fx_mkdir(p)) return -1;
    snprintf(p, sizeof p, "%s/train", root); if (fx_mkdir(p)) return -1;
    for (int c = 0; c < 10; c++) { snprintf(p, sizeof p, "%s/train/n%08d", root, c); if (fx_mkdir(p)) return -1; }
    for (int i = 0; i < n; i++) {
        int w = sz[i % 10][0], h = sz[i % 10][1], portrait = i % 3 == 2;
        snprintf(p, sizeof p, "%s/train/n%08d/img_%05d.JPEG", root, i % 10, i);
        if (fx_jpeg(p, portrait ? h : w, portrait ? w : h, FX_RGB420, 90, 5000 + i, 60)) return -1;
    }
    return 0;
}

/* The test tree: every kind of file the issue lists, in class folders plus a flat val/ with
 * LOC_val_solution.csv. Expected outcome per file is in tests/prep/expected.py. */
FX_FN int fx_suite_tree(const char *root) {
    char p[4096], d[4096];
    const char *cls[] = {"cls_a", "cls_b", "cls c \xc3\xb1", "empty_class"};
    if (fx_mkdir(root)) return -1;
    snprintf(d, sizeof d, "%s/train", root); if (fx_mkdir(d)) return -1;
    for (int c = 0; c < 4; c++) { snprintf(p, sizeof p, "%s/train/%s", root, cls[c]); if (fx_mkdir(p)) return -1; }
    struct { const char *cls, *name; int w, h, kind, q; double grain; } jp[] = {
        {"cls_a", "rgb_420.JPEG", 320, 240, FX_RGB420, 90, 6},
        {"cls_a", "rgb_444.jpg", 200, 300, FX_RGB444, 92, 6},
        {"cls_a", "gray.jpeg", 150, 100, FX_GRAY, 90, 6},
        {"cls_a", "progressive.JPG", 260, 200, FX_PROG, 88, 6},
        {"cls_a", "with space \xc3\xbc.JPEG", 300, 280, FX_RGB420, 90, 6},
        {"cls_a", "tiny_1x1.jpg", 1, 1, FX_RGB420, 90, 0},
        {"cls_b", "cmyk_adobe.jpg", 240, 180, FX_CMYK_ADOBE, 95, 4},
        {"cls_b", "ycck.jpg", 180, 240, FX_YCCK, 95, 4},
        {"cls_b", "cmyk_plain.jpg", 120, 90, FX_CMYK_PLAIN, 95, 4},
        {"cls_b", "large.JPEG", 2400, 1800, FX_RGB420, 90, 4},
        {"cls c \xc3\xb1", "wide.jpg", 600, 100, FX_RGB420, 90, 6},
        {"cls c \xc3\xb1", "tall.jpg", 90, 400, FX_RGB444, 90, 6},
        {"cls c \xc3\xb1", "small.jpg", 40, 30, FX_RGB420, 95, 6},
    };
    int njp = (int)(sizeof jp / sizeof jp[0]);
    for (int i = 0; i < njp; i++) {
        snprintf(p, sizeof p, "%s/train/%s/%s", root, jp[i].cls, jp[i].name);
        if (fx_jpeg(p, jp[i].w, jp[i].h, jp[i].kind, jp[i].q, 100 + i, jp[i].grain)) return -1;
    }
    /* A decodable file with a libjpeg warning: junk bytes before the SOS marker. */
    {
        uint8_t *rgb = malloc(160 * 120 * 3);
        fx_synth(rgb, 160, 120, 77, 6);
        unsigned long n; unsigned char *buf = fx_encode(rgb, 160, 120, FX_RGB420, 90, &n);
        unsigned char *b2 = malloc(n + 8);
        unsigned long sos = 2;
        while (sos + 1 < n && !(buf[sos] == 0xFF && buf[sos + 1] == 0xDA)) sos++;
        memcpy(b2, buf, sos); memcpy(b2 + sos, "\x12\x34\x56\x78\x9a\xbc", 6); memcpy(b2 + sos + 6, buf + sos, n - sos);
        snprintf(p, sizeof p, "%s/train/cls_b/warn_extraneous.jpg", root);
        int rc = fx_write(p, b2, n + 6);
        /* Truncated: the first 40% of the same picture's bytes. */
        snprintf(p, sizeof p, "%s/train/cls_b/truncated.jpg", root);
        rc |= fx_write(p, buf, n * 2 / 5);
        /* Corrupt: the SOF0 marker's height/width zeroed. */
        for (unsigned long k = 2; k + 9 < n; k++)
            if (buf[k] == 0xFF && buf[k + 1] == 0xC0) { memset(buf + k + 5, 0, 4); break; }
        snprintf(p, sizeof p, "%s/train/cls_b/corrupt.jpg", root);
        rc |= fx_write(p, buf, n);
        free(b2); free(buf); free(rgb);
        if (rc) return -1;
    }
    snprintf(p, sizeof p, "%s/train/cls_b/png_named.JPEG", root); if (fx_png(p)) return -1;
    snprintf(p, sizeof p, "%s/train/cls_b/empty.JPEG", root); if (fx_write(p, "", 0)) return -1;
    snprintf(p, sizeof p, "%s/train/cls_b/notes.txt", root); if (fx_write(p, "hello\n", 6)) return -1;
    snprintf(p, sizeof p, "%s/train/%s/broken_link.jpg", root, cls[2]);
    unlink(p);
    if (symlink("does-not-exist.jpg", p)) return -1;
    snprintf(p, sizeof p, "%s/train/%s/pipe.jpg", root, cls[2]);   /* a FIFO must not hang the tool */
    unlink(p);
    if (mkfifo(p, 0666)) return -1;
    snprintf(p, sizeof p, "%s/train/stray.jpg", root);
    if (fx_jpeg(p, 64, 48, FX_RGB420, 90, 5, 6)) return -1;
    /* Flat val/ with Kaggle's LOC_val_solution.csv at the root. */
    snprintf(d, sizeof d, "%s/val", root); if (fx_mkdir(d)) return -1;
    /* LOC wnids cannot hold spaces, so val uses the plain class names; 5 has no line, 6 names
     * a class that is not in train/. */
    const char *vcls[] = {"cls_b", "cls_a", "cls_b", "cls_a", "-", "n99999999", "cls_a", "cls_b"};
    snprintf(p, sizeof p, "%s/LOC_val_solution.csv", root);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fprintf(f, "ImageId,PredictionString\n");
    for (int i = 0; i < 8; i++) {
        snprintf(p, sizeof p, "%s/val/ILSVRC2012_val_%08d.JPEG", root, i + 1);
        if (fx_jpeg(p, 280 + 10 * i, 250 - 5 * i, i == 2 ? FX_PROG : FX_RGB420, 90, 500 + i, 6)) { fclose(f); return -1; }
        if (vcls[i][0] != '-') fprintf(f, "ILSVRC2012_val_%08d,%s 1 2 3 4 %s 5 6 7 8\n", i + 1, vcls[i], vcls[i]);
    }
    return fclose(f) ? -1 : 0;
}
#endif
