/* Checkpoints: round trip, keep-K rotation, corrupt newest falls back, wrong config and
 * garbage files are refused with a reason; the objective (target_cfg_t) round trips and a
 * version 2 file (from before it was recorded) loads as the default objective; the EMA weights
 * and --ema-order round trip (version 4), a version 3 file loads without EMA, and a load with
 * another EMA setting is refused. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "core/crc.h"
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

    test_begin("checkpoint_objective_round_trip");
    const target_cfg_t odd = {5, 2.0, 0, LOSS_L1, SIGNAL_GAP, 0};
    m.tgt = odd;
    ckpt_model_t ido = ckpt_pretrain(&m);
    ckpt_state_t s7 = {7, 0, 0, 1, 1, 1};
    CHECK(ckpt_save(dir, &ido, &m.w, &s7, 0, &err_v) == 0, "save: %s", err);
    snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 7);
    CHECK(ckpt_read_header(path, &hid, &st, &err_v) == 0 && target_equal(&hid.tgt, &odd) && hid.tgt.blur_sigma == 2.0,
          "header objective: %s blur %d,%g loss %d signal %d", err, hid.tgt.blur_k, hid.tgt.blur_sigma, hid.tgt.loss,
          hid.tgt.signal);
    model_t m4;
    CHECK(ckpt_load_model(path, &m4, &st, &err_v) == 0 && target_equal(&m4.tgt, &odd), "load_model honours it: %s", err);
    if (m4.w.params) model_free(&m4);
    CHECK(ckpt_load(path, &ido, &m2.w, &st, &err_v) == 0, "same objective loads: %s", err);
    /* a resume with another objective is refused, naming both */
    ckpt_model_t idd = id;   /* the default objective */
    CHECK(ckpt_load(path, &idd, &m2.w, &st, &err_v) == -1 &&
          strstr(err, "trained with --blur 5,2 --norm-pix off --loss l1 --order-signal gap;") &&
          strstr(err, "this run has --blur 9,1 --norm-pix on --loss l2 --order-signal cls ("), "other objective: %s", err);
    target_cfg_t none = target_defaults();
    none.blur_k = 0;
    m.tgt = none;
    ckpt_model_t idn = ckpt_pretrain(&m);
    ckpt_state_t s8 = {8, 0, 0, 1, 1, 1};
    CHECK(ckpt_save(dir, &idn, &m.w, &s8, 0, &err_v) == 0, "save");
    snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 8);
    CHECK(ckpt_read_header(path, &hid, &st, &err_v) == 0 && hid.tgt.blur_k == 0 && target_equal(&hid.tgt, &none),
          "blur none round trips: %s", err);
    m.tgt = target_defaults();
    test_end();

    /* Version 2 (104-byte header, no objective): built from a version 4 file of the default
     * objective by cutting the objective out, as the format was before it. */
    test_begin("checkpoint_version2_loads_as_default_objective");
    ckpt_state_t s9 = {9, 1, 2, 1, 1, 1};
    CHECK(ckpt_save(dir, &id, &m.w, &s9, 0, &err_v) == 0, "save");
    snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 9);
    f = fopen(path, "rb");
    long total = 120 + 12L * m.w.nparams;
    unsigned char *b = malloc((size_t)total);
    CHECK(f && fread(b, 1, (size_t)total, f) == (size_t)total, "read v3 file");
    if (f) fclose(f);
    uint32_t v2 = 2, hb2 = 104, pcrc, hcrc;
    memcpy(&pcrc, b + 112, 4);
    memcpy(b + 8, &v2, 4);
    memcpy(b + 12, &hb2, 4);
    memcpy(b + 96, &pcrc, 4);
    hcrc = crc32_bytes(b, 100);
    memcpy(b + 100, &hcrc, 4);
    memmove(b + 104, b + 120, (size_t)(total - 120));
    char p2[4200];
    snprintf(p2, sizeof p2, "%s/v2.bin", dir);
    f = fopen(p2, "wb");
    CHECK(f && fwrite(b, 1, (size_t)(total - 16), f) == (size_t)(total - 16), "write v2 file");
    if (f) fclose(f);
    free(b);
    CHECK(ckpt_read_header(p2, &hid, &st, &err_v) == 0 && target_equal(&hid.tgt, &id.tgt) && st.step == 9 &&
              hid.tgt.blur_k == 9 && hid.tgt.blur_sigma == 1.0 && hid.tgt.norm_pix == 1 && hid.tgt.loss == LOSS_L2,
          "v2 header: defaults: %s", err);
    memset(m2.w.params, 0, 4 * m2.w.nparams);
    CHECK(ckpt_load(p2, &id, &m2.w, &st, &err_v) == 0 && !memcmp(m.w.params, m2.w.params, 4 * m.w.nparams) &&
              !memcmp(m.w.v, m2.w.v, 4 * m.w.nparams) && st.epoch_step == 2,
          "v2 loads bit-exact into the default objective: %s", err);
    CHECK(ckpt_load(p2, &ido, &m2.w, &st, &err_v) == -1 && strstr(err, "trained with --blur 9,1"),
          "v2 refuses another objective: %s", err);
    test_end();

    test_begin("checkpoint_ema_round_trip");
    {
        model_t me, mf;
        model_init(&me, &c, 3, &err_v);
        model_init(&mf, &c, 4, &err_v);
        CHECK(params_attach_ema(&me.w, &err_v) == 0 && !memcmp(me.w.ema, me.w.params, 4 * me.w.nparams),
              "the EMA starts at the weights: %s", err);
        for (long i = 0; i < me.w.nparams; i++) me.w.ema[i] = 0.125f * (float)i - 3.0f;
        me.tgt.ema_order = 1;
        ckpt_model_t ide = ckpt_pretrain(&me);
        CHECK(ide.ema == 1 && ckpt_file_bytes(&ide) == 120 + 16LL * me.w.nparams, "the id counts the fourth buffer");
        ckpt_state_t s11 = {11, 0, 0, 3, 1, 1};
        CHECK(ckpt_save(dir, &ide, &me.w, &s11, 0, &err_v) == 0, "save: %s", err);
        snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 11);
        struct stat sb;
        unsigned char h[120];
        f = fopen(path, "rb");
        CHECK(f && fread(h, 1, 120, f) == 120 && stat(path, &sb) == 0, "read header");
        if (f) fclose(f);
        uint32_t ver;
        memcpy(&ver, h + 8, 4);
        CHECK(ver == 4 && h[103] == (CKPT_EMA_WEIGHTS | CKPT_EMA_ORDER) && sb.st_size == 120 + 16L * me.w.nparams,
              "version %u, EMA byte %u, %lld bytes", ver, h[103], (long long)sb.st_size);
        CHECK(ckpt_read_header(path, &hid, &st, &err_v) == 0 && hid.ema == 1 && hid.tgt.ema_order == 1,
              "header: ema %d order %d: %s", hid.ema, hid.tgt.ema_order, err);
        mf.tgt.ema_order = 1;
        params_attach_ema(&mf.w, &err_v);
        ckpt_model_t idf = ckpt_pretrain(&mf);
        CHECK(ckpt_load(path, &idf, &mf.w, &st, &err_v) == 0 && !memcmp(me.w.ema, mf.w.ema, 4 * me.w.nparams) &&
                  !memcmp(me.w.params, mf.w.params, 4 * me.w.nparams) && !memcmp(me.w.v, mf.w.v, 4 * me.w.nparams),
              "all four buffers round trip bit-exact: %s", err);
        model_t m5;
        CHECK(ckpt_load_model(path, &m5, &st, &err_v) == 0 && m5.w.ema && !memcmp(me.w.ema, m5.w.ema, 4 * me.w.nparams) &&
                  m5.tgt.ema_order == 1, "load_model brings the EMA weights: %s", err);
        if (m5.w.params) model_free(&m5);
        /* resuming an --ema-order run without it, or the other way round: another objective */
        CHECK(ckpt_load(path, &id, &m2.w, &st, &err_v) == -1 && strstr(err, "--order-signal cls --ema-order;") &&
                  strstr(err, "this run has --blur 9,1 --norm-pix on --loss l2 --order-signal cls ("),
              "EMA order vs none: %s", err);
        /* EMA weights without the order (as a feature target keeps them) against a model without EMA */
        me.tgt.ema_order = 0;
        ide = ckpt_pretrain(&me);
        ckpt_state_t s12 = {12, 0, 0, 3, 1, 1};
        CHECK(ckpt_save(dir, &ide, &me.w, &s12, 0, &err_v) == 0, "save: %s", err);
        snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 12);
        CHECK(ckpt_load(path, &id, &m2.w, &st, &err_v) == -1 && strstr(err, "has EMA weights; this run keeps none"),
              "EMA weights vs none: %s", err);
        /* a version 3 file (no EMA byte) loads as one without EMA; in version 4 the order bit
         * alone (no weights) is refused */
        ckpt_state_t s13 = {13, 0, 0, 1, 1, 1};
        CHECK(ckpt_save(dir, &id, &m.w, &s13, 0, &err_v) == 0, "save");
        snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 13);
        long n13 = 120 + 12L * m.w.nparams;
        unsigned char *b3 = malloc((size_t)n13);
        f = fopen(path, "rb");
        CHECK(f && fread(b3, 1, (size_t)n13, f) == (size_t)n13, "read");
        if (f) fclose(f);
        char p3[4200];
        snprintf(p3, sizeof p3, "%s/v3.bin", dir);
        for (int variant = 0; variant < 2; variant++) {
            uint32_t v = variant ? 4 : 3, hc;
            memcpy(b3 + 8, &v, 4);
            b3[103] = variant ? CKPT_EMA_ORDER : 0;
            hc = crc32_bytes(b3, 116);
            memcpy(b3 + 116, &hc, 4);
            f = fopen(p3, "wb");
            CHECK(f && fwrite(b3, 1, (size_t)n13, f) == (size_t)n13, "write");
            if (f) fclose(f);
            int rc = ckpt_load(p3, &id, &m2.w, &st, &err_v);
            if (!variant) CHECK(rc == 0 && st.step == 13 && !memcmp(m.w.params, m2.w.params, 4 * m.w.nparams),
                                "version 3 loads without EMA: %s", err);
            else CHECK(rc == -1 && strstr(err, "invalid objective in header") && strstr(err, "ema 2"),
                       "the EMA order without EMA weights is refused: %s", err);
        }
        free(b3);
        model_free(&me);
        model_free(&mf);
    }
    test_end();

    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    model_free(&m);
    model_free(&m2);
    return test_exit();
}
