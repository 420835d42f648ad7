/* Files, atomic writes, CRC, hashing and the shuffle's random numbers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "prep.h"

const char *prep_prog = "semaim-prep";

void prep_err(const char *fmt, ...) {
    /* One line per problem, whole lines only: ranks and threads share stderr. */
    char line[2048];
    int n = snprintf(line, sizeof line, "%s: ", prep_prog);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    if (len + 1 < sizeof line) { line[len] = '\n'; line[len + 1] = 0; }
    fputs(line, stderr);
    fflush(stderr);
}

/* ---------------------------------------------------------------- growable buffer */
int prep_buf_reserve(prep_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) { b->oom = 1; return -1; }
    b->s = p; b->cap = cap;
    return 0;
}

void prep_buf_add(prep_buf *b, const char *s, size_t n) {
    if (prep_buf_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void prep_buf_puts(prep_buf *b, const char *s) { prep_buf_add(b, s, strlen(s)); }

void prep_buf_printf(prep_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || prep_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void prep_buf_free(prep_buf *b) { free(b->s); memset(b, 0, sizeof *b); }

/* ---------------------------------------------------------------- files */
int prep_read_file(const char *path, uint8_t **buf, size_t *cap, size_t *n, char *why, size_t wlen) {
    /* O_NONBLOCK: a FIFO named like a JPEG must not hang the run (regular files ignore it). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) { snprintf(why, wlen, "cannot open: %s", strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st)) { snprintf(why, wlen, "cannot stat: %s", strerror(errno)); close(fd); return -1; }
    if (!S_ISREG(st.st_mode)) { snprintf(why, wlen, "not a regular file"); close(fd); return -1; }
    if (st.st_size > PREP_MAX_FILE) { snprintf(why, wlen, "file too large for an image (%lld bytes)", (long long)st.st_size); close(fd); return -1; }
    size_t want = (size_t)st.st_size;
    if (want + 1 > *cap) {
        uint8_t *p = realloc(*buf, want + 1);
        if (!p) { snprintf(why, wlen, "out of memory reading %zu bytes", want); close(fd); return -1; }
        *buf = p; *cap = want + 1;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, *buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { snprintf(why, wlen, "read error: %s", strerror(errno)); close(fd); return -1; }
        if (r == 0) break;   /* shrank under us: use what is there */
        got += (size_t)r;
    }
    close(fd);
    (*buf)[got] = 0;
    *n = got;
    return 0;
}

int prep_slurp(const char *path, char **text, size_t *n) {
    uint8_t *buf = NULL; size_t cap = 0;
    char why[256];
    if (prep_read_file(path, &buf, &cap, n, why, sizeof why)) {
        free(buf);
        errno = errno ? errno : EIO;
        return -1;
    }
    *text = (char *)buf;
    return 0;
}

int prep_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc && (errno == EINVAL || errno == EROFS)) rc = 0;   /* some file systems cannot */
    close(fd);
    return rc;
}

void prep_dirname(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, len, ".");
    else if (slash == path) snprintf(dir, len, "/");
    else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

void prep_tmp_name(const char *path, char *tmp, size_t len) {
    /* A hidden name in the same directory (so rename is atomic) that names the writer:
     * stale ones are recognisable and never look like finished files. */
    const char *slash = strrchr(path, '/');
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    if (slash) snprintf(tmp, len, "%.*s/.%s.tmp.%s.%ld", (int)(slash - path), path, slash + 1, host, (long)getpid());
    else snprintf(tmp, len, ".%s.tmp.%s.%ld", path, host, (long)getpid());
}

int prep_commit(const char *tmp, const char *path, char *why, size_t wlen) {
    /* fsync the data, then rename, then fsync the directory that holds the new name. */
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd)) {
        snprintf(why, wlen, "%s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    if (rename(tmp, path)) { snprintf(why, wlen, "rename %s -> %s: %s", tmp, path, strerror(errno)); return -1; }
    char dir[4096];
    prep_dirname(path, dir, sizeof dir);
    if (prep_fsync_dir(dir)) { snprintf(why, wlen, "%s: fsync: %s", dir, strerror(errno)); return -1; }
    return 0;
}

int prep_write_atomic(const char *path, const void *data, size_t n, char *why, size_t wlen) {
    char tmp[4200];
    prep_tmp_name(path, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(why, wlen, "%s: %s", tmp, strerror(errno)); return -1; }
    if ((n && fwrite(data, 1, n, f) != n) | fclose(f)) {
        snprintf(why, wlen, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (prep_commit(tmp, path, why, wlen)) { unlink(tmp); return -1; }
    return 0;
}

int prep_mkdirs(const char *path) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, 0777) && errno != EEXIST) return -1;
        p[i] = c;
    }
    struct stat st;
    if (stat(path, &st)) return -1;
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
    return 0;
}

int prep_file_crc(const char *path, uint32_t *crc, uint64_t *bytes) {
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
        c = crc32(c, buf, (uInt)r);
        total += (uint64_t)r;
    }
    free(buf);
    close(fd);
    *crc = (uint32_t)c; *bytes = total;
    return 0;
}

void prep_remove_stale_tmp(const char *path) {
    /* Temporaries of a crashed writer: ".<name>.tmp.<host>.<pid>" next to the final file. */
    char dir[4096], prefix[1024];
    prep_dirname(path, dir, sizeof dir);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(prefix, sizeof prefix, ".%s.tmp.", base);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    size_t pl = strlen(prefix);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, pl)) continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        unlink(full);
    }
    closedir(d);
}

/* ---------------------------------------------------------------- hashing, random */
uint64_t prep_fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001B3ull; }
    return h;
}

uint64_t prep_fnv_str(uint64_t h, const char *s) { return prep_fnv(h, s, strlen(s) + 1); }

uint64_t prep_fnv_int(uint64_t h, int64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    return prep_fnv(h, b, 8);
}

uint64_t prep_splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t prep_bounded(uint64_t *s, uint64_t n) {
    /* Lemire's multiply-shift with rejection: unbiased, and easy to reproduce elsewhere. */
    unsigned __int128 m = (unsigned __int128)prep_splitmix(s) * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = (0 - n) % n;
        while (l < t) { m = (unsigned __int128)prep_splitmix(s) * n; l = (uint64_t)m; }
    }
    return (uint64_t)(m >> 64);
}

double prep_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int prep_parse_long(const char *s, long lo, long hi, long *v) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}
