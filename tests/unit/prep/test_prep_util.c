/* semaim-prep support code: JSON reader/writer, atomic files and CRC, random numbers and the
 * shuffle, shard dealing, directory scanning with labels files, plan packing for MPI. */
#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "check.h"
#include "prep.h"
#include "../prep/fixtures.h"

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w) { (void)s; (void)f; (void)w; return remove(p); }
static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void put(const char *path, const char *text) { FILE *f = fopen(path, "w"); if (f) { fputs(text, f); fclose(f); } }

static void test_parse_long(void) {
    test_begin("parse_long: digits in range only");
    long v;
    CHECK(!prep_parse_long("42", 0, 100, &v) && v == 42, "parse 42");
    CHECK(prep_parse_long("42x", 0, 100, &v) && prep_parse_long("", 0, 100, &v) && prep_parse_long("101", 0, 100, &v) &&
          prep_parse_long("-1", 0, 100, &v) && prep_parse_long("99999999999999999999", 0, 100, &v), "parse_long accepts junk");
    test_end();
}

static void test_shuffle(void) {
    test_begin("shuffle and deal: a seeded permutation, identical every time, contiguous shard runs");
    uint64_t st = 5;
    for (int i = 0; i < 1000; i++) { uint64_t r = prep_bounded(&st, 7); CHECK(r < 7, "bounded out of range"); }
    st = 1;
    CHECK(prep_bounded(&st, 1) == 0, "bounded(1)");
    enum { N = 50 };
    prep_item a[N], b[N];
    char names[N][16];
    for (int i = 0; i < N; i++) { snprintf(names[i], 16, "t/c/%03d", (i * 37) % N); a[i].rel = b[N - 1 - i].rel = names[i]; a[i].label = b[N - 1 - i].label = i; }
    prep_shuffle(a, N, 7, 0);
    prep_shuffle(b, N, 7, 0);   /* different input order, same set */
    int same = 1, moved = 0;
    for (int i = 0; i < N; i++) { same &= !strcmp(a[i].rel, b[i].rel); moved += strcmp(a[i].rel, names[0]) != 0; }
    CHECK(same, "shuffle depends on input order");
    int seen[N] = {0};
    for (int i = 0; i < N; i++) seen[atoi(a[i].rel + 4)]++;
    for (int i = 0; i < N; i++) CHECK(seen[i] == 1, "not a permutation at %d", i);
    prep_shuffle(b, N, 8, 0);
    int diff = 0;
    for (int i = 0; i < N; i++) diff += strcmp(a[i].rel, b[i].rel) != 0;
    CHECK(diff > N / 2, "another seed gives nearly the same order (%d differ)", diff);
    size_t total = 0;
    for (int k = 0; k < 7; k++) {
        size_t lo = slice_lo(1000, k, 7), hi = slice_lo(1000, k + 1, 7);
        CHECK(hi - lo == 142 || hi - lo == 143, "uneven deal %zu", hi - lo);
        total += hi - lo;
    }
    CHECK(total == 1000 && slice_lo(1000, 7, 7) == 1000, "deal covers everything");
    test_end();
}

static void test_scan(const char *dir) {
    test_begin("scan: classes sorted, junk noted, flat val via LOC csv and via devkit ground truth");
    char root[512], p[700];
    snprintf(root, sizeof root, "%s/tree", dir);
    CHECK(!fx_suite_tree(root), "fixtures");
    prep_opts o;
    prep_opts_default(&o);
    o.src = root; o.shards[0] = 3; o.shards[1] = 2;
    prep_plan pl;
    CHECK(!prep_plan_build(&pl, &o), "plan");
    CHECK(pl.nclass == 4 && !strcmp(pl.classes[0], "cls c \xc3\xb1") && !strcmp(pl.classes[3], "empty_class"), "classes");
    CHECK(pl.n[0] == 20 && pl.n[1] == 6, "items %zu %zu", pl.n[0], pl.n[1]);
    CHECK(pl.skipped.n == 4 && !strcmp(pl.skipped.v[0].file, "train/cls_b/notes.txt"), "scan notes %zu", pl.skipped.n);
    CHECK(!strcmp(pl.val_labels, "LOC_val_solution.csv"), "val labels source '%s'", pl.val_labels);
    for (size_t i = 0; i < pl.n[1]; i++)
        if (!strcmp(pl.items[1][i].rel, "val/ILSVRC2012_val_00000003.JPEG")) CHECK(pl.items[1][i].label == 2, "val 3 is cls_b");
    buf_t b = {0};
    prep_plan q;
    CHECK(!prep_plan_pack(&pl, &b) && !prep_plan_unpack(&q, b.s, b.len), "pack/unpack");
    int same = q.nclass == pl.nclass && q.n[0] == pl.n[0] && q.n[1] == pl.n[1] && q.skipped.n == pl.skipped.n;
    for (int s = 0; s < 2 && same; s++)
        for (size_t i = 0; i < pl.n[s]; i++) same &= !strcmp(q.items[s][i].rel, pl.items[s][i].rel) && q.items[s][i].label == pl.items[s][i].label;
    CHECK(same, "unpacked plan differs");
    prep_plan_free(&q);
    CHECK(prep_plan_unpack(&q, b.s, b.len / 2) == 0 ? (prep_plan_free(&q), 0) : 1, "truncated pack accepted");
    prep_plan_free(&pl);
    buf_free(&b);
    /* Devkit ground truth: line i is the class id (devkit order) of ILSVRC2012_val_000000i. */
    snprintf(p, sizeof p, "%s/LOC_val_solution.csv", root); unlink(p);
    snprintf(p, sizeof p, "%s/gt.txt", root);
    put(p, "2\n1\n2\n1\n3\n2\n1\n");   /* image 8 has no line */
    o.val_labels = p;
    CHECK(prep_plan_build(&pl, &o), "ground truth without --val-class-order must fail");
    char ord[700];
    snprintf(ord, sizeof ord, "%s/order.txt", root);
    put(ord, "cls_a\ncls_b\nempty_class tench\n");
    o.val_class_order = ord;
    CHECK(!prep_plan_build(&pl, &o), "ground truth plan");
    int lab[9] = {0};
    for (size_t i = 0; i < pl.n[1]; i++) lab[atoi(pl.items[1][i].rel + 19)] = pl.items[1][i].label + 1;
    CHECK(pl.n[1] == 7 && lab[1] == 3 && lab[2] == 2 && lab[5] == 4 && lab[8] == 0, "gt labels: n %zu, %d %d %d %d", pl.n[1], lab[1], lab[2], lab[5], lab[8]);
    prep_plan_free(&pl);
    put(ord, "cls_a\nnot_a_class\n");
    CHECK(prep_plan_build(&pl, &o), "unknown wnid in class order must fail");
    o.val_labels = ord; o.val_class_order = NULL;
    put(ord, "ImageId,PredictionString\nbroken line without comma\n");
    CHECK(prep_plan_build(&pl, &o), "malformed LOC line must fail");
    o.val_labels = NULL;
    CHECK(prep_plan_build(&pl, &o), "flat val without any labels file must fail");
    o.shards[1] = 0;
    CHECK(!prep_plan_build(&pl, &o) && pl.n[1] == 0 && pl.shards[1] == 0, "--val-shards 0 ignores val/");
    prep_plan_free(&pl);
    o.shards[0] = 21;
    CHECK(prep_plan_build(&pl, &o), "more shards than files must fail");
    o.src = "/nonexistent/semaim";
    CHECK(prep_plan_build(&pl, &o), "missing root must fail");
    test_end();
}

int main(void) {
    char dir[] = "/tmp/test_prep_util.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_parse_long();
    test_shuffle();
    test_scan(dir);
    rm_rf(dir);
    return test_exit();
}
