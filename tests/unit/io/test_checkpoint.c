/* Checkpoints: round trip, keep-K rotation, corrupt newest falls back, wrong config and
 * garbage files are refused with a reason. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "semaim/checkpoint.h"

static int exists(const char *dir, long step) {
    char p[4096];
    snprintf(p, sizeof p, "%s/ckpt-%08ld.bin", dir, step);
    return access(p, F_OK) == 0;
}

int main(void) {
    char dir[] = "/tmp/semaim-ckpt-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    semaim_config_t c = {16, 4, 16, 2, 1, 2};
    err_t err_v = {0}; char *err = err_v.msg;
    char path[4096];
    model_t m, m2;
    model_init(&m, &c, 1, &err_v);
    model_init(&m2, &c, 2, &err_v);
    for (long i = 0; i < m.w.nparams; i++) { m.w.m[i] = 0.5f * i; m.w.v[i] = 0.25f * i; }
    ckpt_model_t id = ckpt_pretrain(&m);

    test_begin("checkpoint_round_trip_and_rotation");
    for (int s = 1; s <= 4; s++) {
        ckpt_state_t st = {s * 10, s, s + 1, 1234, 2, 8};
        m.w.params[0] = (float)s;
        CHECK(ckpt_save(dir, &id, &m.w, &st, 2, &err_v) == 0, "save: %s", err);
    }
    CHECK(!exists(dir, 10) && !exists(dir, 20) && exists(dir, 30) && exists(dir, 40), "keep 2 newest");
    ckpt_state_t st;
    CHECK(ckpt_load_latest(dir, &id, &m2.w, &st, path, sizeof path, &err_v) == 1, "load latest: %s", err);
    CHECK(st.step == 40 && st.epoch == 4 && st.epoch_step == 5 && st.seed == 1234 && st.world == 2 && st.batch == 8,
          "state round trip");
    CHECK(!memcmp(m.w.params, m2.w.params, 4 * m.w.nparams) && !memcmp(m.w.m, m2.w.m, 4 * m.w.nparams) &&
              !memcmp(m.w.v, m2.w.v, 4 * m.w.nparams), "buffers round trip bit-exact");
    test_end();

    test_begin("checkpoint_corrupt_newest_falls_back");
    snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 40);
    FILE *f = fopen(path, "r+b");
    fseek(f, 200, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 200, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
    CHECK(ckpt_load(path, &id, &m2.w, &st, &err_v) == -1 && strstr(err, "CRC"), "corrupt detected: %s", err);
    CHECK(ckpt_load_latest(dir, &id, &m2.w, &st, path, sizeof path, &err_v) == 1 && st.step == 30,
          "fell back to step 30 (got %lld)", (long long)st.step);
    CHECK(m2.w.params[0] == 3.0f, "params of step 30");
    /* truncated file */
    snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 30);
    CHECK(truncate(path, 1000) == 0, "truncate");
    CHECK(ckpt_load(path, &id, &m2.w, &st, &err_v) == -1 && strstr(err, "truncated"), "truncated: %s", err);
    CHECK(ckpt_load_latest(dir, &id, &m2.w, &st, NULL, 0, &err_v) == -1 && strstr(err, "none verifies"),
          "none usable: %s", err);
    test_end();

    test_begin("checkpoint_wrong_config_and_garbage");
    ckpt_state_t s0 = {5, 0, 0, 1, 1, 1};
    CHECK(ckpt_save(dir, &id, &m.w, &s0, 0, &err_v) == 0, "save");
    semaim_config_t c3 = {16, 4, 32, 2, 1, 2};
    model_t m3;
    model_init(&m3, &c3, 1, &err_v);
    ckpt_model_t id3 = ckpt_pretrain(&m3);
    snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 5);
    CHECK(ckpt_load(path, &id3, &m3.w, &st, &err_v) == -1 && strstr(err, "another model"), "other config: %s", err);
    ckpt_model_t hid;
    CHECK(ckpt_read_header(path, &hid, &st, &err_v) == 0 && !memcmp(&hid.cfg, &c, sizeof c) && st.step == 5,
          "read_header gives the writer's config: %s", err);
    snprintf(path, sizeof path, "%s/garbage.bin", dir);
    f = fopen(path, "wb");
    fputs("this is not a checkpoint at all, but it is long enough to hold a header of some size......."
          "........................................................................................", f);
    fclose(f);
    CHECK(ckpt_load(path, &id, &m.w, &st, &err_v) == -1 && strstr(err, "bad magic"), "garbage: %s", err);
    CHECK(ckpt_load("/nonexistent/x.bin", &id, &m.w, &st, &err_v) == -1 && strstr(err, "cannot open"), "missing");
    char empty[] = "/tmp/semaim-ckpt-empty-XXXXXX";
    CHECK(mkdtemp(empty) && ckpt_load_latest(empty, &id, &m.w, &st, NULL, 0, &err_v) == 0, "empty dir: none");
    rmdir(empty);
    model_free(&m3);
    test_end();

    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    model_free(&m);
    model_free(&m2);
    return test_exit();
}
