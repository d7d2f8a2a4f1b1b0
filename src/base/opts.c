/* opts.c — table-driven option parsing. See opts.h. */
#include "opts.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static int in_range(const OptSpec *o, double x)
{
    return o->min > o->max || (x >= o->min && x <= o->max);
}

/* -1 with why the value is refused: number, a number that o does not take,
 * else text, which is not a number (or list) at all. The range is printed
 * with whole numbers in full: [1, 1048576], not [1, 1.04858e+06]. */
static int number_fail(const OptSpec *o, const char *number, const char *text, VdError *err)
{
    const char *what = o->type == OPT_F64    ? "number"
                       : o->type == OPT_LIST ? "comma-separated list of whole numbers"
                                             : "whole number";
    if (o->type == OPT_U64)
        return vd_fail(err, VD_EX_USAGE, "--%s: '%s' is not a whole number of 0 or more", o->name,
                       text);
    if (o->min > o->max)
        return vd_fail(err, VD_EX_USAGE, "--%s: '%s' is not a valid %s", o->name, text, what);
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, o->type != OPT_F64 ? "%.0f" : "%g", o->min);
    snprintf(hi, sizeof hi, o->type != OPT_F64 ? "%.0f" : "%g", o->max);
    if (number)
        return vd_fail(err, VD_EX_USAGE, "--%s: %s is outside [%s, %s]", o->name, number, lo, hi);
    return vd_fail(err, VD_EX_USAGE, "--%s: '%s' is not a %s in [%s, %s]", o->name, text, what, lo, hi);
}

/* Parses text into o's field of cfg; 0 or -1 with a reason in err. */
static int set_value(const OptSpec *o, void *cfg, const char *text, VdError *err)
{
    char *field = (char *)cfg + o->offset, *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_STR:
        if (strlen(text) >= o->size)
            return vd_fail(err, VD_EX_USAGE, "--%s: value longer than %zu characters", o->name,
                           o->size - 1);
        memcpy(field, text, strlen(text) + 1);
        return 0;
    case OPT_BOOL: {
        if (strcmp(text, "1") && strcmp(text, "0"))
            return vd_fail(err, VD_EX_USAGE, "--%s takes no value", o->name);
        *(int *)field = text[0] == '1';
        return 0;
    }
    case OPT_INT:
    case OPT_I64: {
        long long v = strtoll(text, &end, 10);
        if (!*text || *end)
            goto bad_number;
        if (errno || !in_range(o, (double)v) ||
            (o->type == OPT_INT && (v < INT32_MIN || v > INT32_MAX)))
            goto out_of_range;
        if (o->type == OPT_INT)
            *(int *)field = (int)v;
        else
            *(int64_t *)field = v;
        return 0;
    }
    case OPT_U64: {
        if (*text == '-')
            goto bad_number;
        unsigned long long v = strtoull(text, &end, 0);
        if (!*text || *end || errno)
            goto bad_number;
        *(uint64_t *)field = v;
        return 0;
    }
    case OPT_F64: {
        double v = strtod(text, &end);
        if (!*text || *end || isnan(v))
            goto bad_number;
        if (errno || !isfinite(v) || !in_range(o, v))
            goto out_of_range;
        *(double *)field = v;
        return 0;
    }
    case OPT_CHOICE: {
        const char *c = o->metavar;
        size_t len = strlen(text);
        for (int k = 0; *c; k++) {
            size_t tok = strcspn(c, "|");
            if (tok == len && strncmp(c, text, len) == 0) {
                *(int *)field = k;
                return 0;
            }
            c += tok + (c[tok] == '|');
        }
        return vd_fail(err, VD_EX_USAGE, "--%s: '%s' is not one of %s", o->name, text,
                       o->metavar);
    }
    case OPT_LIST: {
        OptList list = {0};
        const char *p = text;
        if (strcmp(text, "none") == 0) { /* the empty list */
            *(OptList *)field = list;
            return 0;
        }
        while (1) {
            if (list.n == VD_LIST_MAX)
                return vd_fail(err, VD_EX_USAGE, "--%s: at most %d values", o->name,
                               VD_LIST_MAX);
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p)
                goto bad_number;
            if (errno || !in_range(o, (double)v) || v < INT32_MIN || v > INT32_MAX) {
                char number[96]; /* which value, when there are several */
                snprintf(number, sizeof number, p == text && !*end ? "%.*s" : "%.*s in '%.40s'",
                         (int)(end - p < 24 ? end - p : 24), p, text);
                return number_fail(o, number, NULL, err);
            }
            list.v[list.n++] = (int)v;
            if (*end == '\0')
                break;
            if (*end != ',')
                goto bad_number;
            p = end + 1;
        }
        *(OptList *)field = list;
        return 0;
    }
    }
out_of_range:
    return number_fail(o, text, NULL, err);
bad_number:
    return number_fail(o, NULL, text, err);
}

int opts_set(const OptSpec *o, void *cfg, const char *text, VdError *err)
{
    return set_value(o, cfg, text, err) == 0 ? VD_OK : VD_EX_USAGE;
}

void opts_defaults(const OptSpec *table, void *cfg)
{
    for (const OptSpec *o = table; o->name; o++) {
        VdError err = {0};
        if (set_value(o, cfg, o->def, &err) != 0)
            VD_ABORT("bad default for --%s: %s", o->name, err.msg);
    }
}

/* Is arg one of table's options ("--name" or "--name=...")? A value that
 * happens to start with "--" is taken as the next option only then. */
static int is_option(const OptSpec *table, const char *arg)
{
    if (strncmp(arg, "--", 2) != 0)
        return 0;
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");
    for (const OptSpec *o = table; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return 1;
    return strcmp(arg, "--help") == 0;
}

/* Edit distance of a and b (both short option names), capped at 9. */
static int distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > 40 || lb > 40)
        return 9;
    int row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] < 9 ? row[lb] : 9;
}

/* Every command, whose options a name unknown to the one being parsed may
 * belong to (opts_know_commands). */
static const OptCommand *const *all_commands;
static int n_all_commands;

void opts_know_commands(const OptCommand *const *commands, int n)
{
    all_commands = commands;
    n_all_commands = n;
}

int opts_nearest(const char *typed, size_t len, const char *const *words, int n)
{
    int best = -1, best_d = 3;
    for (int i = 0; i < n; i++) {
        int d = strncmp(words[i], typed, len) == 0 ? 1 : distance(typed, len, words[i]);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    return best;
}

/* The option a mistyped name most likely meant: the one it starts, or the
 * nearest within two edits; NULL if none is close. */
static const OptSpec *nearest(const OptSpec *table, const char *name, size_t len)
{
    const char *names[128];
    int n = 0;
    for (const OptSpec *o = table; o->name && n < 128; o++)
        names[n++] = o->name;
    int k = opts_nearest(name, len, names, n);
    return k < 0 ? NULL : &table[k];
}

static const OptSpec *find(const OptSpec *table, const char *name, size_t len)
{
    for (const OptSpec *o = table; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

/* Other trainers' spellings of our options (Lightning, Keras, PyTorch
 * examples, Hugging Face), after '_' became '-' and letters lowercase. */
static const char *const aliases[][2] = {
    {"batch-size", "batch"}, {"bs", "batch"}, {"global-batch", "batch"},
    {"learning-rate", "lr"}, {"lr0", "lr"},
    {"early-stopping", "early-stop"}, {"patience", "early-stop"},
    {"num-epochs", "epochs"}, {"n-epochs", "epochs"}, {"max-epochs", "epochs"}, {"epoch", "epochs"},
    {"max-steps-per-run", "max-steps"}, {"num-steps", "max-steps"}, {"steps", "max-steps"},
    {"latent-dim", "latent"}, {"latent-size", "latent"}, {"z-dim", "latent"}, {"zdim", "latent"},
    {"hidden-dim", "hidden"}, {"hidden-dims", "hidden"}, {"hidden-size", "hidden"},
    {"layers", "hidden"},
    {"output", "out"}, {"output-dir", "out"}, {"out-dir", "out"}, {"save-dir", "out"},
    {"log-dir", "out"}, {"logdir", "out"}, {"run-dir", "out"}, {"checkpoint-dir", "out"},
    {"default-root-dir", "out"}, {"resume", "out"},
    {"data-path", "data"}, {"dataset-path", "data"}, {"data-dir", "data"}, {"input", "data"},
    {"train-data", "data"}, {"file", "data"},
    {"gradient-clip-val", "clip-norm"}, {"grad-clip", "clip-norm"}, {"clip-grad-norm", "clip-norm"},
    {"max-grad-norm", "clip-norm"}, {"clip", "clip-norm"}, {"gradient-clipping", "clip-norm"},
    {"wd", "weight-decay"}, {"warmup-steps", "lr-warmup"}, {"lr-warmup-steps", "lr-warmup"},
    {"scheduler", "lr-schedule"}, {"lr-scheduler", "lr-schedule"},
    {"kl-weight", "beta"}, {"kl-beta", "beta"}, {"kl-warmup", "warmup"}, {"kl-anneal", "warmup"},
    {"num-threads", "threads"}, {"nthreads", "threads"},
    {"val-split", "val-fraction"}, {"validation-split", "val-fraction"},
    {"valid-fraction", "val-fraction"}, {"validation-fraction", "val-fraction"},
    {"checkpoint", "ckpt"}, {"ckpt-path", "ckpt"}, {"checkpoint-path", "ckpt"}, {"model", "ckpt"},
    {"num-samples", "n"}, {"n-samples", "n"}, {"k", "samples"}, {"importance-samples", "samples"},
    {"silent", "quiet"},
};

/* Why name (len bytes, unknown to table) is refused, with the option it
 * most likely meant: the same in our spelling (batch_size, batch-size ->
 * batch), an option of other commands (the command was left out), or a
 * near miss. */
static int unknown_option(const OptSpec *table, const char *name, size_t len, VdError *err)
{
    char norm[64];
    size_t n = len < sizeof norm - 1 ? len : sizeof norm - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i] == '_' ? '-' : name[i];
        norm[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    norm[n] = '\0';
    const OptSpec *same = find(table, norm, n);
    for (size_t i = 0; !same && i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(norm, aliases[i][0]) == 0)
            same = find(table, aliases[i][1], strlen(aliases[i][1]));
    if (same)
        return vd_fail(err, VD_EX_USAGE, "unknown option '--%.*s': did you mean --%s?", (int)len,
                       name, same->name);
    char others[256] = "";
    int n_others = 0;
    const char *current_command = NULL; /* the one whose table this is */
    for (int k = 0; k < n_all_commands; k++)
        if (all_commands[k]->options == table)
            current_command = all_commands[k]->name;
    for (int k = 0; k < n_all_commands; k++) {
        const OptCommand *c = all_commands[k];
        if (c->options == table)
            continue;
        if (find(c->options, name, len) || find(c->options, norm, n)) {
            size_t at = strlen(others);
            snprintf(others + at, sizeof others - at, "%s%s", n_others ? ", " : "", c->name);
            n_others++;
        }
    }
    if (n_others)
        return vd_fail(err, VD_EX_USAGE, "unknown option '--%.*s' for %s%s; %s %s it: vae-dist %.*s "
                       "--%.*s ...", (int)len, name, current_command ? current_command : "this command",
                       current_command && !strcmp(current_command, "train") ? " (the default command)" : "",
                       others, n_others == 1 ? "takes" : "take",
                       (int)strcspn(others, ","), others, (int)len, name);
    const OptSpec *near = nearest(table, name, len);
    if (near)
        return vd_fail(err, VD_EX_USAGE, "unknown option '--%.*s': did you mean --%s?", (int)len,
                       name, near->name);
    return vd_fail(err, VD_EX_USAGE, "unknown option '--%.*s' (see --help)", (int)len, name);
}

int opts_parse(const OptSpec *table, void *cfg, int argc, char **argv, int *help, VdError *err)
{
    *help = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = 1;
            return VD_OK;
        }
        if (strncmp(arg, "--", 2) != 0)
            return vd_fail(err, VD_EX_USAGE, "unexpected argument '%s' (options start with --)",
                           arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const OptSpec *o = table;
        while (o->name && !(strlen(o->name) == len && strncmp(o->name, name, len) == 0))
            o++;
        if (!o->name)
            return unknown_option(table, name, len, err);
        const char *value;
        if (o->type == OPT_BOOL) {
            if (eq)
                return vd_fail(err, VD_EX_USAGE, "--%s takes no value", o->name);
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc && !is_option(table, argv[i + 1])) {
            value = argv[++i];
        } else if (i + 1 < argc) {
            return vd_fail(err, VD_EX_USAGE, "--%s needs a value (before %s)", o->name,
                           argv[i + 1]);
        } else {
            return vd_fail(err, VD_EX_USAGE, "--%s needs a value", o->name);
        }
        if (set_value(o, cfg, value, err) != 0)
            return VD_EX_USAGE;
    }
    return VD_OK;
}

void opts_format(const OptSpec *o, const void *cfg, char *buf, size_t n)
{
    const char *field = (const char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STR: snprintf(buf, n, "%s", field); break;
    case OPT_BOOL:
    case OPT_INT: snprintf(buf, n, "%d", *(const int *)field); break;
    case OPT_I64: snprintf(buf, n, "%" PRId64, *(const int64_t *)field); break;
    case OPT_U64: snprintf(buf, n, "%" PRIu64, *(const uint64_t *)field); break;
    case OPT_F64: { /* the shortest text that reads back as the same double */
        double v = *(const double *)field;
        for (int digits = 1; digits <= 17; digits++) {
            snprintf(buf, n, "%.*g", digits, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        if (strchr(buf, 'e') && fabs(v) >= 1 && fabs(v) < 1e15 && v == floor(v))
            snprintf(buf, n, "%.0f", v); /* 10, not 1e+01 */
        break;
    }
    case OPT_CHOICE: {
        const char *c = o->metavar;
        for (int k = *(const int *)field; k > 0 && strchr(c, '|'); k--)
            c = strchr(c, '|') + 1;
        snprintf(buf, n, "%.*s", (int)strcspn(c, "|"), c);
        break;
    }
    case OPT_LIST: {
        const OptList *l = (const OptList *)field;
        size_t used = 0;
        snprintf(buf, n, "%s", l->n ? "" : "none");
        for (int i = 0; i < l->n && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, i ? ",%d" : "%d", l->v[i]);
        break;
    }
    }
}

void opts_help(FILE *f, const OptSpec *table, const void *cfg)
{
    for (const OptSpec *o = table; o->name; o++) {
        char left[64], value[VD_PATH_MAX];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(f, "  %-22s %s", left, o->help);
        if (o->type != OPT_BOOL) {
            opts_format(o, cfg, value, sizeof value);
            if (o->type == OPT_F64) /* short form for help */
                snprintf(value, sizeof value, "%g", *(const double *)((const char *)cfg + o->offset));
            fprintf(f, " [%s]", value[0] ? value : "none");
        }
        fputc('\n', f);
    }
}

void opts_print(FILE *f, const OptSpec *table, const void *cfg)
{
    for (const OptSpec *o = table; o->name; o++) {
        char value[VD_PATH_MAX];
        opts_format(o, cfg, value, sizeof value);
        if (o->type == OPT_F64)
            snprintf(value, sizeof value, "%g", *(const double *)((const char *)cfg + o->offset));
        fprintf(f, "  %-14s = %s\n", o->name, value);
    }
}

int opts_named(int argc, char **argv, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < argc; i++) /* a value is never "--name": that is taken as the option */
        if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, len) == 0 &&
            (argv[i][2 + len] == '\0' || argv[i][2 + len] == '='))
            return 1;
    return 0;
}

int opts_command(const OptCommand *c, void *cfg, int argc, char **argv, int rank, VdError *err)
{
    int help = 0;
    if (c->defaults) {
        c->defaults(cfg);
    } else {
        memset(cfg, 0, c->cfg_size);
        opts_defaults(c->options, cfg);
    }
    opts_parse(c->options, cfg, argc, argv, &help, err);
    if (help && rank == 0)
        opts_usage(stdout, c, cfg);
    return help;
}

void opts_usage(FILE *f, const OptCommand *c, const void *cfg)
{
    fprintf(f, "usage: %s\n\n%s\n\noptions [defaults]:\n", c->usage, c->about);
    opts_help(f, c->options, cfg);
}

/* The option's left column: "--name METAVAR". */
static void opt_left(const OptSpec *o, char *buf, size_t n)
{
    snprintf(buf, n, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
}

/* s with Markdown table cells' '|' escaped. */
static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

void opts_markdown(FILE *f, const OptCommand *const *commands, int n)
{
    fprintf(f, "# vae-dist options\n\nEvery command's options, generated from the program's "
               "option tables by `vae-dist help --markdown`\n(`vae-dist COMMAND --help` prints "
               "the same with the defaults in force). Options take\n`--name value` or "
               "`--name=value`. Back to the [README](../README.md).\n");
    for (int k = 0; k < n; k++) {
        const OptCommand *c = commands[k];
        fprintf(f, "\n## %s\n\n`%s`\n\n%s\n\n| option | default | meaning |\n"
                   "| --- | --- | --- |\n", c->name, c->usage, c->about);
        for (const OptSpec *o = c->options; o->name; o++) {
            char left[128];
            opt_left(o, left, sizeof left);
            fputs("| `", f);
            md_cell(f, left);
            fputs("` | ", f);
            if (o->type == OPT_BOOL)
                fputs("off", f);
            else if (o->def[0])
                fprintf(f, "`%s`", o->def);
            fputs(" | ", f);
            md_cell(f, o->help);
            fputs(" |\n", f);
        }
    }
}

/* s in roff: backslashes and leading dots or quotes escaped, '-' as \- */
static void roff_text(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

void opts_man(FILE *f, const OptCommand *const *commands, int n, const char *version,
              const char *exit_status)
{
    fprintf(f, ".TH VAE-DIST 1 \"\" \"%s\" \"User Commands\"\n.SH NAME\n"
               "vae\\-dist \\- MPI data\\-parallel trainer for variational autoencoders\n"
               ".SH SYNOPSIS\n.B mpirun\n\\-np\n.I N\n.B vae\\-dist\n"
               "[\\fICOMMAND\\fR] [\\fIoptions\\fR]\n.SH DESCRIPTION\n", version);
    roff_text(f, "Every rank holds a full replica of the model and reads only its own shard of "
                 "an HDF5 data set; the gradients are summed over the ranks and every replica "
                 "takes the same optimizer step. Rank 0 alone writes checkpoints, metrics and "
                 "figures. The commands are below; train is the default.");
    fputc('\n', f);
    for (int k = 0; k < n; k++) {
        const OptCommand *c = commands[k];
        fputs(".SH ", f);
        for (const char *p = c->name; *p; p++)
            fputc(*p >= 'a' && *p <= 'z' ? *p - 32 : *p, f);
        fputs("\n.B ", f);
        roff_text(f, c->usage);
        fputs("\n.PP\n", f);
        roff_text(f, c->about);
        fputc('\n', f);
        for (const OptSpec *o = c->options; o->name; o++) {
            char left[128];
            opt_left(o, left, sizeof left);
            fputs(".TP\n.B ", f);
            roff_text(f, left);
            fputc('\n', f);
            roff_text(f, o->help);
            if (o->type != OPT_BOOL && o->def[0]) {
                fputs(" [", f);
                roff_text(f, o->def);
                fputc(']', f);
            }
            fputc('\n', f);
        }
    }
    fputs(".SH EXIT STATUS\n", f);
    roff_text(f, exit_status);
    fputs("\n.SH SEE ALSO\n", f);
    roff_text(f, "mpirun(1); the README and docs/ of the source distribution.");
    fputc('\n', f);
}
