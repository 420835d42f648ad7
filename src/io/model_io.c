/* Model tensors to and from named files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/tensors.h"
#include "semaim/model_io.h"

int model_write_safetensors(const model_t *m, const float *buf, const char *prefix, int with_pos,
                            const st_tensor_t *extra, int nextra, const char *path, err_t *err) {
    int n = m->w.ntensors + (with_pos ? 1 : 0) + nextra;
    st_tensor_t *t = calloc(n, sizeof *t);
    char (*names)[PARAM_NAME_MAX + 16] = calloc(n, sizeof *names);
    if (!t || !names) { free(t); free(names); return err_set(err, ERR_RUNTIME, "%s: out of memory", path); }
    int k = 0;
    for (int i = 0; i < nextra; i++) t[k++] = extra[i];
    if (with_pos) {
        t[k] = (st_tensor_t){"pos_embed", ST_F32, 3, {1, m->d.T, m->d.D, 0}, m->pos_embed};
        k++;
    }
    for (int i = 0; i < m->w.ntensors; i++, k++) {
        const param_info_t *p = &m->w.info[i];
        snprintf(names[k], sizeof names[k], "%s%s", prefix, p->name);
        t[k].name = names[k]; t[k].dtype = ST_F32; t[k].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) t[k].shape[d] = p->shape[d];
        t[k].data = buf + p->offset;
    }
    int rc = st_write(path, t, n, err);
    free(t); free(names);
    return rc;
}

int model_tensor_is_backbone(const char *name) {
    return strncmp(name, "query_blocks.", 13) != 0 && strncmp(name, "prediction_head.", 16) != 0;
}

/* One table (its tensors for which keep(name, full) holds), pos_embed after the first (timm's
 * order: cls_token, pos_embed, then the table's, already timm's), F32, with the metadata. */
static int export_table(const params_t *w, const float *pos, int T, int D, const semaim_config_t *c,
                        int (*keep)(const char *, int), int full, const char *const *meta_keys,
                        const char *const *meta_vals, int nmeta, const char *path, err_t *err) {
    st_tensor_t *t = calloc(w->ntensors + 1, sizeof *t);
    const char **keys = calloc(nmeta + 2, sizeof *keys), **vals = calloc(nmeta + 2, sizeof *vals);
    if (!t || !keys || !vals) {
        free(t); free(keys); free(vals);
        return err_set(err, ERR_RUNTIME, "%s: out of memory", path);
    }
    int k = 0;
    for (int i = 0; i < w->ntensors; i++) {
        const param_info_t *p = &w->info[i];
        if (!keep(p->name, full)) continue;
        t[k] = (st_tensor_t){p->name, ST_F32, p->ndim, {0}, w->params + p->offset};
        for (int d = 0; d < p->ndim; d++) t[k].shape[d] = p->shape[d];
        k++;
        if (i == 0) t[k++] = (st_tensor_t){"pos_embed", ST_F32, 3, {1, T, D, 0}, pos};
    }
    char cfg[160];
    snprintf(cfg, sizeof cfg, "image=%d,patch=%d,width=%d,depth=%d,dec_depth=%d,heads=%d", c->image, c->patch,
             c->width, c->depth, c->dec_depth, c->heads);
    keys[0] = "format"; vals[0] = "pt";
    keys[1] = "semaim_config"; vals[1] = cfg;
    for (int i = 0; i < nmeta; i++) { keys[2 + i] = meta_keys[i]; vals[2 + i] = meta_vals[i]; }
    int rc = st_write_meta(path, t, k, keys, vals, nmeta + 2, err);
    free(t); free(keys); free(vals);
    return rc;
}

static int keep_pretrain(const char *name, int full) { return full || model_tensor_is_backbone(name); }
static int keep_all(const char *name, int full) { (void)name; (void)full; return 1; }

int model_export_safetensors(const model_t *m, int full, const char *const *meta_keys, const char *const *meta_vals,
                             int nmeta, const char *path, err_t *err) {
    /* the whole model names what its head predicts, so an import builds the same model */
    enum { MAXMETA = 32 };
    ERR_ASSERT(nmeta <= MAXMETA - 4, "export: %d metadata pairs, at most %d", nmeta, MAXMETA - 4);
    const char *k[MAXMETA], *v[MAXMETA];
    char layout[32], bytes[32];
    for (int i = 0; i < nmeta; i++) { k[i] = meta_keys[i]; v[i] = meta_vals[i]; }
    int n = nmeta;
    if (full) {
        k[n] = "semaim_target"; v[n++] = target_kind_name(m->tgt.kind);
        if (m->tgt.kind == TARGET_TEACHER) {
            snprintf(layout, sizeof layout, "%d", m->tgt.teacher_layout);
            snprintf(bytes, sizeof bytes, "%lld", m->tgt.teacher_bytes);
            k[n] = "semaim_teacher_file"; v[n++] = m->tgt.teacher_file;
            k[n] = "semaim_teacher_layout"; v[n++] = layout;
            k[n] = "semaim_teacher_bytes"; v[n++] = bytes;
        }
    }
    return export_table(&m->w, m->pos_embed, m->d.T, m->d.D, &m->cfg, keep_pretrain, full, k, v, n, path, err);
}

int model_infer_target(const st_file_t *f, const semaim_config_t *c, target_cfg_t *t, err_t *err) {
    *t = target_defaults();
    const st_entry_t *h = st_find(f, "prediction_head.fc2.weight");
    if (!h) return 0;
    char s[160];
    if (h->ndim != 2 || h->shape[1] != 4L * c->width || h->shape[0] < 1 || h->shape[0] > 65536) {
        st_shape_str(s, sizeof s, h->shape, h->ndim);
        return err_set(err, ERR_INPUT, "%s: tensor 'prediction_head.fc2.weight' has shape %s, expected [OUT,%d]", f->path, s,
                       4 * c->width);
    }
    const int out = (int)h->shape[0];
    const char *kind = st_meta(f, "semaim_target");
    if (kind) {
        if (target_parse_kind(kind, t, err)) return err_prefix(err, "%s: metadata semaim_target", f->path);
    } else {   /* a file from before the metadata, or from elsewhere: the width tells */
        t->kind = out == cfg_patch_dim(c) ? TARGET_PIXEL : out == c->width ? TARGET_INFERENCE : TARGET_TEACHER;
    }
    if (t->kind == TARGET_TEACHER) {
        const char *file = st_meta(f, "semaim_teacher_file"), *lay = st_meta(f, "semaim_teacher_layout"),
                   *bytes = st_meta(f, "semaim_teacher_bytes");
        t->teacher_width = out;
        t->teacher_layout = lay ? atoi(lay) : 0;
        t->teacher_bytes = bytes ? atoll(bytes) : 0;
        snprintf(t->teacher_file, sizeof t->teacher_file, "%s", file ? file : "");
    }
    if (target_head_width(t, c) != out)
        return err_set(err, ERR_INPUT, "%s: 'prediction_head.fc2.weight' has %d outputs, but the %s target needs %d", f->path,
                       out, target_kind_name(t->kind), target_head_width(t, c));
    return 0;
}

int model_export_classifier(const ft_model_t *f, const char *const *meta_keys, const char *const *meta_vals, int nmeta,
                            const char *path, err_t *err) {
    return export_table(&f->w, f->pos_embed, f->d.T, f->d.D, &f->cfg, keep_all, 0, meta_keys, meta_vals, nmeta, path, err);
}

/* Counts name patterns fmt % 0, 1, ... present in f. */
static int count_indexed(const st_file_t *f, const char *fmt) {
    int n = 0;
    char name[128];
    for (;; n++) {
        snprintf(name, sizeof name, fmt, n);
        if (!st_find(f, name)) return n;
    }
}

/* Parses our "image=..,patch=..," metadata; fields not present stay 0. */
static void parse_cfg_meta(const char *s, semaim_config_t *c) {
    memset(c, 0, sizeof *c);
    if (!s) return;
    const struct { const char *k; int *v; } f[] = {{"image", &c->image}, {"patch", &c->patch}, {"width", &c->width},
        {"depth", &c->depth}, {"dec_depth", &c->dec_depth}, {"heads", &c->heads}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        const char *p = strstr(s, f[i].k);
        size_t kl = strlen(f[i].k);
        while (p && ((p > s && p[-1] != ',') || p[kl] != '=')) p = strstr(p + 1, f[i].k);
        if (p) *f[i].v = atoi(p + kl + 1);
    }
}

int model_infer_config(const st_file_t *f, const semaim_config_t *given, semaim_config_t *out, int *has_decoder,
                       err_t *err) {
    semaim_config_t g = {0}, meta;
    if (given) g = *given;
    parse_cfg_meta(st_meta(f, "semaim_config"), &meta);
    char s[160];
    const st_entry_t *cls = st_find(f, "cls_token"), *pw = st_find(f, "patch_embed.proj.weight");
    const st_entry_t *pos = st_find(f, "pos_embed");
    if (!cls) { err_set(err, ERR_INPUT, "%s: missing tensor 'cls_token' (needed to tell the width)", f->path); return -1; }
    if (cls->ndim != 3 || cls->shape[0] != 1 || cls->shape[1] != 1 || cls->shape[2] < 1) {
        st_shape_str(s, sizeof s, cls->shape, cls->ndim);
        err_set(err, ERR_INPUT, "%s: tensor 'cls_token' has shape %s, expected [1,1,D]", f->path, s);
        return -1;
    }
    int D = (int)cls->shape[2];
    if (!pw) { err_set(err, ERR_INPUT, "%s: missing tensor 'patch_embed.proj.weight'", f->path); return -1; }
    if (pw->ndim != 4 || pw->shape[0] != D || pw->shape[1] != 3 || pw->shape[2] != pw->shape[3] || pw->shape[2] < 1) {
        st_shape_str(s, sizeof s, pw->shape, pw->ndim);
        err_set(err, ERR_INPUT, "%s: tensor 'patch_embed.proj.weight' has shape %s, expected [%d,3,P,P]", f->path, s, D);
        return -1;
    }
    int P = (int)pw->shape[2], image = 0;
    if (pos) {
        long T = pos->ndim == 3 ? pos->shape[1] : 0, G = (long)llround(sqrt((double)(T - 1)));
        if (pos->ndim != 3 || pos->shape[0] != 1 || pos->shape[2] != D || T < 2 || G * G != T - 1) {
            st_shape_str(s, sizeof s, pos->shape, pos->ndim);
            err_set(err, ERR_INPUT, "%s: tensor 'pos_embed' has shape %s, expected [1,G*G+1,%d] (a cls row and a square grid)",
                     f->path, s, D);
            return -1;
        }
        image = (int)(G * P);
    } else if (meta.image > 0) image = meta.image;
    else if (g.image > 0) image = g.image;
    else { err_set(err, ERR_INPUT, "%s: no 'pos_embed' to tell the image size: give --image", f->path); return -1; }
    int depth = count_indexed(f, "blocks.%d.norm1.weight");
    if (depth < 1) { err_set(err, ERR_INPUT, "%s: missing tensor 'blocks.0.norm1.weight' (no encoder blocks)", f->path); return -1; }
    int dq = count_indexed(f, "query_blocks.%d.norm1.weight");
    int heads = meta.heads > 0 ? meta.heads : g.heads > 0 ? g.heads : D % 64 == 0 ? D / 64 : 0;
    if (heads < 1) {
        err_set(err, ERR_INPUT, "%s: the head count does not follow from the shapes (width %d is not a multiple of 64): give --heads",
                 f->path, D);
        return -1;
    }
    int dec_depth = dq > 0 ? dq : meta.dec_depth > 0 ? meta.dec_depth : g.dec_depth > 0 ? g.dec_depth : 1;
    semaim_config_t c = {image, P, D, depth, dec_depth, heads};
    const struct { const char *name; int file, want; } chk[] = {
        {"image", c.image, g.image}, {"patch", c.patch, g.patch}, {"width", c.width, g.width},
        {"depth", c.depth, g.depth}, {"dec-depth", dq > 0 ? dq : 0, g.dec_depth}, {"heads", meta.heads, g.heads}};
    for (size_t i = 0; i < sizeof chk / sizeof chk[0]; i++)
        if (chk[i].want > 0 && chk[i].file > 0 && chk[i].want != chk[i].file) {
            err_set(err, ERR_INPUT, "%s: the file holds a model with %s %d, not the --%s %d given", f->path, chk[i].name,
                     chk[i].file, chk[i].name, chk[i].want);
            return -1;
        }
    if (config_validate(&c, -1, err)) return err_prefix(err, "%s: inferred model config is invalid", f->path);
    *out = c;
    if (has_decoder) *has_decoder = dq > 0;
    return 0;
}

int model_load_safetensors(model_t *m, const st_file_t *f, int need_decoder, int *ignored, err_t *err) {
    /* the decoder is all-or-nothing: a partial one is an error even when not needed */
    int dec_present = 0, dec_total = 0;
    for (int i = 0; i < m->w.ntensors; i++)
        if (!model_tensor_is_backbone(m->w.info[i].name)) { dec_total++; dec_present += st_find(f, m->w.info[i].name) != NULL; }
    int want_dec = need_decoder || dec_present > 0;
    char s1[160], s2[160];
    /* check everything before reading anything */
    for (int i = 0; i < m->w.ntensors; i++) {
        const param_info_t *p = &m->w.info[i];
        int enc = model_tensor_is_backbone(p->name);
        if (!enc && !want_dec) continue;
        const st_entry_t *e = st_find(f, p->name);
        if (!e) {
            if (enc) err_set(err, ERR_INPUT, "%s: missing tensor '%s'", f->path, p->name);
            else err_set(err, ERR_INPUT, "%s: missing tensor '%s' (%s; %d of %d decoder tensors present)", f->path, p->name,
                          need_decoder ? "the whole pretraining model is needed" : "the decoder is incomplete",
                          dec_present, dec_total);
            return -1;
        }
        if (!st_expect(f, p, "for this model", err)) return -1;
    }
    const st_entry_t *pos = st_find(f, "pos_embed");
    if (pos) {
        long sh[3] = {1, m->d.T, m->d.D};
        if (pos->ndim != 3 || pos->shape[0] != 1 || pos->shape[1] != m->d.T || pos->shape[2] != m->d.D) {
            st_shape_str(s1, sizeof s1, pos->shape, pos->ndim);
            st_shape_str(s2, sizeof s2, sh, 3);
            err_set(err, ERR_INPUT, "%s: tensor 'pos_embed' has shape %s, expected %s for this model", f->path, s1, s2);
            return -1;
        }
    }
    for (int i = 0; i < m->w.ntensors; i++) {
        const param_info_t *p = &m->w.info[i];
        if (!model_tensor_is_backbone(p->name) && !want_dec) continue;
        if (st_read_f32(f, st_find(f, p->name), m->w.params + p->offset, err)) return -1;
    }
    if (pos && st_read_f32(f, pos, m->pos_embed, err)) return -1;
    for (long i = 0; i < m->w.nparams; i++)
        if (!isfinite(m->w.params[i])) {
            const param_info_t *p = NULL;
            for (int k = 0; k < m->w.ntensors; k++)
                if (i >= m->w.info[k].offset && i < m->w.info[k].offset + m->w.info[k].numel) p = &m->w.info[k];
            err_set(err, ERR_INPUT, "%s: tensor '%s' holds %s values", f->path, p ? p->name : "?",
                     isnan(m->w.params[i]) ? "NaN" : "infinite");
            return -1;
        }
    if (ignored) {
        int used = 0;
        for (int i = 0; i < f->n; i++)
            used += !strcmp(f->t[i].name, "pos_embed") ||
                    (params_find(&m->w, f->t[i].name) && (want_dec || model_tensor_is_backbone(f->t[i].name)));
        *ignored = f->n - used;
    }
    return 0;
}

double model_pos_embed_deviation(const model_t *m) {
    float *ref = malloc(sizeof(float) * (size_t)m->d.T * m->d.D);
    if (!ref) return INFINITY;
    pos_embed_sincos(ref, m->d.G, m->d.D);
    double d = 0;
    for (long i = 0; i < (long)m->d.T * m->d.D; i++) d = fmax(d, fabs((double)ref[i] - m->pos_embed[i]));
    free(ref);
    return d;
}
