#!/bin/sh
# Resume and faults: a run stopped part way (step limit, SIGUSR1 to mpirun,
# SIGTERM to the ranks, SIGKILL of one rank) and run again with the same
# command ends bitwise identical to an uninterrupted run: parameters, Adam
# moments and metrics. Damaged checkpoints fall back to older ones; a NaN
# stops training with exit 76 and never reaches a checkpoint.
. "$top_srcdir/tests/lib.sh"

"$GEN" "$WORK/bars.h5" --n 2000 --test 200 --side 8 --type u8 --chunk 100 --deflate 1 ||
    { fail gen_data; finish; }
# 100 steps per epoch, 6 epochs
ARGS="--data $WORK/bars.h5 --epochs 6 --batch 20 --hidden 256,128 --latent 4 --lr 2e-3 --log-every 30 --keep 0"
FINAL=ckpt-0000000600.h5

same_run() { # same_run DIR NAME: DIR ends exactly like the uninterrupted run
    ok=1
    for g in /params /adam/m /adam/v; do
        "$H5DIFF" -q "$WORK/ref/$FINAL" "$1/$FINAL" $g >/dev/null 2>&1 || ok=0
    done
    # every column but the timings (column 7 of each: samples_per_s, seconds)
    cut -d, -f1-6,8,9 "$WORK/ref/metrics.csv" >"$WORK/m1"; cut -d, -f1-6,8,9 "$1/metrics.csv" >"$WORK/m2"
    cut -d, -f1-6,8 "$WORK/ref/epochs.csv" >"$WORK/e1"; cut -d, -f1-6,8 "$1/epochs.csv" >"$WORK/e2"
    head -n 1 "$WORK/m1" | grep -q ",clipped,grad_norm$" || ok=0
    cmp -s "$WORK/m1" "$WORK/m2" && cmp -s "$WORK/e1" "$WORK/e2" || ok=0
    [ $ok -eq 1 ] && pass "$2: bitwise identical to the uninterrupted run" ||
        fail "$2: differs from the uninterrupted run"
}

run_mpi 2 120 "$VAE" $ARGS --out "$WORK/ref" >"$WORK/ref.log" 2>&1 || { fail "reference run"; finish; }

# 1. stopped by --max-steps inside an epoch, then resumed
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/a" --max-steps 250 >/dev/null 2>&1 || fail "run to step 250"
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/a" >"$WORK/a.log" 2>&1 || fail "resume a"
grep -q "resuming from .*ckpt-0000000250.h5" "$WORK/a.log" || fail "a did not resume from step 250"
same_run "$WORK/a" "step limit at 250"

# the first interval after a resume counts only the samples this process
# stepped: resumed at 299, the interval that began at 201 has one fresh
# step, and its rate must not count the 98 stepped before (that made it
# about 99 times too high). Timing on a loaded machine varies several-fold
# between intervals, so the bound is loose: under 5 times the fastest other
# interval of the same run.
run_mpi 2 120 "$VAE" $ARGS --log-every 100 --out "$WORK/rate" --max-steps 299 >/dev/null 2>&1 || fail "run to 299"
run_mpi 2 120 "$VAE" $ARGS --log-every 100 --out "$WORK/rate" --max-steps 400 >/dev/null 2>&1 || fail "resume to 400"
awk -F, 'NR > 1 {r[$1] = $7; if ($1 != 300 && $7 > top) top = $7} END {
    exit !(top > 0 && r[300] > 0 && r[300] < 5 * top)}' "$WORK/rate/metrics.csv" &&
    pass "the rate right after a resume is not inflated ($(awk -F, '$1 == 300 {print $7}' "$WORK/rate/metrics.csv") samples/s at step 300)" ||
    { cat "$WORK/rate/metrics.csv"; fail "the rate after a resume is inflated"; }

# 2. signals, until the run completes: SIGUSR1 to mpirun (it forwards), and
#    SIGTERM to the ranks themselves (as srun delivers), each exiting 75.
#    Each attempt is signalled shortly after its first progress line.
for how in mpirun ranks; do
    d="$WORK/sig-$how"; stops=0; tries=0; rc=1
    while [ $tries -lt 30 ] && [ $rc -ne 0 ]; do
        tries=$((tries + 1))
        run_mpi 2 120 "$VAE" $ARGS --log-every 10 --out "$d" >"$d.log" 2>&1 &
        pid=$!
        # the progress line comes after the handlers are installed: a signal
        # before them would kill the ranks, so none is sent without it (start-up
        # can take seconds while make check runs other MPI tests alongside)
        i=0; while ! grep -q "samples/s" "$d.log" && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
        sleep 0.1
        # only this test's processes: make check runs other tests alongside
        if ! grep -q "samples/s" "$d.log"; then :
        elif [ $how = mpirun ]; then pkill -USR1 -f "^$MPIRUN .*--out $d\$"; else pkill -TERM -f "^$VAE .*--out $d\$"; fi
        wait $pid; rc=$?
        # a signal that reaches mpirun after the ranks finished kills it
        # (Open MPI restores the default action while tearing down): the
        # run itself completed, which the comparison below checks
        [ $rc -eq 138 ] && grep -q "^done: " "$d.log" && rc=0
        if [ $rc -eq 75 ]; then stops=$((stops + 1))
        elif [ $rc -ne 0 ]; then cat "$d.log"; fail "signal to $how: exit $rc"; break; fi
    done
    [ $rc -eq 0 ] && [ $stops -ge 1 ] && pass "signal to $how: $stops stop(s) with exit 75, then completed" ||
        fail "signal to $how: $stops stop(s) in $tries attempts, last exit $rc"
    # the log interval differs (--log-every 10), so compare tensors only
    ok=1
    for g in /params /adam/m /adam/v; do
        "$H5DIFF" -q "$WORK/ref/$FINAL" "$d/$FINAL" $g >/dev/null 2>&1 || ok=0
    done
    [ $ok -eq 1 ] && pass "signal to $how: final state bitwise identical" ||
        fail "signal to $how: final state differs"
done

# 3. the newest checkpoint damaged: reported, and the previous one used
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/c" --max-steps 350 >/dev/null 2>&1 || fail "run to 350"
head -c 5000 "$WORK/c/ckpt-0000000350.h5" >"$WORK/trunc" && mv "$WORK/trunc" "$WORK/c/ckpt-0000000350.h5"
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/c" >"$WORK/c.log" 2>&1 || fail "resume past a damaged checkpoint"
grep -q "warning: .*ckpt-0000000350.h5.*trying an older checkpoint" "$WORK/c.log" &&
    grep -q "resuming from .*ckpt-0000000300.h5" "$WORK/c.log" &&
    pass "truncated newest checkpoint reported, previous one used" || { cat "$WORK/c.log"; fail "fallback"; }
same_run "$WORK/c" "resumed past a damaged checkpoint"

# 4. every checkpoint damaged: a clear error, nothing overwritten
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/d" --max-steps 150 >/dev/null 2>&1 || fail "run to 150"
for f in "$WORK/d"/ckpt-*.h5; do # 64 bytes of garbage in the middle, where the tensors are
    head -c 64 /dev/urandom | dd of="$f" bs=1 seek=$(( $(stat -c %s "$f") / 2 )) conv=notrunc 2>/dev/null
done
before=$(cat "$WORK/d"/ckpt-*.h5 | cksum)
run_mpi 2 60 -q "$VAE" $ARGS --out "$WORK/d" >"$WORK/d.log" 2>"$WORK/d.err"
rc=$?
[ $rc -eq 65 ] && grep -q "^vae-dist: no valid checkpoint in" "$WORK/d.err" &&
    pass "no valid checkpoint: exit 65, $(grep '^vae-dist: no valid' "$WORK/d.err")" ||
    { cat "$WORK/d.err"; fail "no valid checkpoint: exit $rc"; }
[ "$before" = "$(cat "$WORK/d"/ckpt-*.h5 | cksum)" ] && pass "damaged checkpoints left as they were" ||
    fail "damaged checkpoints were modified"

# 5. --fresh sets the old run aside and starts over
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/d" --fresh --max-steps 20 >"$WORK/f.log" 2>&1 || fail "--fresh"
ls "$WORK/d"/replaced-*/ckpt-0000000150.h5 >/dev/null 2>&1 && [ -f "$WORK/d/ckpt-0000000020.h5" ] &&
    pass "--fresh moved the old run aside" || fail "--fresh"

# 6. resuming with another rank count continues from the same state
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/e" --max-steps 120 >/dev/null 2>&1 || fail "run to 120 on 2 ranks"
run_mpi 1 120 "$VAE" $ARGS --out "$WORK/e" --max-steps 200 >"$WORK/e.log" 2>&1 &&
    grep -q "resuming from .*ckpt-0000000120.h5: step 120" "$WORK/e.log" && [ -f "$WORK/e/ckpt-0000000200.h5" ] &&
    pass "resumed on 1 rank a run started on 2" || fail "resume on another rank count"

# 7. a NaN in a gradient at step 130: exit 76, nothing non-finite saved
VAE_DIST_TEST_NAN_STEP=130 run_mpi 2 60 -q "$VAE" $ARGS --out "$WORK/g" >"$WORK/g.log" 2>"$WORK/g.err"
rc=$?
[ $rc -eq 76 ] && [ "$(grep -c '^vae-dist:' "$WORK/g.err")" -eq 1 ] &&
    pass "NaN at step 130: exit 76, $(cat "$WORK/g.err")" || { cat "$WORK/g.err"; fail "NaN: exit $rc"; }
[ "$(cat "$WORK/g/latest")" = ckpt-0000000100.h5 ] && pass "latest checkpoint is the one before the NaN" ||
    fail "latest is $(cat "$WORK/g/latest")"
#    with --max-skips the step is skipped and training goes on
VAE_DIST_TEST_NAN_STEP=130 run_mpi 2 60 "$VAE" $ARGS --out "$WORK/h" --max-skips 1 >"$WORK/h.log" 2>&1 &&
    grep -q "step skipped (1 of --max-skips 1)" "$WORK/h.log" && [ -f "$WORK/h/$FINAL" ] &&
    pass "NaN skipped with --max-skips 1" || fail "--max-skips"

# 8. one rank killed with SIGKILL: the job ends by itself within 30 s and
#    the last checkpoint still resumes
run_mpi 2 120 "$VAE" $ARGS --epochs 200 --log-every 5 --out "$WORK/k" >"$WORK/k.log" 2>&1 &
pid=$!
i=0; while [ ! -f "$WORK/k/latest" ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
sleep 0.5
victim=$(pgrep -f "^$VAE .*--out $WORK/k\$" | tail -n 1)
[ -n "$victim" ] && [ -f "$WORK/k/latest" ] || fail "SIGKILL of one rank: no rank or no checkpoint to kill after"
start=$(date +%s)
kill -KILL "$victim"
wait $pid; rc=$?
took=$(( $(date +%s) - start ))
[ $rc -ne 0 ] && [ $took -le 30 ] && pass "SIGKILL of one rank: job ended in ${took}s (exit $rc)" ||
    fail "SIGKILL of one rank: exit $rc after ${took}s"
last=$(cat "$WORK/k/latest")
step=$(echo "$last" | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/')
run_mpi 2 120 "$VAE" $ARGS --epochs 200 --max-steps $((step + 10)) --out "$WORK/k" >"$WORK/k2.log" 2>&1 ||
    fail "resume after SIGKILL"
grep -q "resuming from .*$last" "$WORK/k2.log" && pass "checkpoint $last intact after SIGKILL" ||
    { cat "$WORK/k2.log"; fail "resume after SIGKILL"; }
finish
