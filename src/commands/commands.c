/* commands.c — the command table and dispatch. See commands.h. */
#include "config.h"
#include "commands.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "eval.h"
#include "import.h"
#include "model_desc.h"
#include "sample.h"
#include "signals.h"
#include "train.h"
#include "train_opts.h"
#include "util.h"

typedef struct {
    const OptCommand *cmd;
    int (*run)(int argc, char **argv, MPI_Comm comm);
    const char *summary; /* for `vae-dist help` */
} Command;

static const Command commands[] = {
    {&train_command, train_main, "train a VAE, data-parallel over the MPI ranks (the default)"},
    {&eval_command, eval_main, "negative ELBO and importance-weighted log-likelihood of a data set"},
    {&sample_command, sample_main, "draw from the prior through a trained decoder (PNG grid, HDF5)"},
    {&reconstruct_command, reconstruct_main, "data rows above their reconstructions (PNG grid)"},
    {&encode_command, encode_main, "the posterior mean and log-variance of every row (HDF5)"},
    {&interpolate_command, interpolate_main, "decode the line between two rows' latent means (PNG, HDF5)"},
    {&import_command, import_main, "convert IDX files (MNIST, Fashion-MNIST) to one HDF5 file"},
};
enum { N_COMMANDS = sizeof commands / sizeof *commands };

static const int exit_codes[] = {VD_OK, VD_EX_USAGE, VD_EX_DATAERR, VD_EX_NOINPUT, VD_EX_STALL, VD_EX_SOFTWARE,
                                 VD_EX_CANTCREAT, VD_EX_IOERR, VD_EX_TEMPFAIL, VD_EX_DIVERGED};

/* text after a column of width indent, each word after a space, in lines
 * of at most width characters. */
static void print_wrapped(FILE *f, const char *text, int indent, int width)
{
    int col = indent;
    while (*text) {
        int word = (int)strcspn(text, " ");
        if (col > indent && col + 1 + word > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        col += fprintf(f, " %.*s", word, text);
        text += word;
        text += *text == ' ';
    }
    fputc('\n', f);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mpirun -np N vae-dist [COMMAND] [options]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].cmd->name, commands[i].summary);
    fprintf(f, "  %-12s %s\n\npresets (train --preset NAME):\n", "help",
            "this text; `vae-dist COMMAND --help` lists a command's options\n"
            "               (--markdown, --man: the reference of every option)");
    for (int i = 0; i < n_model_presets; i++) {
        fprintf(f, "  %-12s", model_presets[i].name);
        print_wrapped(f, model_presets[i].about, 14, 79);
    }
    fprintf(f, "\nexit codes:\n");
    for (size_t i = 0; i < sizeof exit_codes / sizeof *exit_codes; i++)
        fprintf(f, "  %-3d %s%s\n", exit_codes[i], vd_exit_meaning(exit_codes[i]),
                exit_codes[i] == VD_EX_TEMPFAIL ? ": run the same command again" : "");
}

static void print_version(void)
{
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(mpi, &len);
    char *nl = strchr(mpi, '\n');
    if (nl)
        *nl = '\0';
    printf("%s\nHDF5 %u.%u.%u; %s\n", PACKAGE_STRING, maj, min, rel, mpi);
}

/* The command called name, or NULL, with a line on stderr (when print)
 * suggesting the one a misspelt name most likely meant. */
static const Command *find_command(const char *name, const char *what, int print)
{
    const char *names[N_COMMANDS];
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].cmd->name) == 0)
            return &commands[i];
        names[i] = commands[i].cmd->name;
    }
    int near = opts_nearest(name, strlen(name), names, N_COMMANDS);
    if (print && near >= 0)
        fprintf(stderr, "vae-dist: %s '%s': did you mean %s?\n", what, name, names[near]);
    else if (print)
        fprintf(stderr, "vae-dist: %s '%s' (try: vae-dist help)\n", what, name);
    return NULL;
}

/* `help`, `help COMMAND` (as `vae-dist COMMAND --help`), `help --markdown`,
 * `help --man`; prints only with print. */
static int help(int argc, char **argv, int print)
{
    const OptCommand *list[N_COMMANDS];
    for (int i = 0; i < N_COMMANDS; i++)
        list[i] = commands[i].cmd;
    int markdown = argc == 1 && strcmp(argv[0], "--markdown") == 0;
    int man = argc == 1 && strcmp(argv[0], "--man") == 0;
    if (argc == 1 && argv[0][0] != '-') { /* help COMMAND */
        const Command *c = find_command(argv[0], "help: no command", print);
        if (!c)
            return VD_EX_USAGE;
        void *cfg = vd_calloc(1, c->cmd->cfg_size);
        VdError err = {0};
        opts_command(c->cmd, cfg, 1, (char *[]){"--help"}, print ? 0 : 1, &err);
        vd_free(cfg);
        return VD_OK;
    }
    if (argc > 0 && !markdown && !man) {
        if (print)
            fprintf(stderr, "vae-dist: help takes a command, --markdown or --man, not '%s'\n",
                    argv[0]);
        return VD_EX_USAGE;
    }
    if (print && markdown) {
        opts_markdown(stdout, list, N_COMMANDS);
        printf("\n## Presets\n\nThe architectures `train --preset NAME` builds:\n\n"
               "| preset | model |\n| --- | --- |\n");
        for (int i = 0; i < n_model_presets; i++)
            printf("| `%s` | %s |\n", model_presets[i].name, model_presets[i].about);
    }
    else if (print && man) {
        char status[512] = "";
        for (size_t i = 0; i < sizeof exit_codes / sizeof *exit_codes; i++)
            snprintf(status + strlen(status), sizeof status - strlen(status), "%s%d %s", i ? "; " : "",
                     exit_codes[i], vd_exit_meaning(exit_codes[i]));
        opts_man(stdout, list, N_COMMANDS, PACKAGE_STRING, status);
    }
    else if (print)
        usage(stdout);
    return VD_OK;
}

/* The rank a launcher gave this process, before MPI_Init: 0 when started alone. */
static int launched_rank(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}

int commands_local(int argc, char **argv)
{
    int print = launched_rank() == 0;
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        if (print)
            print_version();
        return VD_OK;
    }
    if (argc > 1 && strcmp(argv[1], "help") == 0)
        return help(argc - 2, argv + 2, print);
    return -1;
}

int commands_run(int argc, char **argv, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    int named = argc > 1 && argv[1][0] != '-'; /* "-h" is train's, as "--epochs" */
    const char *name = named ? argv[1] : "train";
    int skip = named ? 2 : 1;
    const OptCommand *list[N_COMMANDS];
    for (int i = 0; i < N_COMMANDS; i++)
        list[i] = commands[i].cmd;
    opts_know_commands(list, N_COMMANDS); /* --ckpt without a command: "sample takes it" */
    const Command *c = find_command(name, "unknown command", rank == 0);
    if (!c)
        return VD_EX_USAGE;
    if (c->run != train_main)
        signals_default_stops(); /* only training has something to save */
    return c->run(argc - skip, argv + skip, comm);
}
