/* opts.h — one option table drives parsing, --help (with the live defaults)
 * and the printout of the effective configuration. Local. */
#ifndef VD_OPTS_H
#define VD_OPTS_H

#include <stddef.h>
#include <stdio.h>

#include "util.h"

typedef enum {
    OPT_STR,  /* char[size] */
    OPT_INT,  /* int */
    OPT_I64,  /* int64_t */
    OPT_U64,  /* uint64_t */
    OPT_F64,  /* double */
    OPT_LIST, /* OptList: comma-separated positive ints */
    OPT_BOOL, /* int, set by the bare flag */
    OPT_CHOICE /* int: the index of the value among metavar's "a|b|c" */
} OptType;

#define VD_LIST_MAX 8
typedef struct {
    int n;
    int v[VD_LIST_MAX];
} OptList;

typedef struct {
    const char *name;    /* without the leading "--" */
    OptType type;
    size_t offset;       /* into the config struct */
    size_t size;         /* for OPT_STR: the buffer's size */
    const char *def;     /* default, parsed like a command-line value */
    double min, max;     /* numeric range (inclusive), ignored when min > max */
    const char *metavar;
    const char *help;
} OptSpec;

#define OPT_END {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL}

/* Sets every option of table in cfg to its default. Aborts on a bad default
 * (a programming error). */
void opts_defaults(const OptSpec *table, void *cfg);

/* Parses argv[0..argc) ("--name value", "--name=value", bare "--flag") into
 * cfg. VD_OK or VD_EX_USAGE with one line in err. *help is set when --help
 * is seen (parsing stops there). */
int opts_parse(const OptSpec *table, void *cfg, int argc, char **argv, int *help, VdError *err);

/* Writes option value as text: the same form the parser takes. */
void opts_format(const OptSpec *o, const void *cfg, char *buf, size_t n);

/* Help lines for every option, with cfg's current values as defaults. */
void opts_help(FILE *f, const OptSpec *table, const void *cfg);

/* "name = value" for every option. */
void opts_print(FILE *f, const OptSpec *table, const void *cfg);

#endif
