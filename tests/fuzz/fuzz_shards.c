/* The loader's shard checks (src/data/shards.c: shards_scan, shard_reader_read) and
 * semaim-prep's (data_prep/shard.c: prep_shard_check) on generated HDF5 shards
 * (tests/fuzz/h5gen.h): one to three shards whose names, root attributes (format_version,
 * shard_index, shard_count, num_classes, ...), /images, /labels and /keys (type, rank,
 * shape, layout, unwritten or half-written data) and label values the input chooses,
 * sometimes cut short, and sometimes changed, cut or removed after the scan, as under a
 * running job. Every image is then read. Beyond not crashing: a read that succeeds gives
 * labels the set allows. */
#include "semaim/shards.h"
#include "prep.h"
#include "h5gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_t z = {data, n};
    fuzz_reset();
    char dir[4200], path[3][4400];
    fuzz_path(dir, sizeof dir, "data");
    fuzz_mkdir(dir);
    int m = 1 + fz_pick(&z, 3), H = 2 + fz_pick(&z, 3), C = 1 + fz_pick(&z, 5);
    hsize_t N[3];
    for (int k = 0; k < m; k++) {
        int idx = fz_pick(&z, 8) ? k : (int)fz_pick(&z, 4), cnt = fz_pick(&z, 8) ? m : 1 + (int)fz_pick(&z, 4);
        snprintf(path[k], sizeof path[k], "%s/train-%05d-of-%05d.h5", dir, idx, cnt);
        N[k] = fz_pick(&z, 5);
        hid_t f = gen_create(path[k]);
        if (f < 0) continue;   /* two shards with one name: the second overwrites */
        gen_attr(&z, f, "format", 0, "semaim-prep shard");
        gen_attr(&z, f, "format_version", 1, NULL);
        gen_attr(&z, f, "split", 0, "train");
        gen_attr(&z, f, "shard_index", k, NULL);
        gen_attr(&z, f, "shard_count", m, NULL);
        gen_attr(&z, f, "image_size", H, NULL);
        gen_attr(&z, f, "resize", H, NULL);
        gen_attr(&z, f, "num_classes", C, NULL);
        hsize_t di[4] = {N[k], (hsize_t)H, (hsize_t)H, 3}, dl[1] = {N[k]};
        gen_dataset(&z, f, "images", G_U8, 4, di);
        gen_dataset(&z, f, "labels", G_I32, 1, dl);
        gen_dataset(&z, f, "keys", G_STR, 1, dl);
        H5Fclose(f);
        gen_maybe_cut(&z, path[k]);
    }
    for (int k = 0; k < m; k++) {
        prep_shard_info si = {.split = 0, .index = k, .count = m, .nclass = C, .version = 1, .store = PREP_STORE_RAW, .size = H, .resize = H};
        char why[512];
        shards_hdf5_lock();
        (void)prep_shard_check(path[k], &si, N[k], why, sizeof why);
        shards_hdf5_unlock();
    }
    shard_set s;
    err_t e;
    int scanned = shards_scan(&s, dir, "train", &e);
    FUZZ_NOTE("scan: %s", scanned ? e.msg : "ok");
    if (scanned) {
        FUZZ_CHECK(e.kind == ERR_INPUT && e.msg[0], "a refusal without a reason");
        return 0;
    }
    /* what an operator might do to the data under a running job */
    unsigned act = fz_pick(&z, 8);
    int victim = fz_pick(&z, s.count);
    if (act == 1) unlink(s.sh[victim].path);
    else if (act == 2) { struct stat st; if (!stat(s.sh[victim].path, &st) && truncate(s.sh[victim].path, st.st_size / 2)) {} }
    else if (act == 3) { hid_t f = gen_create(s.sh[victim].path); if (f >= 0) H5Fclose(f); }
    shards_hdf5_lock();
    shard_reader *r = shard_reader_new(&s, 1 + fz_pick(&z, 3));
    if (!r) abort();
    uint8_t *img = malloc((size_t)4 * s.H * s.W * 3);
    int32_t lab[4];
    for (int k = 0; k < s.count && img; k++)
        for (long i = 0; i < s.sh[k].n && i < 64; i += 4) {   /* the first 64: a huge N is the scan's to refuse */
            long c = s.sh[k].n - i < 4 ? s.sh[k].n - i : 4;
            if (shard_reader_read(r, k, i, c, img, lab, &e)) {
                FUZZ_NOTE("read: %s", e.msg);
                FUZZ_CHECK(e.kind == ERR_INPUT && e.msg[0], "a refusal without a reason");
                break;
            }
            for (long j = 0; j < c; j++)
                FUZZ_CHECK(lab[j] >= 0 && (!s.num_classes || lab[j] < s.num_classes), "label %d of %d classes", lab[j], s.num_classes);
        }
    free(img);
    shard_reader_free(r);
    shards_hdf5_unlock();
    shards_free(&s);
    return 0;
}
