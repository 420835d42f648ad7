#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "core/files.h"

void file_dirname(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, len, ".");
    else if (slash == path) snprintf(dir, len, "/");
    else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

void file_tmp_name(const char *path, char *tmp, size_t len) {
    const char *slash = strrchr(path, '/');
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    if (slash) snprintf(tmp, len, "%.*s/.%s.tmp.%s.%ld", (int)(slash - path), path, slash + 1, host, (long)getpid());
    else snprintf(tmp, len, ".%s.tmp.%s.%ld", path, host, (long)getpid());
}

int file_free_bytes(const char *dir, long long *bytes) {
    struct statvfs v;
    if (statvfs(dir, &v)) return -1;
    *bytes = (long long)v.f_bavail * (long long)(v.f_frsize ? v.f_frsize : v.f_bsize);
    return 0;
}

int file_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc && (errno == EINVAL || errno == EROFS)) rc = 0;   /* some file systems cannot */
    close(fd);
    return rc;
}

int file_commit(const char *tmp, const char *path, err_t *err) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd)) {
        err_set(err, ERR_RUNTIME, "%s: write failed: %s of the temporary %s: %s", path, fd < 0 ? "open" : "fsync", tmp,
                strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path)) {
        err_set(err, ERR_RUNTIME, "%s: write failed: rename from %s: %s", path, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char dir[4096];
    file_dirname(path, dir, sizeof dir);
    if (file_fsync_dir(dir))
        return err_set(err, ERR_RUNTIME, "%s: written, but the fsync of its folder %s failed: %s", path, dir, strerror(errno));
    return 0;
}

int file_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

int file_write_tmp(const char *path, const span_t *s, int k, char *tmp, size_t tmplen, err_t *err) {
    file_tmp_name(path, tmp, tmplen);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(err, ERR_RUNTIME, "%s: write failed: cannot create the temporary %s: %s", path, tmp, strerror(errno));
    int bad = 0;
    for (int i = 0; i < k && !bad; i++) bad = file_write_all(fd, s[i].p, s[i].n);
    int e = errno;
    if (close(fd) && !bad) { bad = 1; e = errno; }
    if (bad) {
        unlink(tmp);
        return err_set(err, ERR_RUNTIME, "%s: write failed: %s", path, strerror(e));
    }
    return 0;
}

int file_write_atomic(const char *path, const span_t *s, int k, err_t *err) {
    char tmp[4200];
    if (file_write_tmp(path, s, k, tmp, sizeof tmp, err)) return -1;
    return file_commit(tmp, path, err);
}

/* Removes dir's entries ".<prefix>*.tmp.*" (exact: ".<prefix>.tmp.*"). */
static void remove_tmps(const char *dir, const char *prefix, int exact) {
    char head[1024];
    snprintf(head, sizeof head, exact ? ".%s.tmp." : ".%s", prefix);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    size_t hl = strlen(head);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, head, hl) || (!exact && !strstr(e->d_name + hl, ".tmp."))) continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        unlink(full);
    }
    closedir(d);
}

void file_remove_stale_tmp(const char *path) {
    char dir[4096];
    file_dirname(path, dir, sizeof dir);
    const char *base = strrchr(path, '/');
    remove_tmps(dir, base ? base + 1 : path, 1);
}

void file_remove_stale_tmps(const char *dir, const char *prefix) { remove_tmps(dir, prefix, 0); }

int file_mkdirs(const char *path) {
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

int file_read(const char *path, long max_bytes, const char *what, uint8_t **buf, size_t *cap, size_t *n, err_t *err) {
    /* O_NONBLOCK: a FIFO named like a data file must not hang the run (regular files ignore it). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return err_set(err, ERR_INPUT, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) { err_set(err, ERR_INPUT, "cannot stat: %s", strerror(errno)); close(fd); return -1; }
    if (!S_ISREG(st.st_mode)) { err_set(err, ERR_INPUT, "not a regular file"); close(fd); return -1; }
    if (st.st_size > max_bytes) {
        err_set(err, ERR_INPUT, "file too large for %s (%lld bytes)", what, (long long)st.st_size);
        close(fd);
        return -1;
    }
    size_t want = (size_t)st.st_size;
    if (want + 1 > *cap) {
        uint8_t *p = realloc(*buf, want + 1);
        if (!p) { err_set(err, ERR_RUNTIME, "out of memory reading %zu bytes", want); close(fd); return -1; }
        *buf = p; *cap = want + 1;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, *buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { err_set(err, ERR_INPUT, "read error: %s", strerror(errno)); close(fd); return -1; }
        if (r == 0) break;   /* shrank under us: use what is there */
        got += (size_t)r;
    }
    close(fd);
    (*buf)[got] = 0;
    *n = got;
    return 0;
}

int file_slurp(const char *path, char **text, size_t *n) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    err_t e;
    errno = 0;
    if (file_read(path, 1L << 30, "a text file", &buf, &cap, n, &e)) {
        free(buf);
        errno = errno ? errno : EIO;
        return -1;
    }
    *text = (char *)buf;
    return 0;
}
