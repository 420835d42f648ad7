#include <stdio.h>
#include <string.h>
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
