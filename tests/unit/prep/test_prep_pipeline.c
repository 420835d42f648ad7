/* semaim-prep end to end, in process (so the sanitizer build covers the whole tool): convert
 * the fixture tree, verify, resume, repair a damaged shard, rebuild the manifest, split the
 * work like a Slurm array, reject bad command lines, and run the Fashion-MNIST converter. */
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "prep.h"
#include "../prep/fixtures.h"

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w) { (void)s; (void)f; (void)w; return remove(p); }
static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static int tmp_found;
static int tmp_cb(const char *p, const struct stat *s, int f, struct FTW *w) {
    (void)s; (void)f;
    if (strstr(p + w->base, ".tmp.")) tmp_found++;
    return 0;
}

static int run(const char *a0, ...) {
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, a0);
    argv[argc++] = (char *)"semaim-prep";
    for (const char *a = a0; a && argc < 31; a = va_arg(ap, const char *)) argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return prep_main(argc, argv);
}

static char *slurp(const char *path, size_t *n) {
    char *t = NULL;
    if (file_slurp(path, &t, n)) return NULL;
    return t;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x); free(y);
    return same;
}

static ino_t inode(const char *p) { struct stat st; return stat(p, &st) ? 0 : st.st_ino; }

int main(void) {
    char dir[] = "/tmp/test_prep_pipeline.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char src[256], out[256], out2[256], p[512], q[512];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(out2, sizeof out2, "%s/out2", dir);
    if (fx_suite_tree(src)) { printf("FAIL: fixtures\n"); return 1; }

    test_begin("convert writes shards, records and manifest, no temporaries left");
    CHECK(run("convert", "--src", src, "--out", out, "--train-shards", "3", "--val-shards", "2", "--progress", "none", NULL) == 0, "convert failed");
    snprintf(p, sizeof p, "%s/manifest.json", out);
    CHECK(access(p, F_OK) == 0, "no manifest");
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/train/train-%05d-of-00003.h5", out, k);
        CHECK(access(p, F_OK) == 0, "missing %s", p);
    }
    tmp_found = 0;
    nftw(out, tmp_cb, 16, FTW_PHYS);
    CHECK(tmp_found == 0, "%d temporaries left", tmp_found);
    test_end();

    test_begin("verify accepts fresh output");
    CHECK(run("verify", out, NULL) == 0, "verify failed");
    test_end();

    test_begin("a second convert keeps finished shards (resume) and rewrites nothing");
    snprintf(p, sizeof p, "%s/train/train-00000-of-00003.h5", out);
    ino_t i0 = inode(p);
    snprintf(q, sizeof q, "%s/manifest.json", out);
    char saved_manifest[512];
    snprintf(saved_manifest, sizeof saved_manifest, "%s/manifest.saved", dir);
    size_t mn;
    char *man = slurp(q, &mn);
    FILE *f = fopen(saved_manifest, "wb");
    if (f && man) { fwrite(man, 1, mn, f); fclose(f); }
    free(man);
    CHECK(run("convert", "--src", src, "--out", out, "--train-shards", "3", "--val-shards", "2", "--progress", "none", NULL) == 0, "convert");
    CHECK(inode(p) == i0, "finished shard was rewritten");
    CHECK(same_file(q, saved_manifest), "manifest changed");
    test_end();

    test_begin("a damaged shard fails verify, convert redoes exactly that shard, bytes as before");
    snprintf(p, sizeof p, "%s/train/train-00001-of-00003.h5", out);
    snprintf(q, sizeof q, "%s/good.h5", dir);
    size_t n;
    char *orig = slurp(p, &n);
    f = fopen(q, "wb");
    if (f && orig) { fwrite(orig, 1, n, f); fclose(f); }
    char *bad = orig ? malloc(n) : NULL;
    if (bad) { memcpy(bad, orig, n); bad[n / 2] ^= 0x5A; }
    f = fopen(p, "r+b");
    if (f && bad) { fseek(f, (long)(n / 2), SEEK_SET); fputc(bad[n / 2], f); fclose(f); }
    CHECK(run("verify", out, NULL) == 1, "verify missed a flipped byte");
    snprintf(q, sizeof q, "%s/train/train-00000-of-00003.h5", out);
    ino_t keep = inode(q);
    CHECK(run("convert", "--src", src, "--out", out, "--train-shards", "3", "--val-shards", "2", "--progress", "none", NULL) == 0, "convert");
    snprintf(q, sizeof q, "%s/good.h5", dir);
    CHECK(same_file(p, q), "repaired shard differs from the original");
    snprintf(q, sizeof q, "%s/train/train-00000-of-00003.h5", out);
    CHECK(inode(q) == keep, "an intact shard was redone");
    CHECK(run("verify", out, NULL) == 0, "verify after repair");
    free(orig); free(bad);
    test_end();

    test_begin("manifest command rebuilds the same manifest from the records; refuses when a shard is missing");
    snprintf(p, sizeof p, "%s/manifest.json", out);
    unlink(p);
    CHECK(run("manifest", out, NULL) == 0, "manifest command failed");
    CHECK(same_file(p, saved_manifest), "rebuilt manifest differs");
    snprintf(q, sizeof q, "%s/val/val-00001-of-00002.h5", out);
    snprintf(p, sizeof p, "%s/val.moved", dir);
    rename(q, p);
    CHECK(run("manifest", out, NULL) == 1, "manifest accepted a missing shard");
    CHECK(run("verify", out, NULL) == 1, "verify accepted a missing shard");
    rename(p, q);
    test_end();

    test_begin("Slurm-style --task slices, then the manifest, equal the one-process output");
    CHECK(run("convert", "--src", src, "--out", out2, "--train-shards", "3", "--val-shards", "2", "--progress", "none", "--task", "1/2", NULL) == 0, "task 1/2");
    snprintf(p, sizeof p, "%s/manifest.json", out2);
    CHECK(access(p, F_OK) != 0, "manifest written before all tasks finished");
    CHECK(run("manifest", out2, NULL) == 1, "manifest command must refuse while shards are missing");
    CHECK(run("convert", "--src", src, "--out", out2, "--train-shards", "3", "--val-shards", "2", "--progress", "none", "--task", "0/2", NULL) == 0, "task 0/2");
    CHECK(same_file(p, saved_manifest), "manifest after the last task differs");
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/val/val-%05d-of-00002.h5", out, k);
        snprintf(q, sizeof q, "%s/val/val-%05d-of-00002.h5", out2, k);
        CHECK(same_file(p, q), "val shard %d differs", k);
    }
    CHECK(run("convert", "--src", src, "--out", out2, "--train-shards", "3", "--val-shards", "2", "--progress", "none", "--shard-range", "1:3", "--force", NULL) == 0, "range");
    snprintf(p, sizeof p, "%s/train/train-00002-of-00003.h5", out);
    snprintf(q, sizeof q, "%s/train/train-00002-of-00003.h5", out2);
    CHECK(same_file(p, q), "forced reconversion differs");
    test_end();

    test_begin("bad command lines and inputs: exit 2 for usage, 1 for runtime, nothing written");
    CHECK(run("convert", "--bogus", NULL) == 2, "unknown flag");
    CHECK(run("convert", "--src", src, NULL) == 2, "missing --out");
    CHECK(run("convert", "--src", src, "--out", out2, "--train-shards", "x", NULL) == 2, "non-integer");
    CHECK(run("convert", "--src", src, "--out", out2, "--val-size", "300", "--val-resize", "256", NULL) == 2, "val crop larger than resize");
    CHECK(run("convert", "--src", src, "--out", out2, "--task", "2/2", NULL) == 2, "task out of range");
    CHECK(run("convert", "--src", src, "--out", out2, "--shard-range", "4:2", NULL) == 2, "empty range");
    CHECK(run("convert", "--src", src, "--out", out2, "--train-shards", "3", "--val-shards", "2", "--shard-range", "9:12", NULL) == 1, "range past the end");
    snprintf(p, sizeof p, "%s/nothing", dir);
    snprintf(q, sizeof q, "%s/never", dir);
    CHECK(run("convert", "--src", p, "--out", q, NULL) == 1, "missing source");
    CHECK(access(q, F_OK) != 0, "output created for a failed run");
    CHECK(run("verify", q, NULL) == 1, "verify of nothing");
    CHECK(run("frobnicate", NULL) == 2, "unknown command");
    CHECK(run("convert", "--help", NULL) == 0 && run("help", "fmnist", NULL) == 0, "help");
    test_end();

    test_begin("shards whose every file is broken hold zero images and still verify");
    {
        char zs[256], zo[256];
        snprintf(zs, sizeof zs, "%s/zsrc/train/a", dir);
        file_mkdirs(zs);
        snprintf(p, sizeof p, "%s/empty.jpg", zs); fx_write(p, "", 0);
        snprintf(zs, sizeof zs, "%s/zsrc/train/b", dir);
        file_mkdirs(zs);
        snprintf(p, sizeof p, "%s/png.jpg", zs); fx_png(p);
        snprintf(zs, sizeof zs, "%s/zsrc", dir);
        snprintf(zo, sizeof zo, "%s/zout", dir);
        CHECK(run("convert", "--src", zs, "--out", zo, "--train-shards", "2", "--progress", "none", NULL) == 0, "convert");
        CHECK(run("verify", zo, NULL) == 0, "verify");
    }
    test_end();

    test_begin("fmnist: IDX -> class folders of JPEGs -> shards that verify");
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0) {
        char fm[256], fo[256];
        snprintf(fm, sizeof fm, "%s/fm", dir);
        snprintf(fo, sizeof fo, "%s/fmout", dir);
        CHECK(run("fmnist", "--src", "/usr/share/datasets/fashion-mnist", "--out", fm, "--limit", "40", NULL) == 0, "fmnist");
        CHECK(run("convert", "--src", fm, "--out", fo, "--store", "raw", "--size", "32", "--val-size", "32", "--val-resize", "32",
                  "--train-shards", "2", "--val-shards", "2", "--progress", "none", NULL) == 0, "convert fmnist");
        CHECK(run("verify", fo, NULL) == 0, "verify fmnist");
        CHECK(run("fmnist", "--src", dir, "--out", fm, NULL) == 1, "fmnist without IDX files must fail");
    } else CHECK(0, "dataset-fashion-mnist is not installed");
    test_end();

    rm_rf(dir);
    return test_exit();
}
