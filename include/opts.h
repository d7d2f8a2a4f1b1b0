/* opts.h — one option table per command drives parsing, --help (with the
 * live defaults), the printout of the effective configuration, the
 * checkpoint's /config, and the reference pages (docs/options.md and the
 * man page, from `vae-dist help --markdown` and `--man`). Local. */
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

#define VD_LIST_MAX 16 /* values of a list option; its user may accept fewer */
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

/* A command: its name, usage line, what it does (one paragraph) and its
 * options, whose config struct has cfg_size bytes; defaults, if not NULL,
 * sets the struct's defaults where the table's are not enough (it must call
 * opts_defaults itself). */
typedef struct {
    const char *name;
    const char *usage;
    const char *about;
    const OptSpec *options;
    size_t cfg_size;
    void (*defaults)(void *cfg);
} OptCommand;

/* The commands whose options a name unknown to the command being parsed
 * is looked up in, for the suggestion (vae-dist --ckpt X: "sample takes
 * it"). commands must outlive the parsing. */
void opts_know_commands(const OptCommand *const *commands, int n);

/* The index of the word of words[0 .. n) that typed (len bytes) most
 * likely meant: one it starts, or the nearest within two edits; -1 if
 * none is close. */
int opts_nearest(const char *typed, size_t len, const char *const *words, int n);

/* Sets cfg to c's defaults and parses argv into it. Returns 1 if --help was
 * asked for (rank 0 printed the usage, what the command does and its
 * options with their defaults), else 0, with err set on a bad command line
 * (VD_EX_USAGE). */
int opts_command(const OptCommand *c, void *cfg, int argc, char **argv, int rank, VdError *err);

/* The reference of commands[0 .. n): Markdown (docs/options.md), or a man
 * page in roff (vae-dist.1) headed by version, with exit_status as its EXIT
 * STATUS. Defaults are the tables' own, so the text does not depend on the
 * environment. */
void opts_markdown(FILE *f, const OptCommand *const *commands, int n);
void opts_man(FILE *f, const OptCommand *const *commands, int n, const char *version,
              const char *exit_status);

/* What --help prints of command c: its usage, what it does, and its
 * options with cfg's values as their defaults. */
void opts_usage(FILE *f, const OptCommand *c, const void *cfg);

/* Parses text into option o's field of cfg, as the command line would.
 * VD_OK or VD_EX_USAGE with one line in err. */
int opts_set(const OptSpec *o, void *cfg, const char *text, VdError *err);

/* Sets every option of table in cfg to its default. Aborts on a bad default
 * (a programming error). */
void opts_defaults(const OptSpec *table, void *cfg);

/* Parses argv[0..argc) ("--name value", "--name=value", bare "--flag") into
 * cfg. VD_OK or VD_EX_USAGE with one line in err. *help is set when --help
 * is seen (parsing stops there). */
int opts_parse(const OptSpec *table, void *cfg, int argc, char **argv, int *help, VdError *err);

/* Was option name given in argv (as "--name value" or "--name=value"),
 * rather than left at its default? */
int opts_named(int argc, char **argv, const char *name);

/* Writes option value as text: the same form the parser takes. */
void opts_format(const OptSpec *o, const void *cfg, char *buf, size_t n);

/* Help lines for every option, with cfg's current values as defaults. */
void opts_help(FILE *f, const OptSpec *table, const void *cfg);

/* "name = value" for every option. */
void opts_print(FILE *f, const OptSpec *table, const void *cfg);

#endif
