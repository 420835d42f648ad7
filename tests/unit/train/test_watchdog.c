/* The stall watchdog: it fires after the timeout with one line naming the step and phase and
 * exit status 1; progress (a new step) keeps it quiet, phases of one step do not; 0 is off;
 * stop is prompt; a process that was itself stopped (SIGSTOP) is not taken for a stall; bad
 * timeouts are refused. Each scenario runs in a forked child (without MPI the watchdog
 * _exits(1), as it would after MPI_Abort), whose stderr and exit status the parent reads. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "semaim/watchdog.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static void nap(double s) {
    struct timespec t = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    while (nanosleep(&t, &t) && errno == EINTR) {}
}

typedef struct {
    int status;       /* waitpid status; -1 if the child had to be killed */
    double seconds;   /* fork to exit */
    char err[2048];   /* the child's stderr */
} outcome_t;

/* Runs body() in a child with stderr on a pipe; kills it after limit seconds. mid(pid), when
 * given, runs in the parent at mid_at seconds (to signal the child). */
static outcome_t run_child(void (*body)(void), double limit, void (*mid)(pid_t), double mid_at) {
    outcome_t o = {-1, 0, ""};
    int fd[2];
    if (pipe(fd)) return o;
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        body();
        _exit(0);
    }
    close(fd[1]);
    fcntl(fd[0], F_SETFL, O_NONBLOCK);
    size_t used = 0;
    int done = 0, mid_done = mid == NULL;
    while (!done) {
        ssize_t r = read(fd[0], o.err + used, sizeof o.err - 1 - used);
        if (r > 0) used += (size_t)r;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) { o.status = st; done = 1; break; }
        if (!mid_done && now() - t0 >= mid_at) { mid(pid); mid_done = 1; }
        if (now() - t0 > limit) { kill(pid, SIGKILL); waitpid(pid, &st, 0); o.status = -1; done = 1; }
        nap(0.005);
    }
    o.seconds = now() - t0;
    ssize_t r;
    while ((r = read(fd[0], o.err + used, sizeof o.err - 1 - used)) > 0) used += (size_t)r;
    o.err[used] = 0;
    close(fd[0]);
    return o;
}

static int exited(const outcome_t *o, int code) { return o->status >= 0 && WIFEXITED(o->status) && WEXITSTATUS(o->status) == code; }
static int lines(const char *s) { int n = 0; for (; *s; s++) n += *s == '\n'; return n; }

static watchdog_phase_t stuck_phase;
static void stuck_in_phase(void) {
    if (watchdog_start(0.4, "wdtest")) _exit(3);
    watchdog_phase(1, WATCHDOG_DATA);
    watchdog_phase(1, WATCHDOG_COMPUTE);
    watchdog_phase(2, WATCHDOG_DATA);
    watchdog_phase(2, stuck_phase);
    nap(10);
}
static void progressing(void) {
    if (watchdog_start(0.4, "wdtest")) _exit(3);
    for (long s = 1; s <= 12; s++) {   /* 1.2 s in all, 3 times the timeout */
        watchdog_phase(s, WATCHDOG_DATA);
        nap(0.05);
        watchdog_phase(s, WATCHDOG_ALLREDUCE);
        nap(0.05);
    }
    watchdog_stop();
}
static void phases_without_steps(void) {
    if (watchdog_start(0.4, "wdtest")) _exit(3);
    for (int k = 0; k < 40; k++) {   /* phases move, the step does not */
        watchdog_phase(7, (watchdog_phase_t)(k % 4));
        nap(0.05);
    }
}
static void off(void) {
    if (watchdog_start(0, "wdtest")) _exit(3);
    watchdog_phase(1, WATCHDOG_DATA);
    nap(0.6);
    watchdog_stop();
}
static void never_marked(void) {
    if (watchdog_start(0.3, "wdtest")) _exit(3);
    nap(10);
}
static void prompt_stop(void) {
    if (watchdog_start(1000, "wdtest")) _exit(3);
    watchdog_phase(1, WATCHDOG_DATA);
    double t = now();
    watchdog_stop();
    if (now() - t > 0.2) _exit(4);
    if (watchdog_start(0.3, "wdtest")) _exit(5);   /* can start again after a stop */
    watchdog_stop();
    watchdog_stop();                               /* stop twice is harmless */
    nap(0.6);
}
static void bad_timeouts(void) {
    int bad = 0;
    bad += watchdog_start(-1, "wdtest") != -1;
    bad += watchdog_start(NAN, "wdtest") != -1;
    bad += watchdog_start(INFINITY, "wdtest") != -1;
    bad += watchdog_start(2e9, "wdtest") != -1;
    if (watchdog_start(100, "wdtest")) bad++;
    bad += watchdog_start(100, "wdtest") != -1;   /* already running */
    watchdog_stop();
    _exit(bad ? 6 : 0);
}
static void stopped_then_continued(void) {
    if (watchdog_start(2.0, "wdtest")) _exit(3);
    watchdog_phase(1, WATCHDOG_COMPUTE);
    nap(1.0);   /* the parent stops us at 0.3 s for 3 s: 3.9 s pass, 0.9 s of them running */
    nap(0.6);
    watchdog_stop();
}
static void stop_for_a_while(pid_t pid) {
    kill(pid, SIGSTOP);
    nap(3.0);
    kill(pid, SIGCONT);
}

int main(void) {
    const watchdog_phase_t phases[] = {WATCHDOG_DATA, WATCHDOG_COMPUTE, WATCHDOG_ALLREDUCE, WATCHDOG_CHECKPOINT};
    const char *names[] = {"data", "compute", "all-reduce", "checkpoint"};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "watchdog_fires_naming_step_and_phase_%s", names[i]);
        test_begin(name);
        stuck_phase = phases[i];
        outcome_t o = run_child(stuck_in_phase, 8, NULL, 0);
        char want[128];
        snprintf(want, sizeof want, "stuck at step 2 in %s; aborting the job (exit 1)\n", names[i]);
        CHECK(exited(&o, 1), "want exit 1, got status %d after %.2f s", o.status, o.seconds);
        /* fires after the timeout (0.4 s) and not long after: the bound is generous for a busy box */
        CHECK(o.seconds >= 0.4 && o.seconds < 3.0, "fired after %.2f s, timeout 0.4 s", o.seconds);
        CHECK(lines(o.err) == 1 && strstr(o.err, want) && !strncmp(o.err, "wdtest: ", 8) &&
              strstr(o.err, "no step completed in 0."), "stderr: '%s'", o.err);
        CHECK(!strcmp(watchdog_phase_name(phases[i]), names[i]), "name %s", watchdog_phase_name(phases[i]));
        test_end();
    }

    test_begin("watchdog_quiet_while_steps_complete");
    outcome_t o = run_child(progressing, 8, NULL, 0);
    CHECK(exited(&o, 0) && o.err[0] == 0, "status %d, stderr '%s'", o.status, o.err);
    test_end();

    test_begin("watchdog_phases_of_one_step_are_not_progress");
    o = run_child(phases_without_steps, 8, NULL, 0);
    CHECK(exited(&o, 1) && o.seconds < 1.6 && strstr(o.err, "stuck at step 7 in "), "status %d after %.2f s, '%s'",
          o.status, o.seconds, o.err);
    test_end();

    test_begin("watchdog_fires_before_the_first_step");
    o = run_child(never_marked, 8, NULL, 0);
    CHECK(exited(&o, 1) && strstr(o.err, "stuck before the first step"), "status %d, '%s'", o.status, o.err);
    test_end();

    test_begin("watchdog_zero_is_off");
    o = run_child(off, 8, NULL, 0);
    CHECK(exited(&o, 0) && o.err[0] == 0, "status %d, stderr '%s'", o.status, o.err);
    test_end();

    test_begin("watchdog_stop_is_prompt_and_restartable");
    o = run_child(prompt_stop, 8, NULL, 0);
    CHECK(exited(&o, 0) && o.err[0] == 0, "status %d (4: stop slow, 5: restart failed), stderr '%s'", o.status, o.err);
    test_end();

    test_begin("watchdog_refuses_bad_timeouts");
    o = run_child(bad_timeouts, 8, NULL, 0);
    CHECK(exited(&o, 0), "status %d, stderr '%s'", o.status, o.err);
    CHECK(strstr(o.err, "stall timeout -1 s") && strstr(o.err, "already running"), "stderr '%s'", o.err);
    test_end();

    test_begin("watchdog_not_fooled_by_its_own_process_being_stopped");
    o = run_child(stopped_then_continued, 12, stop_for_a_while, 0.3);
    CHECK(exited(&o, 0) && o.err[0] == 0 && o.seconds > 3.0, "status %d after %.2f s, stderr '%s'", o.status, o.seconds,
          o.err);
    test_end();
    return test_exit();
}
