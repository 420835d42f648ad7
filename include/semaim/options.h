/* One table of options serves the command line (--name value), config files (name = value
 * lines, # comments), --help and the resolved-settings JSON written into the run folder.
 * Parse errors are ERR_INPUT. */
#ifndef SEMAIM_OPTIONS_H
#define SEMAIM_OPTIONS_H
#include <stdio.h>
#include "semaim/err.h"

typedef enum { OPT_INT, OPT_LONG, OPT_DOUBLE, OPT_STRING, OPT_FLAG } opt_type_t;

typedef struct {
    const char *name;     /* long flag without dashes; also the config-file key */
    opt_type_t type;
    void *value;          /* int*, long*, double*, const char** (owned by the table's caller), int* for flags */
    const char *help;
    double min, max;      /* numeric range checked on parse (ignored for strings/flags) */
    int set;              /* given on the command line or in a file */
} option_t;

/* Parses argv[first..argc) into the table. "--config FILE" anywhere loads FILE first, so the
 * command line overrides it. Returns 0, 1 for --help, or -1 with a one-line reason in err. */
int options_parse(option_t *opts, int n, int argc, char **argv, int first, err_t *err);
int options_load_file(option_t *opts, int n, const char *path, err_t *err);
/* Frees the strings the table holds from settings files (programs keep them for the process;
 * a string option then reads NULL). */
void options_free(option_t *opts, int n);
option_t *options_find(option_t *opts, int n, const char *name);
void options_usage(FILE *f, const option_t *opts, int n);
/* Appends the table's values as one JSON object (no newline). */
struct buf;
void options_json(struct buf *b, const option_t *opts, int n);
#endif
