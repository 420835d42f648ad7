/* The core room: the JSON reader and writer, atomic files and CRC (the utilities every
 * other room and semaim-prep use). */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "check.h"
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w) { (void)s; (void)f; (void)w; return remove(p); }
static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void put(const char *path, const char *text) { FILE *f = fopen(path, "w"); if (f) { fputs(text, f); fclose(f); } }

static void test_json(void) {
    test_begin("json: parse, look up, escape and write back; invalid input is rejected");
    const char *t = "{\"a\": [1, 2.5, -3e2, true, false, null], \"s\": \"q\\\"\\\\\\n\\u00e9\\u00ff\\ud83d\\ude00\", \"o\": {}}";
    json_t v;
    err_t e = {0};
    const char *err = e.msg;
    CHECK(!json_parse(t, strlen(t), &v, &e), "parse: %s", err);
    const json_t *a = json_get(&v, "a");
    CHECK(a && a->type == JSON_ARR && a->n == 6 && a->items[1].num == 2.5 && a->items[2].num == -300, "array");
    {   // json_text: values as a command line spells them
        char t0[64], t1[64], t2[64], t3[64], t4[64], t5[64];
        json_text(&a->items[1], t0, sizeof t0); json_text(&a->items[3], t1, sizeof t1);
        json_text(&a->items[5], t2, sizeof t2); json_text(NULL, t3, sizeof t3);
        json_text(a, t4, sizeof t4); json_text(json_get(&v, "o"), t5, sizeof t5);
        CHECK(!strcmp(t0, "2.5") && !strcmp(t1, "true") && !t2[0] && !t3[0] &&
              !strcmp(t4, "[1, 2.5, -300, true, false, null]") && !strcmp(t5, "{}"),
              "json_text: '%s' '%s' '%s' '%s' '%s' '%s'", t0, t1, t2, t3, t4, t5);
    }
    const char *s = json_gets(&v, "s");
    /* \u00e9 and \u00ff stand for raw bytes (the writer's encoding of non-UTF-8 names) */
    CHECK(s && !strcmp(s, "q\"\\\n\xe9\xff\xf0\x9f\x98\x80"), "string escapes: '%s'", s ? s : "(null)");
    buf_t b = {0};
    json_write(&b, &v);
    json_t v2;
    CHECK(!json_parse(b.s, b.len, &v2, &e), "re-parse of written JSON: %s (%s)", err, b.s);
    CHECK(!strcmp(json_gets(&v2, "s"), s), "round trip changed the string");
    json_free(&v2);
    json_free(&v);
    buf_free(&b);
    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "{} x", "[\"\\q\"]", "{\"a\":\"\x01\"}"};
    for (int i = 0; i < 9; i++) { err_clear(&e); CHECK(json_parse(bad[i], strlen(bad[i]), &v, &e) && err[0] && e.kind == ERR_INPUT, "accepted bad JSON '%s'", bad[i]); }
    /* Invalid UTF-8 in a file name becomes \u00XX and comes back as the same bytes. */
    buf_t c = {0};
    json_str(&c, "a\xff\xc3(b\xc3\xa9");
    CHECK(!strcmp(c.s, "\"a\\u00ff\\u00c3(b\xc3\xa9\""), "escaped: %s", c.s);
    CHECK(!json_parse(c.s, c.len, &v, &e) && !strcmp(v.str, "a\xff\xc3(b\xc3\xa9"), "raw bytes round trip");
    json_free(&v);
    buf_free(&c);
    CHECK(json_utf8_valid("h\xc3\xa9") && !json_utf8_valid("\xc3(") && !json_utf8_valid("\xed\xa0\x80"), "utf8_valid");
    test_end();
}

static void test_files(const char *dir) {
    test_begin("files: atomic write leaves no temporary, CRC32 matches zlib, stale temporaries are removed");
    char path[512];
    err_t fe;
    const char *why = fe.msg;
    snprintf(path, sizeof path, "%s/atomic.txt", dir);
    CHECK(!file_write_atomic(path, &(span_t){"hello world", 11}, 1, &fe), "%s", why);
    uint32_t crc; uint64_t bytes;
    CHECK(!crc32_file(path, &crc, &bytes) && bytes == 11 && crc == (uint32_t)crc32(0, (const Bytef *)"hello world", 11), "crc");
    char tmp[600];
    file_tmp_name(path, tmp, sizeof tmp);
    CHECK(strstr(tmp, "/.atomic.txt.tmp.") != NULL, "temporary name is hidden and says what it is: %s", tmp);
    put(tmp, "partial");
    file_remove_stale_tmp(path);
    CHECK(access(tmp, F_OK) != 0 && access(path, F_OK) == 0, "stale temporary survived");
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    CHECK(n == 1, "%d visible files, expected 1", n);
    snprintf(path, sizeof path, "%s/no/such/dir/x", dir);
    CHECK(file_write_atomic(path, &(span_t){"x", 1}, 1, &fe) && strstr(why, "No such file"), "error message: %s", why);
    test_end();
}


int main(void) {
    char dir[] = "/tmp/test_core.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_json();
    test_files(dir);
    rm_rf(dir);
    return test_exit();
}
