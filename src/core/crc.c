#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>
#include "core/crc.h"

/* zlib takes a uInt length: feed it at most 1 GiB at a time. */
static uLong crc_more(uLong crc, const unsigned char *b, size_t left) {
    while (left) {
        uInt c = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, b, c);
        b += c; left -= c;
    }
    return crc;
}

uint32_t crc32_bytes(const void *p, size_t n) { return (uint32_t)crc_more(crc32(0L, Z_NULL, 0), p, n); }

uint32_t crc32_spans(const span_t *s, int k) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < k; i++) crc = crc_more(crc, s[i].p, s[i].n);
    return (uint32_t)crc;
}

int crc32_file(const char *path, uint32_t *crc, uint64_t *bytes) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) { close(fd); errno = ENOMEM; return -1; }
    uLong c = crc32(0L, Z_NULL, 0);
    uint64_t total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { int e = errno; free(buf); close(fd); errno = e; return -1; }
        if (r == 0) break;
        c = crc_more(c, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    close(fd);
    *crc = (uint32_t)c; *bytes = total;
    return 0;
}
