/* signals.c — stop signals recorded, not acted on. See signals.h. */
#include "signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

void signals_catch_stops(void)
{
    int sigs[3] = {SIGTERM, SIGUSR1, SIGINT};
    for (int i = 0; i < 3; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = sigs[i] == SIGINT ? SA_RESETHAND : 0;
        sigaction(sigs[i], &sa, NULL);
    }
}

int signals_stop_asked(void) { return stop_signal; }

void signals_default_stops(void)
{
    int sigs[3] = {SIGTERM, SIGUSR1, SIGINT};
    for (int i = 0; i < 3; i++)
        signal(sigs[i], SIG_DFL);
    if (stop_signal)
        raise(stop_signal);
}
