/* CRC-32 (zlib's polynomial, as in zip and PNG) over buffers and files: checkpoints, shard
 * records and the manifest use it to tell a whole file from a damaged one. */
#ifndef SEMAIM_CRC_H
#define SEMAIM_CRC_H
#include <stddef.h>
#include <stdint.h>

typedef struct { void *p; size_t n; } span_t;

uint32_t crc32_bytes(const void *p, size_t n);
/* The CRC of the spans' bytes one after another. */
uint32_t crc32_spans(const span_t *s, int k);
/* The CRC and size of a whole file; 0, or -1 with errno set. */
int crc32_file(const char *path, uint32_t *crc, uint64_t *bytes);
#endif
