/* signals.h — the signal handling that stops a run cleanly. SIGTERM (a
 * batch system's notice), SIGUSR1 (SLURM's --signal) and SIGINT (Ctrl-C)
 * only record that a stop was asked for; a second SIGINT kills. The train
 * loop reads the request before each step and puts it in the gradient
 * buffer's tail (VD_EXTRA_STOP, reduce.h), so one rank's signal reaches
 * every rank with that step's sum, and all checkpoint and exit 75 at the
 * same step. Local. */
#ifndef VD_SIGNALS_H
#define VD_SIGNALS_H

/* Installs the handlers: first thing in main. */
void signals_catch_stops(void);

/* The last stop signal received, or 0. */
int signals_stop_asked(void);

/* For the commands that have nothing to save (all but train): the three
 * signals end the process again, and one that came during start-up is
 * acted on now. */
void signals_default_stops(void);

#endif
