/* Test helper: is a step file whole and loadable? ckpt_check FILE... reads each header, builds
 * the model it is for (pretraining or fine-tuning) and loads the file strictly (checksums,
 * sizes, trailing bytes), as a resume would. Prints "ok KIND step N FILE" per file; exit 0
 * when all load, else the first error (exit 2). */
#include <stdio.h>
#include "semaim/checkpoint.h"

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: ckpt_check FILE...\n"); return 2; }
    for (int i = 1; i < argc; i++) {
        ckpt_model_t id, want;
        ckpt_state_t st;
        err_t e = {0};
        model_t m;
        ft_model_t f;
        int rc = ckpt_read_header(argv[i], &id, &st, &e);
        if (!rc && id.kind == CKPT_PRETRAIN && !(rc = model_init_target(&m, &id.cfg, &id.tgt, 0, &e))) {
            want = ckpt_pretrain(&m);
            rc = ckpt_load(argv[i], &want, &m.w, &st, &e);
            model_free(&m);
        } else if (!rc && id.kind == CKPT_FINETUNE && !(rc = ckpt_load_classifier(argv[i], &f, &st, &e))) ft_free(&f);
        if (rc) { fprintf(stderr, "ckpt_check: %s\n", e.msg); return e.kind ? e.kind : 2; }
        printf("ok %s step %lld %s\n", ckpt_kind_name(id.kind), (long long)st.step, argv[i]);
    }
    return 0;
}
