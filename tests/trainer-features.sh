#!/bin/sh
# The trainer's everyday features on 2 ranks: a learning-rate schedule with
# warm-up, gradient clipping, weight decay, a validation split, the best
# checkpoint and early stopping. A run that uses them all, stopped part way
# and run again, ends bitwise identical to an uninterrupted one; each
# feature does what it says in metrics.csv, epochs.csv and the run
# directory.
. "$top_srcdir/tests/lib.sh"
need_h5diff

# 160 training rows after the split (8 steps of 20): small enough to overfit,
# so the held-out loss stops improving and the plateau and early stop act
"$GEN" "$WORK/bars.h5" --n 200 --test 50 --side 8 --type u8 || { fail gen_data; finish; }
ARGS="--data $WORK/bars.h5 --test-dataset none --val-fraction 0.2 --epochs 40 --batch 20
      --hidden 128,64 --latent 4 --lr 1e-2 --lr-schedule plateau --lr-patience 0 --lr-gamma 0.5
      --lr-warmup 30 --clip-norm 10 --weight-decay 1e-3 --early-stop 4 --log-every 5 --keep 2"
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/ref" >"$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "reference run"; finish; }
FINAL=$(cat "$WORK/ref/latest")

# the validation split: 40 held-out rows are the test set
grep -q "160 samples of 8x8.*40 test samples" "$WORK/ref.log" &&
    awk -F, 'NR > 1 && $4 == "" {bad = 1} END {exit bad}' "$WORK/ref/epochs.csv" &&
    pass "--val-fraction 0.2: 160 training rows, 40 held out as the test set" ||
    { head -5 "$WORK/ref.log"; fail "the validation split"; }

# warm-up, then the plateau schedule's cuts, in metrics.csv's lr column
awk -F, 'NR == 2 && $6 >= 0.01 {bad = 1} $1 == 30 && $6 != 0.01 {bad = 1}
         NR > 2 && $6 > prev && $1 > 30 {bad = 1} NR > 1 {prev = $6; last = $6}
         END {exit bad || !(last < 0.005)}' "$WORK/ref/metrics.csv" &&
    grep -q "note: no better loss in 1 epoch: the learning rate is now 0.005" "$WORK/ref.log" &&
    pass "--lr-warmup 30 then --lr-schedule plateau: the rate rises to 0.01, then is halved after epochs without a better loss" ||
    { cut -d, -f1,6 "$WORK/ref/metrics.csv"; fail "the learning rate in force"; }

# clipping: some steps clipped, counted per interval
clipped=$(awk -F, 'NR > 1 {s += $8} END {print s + 0}' "$WORK/ref/metrics.csv")
[ "$clipped" -gt 0 ] && pass "--clip-norm 10: $clipped steps clipped" || fail "no step clipped"

# early stop: exit 0, the last 4 epochs no better than the best, which
# "best" names and --keep 2 did not delete
best=$(cat "$WORK/ref/best")
best_step=$(echo "$best" | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/')
awk -F, -v b="$best_step" 'NR > 1 {n++; l[n] = $4; s[n] = $2; if (min == "" || $4 < min) {min = $4; at = $2}}
    END {exit !(at == b && n >= 5 && s[n] - b == 4 * 8 && n < 40)}' "$WORK/ref/epochs.csv" &&
    grep -q "^done (early stop)" "$WORK/ref.log" && [ -e "$WORK/ref/$best" ] &&
    [ "$(ls "$WORK/ref" | grep -c '^ckpt-')" -eq 3 ] &&
    pass "--early-stop 4: stopped 4 epochs after the best (step $best_step), which --keep 2 spared" ||
    { cat "$WORK/ref/epochs.csv"; ls "$WORK/ref"; fail "early stop or the best checkpoint"; }
# the run ended for good there: the interval it cut short is logged, so
# metrics.csv (and loss.png, drawn from it) reach its last step
final_step=$(echo "$FINAL" | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/')
last_row=$(tail -n 1 "$WORK/ref/metrics.csv" | cut -d, -f1)
[ "$last_row" = "$final_step" ] && [ $((final_step % 5)) -ne 0 ] &&
    pass "metrics.csv ends at the early stop's step $final_step, between --log-every 5's rows" ||
    fail "metrics.csv ends at step $last_row, the early stop at $final_step (a multiple of 5 tells nothing)"
run_mpi 2 60 "$VAE" $ARGS --out "$WORK/ref" >"$WORK/again.log" 2>&1 &&
    grep -q "nothing to do: the run stopped early" "$WORK/again.log" &&
    pass "the same command again: nothing to do, exit 0" || { cat "$WORK/again.log"; fail "a second run of an early-stopped run"; }
run_mpi 2 60 "$VAE" eval --ckpt "$WORK/ref/best" --samples 5 >"$WORK/eval.log" 2>&1 &&
    grep -q "eval $WORK/ref/$best on .*(held out): 40 rows" "$WORK/eval.log" &&
    pass "eval --ckpt RUN/best: the best checkpoint, on the held-out rows" ||
    { cat "$WORK/eval.log"; fail "eval of RUN/best"; }

run_mpi 2 60 "$VAE" encode --ckpt "$WORK/ref/best" --out "$WORK/held.h5" >/dev/null 2>&1 &&
    h5dump -H "$WORK/held.h5" | grep -A3 'DATASET "rows"' | grep -q "( 40 )" &&
    pass "encode of the held-out rows records their rows in the dataset (/rows, 40)" ||
    fail "encode of the held-out rows: no /rows"

# stopped inside an epoch and resumed, then stopped at an epoch's end and
# resumed: bitwise the uninterrupted run, schedule state and all
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/a" --max-steps 61 >/dev/null 2>&1 || fail "run to step 61"
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/a" --max-steps 96 >/dev/null 2>&1 || fail "resume to step 96"
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/a" >"$WORK/a.log" 2>&1 || fail "resume to the end"
ok=1
for g in /params /adam/m /adam/v; do "$H5DIFF" -q "$WORK/ref/$FINAL" "$WORK/a/$FINAL" $g || ok=0; done
cut -d, -f1-6,8,9 "$WORK/ref/metrics.csv" >"$WORK/m1"; cut -d, -f1-6,8,9 "$WORK/a/metrics.csv" >"$WORK/m2"
cut -d, -f1-6,8 "$WORK/ref/epochs.csv" >"$WORK/e1"; cut -d, -f1-6,8 "$WORK/a/epochs.csv" >"$WORK/e2"
cmp -s "$WORK/m1" "$WORK/m2" && cmp -s "$WORK/e1" "$WORK/e2" || ok=0
[ "$(cat "$WORK/a/best")" = "$best" ] || ok=0
[ $ok -eq 1 ] && pass "stopped at steps 61 and 96 and resumed: bitwise the uninterrupted run, lr, clipping, grad_norm and best included" ||
    { diff "$WORK/m1" "$WORK/m2" | head; fail "a resumed run differs"; }

# the stall watchdog and a slow file system: rank 0 taking 3 s to write each
# checkpoint (VAE_DIST_TEST_SAVE_DELAY) is no stall at --stall-timeout 1, as
# waits for rank 0's writing get 10 times the timeout; 12 s is one
run_mpi 2 120 -x VAE_DIST_TEST_SAVE_DELAY=3 "$VAE" --data "$WORK/bars.h5" --epochs 2 --batch 20 \
    --hidden 32 --latent 2 --stall-timeout 1 --out "$WORK/slow" >"$WORK/slow.log" 2>&1 &&
    grep -q "^done 20" "$WORK/slow/status" && pass "--stall-timeout 1: 3 s checkpoint writes are waited for" ||
    { cat "$WORK/slow.log"; fail "a slow checkpoint write ended the run"; }
run_mpi 2 120 -q -x VAE_DIST_TEST_SAVE_DELAY=12 "$VAE" --data "$WORK/bars.h5" --epochs 1 --batch 20 \
    --hidden 32 --latent 2 --stall-timeout 1 --out "$WORK/stuck" >"$WORK/stuck.log" 2>&1
rc=$?
[ $rc -eq 69 ] && grep -q "stalled at step 10: the agreement on errors made no progress for 1[0-9] s (--stall-timeout 1, times 10 at start-up and epoch ends)" "$WORK/stuck.log" &&
    pass "a 12 s checkpoint write at --stall-timeout 1 is a stall: exit 69" ||
    { cat "$WORK/stuck.log"; fail "a 12 s write: exit $rc"; }

# cosine: from --lr down to --lr-min at the last step
run_mpi 2 120 "$VAE" --data "$WORK/bars.h5" --epochs 3 --batch 20 --hidden 32 --latent 2 --lr 1e-2 \
    --lr-schedule cosine --lr-min 1e-4 --log-every 1 --out "$WORK/cos" >/dev/null 2>&1 || fail "cosine run"
awk -F, 'NR == 2 {first = $6} NR > 2 && $6 > prev {bad = 1} NR > 1 {prev = $6}
         END {exit bad || !(first > 0.0099 && prev > 0.99e-4 && prev < 1.01e-4)}' "$WORK/cos/metrics.csv" &&
    pass "--lr-schedule cosine: 0.01 falling to 1e-4 at the last step" ||
    { cut -d, -f1,6 "$WORK/cos/metrics.csv"; fail "the cosine schedule"; }

# weight decay shrinks the parameters; clipping at a huge norm clips nothing
norm() { h5dump -g /params -w 0 -y "$1" 2>/dev/null |
         awk -F, '/^ *-?[0-9]/ {for (i = 1; i <= NF; i++) if ($i != "") s += $i * $i} END {print s}'; }
for wd in 0 1; do
    run_mpi 2 120 "$VAE" --data "$WORK/bars.h5" --epochs 2 --batch 20 --hidden 32 --latent 2 --lr 1e-2 \
        --weight-decay $wd --clip-norm 1e9 --out "$WORK/wd$wd" >/dev/null 2>&1 || fail "run with --weight-decay $wd"
done
n0=$(norm "$WORK/wd0/$(cat "$WORK/wd0/latest")"); n1=$(norm "$WORK/wd1/$(cat "$WORK/wd1/latest")")
awk -v a="$n0" -v b="$n1" 'BEGIN {exit !(a > 0 && b > 0 && b < 0.9 * a)}' &&
    pass "--weight-decay 1: squared parameter norm $n1 against $n0 without" ||
    fail "weight decay did not shrink the parameters ($n1 against $n0)"
awk -F, 'NR > 1 && $8 != 0 {bad = 1} END {exit bad}' "$WORK/wd0/metrics.csv" &&
    pass "--clip-norm 1e9: no step clipped" || fail "a huge --clip-norm clipped"
finish
