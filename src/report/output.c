/* Writing the scaling report's four files at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/files.h"
#include "semaim/report.h"

int report_write_all(const report_t *R, const char *dir, err_t *err) {
    static const char *const names[4] = {"scaling.csv", "scaling.json", "scaling.md", "scaling.svg"};
    char *text[4] = {report_csv(R), report_json(R), report_markdown(R), report_svg(R)};
    char path[4][4200], tmp[4][4400];
    int rc = 0, written = 0;
    for (int i = 0; i < 4 && !rc; i++)
        if (!text[i]) { err_set(err, ERR_RUNTIME, "out of memory making %s", names[i]); rc = -1; }
    if (!rc && file_mkdirs(dir)) { err_set(err, ERR_RUNTIME, "%s: cannot create: %s", dir, strerror(errno)); rc = -1; }
    for (int i = 0; i < 4 && !rc; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
        if (file_write_tmp(path[i], &(span_t){text[i], strlen(text[i])}, 1, tmp[i], sizeof tmp[i], err)) rc = -1;
        else written = i + 1;
    }
    /* Only when all four are complete do they replace the old ones, and the old ones are kept
     * (hard links) until the last rename: a failure in between puts them back, so the folder
     * holds the old report or the new one, never a mix. */
    char old[4][4400];
    int kept[4] = {0, 0, 0, 0}, committed = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        snprintf(old[i], sizeof old[i], "%s/.%s.old", dir, names[i]);
        unlink(old[i]);
        kept[i] = link(path[i], old[i]) == 0;
    }
    for (int i = 0; i < 4 && !rc; i++) {
        if (file_commit(tmp[i], path[i], err)) rc = -1;
        else committed = i + 1;
    }
    for (int i = 0; i < committed && rc; i++) {
        if (kept[i] ? rename(old[i], path[i]) : unlink(path[i])) { /* best effort: err already names the failure */ }
        kept[i] = 0;
    }
    for (int i = 0; i < 4; i++) if (kept[i]) unlink(old[i]);
    if (rc) for (int i = 0; i < written; i++) unlink(tmp[i]);
    for (int i = 0; i < 4; i++) free(text[i]);
    return rc;
}
