/* Progress: a bar with rate and ETA on a terminal, a status line every few seconds in a log.
 * Under MPI every rank reports its own share; only rank 0 draws a bar. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "prep.h"

void prep_progress_start(prep_progress *p, size_t total, int mode, double every, const prep_comm *c) {
    memset(p, 0, sizeof *p);
    p->t0 = p->last = clock_now();
    p->total = total;
    p->every = every > 0 ? every : 30;
    p->rank = c->rank; p->size = c->size;
    if (mode < 0) mode = isatty(2) ? (c->rank == 0 ? 1 : 0) : 2;
    if (mode == 1 && !isatty(2)) mode = 2;
    p->mode = mode;
}

static void fmt_time(char *buf, size_t len, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static void draw(prep_progress *p, double now, int final) {
    size_t fresh = p->done > p->base ? p->done - p->base : 0;
    double el = now - p->t0, rate = el > 0 ? fresh / el : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    char e[32], t[32], who[48] = "";
    fmt_time(e, sizeof e, el);
    fmt_time(t, sizeof t, eta);
    double frac = p->total ? (double)p->done / p->total : 1;
    if (p->size > 1) snprintf(who, sizeof who, "[rank %d/%d] ", p->rank, p->size);
    if (p->mode == 1) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%s%s[%s] %5.1f%% %zu/%zu  %.0f img/s  elapsed %s  ETA %s\033[K", who, prep_prog, bar, 100 * frac,
                p->done, p->total, rate, e, final ? "0:00" : t);
        p->drawn = 1;
    } else {
        fprintf(stderr, "%s: %s%zu/%zu images (%.1f%%), %.0f img/s, elapsed %s, ETA %s\n", prep_prog, who, p->done, p->total,
                100 * frac, rate, e, final ? "0:00" : t);
    }
    fflush(stderr);
}

void prep_progress_update(prep_progress *p, size_t done, size_t base, int force) {
    if (!p->mode) return;
    p->done = done; p->base = base;
    double now = clock_now();
    double every = p->mode == 1 ? 0.2 : p->every;
    if (!force && now - p->last < every) return;
    p->last = now;
    draw(p, now, 0);
}

void prep_progress_clear(prep_progress *p) {
    if (p->mode == 1 && p->drawn) { fputs("\r\033[K", stderr); p->drawn = 0; }
}

void prep_progress_end(prep_progress *p) {
    if (!p->mode) return;
    p->done = p->total;
    draw(p, clock_now(), 1);
    if (p->mode == 1) fputc('\n', stderr);
    p->drawn = 0;
}
