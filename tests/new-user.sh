#!/bin/sh
# What a new user meets: data, habits and mistakes of one's own, each one a
# surprise found by trying vae-dist as a new user would, and what it must do
# instead. Numbered as in docs/testing.md.
. "$top_srcdir/tests/lib.sh"

"$GEN" "$WORK/bars.h5" --n 400 --test 50 --side 8 >/dev/null || { fail gen_data; finish; }
"$GEN" "$WORK/table.h5" --n 400 --test 50 --table 16 >/dev/null || { fail "gen_data --table"; finish; }
SMALL="--epochs 1 --batch 20 --hidden 16 --latent 2"

# one CODE NAME ARGS...: vae-dist on 1 rank (out, err in $WORK/NAME.out,
# .err); it must exit CODE, and with a CODE other than 0 have exactly one
# "vae-dist:" line on stderr and nothing else there (lib.sh's
# one_error_line, as expect checks on 2 ranks); at 0, at most one.
one() {
    code=$1; name=$2; shift 2
    run_mpi 1 60 -q "$VAE" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    if [ "$code" -ne 0 ]; then
        one_error_line "$WORK/$name.err" && [ "$rc" -eq "$code" ] && return 0
    elif [ "$rc" -eq 0 ] && [ "$(grep -c '^vae-dist: ' "$WORK/$name.err")" -le 1 ]; then
        return 0
    fi
    cat "$WORK/$name.out" "$WORK/$name.err"
    one_error_line "$WORK/$name.err"
    echo "($name: exit $rc, want $code; $lines vae-dist: line(s), $others other stderr line(s))"
    return 1
}

# tool TOOL WHAT: TOOL (of hdf5-tools) is installed; else says that WHAT
# is not checked
tool() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "(no $1: $2 not checked; apt-get install hdf5-tools)"
    return 1
}

# 1. A data file named by $VAE_DIST_DATA must exist, as one named by --data;
#    only the built-in default is imported on first use.
(
    export VAE_DIST_DATA="$WORK/missing.h5" XDG_DATA_HOME="$WORK/xdg"
    one 66 env-data $SMALL --out "$WORK/env-run"
) && grep -q '^vae-dist: no data: \$VAE_DIST_DATA names .*missing.h5, which does not exist' "$WORK/env-data.err" &&
    [ ! -e "$WORK/missing.h5" ] && [ ! -e "$WORK/env-run" ] &&
    pass "1. \$VAE_DIST_DATA naming a missing file: exit 66, $(cat "$WORK/env-data.err")" ||
    fail "1. \$VAE_DIST_DATA naming a missing file was not refused (or something was written)"

# a small trained run for the commands that use one
run_mpi 1 60 "$VAE" --data "$WORK/bars.h5" $SMALL --out "$WORK/run" >"$WORK/run.log" 2>&1 ||
    { cat "$WORK/run.log"; fail "training the small run"; finish; }

# 2. Every command checks that it can write its outputs before it works:
#    one line that says why, exit 73, and no work begun (eval prints its
#    start line and progress, encode its start line, before they work)
for c in "eval --samples 2000 --out $WORK/no/dir/e.json" "encode --out $WORK/no/x.h5" \
    "sample --out $WORK/no/s" "reconstruct --out $WORK/no/r" "interpolate --out $WORK/no/i"; do
    cmd=${c%% *}
    # shellcheck disable=SC2086 # the words of $c
    if one 73 "out-$cmd" $c --ckpt "$WORK/run" &&
        grep -q "^vae-dist: cannot write $WORK/no/.*: there is no directory $WORK/no" "$WORK/out-$cmd.err" &&
        [ ! -s "$WORK/out-$cmd.out" ]; then
        pass "2. $cmd: $(cat "$WORK/out-$cmd.err")"
    else
        fail "2. $cmd with --out in a missing directory did not stop before working"
    fi
done
mkdir -p "$WORK/sdir.h5"
one 73 out-isdir sample --ckpt "$WORK/run" --out "$WORK/sdir" &&
    grep -q "^vae-dist: cannot write $WORK/sdir.h5: it is a directory" "$WORK/out-isdir.err" &&
    pass "2. sample --out NAME where NAME.h5 is a directory: $(cat "$WORK/out-isdir.err")" ||
    fail "2. sample into a directory's name was not refused first"

# 3. The data are checked before the run directory is made: values outside
#    [0, 1] for the Bernoulli likelihood leave no directory behind
"$GEN" "$WORK/gray.h5" --n 400 --test 50 --side 8 --type f32 --gray 3 >/dev/null || fail "gen_data --gray"
one 65 bad-data --data "$WORK/gray.h5" $SMALL --out "$WORK/d3" &&
    grep -q "outside \[0, 1\]" "$WORK/bad-data.err" && [ ! -e "$WORK/d3" ] &&
    pass "3. bad data: exit 65, no run directory: $(cat "$WORK/bad-data.err")" ||
    { ls "$WORK/d3" 2>&1; fail "3. bad data left a run directory"; }

# 4. Settings that defeat themselves are refused, or said in one note
one 64 cosine-up --data "$WORK/bars.h5" $SMALL --lr-schedule cosine --lr 1e-3 --lr-min 1e-2 --out "$WORK/c4" &&
    grep -q "^vae-dist: --lr-min 0.01 is above --lr 0.001: the cosine schedule would climb" "$WORK/cosine-up.err" &&
    [ ! -e "$WORK/c4" ] && pass "4. $(cat "$WORK/cosine-up.err")" || fail "4. cosine with --lr-min above --lr"
one 0 warm --data "$WORK/bars.h5" $SMALL --lr-warmup 1000 --out "$WORK/w4" &&
    grep -q "^note: --lr-warmup 1000 is longer than the run's 20 steps: the learning rate reaches only 2% of --lr" "$WORK/warm.out" &&
    pass "4. $(grep '^note: --lr-warmup' "$WORK/warm.out")" || fail "4. no note on a warm-up longer than the run"
one 64 adam-clip --data "$WORK/bars.h5" $SMALL --node-sum adam --clip-norm 5 --out "$WORK/a4" &&
    grep -q "^vae-dist: --node-sum adam sums the gradient inside the optimizer, and --clip-norm needs" "$WORK/adam-clip.err" &&
    pass "4. $(cat "$WORK/adam-clip.err")" || fail "4. --node-sum adam --clip-norm 5 accepted"
one 0 clip-alone --data "$WORK/bars.h5" $SMALL --clip-norm 5 --out "$WORK/a4b" &&
    pass "4. --clip-norm alone (the default --node-sum) trains" || fail "4. --clip-norm alone"

# 5. A table whose width is a square (N, 16) is taken for 4x4 images by
#    the rule; --layout none says it is not images
one 0 layout-none --data "$WORK/table.h5" $SMALL --layout none --out "$WORK/t5" &&
    grep -q "samples of 16 (not images)" "$WORK/layout-none.out" && [ ! -e "$WORK/t5/samples.png" ] &&
    grep -q "not images (layout none)" "$WORK/t5/config.txt" &&
    one 0 layout-none-sample sample --ckpt "$WORK/t5" --out "$WORK/t5s" && [ ! -e "$WORK/t5s.png" ] &&
    grep -q "^no PNG: the model's samples are not images" "$WORK/layout-none-sample.out" &&
    pass "5. --layout none: $(grep -o 'samples of 16 (not images)' "$WORK/layout-none.out"), no figures of samples, sample writes no PNG" ||
    fail "5. --layout none"

# 6. A directory holding files of the names a run writes that vae-dist did
#    not write is refused (the user's metrics.csv in --out .); --fresh
#    moves them aside, kept; other files of the user's are never touched
mkdir -p "$WORK/mine"
echo "my,own,metrics" >"$WORK/mine/metrics.csv"
echo "notes" >"$WORK/mine/notes.txt"
(cd "$WORK/mine" && one 73 own-dir --data "$WORK/bars.h5" $SMALL --out .) &&
    grep -q "^vae-dist: run directory . holds metrics.csv, which vae-dist did not write and would overwrite" "$WORK/own-dir.err" &&
    [ "$(cat "$WORK/mine/metrics.csv")" = "my,own,metrics" ] && [ ! -e "$WORK/mine/config.txt" ] &&
    pass "6. $(cat "$WORK/own-dir.err")" || fail "6. the user's metrics.csv in --out . was not refused"
(cd "$WORK/mine" && one 0 own-fresh --data "$WORK/bars.h5" $SMALL --out . --fresh) &&
    [ "$(cat "$WORK/mine"/replaced-*/metrics.csv)" = "my,own,metrics" ] && [ -s "$WORK/mine/latest" ] &&
    [ "$(cat "$WORK/mine/notes.txt")" = notes ] &&
    (cd "$WORK/mine" && one 0 own-again --data "$WORK/bars.h5" $SMALL --epochs 2 --out .) &&
    grep -q "^resuming from" "$WORK/own-again.out" &&
    pass "6. --fresh moved it to $(cd "$WORK/mine" && ls -d replaced-*)/, notes.txt untouched, and the run resumes there" ||
    fail "6. --fresh with the user's files"

# 7. A label path named on the command line must exist, also the default's
"$GEN" "$WORK/nolab.h5" --n 400 --test 50 --side 8 >/dev/null || fail "gen_data nolab"
if tool h5copy "7. (labels named on the command line)"; then
    # the same images without any labels
    h5copy -p -i "$WORK/nolab.h5" -o "$WORK/unlabelled.h5" -s /train/images -d /train/images &&
        h5copy -p -i "$WORK/nolab.h5" -o "$WORK/unlabelled.h5" -s /test/images -d /test/images || fail h5copy
    for o in labels test-labels; do
        path=/train/labels; [ $o = test-labels ] && path=/test/labels
        one 66 "named-$o" --data "$WORK/unlabelled.h5" $SMALL --$o $path --out "$WORK/l7" &&
            grep -q "has no dataset $path" "$WORK/named-$o.err" &&
            pass "7. --$o $path named on the command line: $(cat "$WORK/named-$o.err")" ||
            fail "7. --$o $path, missing, was ignored"
    done
    one 66 named-test --data "$WORK/unlabelled.h5" $SMALL --test-dataset /test/nope --out "$WORK/l7" &&
        pass "7. a test set named on the command line must exist" || fail "7. a named test set"
    one 0 unnamed --data "$WORK/unlabelled.h5" $SMALL --out "$WORK/l7" &&
        pass "7. the default labels, absent, are left out" || fail "7. default labels absent"
fi

# 8. Suggestions across commands and for other trainers' spellings; help
#    for a command; exit 64 for each mistake
suggest() { # suggest WANT ARGS...: exit 64 and a line holding WANT
    want=$1; shift
    one 64 suggest "$@" && grep -qF "$want" "$WORK/suggest.err" &&
        pass "8. vae-dist $*: $(cat "$WORK/suggest.err")" ||
        fail "8. vae-dist $*: no '$want' in: $(cat "$WORK/suggest.err")"
}
suggest "unknown option '--ckpt' for train (the default command); eval, sample, reconstruct, encode, interpolate take it" --ckpt "$WORK/run"
suggest "did you mean --batch?" --batch-size 64
suggest "did you mean --batch?" --batch_size 64
suggest "did you mean --lr?" --learning-rate 1e-3
suggest "did you mean --early-stop?" --early-stopping 3
suggest "did you mean sample?" sampel --ckpt "$WORK/run"
suggest "train takes it" sample --ckpt "$WORK/run" --epochs 3
one 0 help-train help train && grep -q "^usage: mpirun -np N vae-dist \[train\] \[options\]" "$WORK/help-train.out" &&
    grep -q "^  --lr X" "$WORK/help-train.out" && pass "8. vae-dist help train: train's options" ||
    fail "8. vae-dist help train"

# 9. The console: one line an epoch (the checkpoint's name on it) and a
#    progress line every --log-every steps, however short the epochs;
#    --quiet keeps only the start lines and how the run ended
one 0 chatty --data "$WORK/bars.h5" $SMALL --epochs 30 --log-every 100 --out "$WORK/c9"
epochs=$(grep -c "^epoch [0-9]* done:" "$WORK/chatty.out")
progress=$(grep -c "samples/s" "$WORK/chatty.out")
lines=$(wc -l <"$WORK/chatty.out")
[ "$epochs" -eq 30 ] && [ "$progress" -eq 6 ] && [ "$lines" -le $((30 + 6 + 8)) ] &&
    ! grep -q "^checkpoint " "$WORK/chatty.out" && grep -q "; checkpoint ckpt-0000000600.h5$" "$WORK/chatty.out" &&
    pass "9. 30 epochs of 20 steps, --log-every 100: $lines lines ($epochs epoch lines, $progress progress lines)" ||
    { head -20 "$WORK/chatty.out"; fail "9. $lines lines for 30 short epochs ($epochs epoch, $progress progress lines)"; }
one 0 quiet --data "$WORK/bars.h5" $SMALL --epochs 30 --quiet --out "$WORK/q9" &&
    [ "$(wc -l <"$WORK/quiet.out")" -le 6 ] && grep -q "^done: 600 steps" "$WORK/quiet.out" &&
    [ "$(wc -l <"$WORK/q9/epochs.csv")" -eq 31 ] &&
    pass "9. --quiet: $(wc -l <"$WORK/quiet.out") lines, epochs.csv has all 30 rows" ||
    { cat "$WORK/quiet.out"; fail "9. --quiet"; }

# 10. Small mismatches: /model's list attributes are arrays even of one
#     value (docs/checkpoint-format.md), as input_shape of tabular data;
#     whole numbers read as such in notes; a number out of range is called
#     one; "1 step", not "1 steps"
if tool h5dump "10. (/model's list attributes)" && one 0 table --data "$WORK/table.h5" $SMALL --out "$WORK/table"; then
    ckpt="$WORK/table/$(cat "$WORK/table/latest")"
    for a in hidden latent input_shape; do
        h5dump -A -a "/model/$a" "$ckpt" 2>/dev/null | grep -q "DATASPACE  SIMPLE { ( 1 ) / ( 1 ) }" &&
            pass "10. /model/$a of one value is an array of 1" ||
            { h5dump -A -a "/model/$a" "$ckpt" | head -5; fail "10. /model/$a is not an array of 1"; }
    done
fi
one 0 clip10 --data "$WORK/bars.h5" $SMALL --epochs 2 --clip-norm 10 --out "$WORK/run" &&
    grep -q "^note: continuing with --clip-norm 10; the run so far had 0$" "$WORK/clip10.out" &&
    pass "10. $(grep '^note: continuing' "$WORK/clip10.out")" || fail "10. the note on --clip-norm 10"
one 64 lr-neg --data "$WORK/bars.h5" $SMALL --lr -1e-3 --out "$WORK/lr" &&
    grep -q "^vae-dist: --lr: -1e-3 is outside \[1e-12, 10\]$" "$WORK/lr-neg.err" &&
    pass "10. $(cat "$WORK/lr-neg.err")" || fail "10. --lr -1e-3 is a number out of range"
one 0 one-step --data "$WORK/bars.h5" $SMALL --max-steps 1 --out "$WORK/one-step" &&
    grep -q "a new run of 1 step$" "$WORK/one-step.out" && ! grep -q " 1 steps" "$WORK/one-step.out" &&
    pass "10. $(grep 'a new run of' "$WORK/one-step.out" | sed "s|$WORK/||")" || fail "10. '1 steps'"

# 11. Found before and still open: RUN/status says 'paused' after a
#     --max-steps stop short of the run's end (and 'done' at the end);
#     encode's wrote line gives /labels its (N) shape; interpolate's /t is
#     (K); sample (and reconstruct, encode, interpolate) take --threads;
#     Ctrl-C is reported as an interruption, not a preemption
grep -q "^paused 1$" "$WORK/one-step/status" && pass "11. after --max-steps 1: status $(cat "$WORK/one-step/status")" ||
    fail "11. after --max-steps 1: status $(cat "$WORK/one-step/status" 2>/dev/null)"
one 0 one-step-end --data "$WORK/bars.h5" $SMALL --out "$WORK/one-step" &&
    grep -q "^done 20$" "$WORK/one-step/status" && pass "11. at its end: status $(cat "$WORK/one-step/status")" ||
    fail "11. at its end: status $(cat "$WORK/one-step/status" 2>/dev/null)"
one 0 enc encode --ckpt "$WORK/run" --out "$WORK/codes.h5" &&
    grep -q "^wrote $WORK/codes.h5 (/mu, /logvar: 50 x 2; /labels: 50)$" "$WORK/enc.out" &&
    pass "11. $(grep '^wrote' "$WORK/enc.out" | sed "s|$WORK/||")" || fail "11. encode's wrote line"
if tool h5dump "11. (interpolate's /t)" && one 0 interp interpolate --ckpt "$WORK/run" --steps 7 --out "$WORK/walk"; then
    h5dump -H -d /t "$WORK/walk.h5" | grep -q "DATASPACE  SIMPLE { ( 7 ) / ( 7 ) }" &&
        pass "11. interpolate's /t is (7)" || fail "11. interpolate's /t: $(h5dump -H -d /t "$WORK/walk.h5" | grep DATASPACE)"
fi
took=""
for c in sample reconstruct encode interpolate; do
    one 0 "threads-$c" $c --ckpt "$WORK/run" --threads 1 --out "$WORK/threads-$c.h5" && took="$took $c" ||
        fail "11. $c --threads 1"
done
[ "$took" = " sample reconstruct encode interpolate" ] && pass "11. --threads 1 taken by$took"
# Ctrl-C: SIGINT to a run on one rank (no mpirun, which would pass it on as SIGTERM)
"$VAE" --data "$WORK/bars.h5" $SMALL --epochs 2000 --log-every 5 --out "$WORK/int" >"$WORK/int.out" 2>&1 &
pid=$!
i=0; while ! grep -q "samples/s" "$WORK/int.out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 $pid 2>/dev/null
wait $pid; rc=$?
[ $rc -eq 75 ] && grep -q "^stop requested by SIGINT (Ctrl-C): checkpointing at step" "$WORK/int.out" &&
    grep -q "^interrupted: .* checkpoint saved in .*; run the same command again to continue (exit 75)$" "$WORK/int.out" &&
    ! grep -q "preempted" "$WORK/int.out" &&
    pass "11. Ctrl-C: $(grep '^interrupted' "$WORK/int.out" | sed "s|$WORK/||")" ||
    { tail -3 "$WORK/int.out"; fail "11. SIGINT: exit $rc, not reported as an interruption"; }

# What users asked for:
# - a grad_norm column in metrics.csv and metrics.h5, the global gradient
#   norm before clipping (averaged over the interval), also on 2 ranks'
#   shared memory summed inside Adam (--node-sum adam), and with --clip-norm, where it is
#   the norm before the clip; the learning rate in the progress line
run_mpi 2 60 "$VAE" --data "$WORK/bars.h5" $SMALL --log-every 5 --clip-norm 1 --out "$WORK/gn" \
    >"$WORK/gn.log" 2>&1 || fail "grad_norm run"
run_mpi 2 60 "$VAE" --data "$WORK/bars.h5" $SMALL --log-every 5 --node-sum adam --out "$WORK/gn2" \
    >"$WORK/gn2.log" 2>&1 || fail "grad_norm run 2"
awk -F, 'NR == 1 { ok = $9 == "grad_norm" } NR > 1 { n++; if (!($9 > 1) || $8 != 5) ok = 0 }
    END { exit !(ok && n == 4) }' "$WORK/gn/metrics.csv" &&
    pass "grad_norm with --clip-norm 1: every step clipped, the norms before it $(awk -F, 'NR > 1 {printf " %.3g", $9}' "$WORK/gn/metrics.csv")" ||
    { cat "$WORK/gn/metrics.csv"; fail "grad_norm column with --clip-norm"; }
awk -F, 'NR > 1 { n++; if (!($9 > 0)) bad = 1 } END { exit !(n == 4 && !bad) }' "$WORK/gn2/metrics.csv" &&
    grep -q "^gradients: summed in shared memory" "$WORK/gn2.log" &&
    pass "grad_norm summed inside Adam on 2 ranks:$(awk -F, 'NR > 1 {printf " %.3g", $9}' "$WORK/gn2/metrics.csv")" ||
    { cat "$WORK/gn2/metrics.csv"; fail "grad_norm column on the fused path"; }
if tool h5dump "/train/grad_norm in metrics.h5"; then
    h5dump -H -d /train/grad_norm "$WORK/gn2/metrics.h5" | grep -q "DATASPACE  SIMPLE { ( 4 ) /" &&
        pass "metrics.h5 has /train/grad_norm" || fail "no /train/grad_norm in metrics.h5"
fi
grep -q "^epoch 1/1  step 5/20  loss [0-9.]* = [0-9.]* + [0-9.]*  lr 0.001  " "$WORK/gn2.log" &&
    pass "the progress line shows the learning rate: $(grep -m1 'samples/s' "$WORK/gn2.log")" ||
    fail "no learning rate in the progress line"

# - reconstruct writes HDF5 (/x, /reconstruction, /rows) for any data, and
#   the PNG only for images
one 0 recon-table reconstruct --ckpt "$WORK/t5" --n 8 --first 3 --out "$WORK/rt" &&
    [ ! -e "$WORK/rt.png" ] && grep -q "^no PNG: the samples are not images" "$WORK/recon-table.out" &&
    grep -q "^wrote $WORK/rt.h5 (/x, /reconstruction 8 x 16; /rows 8)$" "$WORK/recon-table.out" ||
    fail "reconstruct on a table: $(cat "$WORK/recon-table.out" "$WORK/recon-table.err")"
PY=""
for p in python3 /usr/bin/python3; do "$p" -c 'import h5py, numpy' 2>/dev/null && { PY=$p; break; }; done
[ -n "$PY" ] || echo "(no python3-h5py: reconstruct's /x against the data not checked)"
if [ -n "$PY" ] && [ -e "$WORK/rt.h5" ]; then
    "$PY" - "$WORK/rt.h5" "$WORK/table.h5" <<'PYEOF' && pass "reconstruct on a table: rt.h5's /x is rows 3..10 of the test set, /reconstruction beside it, no PNG" || fail "reconstruct's /x"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as r, h5py.File(sys.argv[2], "r") as d:
    x, rec, rows = r["x"][()], r["reconstruction"][()], r["rows"][()]
    ok = (x.shape == rec.shape == (8, 16) and list(rows) == list(range(3, 11))
          and np.array_equal(x, d["test/images"][3:11].astype(np.float32))
          and np.all((rec > 0) & (rec < 1)))
sys.exit(0 if ok else 1)
PYEOF
fi
one 0 recon-img reconstruct --ckpt "$WORK/run" --n 8 --out "$WORK/ri" &&
    [ -s "$WORK/ri.png" ] && grep -q "^wrote $WORK/ri.h5 (/x, /reconstruction 8 x 8 x 8; /rows 8)$" "$WORK/recon-img.out" &&
    pass "reconstruct on images: the PNG and $(grep "ri.h5" "$WORK/recon-img.out" | sed "s|$WORK/||")" ||
    fail "reconstruct on images: $(cat "$WORK/recon-img.out")"

# - figures of small images are scaled up to a readable size (8x8 tiles: 12
#   times), in training's figures and sample's alike; --figure-scale sets it
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $3 * 256 + $4 "x" $7 * 256 + $8}'; }
one 0 fig1 sample --ckpt "$WORK/run" --out "$WORK/f1" --figure-scale 1 &&
    one 0 fig0 sample --ckpt "$WORK/run" --out "$WORK/f0" &&
    [ "$(png_size "$WORK/f1.png")" = 73x73 ] && [ "$(png_size "$WORK/f0.png")" = 876x876 ] &&
    [ "$(png_size "$WORK/run/samples.png")" = 876x876 ] && [ "$(png_size "$WORK/run/reconstructions.png")" = 876x444 ] &&
    pass "8x8 images: samples.png $(png_size "$WORK/run/samples.png"), sample $(png_size "$WORK/f0.png"), --figure-scale 1 $(png_size "$WORK/f1.png")" ||
    fail "figure scale: run $(png_size "$WORK/run/samples.png") $(png_size "$WORK/run/reconstructions.png"), sample $(png_size "$WORK/f0.png"), scale 1 $(png_size "$WORK/f1.png" 2>/dev/null)"
# - a --figure-scale that would make a figure over 8192 px a side is
#   lowered to fit, with a note: sample's 1024 draws in 8 columns (73 x 1153
#   px at scale 1) at 7; training's samples.png of 16 classes (73 x 145) at
#   56, noted once for the run, not each epoch
note64() { grep -c "^note: --figure-scale 64 is lowered to $1 for .*$2: a figure stays within 8192 pixels a side$" "$3"; }
one 0 fig64 sample --ckpt "$WORK/run" --n 1024 --figure-scale 64 --out "$WORK/f64" &&
    [ "$(png_size "$WORK/f64.png")" = 511x8071 ] && [ "$(note64 7 f64.png "$WORK/fig64.out")" -eq 1 ] &&
    pass "sample --n 1024 --figure-scale 64: $(png_size "$WORK/f64.png"), $(grep '^note:' "$WORK/fig64.out" | sed "s|$WORK/||")" ||
    fail "sample --n 1024 --figure-scale 64: $(png_size "$WORK/f64.png" 2>/dev/null); $(cat "$WORK/fig64.out")"
one 0 fig64-train --data "$WORK/bars.h5" $SMALL --epochs 2 --classes 16 --figure-scale 64 --out "$WORK/f64run" &&
    [ "$(png_size "$WORK/f64run/samples.png")" = 4088x8120 ] && [ "$(note64 56 samples.png "$WORK/fig64-train.out")" -eq 1 ] &&
    pass "training, 16 classes at --figure-scale 64: samples.png $(png_size "$WORK/f64run/samples.png"), one note" ||
    fail "training at --figure-scale 64: samples.png $(png_size "$WORK/f64run/samples.png" 2>/dev/null); $(grep '^note' "$WORK/fig64-train.out")"

finish
