/* Fault injection for tests: an LD_PRELOAD library that makes chosen file-system calls fail
 * the way a full or failing disk does, so every writer can be driven into its error path.
 *
 *   FAULT_OP      open | write | fsync | rename  (which calls count; one kind per run)
 *   FAULT_PATH    count only calls on paths containing this text (write/fsync: the path of
 *                 the descriptor; rename: either name). Empty or unset: every regular file
 *   FAULT_NTH     the N-th counted call fails (1-based; default 1)
 *   FAULT_COUNT   that many calls fail from the N-th on (default 1; 0 = all of them)
 *   FAULT_ERRNO   ENOSPC (default), EIO, EDQUOT, EROFS or EACCES
 *   FAULT_PARTIAL 1: a failing write first writes half its bytes and returns the short count
 *                 (what a disk that fills up mid-write does); the next counted write fails
 *   FAULT_LOG     a file that gets one line per injected fault ("fault: write #3 ENOSPC
 *                 PATH"), so a test can tell the fault happened
 *   FAULT_FREE_BYTES  statvfs/fstatvfs report this many bytes available (any path)
 *   FAULT_SLOW_MS the counted calls do not fail but take this many milliseconds more (a
 *                 slow disk): holds a write open long enough for a test to act during it
 *
 * Counted: open/open64/openat/openat64/creat/fopen/fopen64/freopen for writing (O_WRONLY,
 * O_RDWR, O_CREAT, O_TRUNC, O_APPEND; mode w, a or +), write/pwrite/pwrite64/writev/pwritev
 * on regular files, fsync/fdatasync, rename/renameat/renameat2. stdio's own flushes call the
 * kernel inside libc and are not seen: the project writes finished files and metrics lines
 * with write(2) (core/files.h). Each process counts for itself; mpirun's and orted's files
 * never match a test's FAULT_PATH. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { OP_NONE, OP_OPEN, OP_WRITE, OP_FSYNC, OP_RENAME };

static int op = -1, err_no = ENOSPC, partial;
static long nth = 1, count = 1;
static const char *want_path, *log_path;
static long long free_bytes = -1;
static long slow_ms;
static atomic_long seen, partial_armed;

#define REAL(ret, name, ...) \
    static ret (*real_##name)(__VA_ARGS__); \
    if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static void setup(void) {
    if (op >= 0) return;
    const char *o = getenv("FAULT_OP"), *e = getenv("FAULT_ERRNO"), *s;
    int which = OP_NONE;
    if (o && !strcmp(o, "open")) which = OP_OPEN;
    else if (o && !strcmp(o, "write")) which = OP_WRITE;
    else if (o && !strcmp(o, "fsync")) which = OP_FSYNC;
    else if (o && !strcmp(o, "rename")) which = OP_RENAME;
    if ((s = getenv("FAULT_NTH")) && *s) nth = atol(s);
    if ((s = getenv("FAULT_COUNT")) && *s) count = atol(s);
    if ((s = getenv("FAULT_PARTIAL")) && *s) partial = atoi(s);
    if ((s = getenv("FAULT_FREE_BYTES")) && *s) free_bytes = atoll(s);
    if ((s = getenv("FAULT_SLOW_MS")) && *s) slow_ms = atol(s);
    if (e && !strcmp(e, "EIO")) err_no = EIO;
    else if (e && !strcmp(e, "EDQUOT")) err_no = EDQUOT;
    else if (e && !strcmp(e, "EROFS")) err_no = EROFS;
    else if (e && !strcmp(e, "EACCES")) err_no = EACCES;
    want_path = getenv("FAULT_PATH");
    if (want_path && !*want_path) want_path = NULL;
    log_path = getenv("FAULT_LOG");
    op = which;
}

static const char *op_name(int o) {
    return o == OP_OPEN ? "open" : o == OP_WRITE ? "write" : o == OP_FSYNC ? "fsync" : o == OP_RENAME ? "rename" : "?";
}

static void note(int o, long k, const char *path, const char *how) {
    if (!log_path) return;
    REAL(int, open, const char *, int, ...);
    REAL(ssize_t, write, int, const void *, size_t);
    char line[4600];
    int n = snprintf(line, sizeof line, "fault: %s #%ld %s%s pid %ld %s\n", op_name(o), k, strerrorname_np(err_no),
                     how, (long)getpid(), path ? path : "?");
    int fd = real_open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (real_write(fd, line, n > 0 && n < (int)sizeof line ? (size_t)n : strlen(line)) < 0) { /* best effort */ }
    close(fd);
}

/* The path behind a descriptor, if it is a regular file. */
static int fd_path(int fd, char *buf, size_t len) {
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) return -1;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    if (n < 0) return -1;
    buf[n] = 0;
    return 0;
}

/* Names as the program gave them, and relative ones also under the working folder (so
 * FAULT_PATH can be an absolute folder whatever the program's paths look like). */
static int match_one(const char *p) {
    if (!p) return 0;
    if (strstr(p, want_path)) return 1;
    if (p[0] == '/') return 0;
    char full[8192], cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return 0;
    snprintf(full, sizeof full, "%s/%s", cwd, p);
    return strstr(full, want_path) != NULL;
}

static int matches(const char *a, const char *b) { return !want_path || match_one(a) || match_one(b); }

/* 1 if this call of kind o on path(s) a, b is one to fail (errno is then set). */
static int hit(int o, const char *a, const char *b, const char *how) {
    setup();
    if (op != o || !matches(a, b)) return 0;
    long k = atomic_fetch_add(&seen, 1) + 1;
    if (k < nth || (count > 0 && k >= nth + count)) return 0;
    if (slow_ms > 0) {
        struct timespec t = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};
        while (nanosleep(&t, &t) && errno == EINTR) {}
        return 0;
    }
    note(o, k, a, how);
    errno = err_no;
    return 1;
}

static int hit_fd(int o, int fd, const char *how) {
    setup();
    if (op != o) return 0;
    char p[4096];
    if (fd_path(fd, p, sizeof p)) return 0;
    return hit(o, p, NULL, how);
}

static int writes_flags(int flags) { return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)) != 0; }
static int writes_mode(const char *m) { return m && (strchr(m, 'w') || strchr(m, 'a') || strchr(m, '+')); }

/* ---------------------------------------------------------------------------- open */
#define OPEN_LIKE(name)                                                                    \
    int name(const char *path, int flags, ...) {                                           \
        mode_t mode = 0;                                                                   \
        if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); } \
        REAL(int, name, const char *, int, ...);                                           \
        if (writes_flags(flags) && hit(OP_OPEN, path, NULL, "")) return -1;                \
        return real_##name(path, flags, mode);                                             \
    }
OPEN_LIKE(open)
OPEN_LIKE(open64)

#define OPENAT_LIKE(name)                                                                  \
    int name(int dirfd, const char *path, int flags, ...) {                                \
        mode_t mode = 0;                                                                   \
        if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); } \
        REAL(int, name, int, const char *, int, ...);                                      \
        if (writes_flags(flags) && hit(OP_OPEN, path, NULL, "")) return -1;                \
        return real_##name(dirfd, path, flags, mode);                                      \
    }
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)

int creat(const char *path, mode_t mode) {
    REAL(int, creat, const char *, mode_t);
    if (hit(OP_OPEN, path, NULL, "")) return -1;
    return real_creat(path, mode);
}

FILE *fopen(const char *path, const char *mode) {
    REAL(FILE *, fopen, const char *, const char *);
    if (writes_mode(mode) && hit(OP_OPEN, path, NULL, "")) return NULL;
    return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
    REAL(FILE *, fopen64, const char *, const char *);
    if (writes_mode(mode) && hit(OP_OPEN, path, NULL, "")) return NULL;
    return real_fopen64(path, mode);
}

FILE *freopen(const char *path, const char *mode, FILE *f) {
    REAL(FILE *, freopen, const char *, const char *, FILE *);
    if (path && writes_mode(mode) && hit(OP_OPEN, path, NULL, "")) return NULL;
    return real_freopen(path, mode, f);
}

/* ---------------------------------------------------------------------------- write */
/* A failing write; with FAULT_PARTIAL half of it is written first. */
static ssize_t failing_write(int fd, const void *buf, size_t n, off_t off, int positional) {
    REAL(ssize_t, write, int, const void *, size_t);
    REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
    if (partial && n >= 2 && !atomic_exchange(&partial_armed, 1)) {
        atomic_fetch_sub(&seen, 1);   /* the short write does not use up the fault: the next write gets it */
        return positional ? real_pwrite(fd, buf, n / 2, off) : real_write(fd, buf, n / 2);
    }
    atomic_store(&partial_armed, 0);
    return -1;
}

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(ssize_t, write, int, const void *, size_t);
    if (hit_fd(OP_WRITE, fd, partial ? " (partial)" : "")) return failing_write(fd, buf, n, 0, 0);
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
    if (hit_fd(OP_WRITE, fd, partial ? " (partial)" : "")) return failing_write(fd, buf, n, off, 1);
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(ssize_t, pwrite64, int, const void *, size_t, off_t);
    if (hit_fd(OP_WRITE, fd, partial ? " (partial)" : "")) return failing_write(fd, buf, n, off, 1);
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int k) {
    REAL(ssize_t, writev, int, const struct iovec *, int);
    if (hit_fd(OP_WRITE, fd, "")) return -1;
    return real_writev(fd, iov, k);
}

ssize_t pwritev(int fd, const struct iovec *iov, int k, off_t off) {
    REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t);
    if (hit_fd(OP_WRITE, fd, "")) return -1;
    return real_pwritev(fd, iov, k, off);
}

/* ---------------------------------------------------------------------------- fsync */
static int dir_or_file_hit(int fd) {
    setup();
    if (op != OP_FSYNC) return 0;
    char link[64], p[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, p, sizeof p - 1);
    if (n < 0) return 0;
    p[n] = 0;
    struct stat st;
    if (fstat(fd, &st) || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) return 0;
    return hit(OP_FSYNC, p, NULL, S_ISDIR(st.st_mode) ? " (folder)" : "");
}

int fsync(int fd) {
    REAL(int, fsync, int);
    if (dir_or_file_hit(fd)) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(int, fdatasync, int);
    if (dir_or_file_hit(fd)) return -1;
    return real_fdatasync(fd);
}

/* ---------------------------------------------------------------------------- rename */
int rename(const char *a, const char *b) {
    REAL(int, rename, const char *, const char *);
    if (hit(OP_RENAME, a, b, "")) return -1;
    return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b) {
    REAL(int, renameat, int, const char *, int, const char *);
    if (hit(OP_RENAME, a, b, "")) return -1;
    return real_renameat(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags) {
    REAL(int, renameat2, int, const char *, int, const char *, unsigned);
    if (hit(OP_RENAME, a, b, "")) return -1;
    return real_renameat2(da, a, db, b, flags);
}

/* ---------------------------------------------------------------------------- free space */
#define SHRINK(s) do { setup(); if (free_bytes >= 0) { \
    unsigned long bs = (s)->f_frsize ? (s)->f_frsize : (s)->f_bsize ? (s)->f_bsize : 4096; \
    (s)->f_bavail = (s)->f_bfree = free_bytes / (long long)bs; } } while (0)

int statvfs(const char *path, struct statvfs *s) {
    REAL(int, statvfs, const char *, struct statvfs *);
    int rc = real_statvfs(path, s);
    if (!rc) SHRINK(s);
    return rc;
}

int statvfs64(const char *path, struct statvfs64 *s) {
    REAL(int, statvfs64, const char *, struct statvfs64 *);
    int rc = real_statvfs64(path, s);
    if (!rc) SHRINK(s);
    return rc;
}

int fstatvfs(int fd, struct statvfs *s) {
    REAL(int, fstatvfs, int, struct statvfs *);
    int rc = real_fstatvfs(fd, s);
    if (!rc) SHRINK(s);
    return rc;
}
