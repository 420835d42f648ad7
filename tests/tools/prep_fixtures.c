/* Test helper for semaim-prep (not a unit test):
 *   prep_fixtures suite DIR        the fixture tree of tests/prep/fixtures.h
 *   prep_fixtures bench DIR N      N photo-like 500x375 quality-90 JPEGs in 10 class folders
 *   prep_fixtures photos DIR N     N photo-like JPEGs of varied sizes up to 6.75 MP (fx_photo_tree)
 *   prep_fixtures decode FILE      independent full-size decode through the TurboJPEG API:
 *                                  prints "W H C ADOBE\n" then W*H*C raw bytes (RGB, or CMYK
 *                                  for CMYK/YCCK files, exactly as stored)
 *   prep_fixtures jpeg FILE W H KIND QUALITY SEED   one synthetic JPEG (kinds: rgb420 rgb444
 *                                  gray prog cmyk ycck cmykplain) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include "../prep/fixtures.h"

static int ref_decode(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); fprintf(stderr, "%s: read failed\n", path); return 1; }
    fclose(f);
    tjhandle tj = tjInitDecompress();
    int w, h, ss, cs;
    if (tjDecompressHeader3(tj, buf, (unsigned long)n, &w, &h, &ss, &cs) && tjGetErrorCode(tj) == TJERR_FATAL) {
        fprintf(stderr, "%s: %s\n", path, tjGetErrorStr2(tj));
        return 1;
    }
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK, pf = cmyk ? TJPF_CMYK : TJPF_RGB, c = cmyk ? 4 : 3;
    unsigned char *pix = malloc((size_t)w * h * c);
    if (tjDecompress2(tj, buf, (unsigned long)n, pix, w, 0, h, pf, 0) && tjGetErrorCode(tj) == TJERR_FATAL) {
        fprintf(stderr, "%s: %s\n", path, tjGetErrorStr2(tj));
        return 1;
    }
    /* Adobe APP14 marker: FF EE, length, "Adobe" */
    int adobe = 0;
    for (long i = 0; i + 9 < n && !adobe; i++)
        if (buf[i] == 0xFF && buf[i + 1] == 0xEE && !memcmp(buf + i + 4, "Adobe", 5)) adobe = 1;
    printf("%d %d %d %d\n", w, h, c, adobe);
    fwrite(pix, 1, (size_t)w * h * c, stdout);
    free(pix); free(buf);
    tjDestroy(tj);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "suite")) return fx_suite_tree(argv[2]) ? 1 : 0;
    if (argc == 4 && !strcmp(argv[1], "bench")) return fx_bench_tree(argv[2], atoi(argv[3])) ? 1 : 0;
    if (argc == 4 && !strcmp(argv[1], "photos")) return fx_photo_tree(argv[2], atoi(argv[3])) ? 1 : 0;
    if (argc == 3 && !strcmp(argv[1], "decode")) return ref_decode(argv[2]);
    if (argc == 8 && !strcmp(argv[1], "jpeg")) {
        const char *kinds[] = {"rgb420", "rgb444", "gray", "prog", "cmyk", "ycck", "cmykplain"};
        for (int k = 0; k < 7; k++)
            if (!strcmp(argv[5], kinds[k]))
                return fx_jpeg(argv[2], atoi(argv[3]), atoi(argv[4]), k, atoi(argv[6]), strtoull(argv[7], NULL, 10), 6) ? 1 : 0;
        fprintf(stderr, "unknown kind %s\n", argv[5]);
        return 2;
    }
    fprintf(stderr, "usage: prep_fixtures suite DIR | bench DIR N | photos DIR N | decode FILE | jpeg FILE W H KIND Q SEED\n");
    return 2;
}
