#!/bin/sh
# Readers of the metrics never stop training: jobs/follow-metrics.py (the
# documented h5py recipe, swmr=True) holds metrics.h5 open for a whole run
# and sees the rows arrive while it trains; a plotting loop that opens the
# file without SWMR, reads and holds it half a second, over and over, only
# fails its own opens. Both runs end 0 with every row in the CSV and in
# metrics.h5. jobs/follow-metrics.py also answers a user who gives it no
# argument or --help, and waits for a run that has not started. Skipped
# (77) without python3-h5py.
. "$top_srcdir/tests/lib.sh"
PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import h5py, numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || skip "no python3 with h5py and numpy (apt-get install python3-h5py)"

"$GEN" "$WORK/bars.h5" --n 2000 --test 200 --side 8 || { fail gen_data; finish; }
ARGS="--data $WORK/bars.h5 --batch 20 --hidden 256,128 --latent 4 --log-every 10"

# rows CSV H5: the step columns of the CSV and of metrics.h5 are the same rows
rows_match() {
    "$PY" - "$1" <<'PYEOF'
import csv, sys, h5py
run = sys.argv[1]
for name, group in (("metrics.csv", "train"), ("epochs.csv", "test")):
    with open(run + "/" + name) as f:
        rows = list(csv.DictReader(f))
    with h5py.File(run + "/metrics.h5", "r", libver="latest", swmr=True) as h:
        steps = list(h[group + "/step"][()])
    want = [float(r["step"]) for r in rows]
    if want != steps or not want:
        sys.exit("%s: %d CSV rows, %d HDF5 rows" % (name, len(want), len(steps)))
print("rows match")
PYEOF
}

# 1. a SWMR reader holds the file for the whole run and follows it live
run_mpi 2 120 "$VAE" $ARGS --epochs 20 --out "$WORK/a" >"$WORK/a.log" 2>&1 &
pid=$!
i=0; while [ ! -f "$WORK/a/metrics.h5" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
# the reader stops once no row came for QUIET s: 10, past any pause of a run
# under a sanitizer or beside other tests (start-up, epoch ends)
timeout 120 "$PY" "$top_srcdir/jobs/follow-metrics.py" "$WORK/a" 0.2 10 >"$WORK/follow.log" 2>&1 &
reader=$!
# while the run still trains, the reader must already show rows
during=0
while kill -0 $pid 2>/dev/null && ! grep -q "^done:" "$WORK/a.log"; do
    during=$(grep -c '^step ' "$WORK/follow.log")
    [ "$during" -gt 0 ] && break
    sleep 0.1
done
wait $pid; rc=$?
wait $reader; rrc=$?
[ $rc -eq 0 ] && pass "training with a SWMR reader holding metrics.h5: exit 0" ||
    { cat "$WORK/a.log"; fail "training with a SWMR reader: exit $rc"; }
total=$(($(wc -l <"$WORK/a/metrics.csv") - 1))
[ "$during" -gt 0 ] && [ "$during" -lt "$total" ] &&
    pass "the reader showed $during of the $total rows while the run still trained (it follows live)" ||
    fail "the reader showed $during of $total rows while the run trained"
[ $rrc -eq 0 ] && [ "$(grep -c '^step ' "$WORK/follow.log")" -eq "$total" ] &&
    grep -q "^last step 2000$" "$WORK/follow.log" &&
    pass "follow-metrics.py printed every row, to the last step" ||
    { tail -3 "$WORK/follow.log"; fail "follow-metrics.py (exit $rrc)"; }
out=$(rows_match "$WORK/a") && pass "run a: $out in the CSV and metrics.h5" || fail "run a: $out"

# 2. a reader without SWMR opening, holding and closing it in a loop, from
#    before the run starts (it holds the old file while the run rebuilds it)
run_mpi 2 120 "$VAE" $ARGS --epochs 2 --out "$WORK/b" >/dev/null 2>&1 || fail "first run b"
timeout 120 "$PY" - "$WORK/b" >"$WORK/plain.log" 2>&1 <<'PYEOF' &
import os, sys, time, h5py
run, opened = sys.argv[1], 0
while not os.path.exists(run + "/stop"):
    try:
        with h5py.File(run + "/metrics.h5", "r") as f:
            len(f["train/step"])
            opened += 1
            time.sleep(0.5)
    except OSError:
        time.sleep(0.1)
print("opened", opened)
PYEOF
plain=$!
sleep 0.3
run_mpi 2 120 "$VAE" $ARGS --epochs 8 --out "$WORK/b" >"$WORK/b.log" 2>&1; rc=$?
touch "$WORK/b/stop"; wait $plain
[ $rc -eq 0 ] && ! grep -q "^vae-dist: [^w]" "$WORK/b.log" &&
    pass "training beside a plain h5py reader loop: exit 0 ($(cat "$WORK/plain.log"))" ||
    { cat "$WORK/b.log"; fail "training beside a plain reader: exit $rc"; }
out=$(rows_match "$WORK/b") && [ "$(($(wc -l <"$WORK/b/metrics.csv") - 1))" -eq 80 ] &&
    pass "run b: $out, all 80" || fail "run b: $out"

# 3. follow-metrics.py as a new user meets it: no argument or --help is a
#    usage, not a traceback; started before the run exists (a queued job),
#    it waits, then follows the run to its last step
F="$top_srcdir/jobs/follow-metrics.py"
"$PY" "$F" >"$WORK/noarg.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "^usage: follow-metrics.py" "$WORK/noarg.log" && ! grep -q Traceback "$WORK/noarg.log" &&
    pass "follow-metrics.py without arguments: exit 2, $(grep -m1 'error' "$WORK/noarg.log")" ||
    { cat "$WORK/noarg.log"; fail "follow-metrics.py without arguments: exit $rc"; }
"$PY" "$F" --help >"$WORK/help.log" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "^usage: follow-metrics.py" "$WORK/help.log" && ! grep -q Traceback "$WORK/help.log" &&
    pass "follow-metrics.py --help: exit 0, the usage" || { cat "$WORK/help.log"; fail "follow-metrics.py --help: exit $rc"; }
timeout 120 "$PY" "$F" "$WORK/c" 0.2 10 >"$WORK/early.log" 2>"$WORK/early.err" &
reader=$!
sleep 1
run_mpi 2 120 "$VAE" $ARGS --epochs 3 --out "$WORK/c" >"$WORK/c.log" 2>&1; rc=$?
wait $reader; rrc=$?
total=$(($(wc -l <"$WORK/c/metrics.csv") - 1))
[ $rc -eq 0 ] && [ $rrc -eq 0 ] && grep -q "^waiting for $WORK/c/metrics.h5" "$WORK/early.err" &&
    [ "$(grep -c '^step ' "$WORK/early.log")" -eq "$total" ] && grep -q "^last step 300$" "$WORK/early.log" &&
    pass "follow-metrics.py started before the run: waited, then printed all $total rows to the last step" ||
    { cat "$WORK/early.err"; tail -3 "$WORK/early.log"; fail "follow-metrics.py before the run (exit $rrc)"; }
finish
