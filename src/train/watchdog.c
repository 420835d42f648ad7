/* The stall watchdog (watchdog.h).
 *
 * Threads and safety. The training loop's thread only stores two lock-free 64-bit atomics
 * per phase mark (and reads the clock once per new step), so a mark costs nothing, allocates
 * nothing, takes no lock and is async-signal-safe. Everything else happens in the watchdog's
 * own thread, which sleeps on a condition variable: until the deadline, or at most `poll`,
 * or until watchdog_stop wakes it. That thread has every signal blocked, so SIGUSR1/SIGTERM
 * still reach the threads they reached before the watchdog existed.
 *
 * When it fires, the main thread is by definition stuck somewhere (inside MPI, in I/O, in
 * malloc...), possibly holding locks. So the fire path takes none that the main thread could
 * hold: the line is formatted on the stack with snprintf (glibc's string printf neither locks
 * nor allocates for these formats) and written with one write(2), not through stdio's
 * locked stderr. MPI_Abort from this thread is outside what MPI_THREAD_FUNNELED promises,
 * but the job is being killed anyway and Open MPI's abort goes through its runtime (PMIx or
 * orted), not the point-to-point engine the main thread is blocked in. Should the abort
 * itself hang (its runtime unreachable in a network partition), a last thread _exits after
 * ABORT_GRACE_S, which the launcher sees as a failed rank all the same.
 *
 * Stopped processes. A process that is itself stopped (SIGSTOP, `scontrol suspend`) and then
 * continued must not fire for the time it was frozen: the thread wakes at least every `poll`,
 * and a wake-up that comes much later than asked means this process did not run; that gap is
 * credited to the current step. A stalled peer never stops our own thread, so it still fires. */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "semaim/watchdog.h"

#define ABORT_GRACE_S 20
/* the state word: step << 3 | phase; ~0 before the first mark */
#define STATE_NONE UINT64_MAX

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the phase marks must be lock-free to be async-signal-safe");

static _Atomic uint64_t state = STATE_NONE;
static _Atomic long long progress_ns;   /* when the current step was first marked */
static atomic_int running;
static long long timeout_ns, poll_ns;
static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static int stop_flag;
static char prefix[512];   /* "PROG: rank R on HOST: " */

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

const char *watchdog_phase_name(watchdog_phase_t phase) {
    switch (phase) {
    case WATCHDOG_DATA: return "data";
    case WATCHDOG_COMPUTE: return "compute";
    case WATCHDOG_ALLREDUCE: return "all-reduce";
    case WATCHDOG_CHECKPOINT: return "checkpoint";
    case WATCHDOG_EVAL: return "evaluation";
    }
    return "?";
}

void watchdog_phase(long step, watchdog_phase_t phase) {
    if (!atomic_load_explicit(&running, memory_order_relaxed)) return;
    uint64_t s = atomic_load_explicit(&state, memory_order_relaxed);
    uint64_t next = (uint64_t)step << 3 | ((unsigned)phase & 7u);
    /* only a new step is progress: a step whose phases each take a while still stalls */
    if (s == STATE_NONE || s >> 3 != next >> 3)
        atomic_store_explicit(&progress_ns, now_ns(), memory_order_relaxed);
    atomic_store_explicit(&state, next, memory_order_release);
}

static void *grace_expired(void *arg) {
    (void)arg;
    sleep(ABORT_GRACE_S);
    _exit(1);
}

static void fire(long long stalled_ns) {
    uint64_t s = atomic_load_explicit(&state, memory_order_acquire);
    char where[128], line[1024];
    if (s == STATE_NONE) snprintf(where, sizeof where, "before the first step");
    else snprintf(where, sizeof where, "at step %llu in %s", (unsigned long long)(s >> 3),
                  watchdog_phase_name((watchdog_phase_t)(s & 7)));
    int n = snprintf(line, sizeof line, "%sno step completed in %.1f s: stuck %s; aborting the job (exit 1)\n", prefix,
                     stalled_ns / 1e9, where);
    if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;   /* nowhere left to report a failed write */
    pthread_t t;
    pthread_create(&t, NULL, grace_expired, NULL);
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
}

static void *watch(void *arg) {
    (void)arg;
    long long last_wake = now_ns(), credit = 0, credited_for = -1;
    pthread_mutex_lock(&mu);
    while (!stop_flag) {
        long long now = now_ns(), p = atomic_load_explicit(&progress_ns, memory_order_relaxed);
        if (p != credited_for) { credit = 0; credited_for = p; }   /* a new step: its own clock */
        /* woken much later than asked for: this process was stopped, not stalled */
        if (now - last_wake > 2 * poll_ns + 1000000000LL) credit += now - last_wake - poll_ns;
        last_wake = now;
        long long deadline = p + timeout_ns + credit;
        if (now >= deadline) {
            pthread_mutex_unlock(&mu);
            fire(now - p - credit);
        }
        long long until = deadline < now + poll_ns ? deadline : now + poll_ns;
        struct timespec ts = {(time_t)(until / 1000000000LL), (long)(until % 1000000000LL)};
        int rc;
        do rc = pthread_cond_timedwait(&cv, &mu, &ts);
        while (rc == 0 && !stop_flag && now_ns() < until);   /* spurious wake-ups */
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int watchdog_start(double timeout_s, const char *prog) {
    if (!(timeout_s >= 0) || !isfinite(timeout_s) || timeout_s > 1e9) {
        fprintf(stderr, "%s: stall timeout %g s: want 0 (off) up to 1e9 seconds\n", prog, timeout_s);
        return -1;
    }
    if (atomic_load(&running)) { fprintf(stderr, "%s: the stall watchdog is already running\n", prog); return -1; }
    if (timeout_s == 0) return 0;
    int init = 0, rank = -1;
    MPI_Initialized(&init);
    if (init) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char host[256] = "?";
    if (gethostname(host, sizeof host - 1)) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = 0;
    if (rank >= 0) snprintf(prefix, sizeof prefix, "%s: rank %d on %s: ", prog, rank, host);
    else snprintf(prefix, sizeof prefix, "%s: %s: ", prog, host);
    timeout_ns = (long long)(timeout_s * 1e9);
    if (timeout_ns < 1) timeout_ns = 1;
    poll_ns = timeout_ns / 4;
    if (poll_ns > 5000000000LL) poll_ns = 5000000000LL;
    if (poll_ns < 1000000LL) poll_ns = 1000000LL;
    atomic_store(&state, STATE_NONE);
    atomic_store(&progress_ns, now_ns());
    stop_flag = 0;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* the deadlines are monotonic */
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* the new thread inherits the full mask */
    int rc = pthread_create(&thread, NULL, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        fprintf(stderr, "%s: cannot start the stall watchdog thread: %s\n", prog, strerror(rc));
        pthread_cond_destroy(&cv);
        return -1;
    }
    atomic_store(&running, 1);
    return 0;
}

void watchdog_stop(void) {
    if (!atomic_load(&running)) return;
    atomic_store(&running, 0);
    pthread_mutex_lock(&mu);
    stop_flag = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&cv);
}
