/* Test helper: the logits of semaim's own fine-tuning classifier on a split, for the PyTorch
 * check of the classifier export (tests/ref/vit_timm.py check-classifier).
 *   ft_logits FT.bin SHARDS SPLIT OUT.bin
 * loads the fine-tuning checkpoint, runs the split through the loader's evaluation transform
 * (one rank, every image in order) and the classifier's forward, and writes int32 N, int32 C,
 * then N·C float32 logits. Exit 0, or 2 with the error. */
#include <stdio.h>
#include <stdlib.h>
#include "semaim/checkpoint.h"
#include "semaim/loader.h"

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: ft_logits FT.bin SHARDS SPLIT OUT.bin\n"); return 2; }
    err_t e = {0};
    ft_model_t f;
    ckpt_state_t st;
    if (ckpt_load_classifier(argv[1], &f, &st, &e)) { fprintf(stderr, "ft_logits: %s\n", e.msg); return 2; }
    loader *L;
    loader_config c = {.data_dir = argv[2], .split = argv[3], .image_size = f.cfg.image, .batch = 4, .world = 1};
    if (loader_open(&L, &c, &e)) { fprintf(stderr, "ft_logits: %s\n", e.msg); return 2; }
    long N = loader_total_samples(L), n = 0, S = f.cfg.image;
    float *out = malloc(sizeof(float) * (size_t)(N * f.C));
    for (long s = 0; s < loader_steps_per_epoch(L) && out; s++) {
        const loader_batch *b;
        if (loader_next(L, &b, NULL, &e)) { fprintf(stderr, "ft_logits: %s\n", e.msg); return 2; }
        for (int i = 0; i < b->n; i++, n++) {   /* the classifier was built for one image at a time */
            ft_forward(&f, b->images + (long)i * 3 * S * S, NULL, 1, 0, 0);
            for (int k = 0; k < f.C; k++) out[n * f.C + k] = ft_logits(&f)[k];
        }
    }
    loader_close(L);
    FILE *fp = fopen(argv[4], "wb");
    int32_t hdr[2] = {(int32_t)n, f.C};
    int ok = out && n == N && fp && fwrite(hdr, sizeof hdr, 1, fp) == 1 &&
             fwrite(out, sizeof(float), (size_t)(n * f.C), fp) == (size_t)(n * f.C);
    if (fp && fclose(fp)) ok = 0;
    if (!ok) { fprintf(stderr, "ft_logits: %s: cannot write the logits\n", argv[4]); return 2; }
    printf("ft_logits: %ld images, %d classes -> %s\n", n, f.C, argv[4]);
    free(out);
    ft_free(&f);
    return 0;
}
