#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/json.h"
#include "semaim/options.h"

option_t *options_find(option_t *opts, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0) return &opts[i];
    return NULL;
}

/* Strings given on the command line point into argv; those from settings files are strdup'ed
 * and remembered here, so one set again (a repeated line, a flag over the file) frees its
 * copy and options_free can free the rest. The tables' own defaults are never in the list. */
static char **copies;
static size_t ncopies, capcopies;

static int forget_copy(const char *s) {
    for (size_t i = 0; s && i < ncopies; i++)
        if (copies[i] == s) { copies[i] = copies[--ncopies]; return 1; }
    return 0;
}

static int remember_copy(char *s) {
    if (ncopies == capcopies) {
        size_t c = capcopies ? 2 * capcopies : 16;
        char **g = realloc(copies, c * sizeof *g);
        if (!g) return -1;
        copies = g;
        capcopies = c;
    }
    copies[ncopies++] = s;
    return 0;
}

static int set_value(option_t *o, const char *v, const char *where, err_t *err) {
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_STRING: {
        char *old = *(char **)o->value;
        if (forget_copy(old)) free(old);
        *(const char **)o->value = v;
        break;
    }
    case OPT_FLAG: {
        int b;
        if (!v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) b = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) b = 0;
        else { err_set(err, ERR_INPUT, "%s: --%s takes true or false, not '%s'", where, o->name, v); return -1; }
        *(int *)o->value = b;
        break;
    }
    default: {
        double d = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(d)) {
            err_set(err, ERR_INPUT, "%s: --%s needs a number, not '%s'", where, o->name, v);
            return -1;
        }
        if ((o->type == OPT_INT || o->type == OPT_LONG) && d != floor(d)) {
            err_set(err, ERR_INPUT, "%s: --%s needs an integer, not '%s'", where, o->name, v);
            return -1;
        }
        if (d < o->min || d > o->max) {
            err_set(err, ERR_INPUT, "%s: --%s %s is out of range [%g, %g]", where, o->name, v, o->min, o->max);
            return -1;
        }
        if (o->type == OPT_INT) *(int *)o->value = (int)d;
        else if (o->type == OPT_LONG) *(long *)o->value = (long)d;
        else *(double *)o->value = d;
    }
    }
    o->set = 1;
    return 0;
}

int options_load_file(option_t *opts, int n, const char *path, err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f) { err_set(err, ERR_INPUT, "%s: cannot open config file: %s", path, strerror(errno)); return -1; }
    char line[4096], where[4200];
    int ln = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        snprintf(where, sizeof where, "%s:%d", path, ln);
        char *s = line;
        if (!strchr(s, '\n') && !feof(f)) { err_set(err, ERR_INPUT, "%s: line too long", where); rc = -1; break; }
        char *hash = strchr(s, '#');
        if (hash) *hash = 0;
        while (*s == ' ' || *s == '\t') s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) { err_set(err, ERR_INPUT, "%s: expected 'name = value'", where); rc = -1; break; }
        char *k = s, *ke = eq, *v = eq + 1;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
        *ke = 0;
        while (*v == ' ' || *v == '\t') v++;
        option_t *o = options_find(opts, n, k);
        if (!o || !strcmp(k, "config")) { err_set(err, ERR_INPUT, "%s: unknown setting '%s'", where, k); rc = -1; break; }
        char *copy = strdup(v);
        if (!copy || (o->type == OPT_STRING && remember_copy(copy))) {
            free(copy);
            err_set(err, ERR_RUNTIME, "%s: out of memory", where);
            rc = -1;
            break;
        }
        rc = set_value(o, copy, where, err);
        if (o->type != OPT_STRING) free(copy);
    }
    fclose(f);
    return rc;
}

int options_parse(option_t *opts, int n, int argc, char **argv, int first, err_t *err) {
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) { err_set(err, ERR_INPUT, "--config needs a file"); return -1; }
            if (options_load_file(opts, n, argv[i + 1], err)) return -1;
        }
    }
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) { err_set(err, ERR_INPUT, "unexpected argument '%s'", a); return -1; }
        char name[128];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) { err_set(err, ERR_INPUT, "unknown option '%s'", a); return -1; }
        memcpy(name, a + 2, len);
        name[len] = 0;
        if (!strcmp(name, "config")) { i++; continue; }
        option_t *o = options_find(opts, n, name);
        if (!o) { err_set(err, ERR_INPUT, "unknown option '--%s' (see --help)", name); return -1; }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && o->type != OPT_FLAG) {
            if (i + 1 >= argc) { err_set(err, ERR_INPUT, "--%s needs a value", name); return -1; }
            v = argv[++i];
        }
        if (set_value(o, v, "command line", err)) return -1;
    }
    return 0;
}

void options_free(option_t *opts, int n) {
    for (int i = 0; i < n; i++) {
        if (opts[i].type != OPT_STRING) continue;
        char *s = *(char **)opts[i].value;
        if (forget_copy(s)) { free(s); *(char **)opts[i].value = NULL; }
    }
    if (!ncopies) { free(copies); copies = NULL; capcopies = 0; }
}

void options_usage(FILE *f, const option_t *opts, int n) {
    for (int i = 0; i < n; i++) {
        const option_t *o = &opts[i];
        char buf[64];
        switch (o->type) {
        case OPT_INT: snprintf(buf, sizeof buf, "%d", *(int *)o->value); break;
        case OPT_LONG: snprintf(buf, sizeof buf, "%ld", *(long *)o->value); break;
        case OPT_DOUBLE: snprintf(buf, sizeof buf, "%g", *(double *)o->value); break;
        case OPT_FLAG: snprintf(buf, sizeof buf, "%s", *(int *)o->value ? "true" : "false"); break;
        default: snprintf(buf, sizeof buf, "%s", *(const char **)o->value ? *(const char **)o->value : "");
        }
        fprintf(f, "  --%-16s %s%s%s%s\n", o->name, o->help, *buf ? " [" : "", buf, *buf ? "]" : "");
    }
}

void options_json(buf_t *b, const option_t *opts, int n) {
    buf_puts(b, "{");
    int first = 1;
    for (int i = 0; i < n; i++) {
        const option_t *o = &opts[i];
        if (!strcmp(o->name, "config")) continue;
        buf_puts(b, first ? "" : ", ");
        first = 0;
        json_str(b, o->name);
        buf_puts(b, ": ");
        switch (o->type) {
        case OPT_INT: buf_printf(b, "%d", *(int *)o->value); break;
        case OPT_LONG: buf_printf(b, "%ld", *(long *)o->value); break;
        case OPT_DOUBLE: buf_printf(b, "%.17g", *(double *)o->value); break;
        case OPT_FLAG: buf_puts(b, *(int *)o->value ? "true" : "false"); break;
        default:
            if (*(const char **)o->value) json_str(b, *(const char **)o->value);
            else buf_puts(b, "null");
        }
    }
    buf_puts(b, "}");
}
