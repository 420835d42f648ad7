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
        file_tmp_name(path[i], tmp[i], sizeof tmp[i]);
        FILE *f = fopen(tmp[i], "w");
        if (!f) { err_set(err, ERR_RUNTIME, "%s: cannot write: %s", tmp[i], strerror(errno)); rc = -1; break; }
        written = i + 1;
        size_t n = strlen(text[i]);
        int bad = fwrite(text[i], 1, n, f) != n;
        if (fclose(f) || bad) { err_set(err, ERR_RUNTIME, "%s: write failed: %s", tmp[i], strerror(errno)); rc = -1; }
    }
    /* only when all four are complete do they replace the old ones */
    for (int i = 0; i < 4 && !rc; i++)
        if (file_commit(tmp[i], path[i], err)) rc = -1;
    if (rc) for (int i = 0; i < written; i++) unlink(tmp[i]);
    for (int i = 0; i < 4; i++) free(text[i]);
    return rc;
}
