#!/usr/bin/env python3
"""Follow a training run's metrics.h5 while it trains, with h5py alone.

    python3 jobs/follow-metrics.py RUN_DIR [SECONDS [QUIET]]

vae-dist keeps metrics.h5 open in HDF5's single-writer/multiple-reader mode
(SWMR) and flushes each row as it logs it; a reader that opens the file with
swmr=True sees the rows arrive without stopping the run. This prints each
new row of /train (step, loss) every SECONDS (default 2) until the file has
not grown for QUIET seconds (default 60), then the last step it saw.

Started before the run exists (a queued job), it waits for metrics.h5 to
appear, as long as it takes. A resumed run rebuilds metrics.h5 under the
same name: the reader opens the new file and goes on from the last step it
printed. Ctrl-C ends it. Needs python3-h5py.
"""
import argparse
import os
import sys
import time


def arguments():
    p = argparse.ArgumentParser(
        prog="follow-metrics.py",
        description="Print each new row of a vae-dist run's metrics.h5 (/train: step, "
        "loss) while the run trains, and the last step when the file has stopped growing.",
    )
    p.add_argument("run", metavar="RUN_DIR", help="the run directory (vae-dist --out)")
    p.add_argument("every", metavar="SECONDS", type=float, nargs="?", default=2.0,
                   help="seconds between looks (default 2)")
    p.add_argument("quiet", metavar="QUIET", type=float, nargs="?", default=60.0,
                   help="stop after the file has not grown for this many seconds (default 60)")
    a = p.parse_args()
    if a.every <= 0 or a.quiet < 0:
        p.error("SECONDS must be above 0 and QUIET at least 0")
    return a


def open_metrics(h5py, path):
    """The file as a SWMR reader, and its identity; None while it cannot be."""
    try:
        ident = os.stat(path).st_ino
        return h5py.File(path, "r", libver="latest", swmr=True), ident
    except (OSError, KeyError):  # not there yet, or being replaced
        return None, None


def follow(h5py, run, every, patience):
    path = os.path.join(run, "metrics.h5")
    f, ident = open_metrics(h5py, path)
    if f is None:
        print("waiting for %s (the run has not started)" % path, file=sys.stderr, flush=True)
        while f is None:
            time.sleep(every)
            f, ident = open_metrics(h5py, path)
    last, seen, quiet = None, 0, 0.0
    while quiet < patience:
        try:
            if os.stat(path).st_ino != ident:  # a resumed run rebuilt it
                g, gid = open_metrics(h5py, path)
                if g is not None:
                    f.close()
                    f, ident, seen = g, gid, 0
        except OSError:
            pass
        step, loss = f["train/step"], f["train/loss"]
        step.refresh()  # what the writer has flushed since
        loss.refresh()
        # the columns grow one after the other: a row is whole once it is in both
        n = min(len(step), len(loss))
        grew = False
        for i in range(seen, n):
            if last is None or step[i] > last:
                print("step %d loss %.2f" % (step[i], loss[i]), flush=True)
                last, grew = step[i], True
        quiet = 0.0 if grew else quiet + every
        seen = n
        time.sleep(every)
    f.close()
    print("last step %d" % (last if last is not None else 0))


def main():
    a = arguments()
    try:
        import h5py
    except ImportError:
        sys.exit("follow-metrics.py: needs h5py (apt-get install python3-h5py)")
    try:
        follow(h5py, a.run, a.every, a.quiet)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
