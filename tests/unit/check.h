/* The one harness for C tests: CHECK prints FAIL details with the location; each test case
 * ends with one PASS/FAIL line via test_end(). tests/run.sh counts those lines. MPI drivers
 * (tests/tools/) use the same macros: every rank runs every case, and test_end_all() (needs
 * <mpi.h> included first) makes rank 0 print the line, failed if it failed on any rank. */
#ifndef SEMAIM_CHECK_H
#define SEMAIM_CHECK_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
static int check_failures_ = 0, check_case_failures_ = 0, check_rank_ = -1;
static char check_case_[256] = "?";
/* At most this many detail lines per case: a broken loop would otherwise flood the log. */
#define CHECK_MAX_DETAILS 8
#define CHECK(cond, ...) do { if (!(cond)) { if (check_case_failures_++ < CHECK_MAX_DETAILS) { \
    if (check_rank_ >= 0) printf("  rank %d: ", check_rank_); \
    printf("  %s:%d: %s: ", __FILE__, __LINE__, check_case_); printf(__VA_ARGS__); printf("\n"); fflush(stdout); } } } while (0)
static inline void test_begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void test_begin(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(check_case_, sizeof check_case_, fmt, ap);
    va_end(ap);
    check_case_failures_ = 0;
}
static inline void test_end(void) {
    printf("%s: %s\n", check_case_failures_ ? "FAIL" : "PASS", check_case_);
    if (check_case_failures_) check_failures_++;
    fflush(stdout);
}
static inline int test_exit(void) { return check_failures_ ? 1 : 0; }
#ifdef MPI_VERSION
static inline void test_mpi_rank(int rank) { check_rank_ = rank; }
static inline void test_end_all(void) {
    int any = 0;
    MPI_Allreduce(&check_case_failures_, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (check_rank_ <= 0) { printf("%s: %s\n", any ? "FAIL" : "PASS", check_case_); fflush(stdout); }
    if (any) check_failures_++;
}
#endif
/* max |a-b| / max |b| over n values: the relative measure used across the suite. */
static inline double rel_err(const float *a, const float *b, long n) {
    double md = 0, mb = 0;
    for (long i = 0; i < n; i++) { double d = fabs((double)a[i] - b[i]); if (d > md) md = d; if (fabs(b[i]) > mb) mb = fabs(b[i]); }
    return mb > 0 ? md / mb : md;
}
#endif
