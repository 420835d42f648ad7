/* Model configuration: presets and custom sizes, validated once, with derived dimensions. */
#ifndef SEMAIM_CONFIG_H
#define SEMAIM_CONFIG_H
#include <stddef.h>

typedef struct {
    int image, patch, width, depth, dec_depth, heads;
} semaim_config_t;

/* Fills *c from a preset name (tiny, small, base, large; image 224, patch 16).
 * Returns 0, or -1 for an unknown name. */
int config_preset(const char *name, semaim_config_t *c);
/* Returns 0 if c (and batch, when batch >= 0 is given) is valid, else -1 with a one-line
 * reason in err. */
int config_validate(const semaim_config_t *c, int batch, char *err, size_t errlen);

/* Derived sizes. */
static inline int cfg_grid(const semaim_config_t *c) { return c->image / c->patch; }
static inline int cfg_patches(const semaim_config_t *c) { return cfg_grid(c) * cfg_grid(c); }
static inline int cfg_tokens(const semaim_config_t *c) { return cfg_patches(c) + 1; }
static inline int cfg_patch_dim(const semaim_config_t *c) { return 3 * c->patch * c->patch; }
static inline int cfg_head_dim(const semaim_config_t *c) { return c->width / c->heads; }
static inline int cfg_step(const semaim_config_t *c) { return c->depth / c->dec_depth; }
#endif
