/* Loading the model to evaluate or fine-tune (semaim/source.h). */
#include <stdio.h>
#include <string.h>
#include "semaim/checkpoint.h"
#include "semaim/dist.h"
#include "semaim/model_io.h"
#include "semaim/source.h"

static int check_given(const char *path, const semaim_config_t *c, const semaim_config_t *g, err_t *err) {
    const struct { const char *n; int have, want; } f[] = {{"image", c->image, g->image}, {"patch", c->patch, g->patch},
        {"width", c->width, g->width}, {"depth", c->depth, g->depth}, {"dec-depth", c->dec_depth, g->dec_depth},
        {"heads", c->heads, g->heads}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].want > 0 && f[i].want != f[i].have)
            return err_set(err, ERR_INPUT, "%s: checkpoint is for another config (image %d patch %d width %d depth %d "
                           "dec-depth %d heads %d), not the --%s %d given", path, c->image, c->patch, c->width, c->depth,
                           c->dec_depth, c->heads, f[i].n, f[i].want);
    return 0;
}

int source_load(const source_t *src, const char *prog, model_t *m, source_info_t *info, int need_decoder, err_t *err) {
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank;
    MPI_Comm_rank(comm, &rank);
    ckpt_model_t id = {0};
    id.tgt = target_defaults();   /* a weights file without a head has no objective: the defaults */
    ckpt_state_t st = {0};
    st_file_t sf = {0};
    int opened = 0;
    err_clear(err);
    memset(m, 0, sizeof *m);
    memset(info, 0, sizeof *info);
    info->step = -1;
    if (!!src->checkpoint == !!src->weights)
        err_set(err, ERR_INPUT, "give exactly one of --checkpoint CKPT or --weights FILE.safetensors");
    else if (rank == 0) {
        if (src->checkpoint) {
            if (!ckpt_read_header(src->checkpoint, &id, &st, err) && !check_given(src->checkpoint, &id.cfg, &src->given, err) &&
                id.kind != CKPT_PRETRAIN)
                err_set(err, ERR_INPUT, "%s: is a %s checkpoint; a pretraining checkpoint is needed here", src->checkpoint,
                        ckpt_kind_name(id.kind));
            info->step = st.step;
            info->has_decoder = 1;
        } else if (!st_open(&sf, src->weights, err)) {
            opened = 1;
            if (!model_infer_config(&sf, &src->given, &id.cfg, &info->has_decoder, err) &&
                !model_infer_target(&sf, &id.cfg, &id.tgt, err) && need_decoder && !info->has_decoder)
                err_set(err, ERR_INPUT, "%s: holds only the encoder; the whole pretraining model is needed here", src->weights);
            st.seed = (uint64_t)src->seed;
        }
        snprintf(info->desc, sizeof info->desc, "%s", src->checkpoint ? src->checkpoint : src->weights);
    }
    if (dist_agree(comm, err)) goto out;
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, comm);
    MPI_Bcast(&st, (int)sizeof st, MPI_BYTE, 0, comm);
    MPI_Bcast(info, (int)sizeof *info, MPI_BYTE, 0, comm);
    model_init_target(m, &id.cfg, &id.tgt, st.seed, err);   /* the file's objective (and head width) is honoured */
    if (dist_agree(comm, err)) goto out;
    if (!src->at_init) {
        if (rank == 0) {
            if (src->checkpoint) {
                ckpt_model_t want = ckpt_pretrain(m);
                ckpt_load(src->checkpoint, &want, &m->w, &st, err);
            } else {
                int ignored = 0;
                if (!model_load_safetensors(m, &sf, need_decoder, &ignored, err) && ignored)
                    fprintf(stderr, "%s: note: %s: %d tensor(s) not used by the model (e.g. a classifier head) ignored\n",
                            prog, src->weights, ignored);
            }
        }
        if (dist_agree(comm, err)) goto out;
        dist_bcast_floats(comm, m->w.params, m->w.nparams);
        dist_bcast_floats(comm, m->pos_embed, (long)m->d.T * m->d.D);
        params_sync_half(&m->w);
    }
out:
    if (opened) st_close(&sf);
    if (err->kind && m->w.params) model_free(m);
    return err->kind ? -1 : 0;
}
