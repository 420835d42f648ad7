/* The features file checks (src/io/featfile.c: featfile_read) on generated HDF5 files
 * (tests/fuzz/h5gen.h): the format, format_version and num_classes attributes, the /cls,
 * /mean and /labels datasets (presence, class, rank, rows, width, layout, unwritten data),
 * label values, truncated copies; each read as one of 1..3 ranks. Beyond not crashing: a
 * read that succeeds holds its slice of the rows and only labels the file allows. */
#include "core/slice.h"
#include "semaim/featfile.h"
#include "h5gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_t z = {data, n};
    char path[4200];
    fuzz_path(path, sizeof path, "features.h5");
    hsize_t N = 1 + fz_pick(&z, 6), D = 1 + fz_pick(&z, 4);
    long long ncls = fz_pick(&z, 5);
    hid_t f = gen_create(path);
    if (f < 0) abort();
    gen_attr(&z, f, "format", 0, "semaim features");
    gen_attr(&z, f, "format_version", 1, NULL);
    gen_attr(&z, f, "split", 0, "val");
    gen_attr(&z, f, "num_classes", ncls, NULL);
    gen_attr(&z, f, "step", 4, NULL);
    hsize_t d2[2] = {N, D}, d1[1] = {N};
    gen_dataset(&z, f, "cls", G_F32, 2, d2);
    gen_dataset(&z, f, "mean", G_F32, 2, d2);
    gen_dataset(&z, f, "labels", G_I32, 1, d1);
    H5Fclose(f);
    gen_maybe_cut(&z, path);
    int world = 1 + fz_pick(&z, 3), rank = fz_pick(&z, world);
    featset_t fs;
    err_t e;
    int rc = featfile_read(path, &fs, rank, world, &e);
    FUZZ_NOTE("%s", rc ? e.msg : "read");
    if (rc == 0) {
        FUZZ_CHECK(fs.lo == slice_lo(fs.total, rank, world) && fs.n == slice_lo(fs.total, rank + 1, world) - fs.lo,
                   "rank %d of %d holds rows %ld+%ld of %ld", rank, world, fs.lo, fs.n, fs.total);
        for (long i = 0; i < fs.n; i++)
            FUZZ_CHECK(fs.labels[i] >= 0 && (fs.num_classes == 0 || fs.labels[i] < fs.num_classes), "label %d of %d classes",
                       fs.labels[i], fs.num_classes);
        featset_free(&fs);
    } else FUZZ_CHECK(e.kind && e.msg[0], "a refusal without a reason");
    return 0;
}
