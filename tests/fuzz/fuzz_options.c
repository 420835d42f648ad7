/* The settings file and the option parser (src/core/options.c): the input is a settings
 * file, a NUL, then command-line words separated by NULs (--config FILE put in front when
 * the file part is not empty). The table has every option type with ranges like the
 * trainers'. Beyond not crashing: a parse that succeeds leaves every number inside its
 * range, and the settings JSON (settings.json, run_start) parses. */
#include <math.h>
#include "core/buf.h"
#include "core/json.h"
#include "semaim/options.h"
#include "fuzz.h"

#define MAX_WORDS 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const uint8_t *part[MAX_WORDS + 1];
    size_t len[MAX_WORDS + 1];
    fuzz_split(data, n, 0, MAX_WORDS + 1, part, len);
    char cfg[4200];
    fuzz_path(cfg, sizeof cfg, "settings.txt");
    fuzz_write(cfg, part[0], len[0]);
    char *argv[MAX_WORDS + 4], *words[MAX_WORDS + 1];
    int argc = 0, nw = 0;
    argv[argc++] = "semaim-train";
    if (len[0]) { argv[argc++] = "--config"; argv[argc++] = cfg; }
    for (int i = 1; i <= MAX_WORDS; i++) {
        if (part[i] == data + n && !len[i]) break;   /* no more words */
        words[nw] = strndup((const char *)part[i], len[i]);
        argv[argc++] = words[nw++];
    }
    const char *preset = "tiny", *resume = "auto", *config = NULL;
    int image = 0, keep = 3, flag = 0;
    long steps = 0, seed = 0, warmup = -1;
    double lr = 2e-4, beta = 0.9, timeout = 1800;
    option_t opts[] = {
        {"config", OPT_STRING, &config, "settings file", 0, 0, 0},
        {"preset", OPT_STRING, &preset, "model preset", 0, 0, 0},
        {"image", OPT_INT, &image, "image size", 1, 8192, 0},
        {"keep", OPT_INT, &keep, "checkpoints kept", 1, 1000000, 0},
        {"steps", OPT_LONG, &steps, "steps", 0, 1e12, 0},
        {"seed", OPT_LONG, &seed, "seed", 0, 9.2e18, 0},
        {"warmup-steps", OPT_LONG, &warmup, "warmup", -1, 1e12, 0},
        {"base-lr", OPT_DOUBLE, &lr, "lr", 0, 10, 0},
        {"beta1", OPT_DOUBLE, &beta, "beta1", 0, 1, 0},
        {"stall-timeout", OPT_DOUBLE, &timeout, "seconds", 0, 1e9, 0},
        {"resume", OPT_STRING, &resume, "auto, no or a path", 0, 0, 0},
        {"mpi-allreduce", OPT_FLAG, &flag, "a flag", 0, 0, 0},
    };
    int nopt = sizeof opts / sizeof opts[0];
    err_t e = {0};
    int rc = options_parse(opts, nopt, argc, argv, 1, &e);
    FUZZ_CHECK(rc == 0 || rc == 1 || (rc == -1 && e.kind == ERR_INPUT && e.msg[0]), "parse returned %d without a reason", rc);
    if (rc == 0) {
        FUZZ_CHECK(image >= 0 && image <= 8192 && keep >= 1 && steps >= 0 && seed >= 0 && warmup >= -1, "an integer outside its range");
        FUZZ_CHECK(lr >= 0 && lr <= 10 && beta >= 0 && beta <= 1 && isfinite(timeout), "a number outside its range");
        FUZZ_CHECK(flag == 0 || flag == 1, "a flag that is neither");
        buf_t b = {0};
        options_json(&b, opts, nopt);
        json_t v;
        FUZZ_CHECK(!b.oom && json_parse(b.s, b.len, &v, &e) == 0, "settings JSON does not parse (%s): %.300s", e.msg, b.s);
        json_free(&v);
        buf_free(&b);
        FILE *null = fopen("/dev/null", "w");
        if (null) { options_usage(null, opts, nopt); fclose(null); }
    }
    options_free(opts, nopt);
    for (int i = 0; i < nw; i++) free(words[i]);
    return 0;
}
