/* Model tensors to and from named files (safetensors with timm / authors' names).
 *
 * Names and shapes are those of timm's vit_*_patch16_224 and of the authors' PyTorch model:
 * cls_token (1,1,D), pos_embed (1,L+1,D), patch_embed.proj.weight (D,3,P,P) and .bias,
 * blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.{weight,bias}, norm.{weight,bias};
 * the pretraining decoder adds query_blocks.N.{norm1,attn.q,attn.k,attn.v,attn.proj,norm2,
 * mlp.fc1,mlp.fc2}.* and prediction_head.{fc1,fc2}.*. The BACKBONE is the encoder (patch embed,
 * cls token, blocks) with its final `norm`: what timm's ViT without a classifier holds, what
 * an encoder export writes, and what the evaluation features need (cls token after the final
 * norm). The fine-tuning classifier (finetune.h) keeps the encoder without that norm. */
#ifndef SEMAIM_MODEL_IO_H
#define SEMAIM_MODEL_IO_H
#include "semaim/finetune.h"
#include "semaim/model.h"
#include "semaim/safetensors.h"

/* Writes every tensor of a buffer laid out like m->params (params, grads or moments), each
 * named prefix + table name, plus pos_embed if with_pos, plus nextra extra tensors first. */
int model_write_safetensors(const model_t *m, const float *buf, const char *prefix, int with_pos,
                            const st_tensor_t *extra, int nextra, const char *path, err_t *err);

/* Is table tensor name part of the backbone (everything but query_blocks.* and prediction_head.*)? */
int model_tensor_is_backbone(const char *name);

/* Export: the backbone, i.e. cls_token, pos_embed, patch_embed, blocks, norm (and with full the decoder and
 * prediction head), in timm's order, F32, with __metadata__ {format: pt, semaim_config:
 * "image=..,patch=..,width=..,depth=..,dec_depth=..,heads=.."} plus nmeta extra pairs (at most
 * 28); with full also semaim_target (the target kind: the head's width depends on it) and
 * for a teacher semaim_teacher_file, _layout and _bytes. */
int model_export_safetensors(const model_t *m, int full, const char *const *meta_keys, const char *const *meta_vals,
                             int nmeta, const char *path, err_t *err);

/* Export of the fine-tuning classifier (finetune.h) as timm's vit_* with global_pool='avg':
 * cls_token, pos_embed, patch_embed, blocks, fc_norm.{weight,bias}, head.{weight,bias} — no
 * `norm` (timm's VisionTransformer makes it an Identity when fc_norm is used), so
 * timm.create_model('vit_…', global_pool='avg', num_classes=C).load_state_dict(…) is strict.
 * Metadata as model_export_safetensors (semaim_config's dec_depth is a placeholder 1). */
int model_export_classifier(const ft_model_t *f, const char *const *meta_keys, const char *const *meta_vals, int nmeta,
                            const char *path, err_t *err);

/* The config of the model in f: width from cls_token, patch from patch_embed.proj.weight,
 * image from pos_embed (or given), depth and dec_depth by counting blocks.N / query_blocks.N,
 * heads from our semaim_config metadata, else given, else width/64 (timm's head dim).
 * Fields of given that are > 0 must agree with the shapes (dec_depth and heads are taken from
 * given when the file cannot tell). When the file has no decoder, dec_depth is given's or 1.
 * *has_decoder (may be NULL) says whether the file holds the decoder. Returns 0, or -1 with a
 * one-line reason naming the file. */
int model_infer_config(const st_file_t *f, const semaim_config_t *given, semaim_config_t *out, int *has_decoder,
                       err_t *err);

/* The objective a file with a prediction head was trained for (c: its config, from
 * model_infer_config): the kind from the semaim_target metadata, else from the head's width
 * (P·P·3 pixel, D inference — an EMA's tokens are as wide —, anything else a teacher of that
 * width); a teacher's file, layout and size from the metadata when present. Without a head:
 * the defaults. Pixel settings (blur, loss...) are not in files: the defaults. 0, or -1 when
 * the head's shape fits no target (ERR_INPUT naming the file). */
int model_infer_target(const st_file_t *f, const semaim_config_t *c, target_cfg_t *t, err_t *err);

/* Loads the tensors of f into m (built with a matching config): every encoder tensor is
 * required, the decoder ones if need_decoder (else loaded when all are present), pos_embed when
 * present (into m->pos_embed). Names, shapes and dtypes are checked before anything is
 * read. *ignored (may be NULL) gets the number of tensors of f that the model has no use for
 * (e.g. timm's classifier head). Returns 0, or -1 with the reason; on failure m->params may
 * be partly overwritten. */
int model_load_safetensors(model_t *m, const st_file_t *f, int need_decoder, int *ignored, err_t *err);

/* Largest |pos_embed − fixed 2-D sin-cos table| (to tell whether an imported file kept it). */
double model_pos_embed_deviation(const model_t *m);
#endif
