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

/* The pretraining objective (SPEC §3 and its options, docs/objective.md): the pixel target's
 * blur and per-patch standardisation, the loss, the signal of the semantic orders and whether
 * the EMA weights give it (--ema-order). Part of
 * what a pretraining checkpoint records. The defaults are the paper's recipe (9,1 / on / l2 /
 * cls), which is also what a checkpoint from before these settings means. */
enum { LOSS_L2 = 0, LOSS_L1 = 1 };
enum { SIGNAL_CLS = 0, SIGNAL_GAP = 1, SIGNAL_SELF = 2 };
/* The target kind (--target): pixels (SPEC §3) or the tokens of a frozen encoder (SemAIM*):
 * the model's own (inference), an EMA of it, or a teacher file. With a feature target the
 * pixel fields (blur, norm_pix, loss) are unused, and the prediction head outputs the target's
 * token width (target_head_width) instead of P·P·3. */
enum { TARGET_PIXEL = 0, TARGET_INFERENCE = 1, TARGET_EMA = 2, TARGET_TEACHER = 3 };
#define TARGET_FILE_MAX 64
typedef struct {
    int blur_k;          /* odd kernel size 1..63; 0 = no blur */
    double blur_sigma;   /* > 0 when blur_k > 0 */
    int norm_pix;        /* 1: per-patch standardisation of the target; 0: the (blurred) pixels */
    int loss;            /* LOSS_* */
    int signal;          /* SIGNAL_* */
    int ema_order;       /* 1: the semantic/similarity orders come from the EMA of the weights (ema.h) */
    int kind;            /* TARGET_* */
    /* TARGET_TEACHER: which teacher, so that a resume with another one is refused (a base
     * name and a size identify a file well enough for that; the layout and width are what the
     * model's head and the loss depend on) */
    int teacher_layout;  /* teacher_layout_t (teacher.h) */
    int teacher_width;   /* the teacher's token width */
    long long teacher_bytes;
    char teacher_file[TARGET_FILE_MAX];   /* base name, NUL-terminated */
} target_cfg_t;
target_cfg_t target_defaults(void);
/* Each sets one field from a flag's text ("9,1" or "none"; "on"/"off"; "l2"/"l1"; "cls"/"gap"/
 * "self"). 0, or -1 with ERR_INPUT naming the flag. */
int target_parse_blur(const char *s, target_cfg_t *t, err_t *err);
int target_parse_norm_pix(const char *s, target_cfg_t *t, err_t *err);
int target_parse_loss(const char *s, target_cfg_t *t, err_t *err);
int target_parse_signal(const char *s, target_cfg_t *t, err_t *err);
/* "pixel", "inference", "ema", "teacher" (every kind is accepted here; which are built is the
 * trainer's business). */
int target_parse_kind(const char *s, target_cfg_t *t, err_t *err);
const char *target_kind_name(int kind);
static inline int target_is_feature(const target_cfg_t *t) { return t->kind != TARGET_PIXEL; }
/* Records the teacher of a --target teacher run: path's base name (cut to TARGET_FILE_MAX-1
 * bytes) and size, its layout (teacher_layout_t) and token width. 0, or -1 (ERR_INPUT) when
 * path cannot be stat'ed. */
int target_set_teacher(target_cfg_t *t, const char *path, int layout, int width, err_t *err);
/* The text of the fields as the flags spell them (into buf, which it returns): "9,1", "none";
 * and the whole settings as "--blur 9,1 --norm-pix on --loss l2 --order-signal cls" (then
 * " --ema-order" when it is set). */
const char *target_blur_text(const target_cfg_t *t, char *buf, size_t n);
const char *target_loss_name(int loss);
const char *target_signal_name(int signal);
/* "--target pixel --blur ... --order-signal cls" for the pixel target; a feature target's
 * leaves out the unused pixel settings: "--target inference --order-signal cls", "--target
 * teacher --teacher FILE (LAYOUT, width W, N bytes) --order-signal cls". */
const char *target_describe(const target_cfg_t *t, char *buf, size_t n);
/* Same objective: a feature target's unused pixel settings do not count. */
int target_equal(const target_cfg_t *a, const target_cfg_t *b);

/* Derived sizes. */
static inline int cfg_grid(const semaim_config_t *c) { return c->image / c->patch; }
static inline int cfg_patches(const semaim_config_t *c) { return cfg_grid(c) * cfg_grid(c); }
static inline int cfg_tokens(const semaim_config_t *c) { return cfg_patches(c) + 1; }
static inline int cfg_patch_dim(const semaim_config_t *c) { return 3 * c->patch * c->patch; }
static inline int cfg_head_dim(const semaim_config_t *c) { return c->width / c->heads; }
static inline int cfg_interleave(const semaim_config_t *c) { return c->depth / c->dec_depth; }
/* The prediction head's outputs per token: P·P·3 for pixels, the student width D for its own
 * or its EMA's tokens, the teacher's token width for a teacher. */
static inline int target_head_width(const target_cfg_t *t, const semaim_config_t *c) {
    return t->kind == TARGET_PIXEL ? cfg_patch_dim(c) : t->kind == TARGET_TEACHER ? t->teacher_width : c->width;
}

/* The sizes every pass over a model of config c needs: grid, patches, tokens (L+1), width,
 * heads, head width, values per patch. */
typedef struct { int G, L, T, D, NH, hd, PD; } dims_t;
static inline dims_t cfg_dims(const semaim_config_t *c) {
    dims_t d = {cfg_grid(c), cfg_patches(c), cfg_tokens(c), c->width, c->heads, cfg_head_dim(c), cfg_patch_dim(c)};
    return d;
}
#endif
