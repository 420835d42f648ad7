/* Minimal harness for C unit tests: CHECK prints FAIL with the location; each test case
 * ends with PASS/FAIL via test_end(). tests/run.sh counts those lines. */
#ifndef SEMAIM_CHECK_H
#define SEMAIM_CHECK_H
#include <math.h>
#include <stdio.h>
static int check_failures_ = 0, check_case_failures_ = 0;
static const char *check_case_ = "?";
#define CHECK(cond, ...) do { if (!(cond)) { check_case_failures_++; \
    printf("  %s:%d: %s: ", __FILE__, __LINE__, check_case_); printf(__VA_ARGS__); printf("\n"); } } while (0)
static inline void test_begin(const char *name) { check_case_ = name; check_case_failures_ = 0; }
static inline void test_end(void) {
    printf("%s: %s\n", check_case_failures_ ? "FAIL" : "PASS", check_case_);
    if (check_case_failures_) check_failures_++;
    fflush(stdout);
}
static inline int test_exit(void) { return check_failures_ ? 1 : 0; }
/* max |a-b| / max |b| over n values: the relative measure used across the suite. */
static inline double rel_err(const float *a, const float *b, long n) {
    double md = 0, mb = 0;
    for (long i = 0; i < n; i++) { double d = fabs((double)a[i] - b[i]); if (d > md) md = d; if (fabs(b[i]) > mb) mb = fabs(b[i]); }
    return mb > 0 ? md / mb : md;
}
#endif
