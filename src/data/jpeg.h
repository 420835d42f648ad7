/* The loader's JPEG decoder for jpeg shards (libjpeg API of libjpeg-turbo), one per loader
 * worker thread, with every buffer allocated once for the largest image of the data set: no
 * allocation per image by our code (libjpeg-turbo's memory manager still takes and returns its
 * per-image pools, by its design; tests/unit/model/test_noalloc.c counts ours). Independent of
 * data_prep's decoder on purpose (each checks the other).
 *
 * An image is decoded with DCT scaling at the smallest m/8 (m = 1, 2, 4 or 8: the others are
 * slower than a full decode in libjpeg-turbo 2.1, data_prep/resize.c) whose result still
 * covers what the transform samples: the crop box for training, the resized image for
 * evaluation, so the bicubic resample that follows only ever shrinks. Training decodes only
 * the window of the box (jpeg_crop_scanline with a 16-pixel margin, whose result equals a full
 * decode, and stops after the box's last row). The transform is the one of data/augment.h on
 * the whole stored image: the box's coordinates are scaled by m/8 (resize_box_ws). */
#ifndef SEMAIM_DATA_JPEG_H
#define SEMAIM_DATA_JPEG_H
#include <stddef.h>
#include <stdint.h>
#include "data/augment.h"

typedef struct jpeg_dec jpeg_dec;
/* Buffers for images up to max_w × max_h to S×S outputs. NULL when out of memory. */
jpeg_dec *jpeg_dec_new(int max_w, int max_h, int S, int interp);
void jpeg_dec_free(jpeg_dec *d);
/* Tests: decode at full size (m = 8 always), so the result must equal torchvision on a full
 * decode to float rounding. */
void jpeg_dec_full_scale(jpeg_dec *d, int on);
/* RandomResizedCrop box p (in pixels of the W×H stored image) and flip → out [3,S,S]
 * normalised; with finish = 0 out is left as resize_box_ws wrote it (0..255, not flipped, not
 * normalised: augment_finetune_finish's input). 0, or -1 with a one-line reason in why (not a JPEG, corrupt, truncated, size
 * other than W×H). */
int jpeg_dec_train(jpeg_dec *d, float *out, const uint8_t *data, size_t n, int W, int H, int S, const aug_params *p,
                   int finish, char *why, size_t wlen);
/* The evaluation transform (shorter side to R, centre crop S) → out [3,S,S] normalised. */
int jpeg_dec_eval(jpeg_dec *d, float *out, const uint8_t *data, size_t n, int W, int H, int S, int R, char *why,
                  size_t wlen);
/* The m of an image of extent w×h whose transform reads ow×oh pixels' worth (tests, bench). */
int jpeg_dct_scale(double w, double h, int ow, int oh);
#endif
