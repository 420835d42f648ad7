/* Writing a report's files at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/files.h"
#include "semaim/report.h"

int report_write_files(const char *dir, const char *const *names, const span_t *data, int n, err_t *err) {
    size_t cnt = (size_t)(n > 0 ? n : 1);
    char (*path)[4200] = calloc(cnt, sizeof *path), (*tmp)[4400] = calloc(cnt, sizeof *tmp), (*old)[4400] = calloc(cnt, sizeof *old);
    int *kept = calloc(cnt, sizeof *kept);
    int rc = 0, written = 0, committed = 0;
    if (!path || !tmp || !old || !kept) rc = err_set(err, ERR_RUNTIME, "out of memory writing %s", dir);
    for (int i = 0; i < n && !rc; i++)
        if (!data[i].p) rc = err_set(err, ERR_RUNTIME, "out of memory making %s", names[i]);
    if (!rc && file_mkdirs(dir)) rc = err_set(err, ERR_RUNTIME, "%s: cannot create: %s", dir, strerror(errno));
    for (int i = 0; i < n && !rc; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
        if (file_write_tmp(path[i], &data[i], 1, tmp[i], sizeof tmp[i], err)) rc = -1;
        else written = i + 1;
    }
    /* Only when all are complete do they replace the old ones, and the old ones are kept (hard
     * links) until the last rename: a failure in between puts them back, so the folder holds
     * the old report or the new one, never a mix. */
    for (int i = 0; i < n && !rc; i++) {
        snprintf(old[i], sizeof old[i], "%s/.%s.old", dir, names[i]);
        unlink(old[i]);
        kept[i] = link(path[i], old[i]) == 0;
    }
    for (int i = 0; i < n && !rc; i++) {
        if (file_commit(tmp[i], path[i], err)) rc = -1;
        else committed = i + 1;
    }
    for (int i = 0; i < committed && rc; i++) {
        if (kept[i] ? rename(old[i], path[i]) : unlink(path[i])) { /* best effort: err already names the failure */ }
        kept[i] = 0;
    }
    for (int i = 0; kept && i < n; i++) if (kept[i]) unlink(old[i]);
    if (rc) for (int i = 0; i < written; i++) unlink(tmp[i]);
    free(path); free(tmp); free(old); free(kept);
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
