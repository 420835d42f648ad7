/* Checkpoints: round trip, keep-K rotation, corrupt newest falls back, wrong config and
 * garbage files are refused with a reason; the objective (target_cfg_t) round trips, feature
 * targets with it; a version 3 file (before the target kind) loads as the pixel target, a
 * version 2 file (from before the objective was recorded) as the default objective; the EMA
 * weights and --ema-order round trip, a version 3 file loads without EMA, and a load with
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

/* An older version of the version 4 file src (nparams values): its header's first keep bytes,
 * then the two CRCs, then the payload, written to dst. 0, or -1 when a file cannot be used. */
static int downgrade(const char *src, const char *dst, long nparams, uint32_t version, size_t keep) {
    long total = 200 + 12L * nparams;
    unsigned char *b = malloc((size_t)total);
    FILE *f = fopen(src, "rb");
    int ok = b && f && fread(b, 1, (size_t)total, f) == (size_t)total;
    if (f) fclose(f);
    if (ok) {
        uint32_t hb = (uint32_t)keep + 8, pcrc, hcrc;
        memcpy(&pcrc, b + 192, 4);
        memcpy(b + 8, &version, 4);
        memcpy(b + 12, &hb, 4);
        memcpy(b + keep, &pcrc, 4);
        hcrc = crc32_bytes(b, keep + 4);
        memcpy(b + keep + 4, &hcrc, 4);
        memmove(b + hb, b + 200, (size_t)(total - 200));
        f = fopen(dst, "wb");
        ok = f && fwrite(b, 1, (size_t)(total - 200 + hb), f) == (size_t)(total - 200 + hb);
        if (f) fclose(f);
    }
    free(b);
    return ok ? 0 : -1;
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
    const target_cfg_t odd = {5, 2.0, 0, LOSS_L1, SIGNAL_GAP, 0, TARGET_PIXEL, 0, 0, 0, ""};
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
          strstr(err, "trained with --target pixel --blur 5,2 --norm-pix off --loss l1 --order-signal gap;") &&
          strstr(err, "this run has --target pixel --blur 9,1 --norm-pix on --loss l2 --order-signal cls ("), "other objective: %s", err);
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

    /* Feature targets: the kind (and a teacher's file, layout and width) round trip; the head's
     * width follows the kind, and another kind or teacher is refused. */
    test_begin("checkpoint_feature_target_round_trip");
    {
        target_cfg_t inf = target_defaults(), tea = target_defaults();
        inf.kind = TARGET_INFERENCE;
        tea.kind = TARGET_TEACHER; tea.teacher_layout = 1; tea.teacher_width = 24; tea.teacher_bytes = 123456789012LL;
        snprintf(tea.teacher_file, sizeof tea.teacher_file, "clip-b16.safetensors");
        model_t mi, mt, back;
        CHECK(model_init_target(&mi, &c, &inf, 1, &err_v) == 0 && mi.out == c.width, "inference head width D: %s", err);
        CHECK(model_init_target(&mt, &c, &tea, 1, &err_v) == 0 && mt.out == 24, "teacher head width: %s", err);
        ckpt_state_t s10 = {10, 0, 0, 1, 1, 1}, s11 = {11, 0, 0, 1, 1, 1};
        ckpt_model_t idi = ckpt_pretrain(&mi), idt = ckpt_pretrain(&mt);
        CHECK(ckpt_save(dir, &idi, &mi.w, &s10, 0, &err_v) == 0 && ckpt_save(dir, &idt, &mt.w, &s11, 0, &err_v) == 0,
              "save: %s", err);
        snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 10);
        CHECK(ckpt_load_model(path, &back, &st, &err_v) == 0 && back.tgt.kind == TARGET_INFERENCE && back.out == c.width &&
                  !memcmp(back.w.params, mi.w.params, 4 * mi.w.nparams), "inference loads with its head: %s", err);
        if (back.w.params) model_free(&back);
        idd = id;
        CHECK(ckpt_load(path, &idd, &m2.w, &st, &err_v) == -1 && strstr(err, "trained with --target inference --order-signal cls;"),
              "pixel run refuses it: %s", err);
        snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 11);
        CHECK(ckpt_read_header(path, &hid, &st, &err_v) == 0 && target_equal(&hid.tgt, &tea) &&
                  !strcmp(hid.tgt.teacher_file, "clip-b16.safetensors") && hid.tgt.teacher_bytes == 123456789012LL,
              "teacher fields: %s", err);
        CHECK(ckpt_load_model(path, &back, &st, &err_v) == 0 && back.out == 24, "teacher loads with its head: %s", err);
        if (back.w.params) model_free(&back);
        ckpt_model_t other = idt;
        other.tgt.teacher_bytes++;
        CHECK(ckpt_load(path, &other, &mt.w, &st, &err_v) == -1 &&
                  strstr(err, "--teacher clip-b16.safetensors (clip, width 24, 123456789012 bytes)"),
              "another teacher file refused: %s", err);
        model_free(&mi); model_free(&mt);
    }
    test_end();

    /* Older versions, made from a version 4 file by cutting the newer fields out of the header,
     * as the format was before them: version 3 (120 bytes: the pixel objective, no target kind)
     * reads as the pixel target with its objective; version 2 (104 bytes, no objective) as the
     * default objective. Each loads bit-exact into the model it means and refuses another. */
    test_begin("checkpoint_versions_3_and_2_load_as_pixel_target");
    for (int v = 3; v >= 2; v--) {
        const ckpt_model_t *mine = v == 3 ? &ido : &id, *other = v == 3 ? &id : &ido;
        ckpt_state_t sv = {20 + v, 1, 2, 1, 1, 1};
        CHECK(ckpt_save(dir, mine, &m.w, &sv, 0, &err_v) == 0, "save");
        snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 20 + v);
        char pv[4200];
        snprintf(pv, sizeof pv, "%s/v%d.bin", dir, v);
        CHECK(downgrade(path, pv, m.w.nparams, (uint32_t)v, v == 3 ? 112 : 96) == 0, "write v%d file", v);
        CHECK(ckpt_read_header(pv, &hid, &st, &err_v) == 0 && hid.tgt.kind == TARGET_PIXEL &&
                  target_equal(&hid.tgt, &mine->tgt) && st.step == 20 + v && hid.tgt.blur_sigma == mine->tgt.blur_sigma,
              "v%d header: pixel target, blur %d,%g loss %d: %s", v, hid.tgt.blur_k, hid.tgt.blur_sigma, hid.tgt.loss, err);
        memset(m2.w.params, 0, 4 * m2.w.nparams);
        CHECK(ckpt_load(pv, mine, &m2.w, &st, &err_v) == 0 && !memcmp(m.w.params, m2.w.params, 4 * m.w.nparams) &&
                  !memcmp(m.w.v, m2.w.v, 4 * m.w.nparams) && st.epoch_step == 2,
              "v%d loads bit-exact: %s", v, err);
        CHECK(ckpt_load(pv, other, &m2.w, &st, &err_v) == -1 &&
                  strstr(err, v == 3 ? "trained with --target pixel --blur 5,2" : "trained with --target pixel --blur 9,1"),
              "v%d refuses another objective: %s", v, err);
    }
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
        CHECK(ide.ema == 1 && ckpt_file_bytes(&ide) == 200 + 16LL * me.w.nparams, "the id counts the fourth buffer");
        ckpt_state_t s11 = {11, 0, 0, 3, 1, 1};
        CHECK(ckpt_save(dir, &ide, &me.w, &s11, 0, &err_v) == 0, "save: %s", err);
        snprintf(path, sizeof path, "%s/ckpt-%08d.bin", dir, 11);
        struct stat sb;
        unsigned char h[200];
        f = fopen(path, "rb");
        CHECK(f && fread(h, 1, 200, f) == 200 && stat(path, &sb) == 0, "read header");
        if (f) fclose(f);
        uint32_t ver;
        memcpy(&ver, h + 8, 4);
        CHECK(ver == 4 && h[103] == (CKPT_EMA_WEIGHTS | CKPT_EMA_ORDER) && sb.st_size == 200 + 16L * me.w.nparams,
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
                  strstr(err, "this run has --target pixel --blur 9,1 --norm-pix on --loss l2 --order-signal cls ("),
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
        char p3[4200];
        snprintf(p3, sizeof p3, "%s/v3.bin", dir);
        CHECK(downgrade(path, p3, m.w.nparams, 3, 112) == 0, "write v3 file");
        CHECK(ckpt_load(p3, &id, &m2.w, &st, &err_v) == 0 && st.step == 13 && !memcmp(m.w.params, m2.w.params, 4 * m.w.nparams),
              "version 3 loads without EMA: %s", err);
        long n13 = 200 + 12L * m.w.nparams;
        unsigned char *b3 = malloc((size_t)n13);
        f = fopen(path, "rb");
        CHECK(f && fread(b3, 1, (size_t)n13, f) == (size_t)n13, "read");
        if (f) fclose(f);
        uint32_t hc;
        b3[103] = CKPT_EMA_ORDER;
        hc = crc32_bytes(b3, 196);
        memcpy(b3 + 196, &hc, 4);
        f = fopen(p3, "wb");
        CHECK(f && fwrite(b3, 1, (size_t)n13, f) == (size_t)n13, "write");
        if (f) fclose(f);
        CHECK(ckpt_load(p3, &id, &m2.w, &st, &err_v) == -1 && strstr(err, "invalid objective in header") && strstr(err, "ema 2"),
              "the EMA order without EMA weights is refused: %s", err);
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
