/* The teacher loader (semaim/teacher_io.h): layout and sizes from the names and shapes, then
 * the teacher's table checked against the file and read through it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/tensors.h"
#include "semaim/teacher_io.h"

static const st_entry_t *find(const st_file_t *f, const char *prefix, const char *name) {
    char n[256];
    snprintf(n, sizeof n, "%s%s", prefix, name);
    return st_find(f, n);
}

/* Layout and prefix, or -1 when no name says. */
static int detect(const st_file_t *f, teacher_arch_t *a, err_t *err) {
    if (st_find(f, "patch_embed.proj.weight") || st_find(f, "cls_token")) { a->layout = TEACHER_TIMM; return 0; }
    a->layout = TEACHER_CLIP;
    if (st_find(f, "conv1.weight")) return 0;
    if (st_find(f, "visual.conv1.weight")) { snprintf(a->prefix, sizeof a->prefix, "visual."); return 0; }
    return err_set(err, ERR_INPUT, "%s: unknown teacher layout: no tensor 'patch_embed.proj.weight' or 'cls_token' "
                   "(timm / DINO ViT) nor 'conv1.weight' (OpenAI CLIP visual tower) among its %d tensors%s%s%s",
                   f->path, f->n, f->n ? " (the first: '" : "", f->n ? f->t[0].name : "", f->n ? "')" : "");
}

static int shape_error(const st_file_t *f, const char *prefix, const char *name, const st_entry_t *e, const char *want,
                       err_t *err) {
    char s[160];
    st_shape_str(s, sizeof s, e->shape, e->ndim);
    return err_set(err, ERR_INPUT, "%s: tensor '%s%s' has shape %s, expected %s", f->path, prefix, name, s, want);
}

/* The sizes the other shapes are then checked against. */
static int infer(const st_file_t *f, teacher_arch_t *a, err_t *err) {
    const int clip = a->layout == TEACHER_CLIP;
    const char *x = a->prefix, *pw_name = clip ? "conv1.weight" : "patch_embed.proj.weight",
               *pos_name = clip ? "positional_embedding" : "pos_embed";
    const st_entry_t *pw = find(f, x, pw_name), *pos = find(f, x, pos_name);
    if (!pw) return err_set(err, ERR_INPUT, "%s: missing tensor '%s%s'", f->path, x, pw_name);
    if (pw->ndim != 4 || pw->shape[1] != 3 || pw->shape[2] != pw->shape[3] || pw->shape[0] < 1 || pw->shape[2] < 1)
        return shape_error(f, x, pw_name, pw, "[D,3,P,P]", err);
    a->width = (int)pw->shape[0];
    a->patch = (int)pw->shape[2];
    const int D = a->width;
    if (!pos) return err_set(err, ERR_INPUT, "%s: missing tensor '%s%s'", f->path, x, pos_name);
    const int lead = clip ? 0 : 1;   /* timm's [1,T,D], OpenAI's [T,D] */
    const long T = pos->ndim == 2 + lead ? pos->shape[lead] : 0, G = (long)llround(sqrt((double)(T > 1 ? T - 1 : 0)));
    if (pos->ndim != 2 + lead || (lead && pos->shape[0] != 1) || pos->shape[1 + lead] != D || T < 2 || G * G != T - 1) {
        char want[64];
        snprintf(want, sizeof want, clip ? "[G*G+1,%d] (a class row and a square grid)" : "[1,G*G+1,%d] (a class row and a square grid)", D);
        return shape_error(f, x, pos_name, pos, want, err);
    }
    a->grid = (int)G;
    char n[256];
    while (snprintf(n, sizeof n, clip ? "%stransformer.resblocks.%d.ln_1.weight" : "%sblocks.%d.norm1.weight", x, a->depth),
           st_find(f, n))
        a->depth++;
    if (a->depth < 1)
        return err_set(err, ERR_INPUT, "%s: missing tensor '%s%s' (no blocks)", f->path, x,
                       clip ? "transformer.resblocks.0.ln_1.weight" : "blocks.0.norm1.weight");
    /* a malformed fc1 or proj gives a shape the full check below reports */
    const st_entry_t *fc1 = find(f, x, clip ? "transformer.resblocks.0.mlp.c_fc.weight" : "blocks.0.mlp.fc1.weight");
    a->hidden = fc1 && fc1->ndim == 2 && fc1->shape[0] > 0 ? (int)fc1->shape[0] : 4 * D;
    const st_entry_t *proj = clip ? find(f, x, "proj") : NULL;
    a->out = proj && proj->ndim == 2 && proj->shape[1] > 0 ? (int)proj->shape[1] : D;
    const char *h = st_meta(f, "num_heads");
    if (!h) h = st_meta(f, "heads");
    if (h) {
        char *end;
        long v = strtol(h, &end, 10);
        if (end == h || *end || v < 1 || D % v)
            return err_set(err, ERR_INPUT, "%s: metadata heads '%s' is not a positive divisor of the width %d", f->path, h, D);
        a->heads = (int)v;
    } else if (D % 64 == 0) {
        a->heads = D / 64;
    } else {
        return err_set(err, ERR_INPUT, "%s: the head count does not follow from the width %d (not a multiple of 64) "
                       "and the file has no 'num_heads' metadata", f->path, D);
    }
    return 0;
}

/* A tensor of the file the layout has no place for: fine only if it is outside the tower
 * (prefix) or timm's classifier head. */
static int ignorable(const teacher_arch_t *a, const char *name) {
    if (a->prefix[0]) return strncmp(name, a->prefix, strlen(a->prefix)) != 0;
    return a->layout == TEACHER_TIMM && (!strcmp(name, "head.weight") || !strcmp(name, "head.bias"));
}

static int load(teacher_t *t, const st_file_t *f, int image, int patch, err_t *err) {
    teacher_arch_t a;
    memset(&a, 0, sizeof a);
    if (detect(f, &a, err) || infer(f, &a, err)) return -1;
    const int sg = patch > 0 ? image / patch : 0;
    if (a.grid != sg)
        return err_set(err, ERR_INPUT, "%s: the teacher's patch grid is %dx%d (patch %d), the student's %dx%d (image %d, "
                       "patch %d): they must be equal", f->path, a.grid, a.grid, a.patch, sg, sg, image, patch);
    if (a.patch != patch || a.patch * a.grid != image)   /* it sees the student's images */
        return err_set(err, ERR_INPUT, "%s: the teacher reads %dx%d images (patch %d, grid %dx%d), the student's are "
                       "%dx%d (patch %d): they must be the same", f->path, a.patch * a.grid, a.patch * a.grid, a.patch,
                       a.grid, a.grid, image, image, patch);
    if (teacher_init(t, &a, err)) return err_prefix(err, "%s", f->path);
    char what[96];
    snprintf(what, sizeof what, "for this %s", teacher_layout_name(a.layout));
    for (int i = 0; i < t->nfile; i++)
        if (!st_expect(f, &t->w.info[i], what, err)) return -1;
    for (int i = 0; i < f->n; i++)
        if (!ignorable(&a, f->t[i].name) && !params_find(&t->w, f->t[i].name))
            return err_set(err, ERR_INPUT, "%s: tensor '%s' has no place in a plain %s (LayerScale, register tokens, "
                           "pre-norms and other variants are not supported)", f->path, f->t[i].name,
                           teacher_layout_name(a.layout));
    for (int i = 0; i < t->nfile; i++) {
        const param_info_t *p = &t->w.info[i];
        if (st_read_finite(f, st_find(f, p->name), t->w.params + p->offset, err)) return -1;
    }
    teacher_ready(t);
    return 0;
}

int teacher_load(teacher_t *t, const char *path, int image, int patch, err_t *err) {
    memset(t, 0, sizeof *t);
    st_file_t f;
    if (st_open(&f, path, err)) return -1;
    int rc = load(t, &f, image, patch, err);
    st_close(&f);
    if (rc) teacher_free(t);
    return rc;
}
