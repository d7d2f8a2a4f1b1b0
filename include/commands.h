/* commands.h — vae-dist's commands (train, eval, sample, reconstruct,
 * encode, interpolate, import, help) and their dispatch: what main()
 * calls. */
#ifndef VD_COMMANDS_H
#define VD_COMMANDS_H

#include <mpi.h>

/* Local, before MPI_Init: `--version`, and `help [--markdown | --man]` (the
 * commands, or the option reference of every command as Markdown or as a
 * man page), which need no MPI; printed once under mpirun or srun (by the
 * rank the launcher numbers 0). Returns the exit code, or -1 when argv
 * names another command. */
int commands_local(int argc, char **argv);

/* Collective over comm. Runs the command argv[1] names (train when argv[1]
 * is an option or absent) and returns the exit code, the same on every
 * rank. */
int commands_run(int argc, char **argv, MPI_Comm comm);

#endif
