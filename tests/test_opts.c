/* test_opts.c — the option tables (opts.h): every type parses and formats
 * back to what it parsed, ranges and malformed values are refused with one
 * line naming the option, --help stops parsing, and the reference pages
 * carry every option; the train command's --preset gives defaults that the
 * other options override, wherever they stand. */
#include "testutil.h"

#include "opts.h"
#include "train_opts.h"

typedef struct {
    char name[16];
    int n;
    int64_t big;
    uint64_t seed;
    double x;
    OptList list;
    int flag, choice;
} Cfg;

#define OFF(f) offsetof(Cfg, f)
static const OptSpec table[] = {
    {"name", OPT_STR, OFF(name), sizeof(((Cfg *)0)->name), "abc", 0, 0, "S", "a string"},
    {"n", OPT_INT, OFF(n), 0, "3", 1, 10, "N", "an int in [1, 10]"},
    {"big", OPT_I64, OFF(big), 0, "5000000000", 0, 1e15, "N", "a 64-bit int"},
    {"seed", OPT_U64, OFF(seed), 0, "7", 0, 0, "N", "an unsigned 64-bit int"},
    {"x", OPT_F64, OFF(x), 0, "0.5", 0, 1, "X", "a number in [0, 1]"},
    {"list", OPT_LIST, OFF(list), 0, "4,5", 1, 100, "N[,N]", "a list | with a bar"},
    {"flag", OPT_BOOL, OFF(flag), 0, "0", 0, 0, NULL, "a flag"},
    {"choice", OPT_CHOICE, OFF(choice), 0, "b", 0, 0, "a|b|c", "one of three"},
    OPT_END};

static int parse(Cfg *c, VdError *err, int argc, char **argv)
{
    int help = 0;
    memset(c, 0, sizeof *c);
    opts_defaults(table, c);
    *err = (VdError){0};
    return opts_parse(table, c, argc, argv, &help, err);
}

static void test_defaults_and_every_type(void **state)
{
    (void)state;
    Cfg c;
    VdError err;
    assert_int_equal(parse(&c, &err, 0, NULL), VD_OK);
    assert_string_equal(c.name, "abc");
    assert_int_equal(c.n, 3);
    assert_true(c.big == 5000000000LL && c.seed == 7 && c.x == 0.5);
    assert_true(c.list.n == 2 && c.list.v[0] == 4 && c.list.v[1] == 5);
    assert_true(c.flag == 0 && c.choice == 1);
    char *argv[] = {"--name", "zz", "--n=10", "--big", "12", "--seed", "0x10", "--x", "1e-3",
                    "--list", "1,2,3", "--flag", "--choice", "c"};
    assert_int_equal(parse(&c, &err, 14, argv), VD_OK);
    assert_string_equal(c.name, "zz");
    assert_true(c.n == 10 && c.big == 12 && c.seed == 16 && c.x == 1e-3);
    assert_true(c.list.n == 3 && c.list.v[2] == 3 && c.flag == 1 && c.choice == 2);
}

/* opts_format writes what the parser takes back: the checkpoint's /config
 * and the resume checks depend on it. */
static void test_format_round_trips(void **state)
{
    (void)state;
    Cfg a, b;
    VdError err;
    char *argv[] = {"--x", "0.30000000000000004", "--list", "7", "--choice", "a", "--flag"};
    char shortest[32];
    Cfg c;
    VdError e0;
    assert_int_equal(parse(&c, &e0, 2, (char *[]){"--x", "3e-3"}), VD_OK);
    opts_format(&table[4], &c, shortest, sizeof shortest);
    assert_string_equal(shortest, "0.003"); /* not 0.0030000000000000001 */
    Cfg big;
    assert_int_equal(parse(&big, &e0, 2, (char *[]){"--big", "0"}), VD_OK);
    big.x = 10; /* whole numbers read as such: "continuing with --clip-norm 10" */
    opts_format(&table[4], &big, shortest, sizeof shortest);
    assert_string_equal(shortest, "10"); /* not 1e+01 */
    big.x = 2.5e6;
    opts_format(&table[4], &big, shortest, sizeof shortest);
    assert_string_equal(shortest, "2500000");
    big.x = 1e-5;
    opts_format(&table[4], &big, shortest, sizeof shortest);
    assert_true(strtod(shortest, NULL) == 1e-5 && strlen(shortest) <= 5);
    assert_int_equal(parse(&a, &err, 7, argv), VD_OK);
    char args[8][2][64], *back[16];
    int k = 0;
    for (const OptSpec *o = table; o->name; o++, k++) {
        snprintf(args[k][0], 64, "--%s", o->name);
        opts_format(o, &a, args[k][1], 64);
        back[2 * k] = args[k][0];
        back[2 * k + 1] = args[k][1];
    }
    /* a bool's "1" is not a value: give it as the bare flag */
    int n = 0;
    char *argv2[16];
    for (int i = 0; i < k; i++) {
        if (table[i].type == OPT_BOOL) {
            if (strcmp(back[2 * i + 1], "1") == 0)
                argv2[n++] = back[2 * i];
            continue;
        }
        argv2[n++] = back[2 * i];
        argv2[n++] = back[2 * i + 1];
    }
    assert_int_equal(parse(&b, &err, n, argv2), VD_OK);
    assert_memory_equal(&a, &b, sizeof a);
}

/* One line, naming the option, exit code 64. */
static void refused(const char *want, int argc, char **argv)
{
    Cfg c;
    VdError err;
    assert_int_equal(parse(&c, &err, argc, argv), VD_EX_USAGE);
    assert_int_equal(err.code, VD_EX_USAGE);
    if (!strstr(err.msg, want))
        print_error("'%s' lacks '%s'\n", err.msg, want);
    assert_non_null(strstr(err.msg, want));
    assert_null(strchr(err.msg, '\n'));
}

static void test_bad_values_refused(void **state)
{
    (void)state;
    /* a number out of range is called one: "-1e-3 is outside", not "not a number" */
    refused("--n: 11 is outside [1, 10]", 2, (char *[]){"--n", "11"});
    refused("--n: '3x' is not a whole number in [1, 10]", 2, (char *[]){"--n", "3x"});
    refused("--x: 'nan' is not a number in [0, 1]", 2, (char *[]){"--x", "nan"});
    refused("--x: -1e-3 is outside [0, 1]", 2, (char *[]){"--x", "-1e-3"});
    refused("--list: 0 in '4,0' is outside [1, 100]", 2, (char *[]){"--list", "4,0"});
    refused("--list: 200 is outside [1, 100]", 2, (char *[]){"--list", "200"});
    refused("--seed: '-1' is not a whole number of 0 or more", 2, (char *[]){"--seed", "-1"});
    refused("--list", 2, (char *[]){"--list", "1,,2"});
    refused("--list", 2, (char *[]){"--list", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"});
    refused("--choice", 2, (char *[]){"--choice", "d"});
    refused("--flag", 1, (char *[]){"--flag=1"});
    refused("--name", 2, (char *[]){"--name", "a string longer than sixteen"});
    refused("--n", 1, (char *[]){"--n"});
    refused("--x needs a value (before --n)", 3, (char *[]){"--x", "--n", "3"});
    refused("did you mean --list?", 2, (char *[]){"--lst", "3"});
    refused("did you mean --choice?", 2, (char *[]){"--cho", "a"}); /* a prefix */
    refused("--bogus", 1, (char *[]){"--bogus"});
    refused("unexpected argument 'x'", 1, (char *[]){"x"});
}

static void test_help_stops_parsing(void **state)
{
    (void)state;
    Cfg c;
    int help = 0;
    VdError err = {0};
    opts_defaults(table, &c);
    char *argv[] = {"--n", "4", "--help", "--bogus"};
    assert_int_equal(opts_parse(table, &c, 4, argv, &help, &err), VD_OK);
    assert_true(help && c.n == 4);
    OptCommand cmd = {"demo", "demo [options]", "Does nothing.", table, sizeof(Cfg), NULL};
    char *argv2[] = {"--n", "2"};
    assert_int_equal(opts_command(&cmd, &c, 2, argv2, 0, &err), 0);
    assert_true(c.n == 2 && c.choice == 1); /* the defaults, then the command line */
}

/* Every option reaches both reference pages, escaped for their format. */
static void test_reference_pages(void **state)
{
    (void)state;
    OptCommand cmd = {"demo", "demo [options]", "Does nothing.", table, sizeof(Cfg), NULL};
    const OptCommand *list[] = {&cmd};
    char *md = NULL, *man = NULL;
    size_t nmd = 0, nman = 0;
    FILE *f = open_memstream(&md, &nmd);
    opts_markdown(f, list, 1);
    fclose(f);
    f = open_memstream(&man, &nman);
    opts_man(f, list, 1, "demo 1.0", "0 success");
    fclose(f);
    for (const OptSpec *o = table; o->name; o++) {
        char want[64];
        snprintf(want, sizeof want, "| `--%s", o->name);
        assert_non_null(strstr(md, want));
        snprintf(want, sizeof want, ".B \\-\\-%s", o->name);
        assert_non_null(strstr(man, want));
    }
    assert_non_null(strstr(md, "a list \\| with a bar")); /* a bar would split the cell */
    assert_non_null(strstr(md, "| `--n N` | `3` |"));
    assert_non_null(strstr(man, ".TH VAE-DIST 1"));
    free(md);
    free(man);
}

/* The train command line, parsed as rank 1 (which prints nothing). */
static TrainConfig train_args(int argc, char **argv)
{
    TrainConfig c;
    VdError err = {0};
    assert_int_equal(train_parse(&c, argc, argv, 1, &err), 0);
    assert_int_equal(err.code, VD_OK);
    return c;
}

static void test_preset_gives_defaults(void **state)
{
    (void)state;
    char *plain[] = {"--hidden", "128"};
    TrainConfig c = train_args(2, plain);
    assert_true(c.model.preset == VD_PRESET_NONE && c.model.hidden.v[0] == 128 &&
                c.model.conv.n == 0 && c.model.latent.n == 1 && c.model.latent.v[0] == 20);
    char *preset[] = {"--preset", "conv-hvae"};
    c = train_args(2, preset);
    int conv[3] = {32, 64, 6}, latent[2] = {40, 40};
    assert_true(c.model.preset == VD_PRESET_CONV_HVAE && c.model.hidden.n == 1 &&
                c.model.hidden.v[0] == 300 && c.model.conv.n == 3 && c.model.latent.n == 2 &&
                c.model.activation == VD_MODEL_GATED);
    assert_memory_equal(c.model.conv.v, conv, sizeof conv);
    assert_memory_equal(c.model.latent.v, latent, sizeof latent);
    char *before[] = {"--latent", "20", "--conv", "8,16,2", "--preset", "conv-hvae", "--lr", "5e-4"};
    c = train_args(8, before);
    assert_true(c.model.latent.n == 1 && c.model.latent.v[0] == 20 && c.model.conv.v[0] == 8 &&
                c.model.conv.v[2] == 2 && c.model.hidden.v[0] == 300 && c.lr == 5e-4);
    char *after[] = {"--preset", "conv-hvae", "--hidden", "64"};
    c = train_args(4, after);
    assert_true(c.model.hidden.v[0] == 64 && c.model.conv.v[1] == 64 && c.model.latent.n == 2);
    /* a bad value is refused whether or not a preset is given */
    char *bad[] = {"--preset", "conv-hvae", "--latent", "0"};
    VdError err = {0};
    train_parse(&c, 4, bad, 1, &err);
    assert_int_equal(err.code, VD_EX_USAGE);
}

/* Suggestions: our spelling of another trainer's name, an option of
 * another command, a misspelt command. */
typedef struct {
    int64_t batch;
    char ckpt[32];
} Two;
static const OptSpec train_like[] = {
    {"batch", OPT_I64, offsetof(Two, batch), 0, "128", 1, 1e9, "G", "global batch"},
    {"ckpt-every", OPT_I64, offsetof(Two, batch), 0, "1", 0, 1e9, "N", "epochs between checkpoints"},
    OPT_END};
static const OptSpec sample_like[] = {
    {"ckpt", OPT_STR, offsetof(Two, ckpt), sizeof(((Two *)0)->ckpt), "x", 0, 0, "P", "checkpoint"},
    OPT_END};

static void test_suggestions(void **state)
{
    (void)state;
    const OptCommand a = {"train", "u", "a", train_like, sizeof(Two), NULL};
    const OptCommand b = {"sample", "u", "b", sample_like, sizeof(Two), NULL};
    const OptCommand *both[] = {&a, &b};
    opts_know_commands(both, 2);
    Two t;
    const struct {
        const char *arg, *want;
    } cases[] = {
        {"--batch-size", "unknown option '--batch-size': did you mean --batch?"},
        {"--batch_size", "did you mean --batch?"},
        {"--BS", "did you mean --batch?"},
        {"--ckpt_every", "did you mean --ckpt-every?"},
        /* an option of another command, though --ckpt-every starts the same */
        {"--ckpt", "unknown option '--ckpt' for train (the default command); sample takes it"},
        {"--bogus", "unknown option '--bogus' (see --help)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        VdError err = {0};
        opts_command(&a, &t, 2, (char *[]){(char *)cases[i].arg, "1"}, 1, &err);
        if (!strstr(err.msg, cases[i].want))
            print_error("%s: '%s' lacks '%s'\n", cases[i].arg, err.msg, cases[i].want);
        assert_int_equal(err.code, VD_EX_USAGE);
        assert_non_null(strstr(err.msg, cases[i].want));
    }
    opts_know_commands(NULL, 0);
    const char *names[] = {"train", "eval", "sample", "reconstruct"};
    assert_int_equal(opts_nearest("sampel", 6, names, 4), 2);
    assert_int_equal(opts_nearest("recon", 5, names, 4), 3); /* a prefix */
    assert_int_equal(opts_nearest("zzzzzz", 6, names, 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_every_type),
        cmocka_unit_test(test_format_round_trips),
        cmocka_unit_test(test_bad_values_refused),
        cmocka_unit_test(test_help_stops_parsing),
        cmocka_unit_test(test_reference_pages),
        cmocka_unit_test(test_preset_gives_defaults),
        cmocka_unit_test(test_suggestions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
