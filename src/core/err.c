#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "semaim/err.h"

int err_set(err_t *e, int kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->kind = kind;
    return -1;
}

const char *err_say(err_t *e, int kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->kind = kind;
    return e->msg;
}

int err_prefix(err_t *e, const char *fmt, ...) {
    char ctx[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    /* "<ctx>: <old>", cut at the end if it does not fit */
    size_t c = strnlen(ctx, ERR_MSG_MAX - 3), o = strnlen(e->msg, ERR_MSG_MAX - 1);
    if (c + 2 + o > ERR_MSG_MAX - 1) o = ERR_MSG_MAX - 1 - c - 2;
    memmove(e->msg + c + 2, e->msg, o);
    memcpy(e->msg, ctx, c);
    e->msg[c] = ':';
    e->msg[c + 1] = ' ';
    e->msg[c + 2 + o] = 0;
    return -1;
}

int err_kind_of_errno(int e) {
    switch (e) {
    case ENOENT: case ENOTDIR: case EISDIR: case EACCES: case EPERM: case EROFS: case ENAMETOOLONG: case ELOOP:
        return ERR_INPUT;
    default: return ERR_RUNTIME;
    }
}

const char *err_kind_name(int kind) {
    switch (kind) {
    case ERR_NONE: return "none";
    case ERR_RUNTIME: return "runtime";
    case ERR_INPUT: return "input";
    case ERR_NONFINITE: return "non-finite";
    default: return "?";
    }
}

void err_abort(const char *file, int line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "semaim: internal error at %s:%d: %s\n", file, line, msg);
    fflush(stderr);
    abort();
}
