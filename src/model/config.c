#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "semaim/config.h"

int config_preset(const char *name, semaim_config_t *c) {
    static const struct { const char *name; semaim_config_t c; } presets[] = {
        {"tiny",  {224, 16, 192, 12, 12, 3}},
        {"small", {224, 16, 384, 12, 12, 6}},
        {"base",  {224, 16, 768, 12, 12, 12}},
        {"large", {224, 16, 1024, 24, 12, 16}},
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(name, presets[i].name) == 0) { *c = presets[i].c; return 0; }
    return -1;
}

int config_validate(const semaim_config_t *c, int batch, err_t *err) {
    const struct { const char *name; int v; } f[] = {
        {"image", c->image}, {"patch", c->patch}, {"width", c->width},
        {"depth", c->depth}, {"dec-depth", c->dec_depth}, {"heads", c->heads}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0) return err_set(err, ERR_INPUT, "%s must be positive (got %d)", f[i].name, f[i].v);
    if (c->image % c->patch) return err_set(err, ERR_INPUT, "patch %d does not divide image %d", c->patch, c->image);
    if (c->width % c->heads) return err_set(err, ERR_INPUT, "width %d is not divisible by heads %d", c->width, c->heads);
    if (c->depth % c->dec_depth) return err_set(err, ERR_INPUT, "depth %d is not divisible by dec-depth %d", c->depth, c->dec_depth);
    /* The 2-D sin-cos embedding splits the width into four equal parts. */
    if (c->width % 4) return err_set(err, ERR_INPUT, "width %d is not divisible by 4 (2-D sin-cos positions)", c->width);
    if (c->image > 8192 || c->width > 16384 || c->depth > 1024 || c->heads > 1024) {
        return err_set(err, ERR_INPUT, "size out of range (image <= 8192, width <= 16384, depth <= 1024)");
    }
    if (batch == 0 || batch < -1) return err_set(err, ERR_INPUT, "batch must be positive (got %d)", batch);
    return 0;
}

target_cfg_t target_defaults(void) { return (target_cfg_t){9, 1.0, 1, LOSS_L2, SIGNAL_CLS, 0, TARGET_PIXEL, 0, 0, 0, ""}; }

int target_parse_blur(const char *s, target_cfg_t *t, err_t *err) {
    if (!strcmp(s, "none")) { t->blur_k = 0; t->blur_sigma = 0; return 0; }
    char *end;
    errno = 0;
    long k = strtol(s, &end, 10);
    int ok = end != s && *end == ',' && !errno;
    double sigma = 0;
    if (ok) {
        const char *p = end + 1;
        sigma = strtod(p, &end);
        ok = end != p && *end == 0 && !errno && isfinite(sigma);
    }
    if (!ok) return err_set(err, ERR_INPUT, "--blur: '%s' is not K,SIGMA (e.g. 9,1) or none", s);
    if (k < 1 || k > 63 || k % 2 == 0)
        return err_set(err, ERR_INPUT, "--blur: K must be odd, 1 to 63 (got %ld)", k);
    if (!(sigma > 0) || sigma > 1e6) return err_set(err, ERR_INPUT, "--blur: SIGMA must be positive, at most 1e6 (got %s)", strchr(s, ',') + 1);
    t->blur_k = (int)k;
    t->blur_sigma = sigma;
    return 0;
}

int target_parse_norm_pix(const char *s, target_cfg_t *t, err_t *err) {
    if (!strcmp(s, "on")) t->norm_pix = 1;
    else if (!strcmp(s, "off")) t->norm_pix = 0;
    else return err_set(err, ERR_INPUT, "--norm-pix must be on or off, not '%s'", s);
    return 0;
}

static const char *loss_names[] = {"l2", "l1"}, *signal_names[] = {"cls", "gap", "self"},
                  *kind_names[] = {"pixel", "inference", "ema", "teacher"};

int target_parse_kind(const char *s, target_cfg_t *t, err_t *err) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, kind_names[i])) { t->kind = i; return 0; }
    return err_set(err, ERR_INPUT, "--target must be pixel, inference, ema or teacher, not '%s'", s);
}

const char *target_kind_name(int kind) { return (unsigned)kind < 4 ? kind_names[kind] : "?"; }

int target_parse_loss(const char *s, target_cfg_t *t, err_t *err) {
    for (int i = 0; i < 2; i++)
        if (!strcmp(s, loss_names[i])) { t->loss = i; return 0; }
    return err_set(err, ERR_INPUT, "--loss must be l2 or l1, not '%s'", s);
}

int target_parse_signal(const char *s, target_cfg_t *t, err_t *err) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, signal_names[i])) { t->signal = i; return 0; }
    return err_set(err, ERR_INPUT, "--order-signal must be cls, gap or self, not '%s'", s);
}

const char *target_loss_name(int loss) { return (unsigned)loss < 2 ? loss_names[loss] : "?"; }
const char *target_signal_name(int signal) { return (unsigned)signal < 3 ? signal_names[signal] : "?"; }

const char *target_blur_text(const target_cfg_t *t, char *buf, size_t n) {
    if (t->blur_k <= 0) snprintf(buf, n, "none");
    else snprintf(buf, n, "%d,%.17g", t->blur_k, t->blur_sigma);
    return buf;
}

static const char *layout_names[] = {"timm", "clip"};

const char *target_describe(const target_cfg_t *t, char *buf, size_t n) {
    char b[64];
    const char *ema = t->ema_order ? " --ema-order" : "";
    if (t->kind == TARGET_PIXEL)
        snprintf(buf, n, "--target pixel --blur %s --norm-pix %s --loss %s --order-signal %s%s", target_blur_text(t, b, sizeof b),
                 t->norm_pix ? "on" : "off", target_loss_name(t->loss), target_signal_name(t->signal), ema);
    else if (t->kind == TARGET_TEACHER)
        snprintf(buf, n, "--target teacher --teacher %s (%s, width %d, %lld bytes) --order-signal %s%s", t->teacher_file,
                 (unsigned)t->teacher_layout < 2 ? layout_names[t->teacher_layout] : "?", t->teacher_width,
                 t->teacher_bytes, target_signal_name(t->signal), ema);
    else
        snprintf(buf, n, "--target %s --order-signal %s%s", target_kind_name(t->kind), target_signal_name(t->signal), ema);
    return buf;
}

int target_equal(const target_cfg_t *a, const target_cfg_t *b) {
    if (a->kind != b->kind || a->signal != b->signal || a->ema_order != b->ema_order) return 0;
    if (a->kind == TARGET_TEACHER)
        return a->teacher_layout == b->teacher_layout && a->teacher_width == b->teacher_width &&
               a->teacher_bytes == b->teacher_bytes && !strncmp(a->teacher_file, b->teacher_file, TARGET_FILE_MAX);
    if (a->kind != TARGET_PIXEL) return 1;
    return a->blur_k == b->blur_k && (a->blur_k == 0 || a->blur_sigma == b->blur_sigma) && a->norm_pix == b->norm_pix &&
           a->loss == b->loss;
}

int target_set_teacher(target_cfg_t *t, const char *path, int layout, int width, err_t *err) {
    struct stat sb;
    if (stat(path, &sb)) return err_set(err, ERR_INPUT, "--teacher %s: cannot stat: %s", path, strerror(errno));
    const char *base = strrchr(path, '/');
    snprintf(t->teacher_file, sizeof t->teacher_file, "%s", base ? base + 1 : path);
    t->teacher_bytes = (long long)sb.st_size;
    t->teacher_layout = layout;
    t->teacher_width = width;
    return 0;
}
