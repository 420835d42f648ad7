/* PNG and base64 (report/png.h). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "core/crc.h"
#include "report/png.h"

static void be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v; }

/* length, type, data, CRC of type and data */
static void chunk(buf_t *out, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t h[8];
    be32(h, n);
    memcpy(h + 4, type, 4);
    span_t sp[2] = {{h + 4, 4}, {(void *)data, n}};
    uint8_t c[4];
    be32(c, crc32_spans(sp, 2));
    buf_add(out, h, 8);
    if (n) buf_add(out, data, n);
    buf_add(out, c, 4);
}

int png_encode(buf_t *out, const uint8_t *rgb, int w, int h) {
    size_t row = (size_t)w * 3 + 1, raw_n = row * (size_t)h;
    uint8_t *raw = malloc(raw_n);
    uLongf zn = compressBound((uLong)raw_n);
    uint8_t *z = malloc(zn);
    int rc = -1;
    if (raw && z) {
        for (int y = 0; y < h; y++) {
            raw[y * row] = 0;   /* filter type none: the pictures are flat colour blocks, deflate does the rest */
            memcpy(raw + y * row + 1, rgb + (size_t)y * w * 3, (size_t)w * 3);
        }
        if (compress2(z, &zn, raw, (uLong)raw_n, 9) == Z_OK) {
            static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
            uint8_t ihdr[13];
            be32(ihdr, (uint32_t)w);
            be32(ihdr + 4, (uint32_t)h);
            ihdr[8] = 8;    /* bits per sample */
            ihdr[9] = 2;    /* truecolour */
            ihdr[10] = ihdr[11] = ihdr[12] = 0;   /* deflate, adaptive filtering, no interlace */
            buf_add(out, sig, 8);
            chunk(out, "IHDR", ihdr, 13);
            chunk(out, "IDAT", z, (uint32_t)zn);
            chunk(out, "IEND", NULL, 0);
            rc = out->oom ? -1 : 0;
        }
    }
    free(raw);
    free(z);
    return rc;
}

void base64_append(buf_t *out, const uint8_t *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
        buf_add(out, q, 4);
    }
}
