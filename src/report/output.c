/* Writing a report's files at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/files.h"
#include "semaim/report.h"

int report_write_files(const char *dir, const char *const *names, const span_t *data, int n, err_t *err) {
    char (*path)[4200] = calloc((size_t)(n > 0 ? n : 1), sizeof *path), (*tmp)[4400] = calloc((size_t)(n > 0 ? n : 1), sizeof *tmp);
    int rc = 0, written = 0;
    if (!path || !tmp) rc = err_set(err, ERR_RUNTIME, "out of memory writing %s", dir);
    for (int i = 0; i < n && !rc; i++)
        if (!data[i].p) rc = err_set(err, ERR_RUNTIME, "out of memory making %s", names[i]);
    if (!rc && file_mkdirs(dir)) rc = err_set(err, ERR_RUNTIME, "%s: cannot create: %s", dir, strerror(errno));
    for (int i = 0; i < n && !rc; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
        file_tmp_name(path[i], tmp[i], sizeof tmp[i]);
        FILE *f = fopen(tmp[i], "w");
        if (!f) { rc = err_set(err, ERR_RUNTIME, "%s: cannot write: %s", tmp[i], strerror(errno)); break; }
        written = i + 1;
        int bad = fwrite(data[i].p, 1, data[i].n, f) != data[i].n;
        if (fclose(f) || bad) rc = err_set(err, ERR_RUNTIME, "%s: write failed: %s", tmp[i], strerror(errno));
    }
    /* only when all are complete do they replace the old ones */
    for (int i = 0; i < n && !rc; i++)
        if (file_commit(tmp[i], path[i], err)) rc = -1;
    if (rc) for (int i = 0; i < written; i++) unlink(tmp[i]);
    free(path);
    free(tmp);
    return rc;
}

int report_write_all(const report_t *R, const char *dir, err_t *err) {
    static const char *const names[4] = {"scaling.csv", "scaling.json", "scaling.md", "scaling.svg"};
    char *text[4] = {report_csv(R), report_json(R), report_markdown(R), report_svg(R)};
    span_t data[4];
    for (int i = 0; i < 4; i++) data[i] = (span_t){text[i], text[i] ? strlen(text[i]) : 0};
    int rc = report_write_files(dir, names, data, 4, err);
    for (int i = 0; i < 4; i++) free(text[i]);
    return rc;
}
