/* Loading a frozen teacher ViT (semaim/teacher.h) from a safetensors file. The layout is told
 * by the tensor names: patch_embed.proj.weight / cls_token → timm / DINO ViT; conv1.weight
 * (or visual.conv1.weight, a whole OpenAI CLIP model's file, whose other tensors are then
 * ignored) → CLIP visual tower. The sizes come from the shapes (width and patch from the patch
 * embedding, grid from the position embedding, depth by counting blocks, MLP width from the
 * first block's fc1/c_fc, CLIP's token width from proj); the head count from the
 * "num_heads" (or "heads") metadata, else width/64 (timm's and OpenAI's head width). */
#ifndef SEMAIM_TEACHER_IO_H
#define SEMAIM_TEACHER_IO_H
#include "semaim/err.h"
#include "semaim/teacher.h"

/* Builds t from path for a student of image × image pixels and patch × patch patches. Every
 * tensor of the layout must be present with its shape and a floating-point dtype (F32; F64,
 * F16 and BF16 are converted) and hold finite values; the teacher's patch grid must equal the
 * student's and its patch the student's (it sees the student's images); a tensor the layout
 * does not have is refused (LayerScale, register tokens, a pre-norm: other models), except
 * timm's classifier head.{weight,bias}. Everything is checked before anything is read.
 * Returns 0 (t ready for teacher_forward; teacher_describe(&t->a, ...) says what it is), or -1
 * with one ERR_INPUT line naming the file and the tensor (or both grids), ERR_RUNTIME when out
 * of memory; t then holds nothing. */
int teacher_load(teacher_t *t, const char *path, int image, int patch, err_t *err);
#endif
