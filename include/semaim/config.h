/* Model configuration: presets and custom sizes, validated once, with derived dimensions. */
#ifndef SEMAIM_CONFIG_H
#define SEMAIM_CONFIG_H
#include <stddef.h>
#include "semaim/err.h"

typedef struct {
    int image, patch, width, depth, dec_depth, heads;
} semaim_config_t;

/* Fills *c from a preset name (tiny, small, base, large; image 224, patch 16).
 * Returns 0, or -1 for an unknown name. */
int config_preset(const char *name, semaim_config_t *c);
/* Returns 0 if c (and batch, when batch >= 0 is given) is valid, else -1 with a one-line
 * reason in err (ERR_INPUT). */
int config_validate(const semaim_config_t *c, int batch, err_t *err);

/* Derived sizes. */
static inline int cfg_grid(const semaim_config_t *c) { return c->image / c->patch; }
static inline int cfg_patches(const semaim_config_t *c) { return cfg_grid(c) * cfg_grid(c); }
static inline int cfg_tokens(const semaim_config_t *c) { return cfg_patches(c) + 1; }
static inline int cfg_patch_dim(const semaim_config_t *c) { return 3 * c->patch * c->patch; }
static inline int cfg_head_dim(const semaim_config_t *c) { return c->width / c->heads; }
static inline int cfg_interleave(const semaim_config_t *c) { return c->depth / c->dec_depth; }

/* The sizes every pass over a model of config c needs: grid, patches, tokens (L+1), width,
 * heads, head width, values per patch. */
typedef struct { int G, L, T, D, NH, hd, PD; } dims_t;
static inline dims_t cfg_dims(const semaim_config_t *c) {
    dims_t d = {cfg_grid(c), cfg_patches(c), cfg_tokens(c), c->width, c->heads, cfg_head_dim(c), cfg_patch_dim(c)};
    return d;
}
#endif
