#!/usr/bin/env python3
"""Follow a training run's metrics.h5 while it trains, with h5py alone.

    python3 jobs/follow-metrics.py RUN_DIR [SECONDS [QUIET]]

vae-dist keeps metrics.h5 open in HDF5's single-writer/multiple-reader mode
(SWMR) and flushes each row as it logs it; a reader that opens the file with
swmr=True sees the rows arrive without stopping the run. This prints each
new row of /train (step, loss) every SECONDS (default 2) until the file has
not grown for QUIET seconds (default 60), then the last step it saw. Needs
python3-h5py.
"""
import sys
import time

import h5py

run = sys.argv[1]
every = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
patience = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
with h5py.File(run + "/metrics.h5", "r", libver="latest", swmr=True) as f:
    step, loss = f["train/step"], f["train/loss"]
    seen, quiet = 0, 0.0
    while quiet < patience:
        step.refresh()  # what the writer has flushed since
        loss.refresh()
        # the columns grow one after the other: a row is whole once it is in both
        n = min(len(step), len(loss))
        for i in range(seen, n):
            print("step %d loss %.2f" % (step[i], loss[i]), flush=True)
        quiet = 0.0 if n > seen else quiet + every
        seen = n
        time.sleep(every)
    print("last step %d" % (step[seen - 1] if seen else 0))
