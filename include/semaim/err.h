/* The one error convention: a function that can fail on outside input or at run time returns
 * -1 and fills an err_t with its kind and a one-line message; the kinds are the programs'
 * exit codes. Programmer errors (a broken invariant, a wrong argument from our own code)
 * are not values: they abort with a message (see ERR_ASSERT). */
#ifndef SEMAIM_ERR_H
#define SEMAIM_ERR_H
#include <stddef.h>

enum {
    ERR_NONE = 0,
    ERR_RUNTIME = 1,    /* I/O, MPI, out of memory, diverged replicas */
    ERR_INPUT = 2,      /* flags, settings file, data, checkpoints, weights files */
    ERR_NONFINITE = 3,  /* a loss or gradient norm that is not finite */
};

/* Long enough for a message that names a path of PATH_MAX bytes. */
#define ERR_MSG_MAX 4608

typedef struct {
    int kind;
    char msg[ERR_MSG_MAX];
} err_t;

/* Sets kind and message (printf-style); returns -1 so a caller can `return err_set(...)`. */
int err_set(err_t *e, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Puts context in front of the message ("<context>: <message>"), kind unchanged; returns -1. */
int err_prefix(err_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void err_clear(err_t *e) { e->kind = ERR_NONE; e->msg[0] = 0; }
/* err_set for code whose steps return a message (NULL = fine): returns e->msg. */
const char *err_say(err_t *e, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The kind for a failed system call: ERR_INPUT when the path given is wrong (missing, not a
 * folder, not ours to write), ERR_RUNTIME when the system failed (disk full, I/O error). */
int err_kind_of_errno(int e);
/* The kind's name for metrics ("runtime", "input", "non-finite"). */
const char *err_kind_name(int kind);

/* Aborts with file, line and the message when cond is false: for programmer errors only. */
void err_abort(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
#define ERR_ASSERT(cond, ...) do { if (!(cond)) err_abort(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#endif
