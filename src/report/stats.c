/* The statistics of the scaling report: medians, a bootstrap interval of a median, and the
 * latency/bandwidth fit of the ring all-reduce. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "semaim/report.h"
#include "semaim/rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double report_median(const double *x, long n) {
    if (n <= 0) return NAN;
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) return NAN;
    memcpy(c, x, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* k-th smallest of a[0..n) (reorders a): Hoare's selection, expected linear time, which keeps a
 * thousand resamples of a long run cheap. */
static double select_kth(double *a, long n, long k) {
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = a[lo + (hi - lo) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) { double t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

static double median_inplace(double *a, long n) {
    double hi = select_kth(a, n, n / 2);
    if (n % 2) return hi;
    /* the lower middle is the largest of the elements selection left below n/2 */
    double lo = a[0];
    for (long i = 1; i < n / 2; i++) if (a[i] > lo) lo = a[i];
    return 0.5 * (lo + hi);
}

void report_bootstrap_median(const double *x, long n, int resamples, uint64_t seed, double *lo, double *hi) {
    *lo = *hi = report_median(x, n);
    if (n < 2 || resamples < 2) return;
    double *s = malloc((size_t)n * sizeof *s), *meds = malloc((size_t)resamples * sizeof *meds);
    if (!s || !meds) { free(s); free(meds); return; }
    rng_t r = rng_make(rng_key(seed, 0x626f6f74ULL /* "boot" */, (uint64_t)n, 0, 0));
    for (int b = 0; b < resamples; b++) {
        for (long i = 0; i < n; i++) s[i] = x[rng_next(&r) % (uint64_t)n];
        meds[b] = median_inplace(s, n);
    }
    qsort(meds, (size_t)resamples, sizeof *meds, cmp_double);
    /* percentile interval: the 2.5% and 97.5% points of the resampled medians */
    *lo = meds[(long)floor(0.025 * (resamples - 1))];
    *hi = meds[(long)ceil(0.975 * (resamples - 1))];
    free(s);
    free(meds);
}

double report_allreduce_time(int ranks, double bytes, double alpha, double beta) {
    if (ranks < 2) return 0;
    return 2.0 * (ranks - 1) * alpha + 2.0 * (ranks - 1) / ranks * bytes / beta;
}

int report_fit_allreduce(const double *bytes, const double *seconds, int n, int ranks, double *alpha, double *beta) {
    if (ranks < 2 || n < 1) return -1;
    /* t = a + b x. Weights 1/t^2 make the residuals relative: the sizes span five decades and
     * plain least squares would fit only the largest messages, leaving the latency to noise.
     * x is scaled to [0, 1] so the sums stay well conditioned. */
    double xmax = 0;
    for (int i = 0; i < n; i++) {
        if (!(bytes[i] > 0) || !(seconds[i] > 0) || !isfinite(bytes[i]) || !isfinite(seconds[i])) return -1;
        if (bytes[i] > xmax) xmax = bytes[i];
    }
    double sw = 0, sx = 0, sxx = 0, st = 0, sxt = 0;
    for (int i = 0; i < n; i++) {
        double w = 1.0 / (seconds[i] * seconds[i]), x = bytes[i] / xmax, t = seconds[i];
        sw += w; sx += w * x; sxx += w * x * x; st += w * t; sxt += w * x * t;
    }
    double d = sw * sxx - sx * sx, a, b;
    if (n >= 2 && d > 1e-12 * sw * sxx) {
        a = (st * sxx - sx * sxt) / d;
        b = (sw * sxt - sx * st) / d;
    } else a = -1, b = 0;
    if (a < 0) { a = 0; b = sxt / sxx; }   /* no measurable latency: the line through 0 */
    if (!(b > 0)) return -1;
    b /= xmax;
    *alpha = a / (2.0 * (ranks - 1));
    *beta = 2.0 * (ranks - 1) / ranks / b;
    return 0;
}
