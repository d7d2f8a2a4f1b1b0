#!/bin/sh
# A stop at any moment loses nothing: SIGUSR1, SIGTERM or SIGINT, sent to the
# ranks or to mpirun at a random time from the start of the processes to the
# end of the run, start-up included (from the moment the ranks' handler is
# installed, at the top of main). Sent to the ranks, each attempt ends 75 with
# a checkpoint or, once the run is done, 0. mpirun forwards only USR1; on
# TERM and INT it ends the ranks itself and exits 1, and a USR1 that comes
# before it has started the ranks is dropped: the run's own verdict is then
# in RUN/status, which the batch scripts read. Either way, running the
# same command until it ends 0 gives bitwise the uninterrupted run.
. "$top_srcdir/tests/lib.sh"
need_h5diff

"$GEN" "$WORK/bars.h5" --n 1000 --test 100 --side 8 --type u8 || { fail gen_data; finish; }
ARGS="--data $WORK/bars.h5 --epochs 30 --batch 20 --hidden 256,128 --latent 4 --log-every 10"
FINAL=ckpt-0000001500.h5
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/ref" >/dev/null 2>&1 || { fail "reference run"; finish; }

# caught PID SIG: has PID installed a handler for SIG (SigCgt in /proc)?
caught() {
    mask=$(sed -n 's/^SigCgt:\s*//p' "/proc/$1/status" 2>/dev/null)
    [ -n "$mask" ] && [ $(( (0x$mask >> ($2 - 1)) & 1 )) -eq 1 ]
}
signum() { case $1 in USR1) echo 10 ;; TERM) echo 15 ;; INT) echo 2 ;; esac; }

seed=$(( $$ % 1000 ))
# started D SIG: wait until both ranks of the run in D exist and have
# installed their handler for SIG (at the top of main, before MPI_Init):
# the windows below count from then, so a loaded machine's slow start does
# not push every signal past the end of the run
started() {
    i=0
    while [ "$(pgrep -f "^$VAE .*--out $1\$" | wc -l)" -lt 2 ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
    for p in $(pgrep -f "^$VAE .*--out $1\$"); do
        i=0; while ! caught "$p" "$(signum $2)" && [ $i -lt 500 ] && kill -0 "$p" 2>/dev/null; do sleep 0.01; i=$((i + 1)); done
    done
}
# pause K: sleep a pseudo-random time in window K: 0-0.4 s, 0.4-0.8 s
# (start-up: MPI_Init, options, data), 0.8-1.3 s, 1.3-2 s; the first
# attempt trains for about 3 s after a start-up of about 1 s
pause() {
    seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
    set -- $(echo "0 400 400 800 800 1300 1300 2000" | cut -d' ' -f$(( 2 * $1 - 1 ))-$(( 2 * $1 )))
    delay=$(( $1 + seed % ($2 - $1) ))
    sleep "$(awk -v m=$delay 'BEGIN {print m / 1000}')"
}
for target in ranks mpirun; do
    for sig in USR1 TERM INT; do
        [ $target = mpirun ] && [ $sig != USR1 ] && continue # (checked below)
        d="$WORK/$target-$sig"; stops=0; tries=0; rc=1; early=0
        while [ $tries -lt 5 ] && [ $rc -ne 0 ]; do
            tries=$((tries + 1))
            run_mpi 2 120 "$VAE" $ARGS --out "$d" >"$d.log" 2>&1 &
            job=$!
            [ $tries -le 4 ] || { wait $job; rc=$?; break; } # the last attempt runs to the end
            started "$d" $sig; pause $tries
            grep -q "samples/s" "$d.log" || early=$((early + 1))
            if [ $target = ranks ]; then
                pkill -$sig -f "^$VAE .*--out $d\$"
            else # mpirun drops a USR1 that comes before it has started the ranks (see above)
                pkill -$sig -f "^$MPIRUN .*--out $d\$"
            fi
            wait $job; rc=$?
            # a signal that reaches mpirun as it ends the job kills it (Open MPI)
            [ $target = mpirun ] && [ $rc -eq 138 ] && grep -q "^done " "$d/status" && rc=0
            [ $rc -eq 0 ] && ! grep -q "^done " "$d/status" && { fail "$target $sig: exit 0 but status: $(cat "$d/status" 2>/dev/null)"; break; }
            if [ $rc -eq 75 ]; then
                stops=$((stops + 1))
                grep -q "^stopped " "$d/status" || { fail "$target $sig: exit 75, status $(cat "$d/status" 2>/dev/null)"; break; }
                grep -q "run the same command again to continue" "$d.log" || { cat "$d.log"; fail "$target $sig: no 'run the same command again' line"; break; }
            elif [ $rc -ne 0 ]; then
                cat "$d.log"; fail "$target $sig after ${delay} ms: exit $rc"; break
            fi
        done
        ok=1
        for g in /params /adam/m /adam/v; do "$H5DIFF" -q "$WORK/ref/$FINAL" "$d/$FINAL" $g || ok=0; done
        [ $rc -eq 0 ] && [ $stops -ge 2 ] && [ $ok -eq 1 ] &&
            pass "$sig to the $target at random times: $stops stops with exit 75 ($early of the signals came before training began), then done; bitwise the uninterrupted run" ||
            fail "$sig to the $target: $stops stops in $tries attempts, last exit $rc, final state equal: $ok"
    done
done

# TERM and INT to mpirun: the ranks are ended by mpirun (SIGTERM, then
# SIGKILL after a second), mpirun exits 1; what the ranks did is in
# RUN/status, and whatever it was, nothing is lost. A signal in a short
# resumed attempt may come after the run is done, so one stop with a
# checkpoint is asked for, and every attempt's outcome is in the message.
for sig in TERM INT; do
    d="$WORK/mpirun-$sig"; tries=0; rc=1; stopped=0; seen=""
    while [ $tries -lt 5 ] && ! grep -q "^done " "$d/status" 2>/dev/null; do
        tries=$((tries + 1))
        rm -f "$d/status"
        run_mpi 2 120 "$VAE" $ARGS --out "$d" >"$d.log" 2>&1 &
        job=$!
        [ $tries -le 4 ] || { wait $job; seen="$seen; $(cat "$d/status" 2>/dev/null) (unsignalled)"; break; }
        started "$d" $sig; pause $tries
        pkill -$sig -f "^$MPIRUN .*--out $d\$"
        wait $job; rc=$?
        seen="$seen; after ${delay} ms: exit $rc, $(cat "$d/status" 2>/dev/null || echo no status)"
        grep -q "^stopped " "$d/status" 2>/dev/null && stopped=$((stopped + 1))
    done
    ok=1
    for g in /params /adam/m /adam/v; do "$H5DIFF" -q "$WORK/ref/$FINAL" "$d/$FINAL" $g || ok=0; done
    grep -q "^done " "$d/status" 2>/dev/null && [ $stopped -ge 1 ] && [ $ok -eq 1 ] &&
        pass "$sig to mpirun at random times: $stopped attempts stopped with a checkpoint (RUN/status), $tries in all${seen}; bitwise the uninterrupted run" ||
        fail "$sig to mpirun: $tries attempts${seen}; final state equal: $ok"
done
# commands with nothing to save (eval here) end at once on a stop signal
run_mpi 2 120 "$VAE" eval --ckpt "$WORK/ref" --samples 1000000 >"$WORK/eval.log" 2>&1 &
job=$!
i=0; while ! grep -q "^eval " "$WORK/eval.log" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
start=$(date +%s)
grep -q "^eval " "$WORK/eval.log" && pkill -TERM -f "^$VAE eval --ckpt $WORK/ref"; sent=$?
wait $job; rc=$?
took=$(($(date +%s) - start))
[ $sent -eq 0 ] && [ $rc -gt 128 ] && [ $took -le 10 ] && pass "SIGTERM to eval's ranks: ended in ${took}s (exit $rc)" ||
    { cat "$WORK/eval.log"; fail "SIGTERM to eval: signal sent: $((1 - sent)), exit $rc after ${took}s"; }
finish
