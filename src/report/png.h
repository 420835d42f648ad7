/* Pictures for the reports: an 8-bit RGB PNG encoder (zlib deflate, filter 0, CRCs from
 * core/crc.h) and base64, to embed a PNG in an SVG. */
#ifndef SEMAIM_REPORT_PNG_H
#define SEMAIM_REPORT_PNG_H
#include <stdint.h>
#include "core/buf.h"

/* rgb: h rows of w pixels, 3 bytes each. Appends the file to out; 0, or -1 (out of memory). */
int png_encode(buf_t *out, const uint8_t *rgb, int w, int h);
/* Appends the base64 (RFC 4648, with padding) of p[0..n) to out. */
void base64_append(buf_t *out, const uint8_t *p, size_t n);
#endif
