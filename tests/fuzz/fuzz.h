/* What every fuzz target shares (tests/fuzz/fuzz_*.c, one parser of outside bytes each).
 *
 * A target is libFuzzer's LLVMFuzzerTestOneInput. Built with clang -fsanitize=fuzzer it is
 * a fuzzer (make fuzz, build/fuzz/bin/); linked with tests/fuzz/replay.c by the project's
 * own compiler it replays files once each (build/replay/, build/asan/replay/: what make test
 * runs on tests/fuzz/regress/ and tests/fuzz/seeds/, clang or not).
 *
 * The readers under test take paths, so an input is written to a file first: into a private
 * folder on a RAM file system when there is one (FUZZ_TMPDIR, else /dev/shm, else TMPDIR),
 * removed at exit. FUZZ_CHECK is for properties the target asserts beyond "no crash" (a
 * parsed tree writes back to text that parses to the same tree): it aborts, which libFuzzer
 * reports like any crash. */
#ifndef SEMAIM_FUZZ_H
#define SEMAIM_FUZZ_H
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "fuzz property failed at %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); abort(); } } while (0)

/* FUZZ_VERBOSE=1: the targets say what became of each input (to see which checks seeds reach). */
#define FUZZ_NOTE(...) do { if (getenv("FUZZ_VERBOSE")) { fprintf(stderr, "fuzz: " __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)

static char fuzz_root_[4096];

/* Removes what is inside dir (two levels: targets make at most one level of subfolders). */
static inline void fuzz_clear(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[8192];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
        struct stat st;
        if (!lstat(p, &st) && S_ISDIR(st.st_mode)) { fuzz_clear(p); rmdir(p); }
        else unlink(p);
    }
    closedir(d);
}

static inline void fuzz_cleanup_(void) {
    if (!fuzz_root_[0]) return;
    fuzz_clear(fuzz_root_);
    rmdir(fuzz_root_);
}

/* The target's private folder (created on first use, emptied by fuzz_reset). */
static inline const char *fuzz_dir(void) {
    if (fuzz_root_[0]) return fuzz_root_;
    const char *base = getenv("FUZZ_TMPDIR");
    struct stat st;
    if (!base || !*base) base = !stat("/dev/shm", &st) && S_ISDIR(st.st_mode) && !access("/dev/shm", W_OK) ? "/dev/shm" : NULL;
    if (!base) base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(fuzz_root_, sizeof fuzz_root_, "%s/semaim-fuzz.XXXXXX", base);
    if (!mkdtemp(fuzz_root_)) { perror("fuzz: mkdtemp"); abort(); }
    atexit(fuzz_cleanup_);
    return fuzz_root_;
}

/* Empties the private folder: every input starts from nothing. */
static inline void fuzz_reset(void) { fuzz_clear(fuzz_dir()); }

/* dir/name of the private folder in out. */
static inline const char *fuzz_path(char *out, size_t len, const char *name) {
    snprintf(out, len, "%s/%s", fuzz_dir(), name);
    return out;
}

static inline void fuzz_write(const char *path, const void *data, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { perror(path); abort(); }
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) { perror(path); abort(); }
        p += w; n -= (size_t)w;
    }
    close(fd);
}

static inline void fuzz_mkdir(const char *path) {
    if (mkdir(path, 0755) && access(path, F_OK)) { perror(path); abort(); }
}

/* Structured inputs: the bytes read front to back as choices; past the end every read is 0. */
typedef struct { const uint8_t *p; size_t n; } fz_t;
static inline unsigned fz_u8(fz_t *z) {
    if (!z->n) return 0;
    z->n--;
    return *z->p++;
}
static inline uint32_t fz_u32(fz_t *z) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)fz_u8(z) << (8 * i);
    return v;
}
static inline uint64_t fz_u64(fz_t *z) { return (uint64_t)fz_u32(z) | (uint64_t)fz_u32(z) << 32; }
/* A small integer in [0, n) (n > 0). */
static inline unsigned fz_pick(fz_t *z, unsigned n) { return fz_u8(z) % n; }
/* The next up to want bytes (fewer at the end). */
static inline const uint8_t *fz_take(fz_t *z, size_t want, size_t *got) {
    const uint8_t *p = z->p;
    *got = want < z->n ? want : z->n;
    z->p += *got; z->n -= *got;
    return p;
}

/* Splits data at the first k-1 occurrences of the byte sep: parts[i] / lens[i], k of them
 * (the last holds the rest; missing parts are empty). */
static inline void fuzz_split(const uint8_t *data, size_t n, uint8_t sep, int k, const uint8_t **parts, size_t *lens) {
    for (int i = 0; i < k; i++) {
        const uint8_t *e = i < k - 1 ? memchr(data, sep, n) : NULL;
        size_t len = e ? (size_t)(e - data) : n;
        parts[i] = data;
        lens[i] = len;
        data += e ? len + 1 : len;
        n -= e ? len + 1 : len;
    }
}
#endif
