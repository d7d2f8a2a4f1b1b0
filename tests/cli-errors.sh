#!/bin/sh
# Bad input on 2 ranks: each case must end within the timeout with its
# documented exit code and exactly one "vae-dist: ..." line on stderr (from
# one rank), and must not touch a run that is already there.
. "$top_srcdir/tests/lib.sh"

"$GEN" "$WORK/good.h5" --n 400 --test 50 --type f32 --chunk 32 || { fail gen_data; finish; }
for bad in nan range rank1 empty string labels-range labels-length huge bigchunk; do
    "$GEN" "$WORK/$bad.h5" --n 400 --test 50 --type f32 --bad "$bad" || fail "gen_data --bad $bad"
done
"$GEN" "$WORK/other.h5" --n 300 --test 50 --type f32 || fail "gen_data other"
"$GEN" "$WORK/table.h5" --n 300 --test 50 --table 12 || fail "gen_data --table"
"$GEN" "$WORK/rgb.h5" --n 300 --test 50 --channels 3 || fail "gen_data --channels"
"$GEN" "$WORK/side12.h5" --n 200 --test 20 --side 12 || fail "gen_data --side 12"
echo "not an hdf5 file" >"$WORK/text.h5"
head -c 3000 "$WORK/good.h5" >"$WORK/truncated.h5"
touch "$WORK/a-file"
SMALL="--epochs 1 --batch 20 --hidden 16 --latent 2"

# expect CODE NAME ARGS... (lib.sh): one line, that exit code, no hang
expect 66 "missing file"             --data "$WORK/none.h5" $SMALL --out "$WORK/r"
expect 65 "not HDF5"                 --data "$WORK/text.h5" $SMALL --out "$WORK/r"
expect 65 "truncated HDF5"           --data "$WORK/truncated.h5" $SMALL --out "$WORK/r"
expect 66 "missing dataset"          --data "$WORK/good.h5" --dataset /nope $SMALL --out "$WORK/r"
expect 66 "missing named labels"     --data "$WORK/good.h5" --labels /nope $SMALL --out "$WORK/r"
expect 66 "missing named test set"   --data "$WORK/good.h5" --test-dataset /x/y $SMALL --out "$WORK/r"
expect 65 "rank-1 dataset"           --data "$WORK/rank1.h5" $SMALL --out "$WORK/r"
expect 65 "zero rows"                --data "$WORK/empty.h5" $SMALL --out "$WORK/r"
expect 65 "string dataset"           --data "$WORK/string.h5" $SMALL --out "$WORK/r"
expect 65 "labels used as samples"   --data "$WORK/good.h5" --dataset /train/labels $SMALL --out "$WORK/r"
expect 65 "NaN in the data"          --data "$WORK/nan.h5" $SMALL --out "$WORK/r"
expect 65 "values outside [0,1]"     --data "$WORK/range.h5" $SMALL --out "$WORK/r"
expect 65 "NaN in streamed data"     --data "$WORK/nan.h5" --data-mode stream $SMALL --out "$WORK/r"
expect 65 "negative label, --classes" --data "$WORK/labels-range.h5" --classes 16 $SMALL --out "$WORK/r"
expect 65 "labels of wrong length"   --data "$WORK/labels-length.h5" $SMALL --out "$WORK/r"
expect 65 "fewer samples than batch" --data "$WORK/good.h5" --epochs 1 --batch 500 --out "$WORK/r"
expect 64 "batch below rank count"   --data "$WORK/good.h5" --batch 1 --out "$WORK/r"
expect 64 "unknown flag"             --data "$WORK/good.h5" --bogus 3
expect 64 "flag without value"       --data "$WORK/good.h5" --epochs
expect 64 "malformed number"         --data "$WORK/good.h5" --lr 1e-3x
expect 64 "negative learning rate"   --data "$WORK/good.h5" --lr -1
expect 64 "zero epochs"              --data "$WORK/good.h5" --epochs 0
expect 64 "malformed hidden list"    --data "$WORK/good.h5" --hidden 10,,20
grep -q "is not a comma-separated list of whole numbers in \[1, 1048576\]$" "$WORK/err" &&
    pass "a whole number's range is printed in full" || fail "range: $(cat "$WORK/err")"
expect 64 "too many hidden layers"   --data "$WORK/good.h5" --hidden 1,2,3,4,5,6,7,8,9
expect 64 "value on a bare flag"     --data "$WORK/good.h5" --profile=1
expect 64 "unknown command"          frobnicate
expect 73 "run directory is a file"  --data "$WORK/good.h5" $SMALL --out "$WORK/a-file"
expect 73 "unwritable run directory" --data "$WORK/good.h5" $SMALL --out /proc/vae-dist-run
expect 65 "header claims 10^12 rows" --data "$WORK/huge.h5" $SMALL --out "$WORK/r"
expect 65 "1 GiB chunks"             --data "$WORK/bigchunk.h5" $SMALL --out "$WORK/r"
# found by fuzzing: a file on which HDF5 1.10.8 itself crashes (NULL memcpy in
# H5F__accum_read); the crash guard turns it into a clean error
expect 65 "file that crashes HDF5"   --data "$top_srcdir/tests/fuzz/regress/hdf5-null-memcpy.h5" $SMALL --out "$WORK/r"
# found by fuzzing: a group's local heap claims 16 GiB; HDF5's lookup fails
expect 65 "unreadable groups"        --data "$top_srcdir/tests/damaged/group-heap-16gib.h5" $SMALL --out "$WORK/r"
# found by fuzzing: chunks tiled far past a 7-row dataset, so that reading
# one row made HDF5 fill gigabytes (minutes); refused when opened
expect 65 "chunks 1000x the data"    --data "$top_srcdir/tests/fuzz/regress/chunks-cover-1000x-data.h5" $SMALL --out "$WORK/r"
expect 64 "unknown activation"       --data "$WORK/good.h5" --activation sigmoid $SMALL --out "$WORK/r"
expect 64 "malformed variance"       --data "$WORK/good.h5" --likelihood gaussian --variance 0 $SMALL --out "$WORK/r"
expect 64 "binarize with Gaussian"   --data "$WORK/good.h5" --likelihood gaussian --binarize $SMALL --out "$WORK/r"
expect 64 "classes without labels"   --data "$WORK/good.h5" --labels none --classes 16 $SMALL --out "$WORK/r"
expect 65 "label past --classes"     --data "$WORK/good.h5" --classes 4 $SMALL --out "$WORK/r"
expect 64 "--conv on tabular data"   --data "$WORK/table.h5" --conv 4 $SMALL --out "$WORK/r"
expect 64 "--conv halving too often" --data "$WORK/good.h5" --conv 2,2,2,2 $SMALL --out "$WORK/r"
expect 64 "--preset on tabular data"  --data "$WORK/table.h5" --preset conv-hvae --out "$WORK/r"
expect 64 "--preset on 8x8 images"   --data "$WORK/good.h5" --preset conv-hvae --out "$WORK/r"
grep -q "divide by 4 and are at least 12" "$WORK/err" || fail "the image-size error does not say which images fit"
expect 64 "unknown --preset"         --data "$WORK/good.h5" --preset resnet $SMALL --out "$WORK/r"
expect 64 "--preset, --activation"   --data "$WORK/side12.h5" --preset conv-hvae --activation tanh --out "$WORK/r"
expect 64 "--preset, two --hidden"   --data "$WORK/side12.h5" --preset conv-hvae --hidden 8,8 --out "$WORK/r"
expect 64 "--layout contradicting"   --data "$WORK/rgb.h5" --layout chw $SMALL --out "$WORK/r"
expect 64 "--layout on tabular data" --data "$WORK/table.h5" --layout hwc $SMALL --out "$WORK/r"
expect 64 "unknown --lr-schedule"    --data "$WORK/good.h5" --lr-schedule linear $SMALL --out "$WORK/r"
expect 64 "negative --weight-decay"  --data "$WORK/good.h5" --weight-decay -0.1 $SMALL --out "$WORK/r"
expect 64 "negative --clip-norm"     --data "$WORK/good.h5" --clip-norm -1 $SMALL --out "$WORK/r"
expect 64 "negative --early-stop"    --data "$WORK/good.h5" --early-stop -2 $SMALL --out "$WORK/r"
expect 64 "--lr-gamma above 1"       --data "$WORK/good.h5" --lr-gamma 2 $SMALL --out "$WORK/r"
expect 64 "--val-fraction 1"         --data "$WORK/good.h5" --test-dataset none --val-fraction 1 $SMALL --out "$WORK/r"
expect 64 "negative --val-fraction"  --data "$WORK/good.h5" --test-dataset none --val-fraction -0.2 $SMALL --out "$WORK/r"
expect 64 "--val-fraction, test set" --data "$WORK/good.h5" --val-fraction 0.1 $SMALL --out "$WORK/r"
grep -q "test-dataset none" "$WORK/err" || fail "the --val-fraction error does not say what to do"
expect 64 "--val-fraction of 0 rows" --data "$WORK/good.h5" --test-dataset none --val-fraction 0.001 $SMALL --out "$WORK/r"
expect 66 "import: missing IDX"      import --train-images "$WORK/none.gz" --out "$WORK/i.h5"
expect 73 "import: output exists"    import --out "$WORK/good.h5"

# labels the model does not use do not stop it: -1 ("unlabelled") trains
run_mpi 2 60 "$VAE" --data "$WORK/labels-range.h5" $SMALL --out "$WORK/unl" >"$WORK/out" 2>&1 &&
    pass "labels of -1 without --classes: trains" || { cat "$WORK/out"; fail "labels of -1 without --classes"; }
# files h5py writes: an lzf filter HDF5 cannot decode, float labels
PY=""
for p in python3 /usr/bin/python3; do "$p" -c 'import h5py, numpy' 2>/dev/null && { PY=$p; break; }; done
if [ -n "$PY" ]; then
    "$PY" - "$WORK" <<'PYEOF' || fail "h5py files"
import sys, h5py, numpy as np
w, x = sys.argv[1], np.random.default_rng(1).random((400, 8, 8), dtype=np.float32)
def write(name, train_opts, test_opts, labels=None):
    with h5py.File(w + "/" + name, "w") as f:
        f.create_dataset("/train/images", data=x, chunks=(50, 8, 8), **train_opts)
        f.create_dataset("/test/images", data=x[:50], chunks=(10, 8, 8), **test_opts)
        if labels is not None:
            f.create_dataset("/train/labels", data=labels)
write("lzf.h5", {"compression": "lzf"}, {})
write("lzf-test.h5", {}, {"compression": "lzf"})
write("flabels.h5", {}, {}, labels=np.linspace(0, 1, 400))
PYEOF
    expect 65 "lzf-compressed samples"  --data "$WORK/lzf.h5" $SMALL --out "$WORK/r"
    grep -q "'lzf' filter" "$WORK/err" || fail "the lzf error does not name the filter"
    expect 65 "lzf-compressed test set" --data "$WORK/lzf-test.h5" $SMALL --out "$WORK/r"
    expect 65 "float labels, --classes" --data "$WORK/flabels.h5" --classes 4 $SMALL --out "$WORK/r"
    grep -q "needs integer labels" "$WORK/err" || fail "the float labels error does not say what is needed"
    run_mpi 2 60 "$VAE" --data "$WORK/flabels.h5" $SMALL --out "$WORK/fl" >"$WORK/out" 2>&1 &&
        grep -q "^note: .*labels must be integers; the model uses no labels" "$WORK/out" &&
        pass "float labels without --classes: a note, and it trains" || { cat "$WORK/out"; fail "float labels without --classes"; }
else
    echo "(no python3-h5py: the lzf and float-label cases are not run)"
fi

# a run directory holding another configuration's checkpoints is refused,
# and nothing in it changes
run_mpi 2 60 "$VAE" --data "$WORK/good.h5" $SMALL --out "$WORK/run" >/dev/null 2>&1 || fail "first run"
before=$(cat "$WORK/run"/ckpt-*.h5 "$WORK/run/metrics.csv" "$WORK/run/epochs.csv" | cksum)
expect 64 "resume: other architecture" --data "$WORK/good.h5" --epochs 2 --batch 20 --hidden 17 --latent 2 --out "$WORK/run"
expect 64 "resume: other batch"        --data "$WORK/good.h5" --epochs 2 --batch 40 --hidden 16 --latent 2 --out "$WORK/run"
expect 64 "resume: other seed"         --data "$WORK/good.h5" $SMALL --seed 9 --out "$WORK/run"
expect 64 "resume: other data"         --data "$WORK/other.h5" $SMALL --out "$WORK/run"
cp "$WORK/good.h5" "$WORK/good-copy.h5"
expect 64 "resume: another data file"  --data "$WORK/good-copy.h5" $SMALL --out "$WORK/run"
expect 64 "resume: other likelihood"   --data "$WORK/good.h5" $SMALL --likelihood gaussian --out "$WORK/run"
expect 64 "resume: other --conv"       --data "$WORK/good.h5" $SMALL --conv 4 --out "$WORK/run"
expect 64 "resume: other --test-dataset" --data "$WORK/good.h5" $SMALL --test-dataset none --out "$WORK/run"
expect 64 "resume: other --val-fraction" --data "$WORK/good.h5" $SMALL --test-dataset none --val-fraction 0.2 --out "$WORK/run"
# found before the data are read: reading these would have refused the NaN (65)
expect 64 "resume: other data, before reading it" --data "$WORK/nan.h5" $SMALL --out "$WORK/run"
after=$(cat "$WORK/run"/ckpt-*.h5 "$WORK/run/metrics.csv" "$WORK/run/epochs.csv" | cksum)
# the preset is part of the model: a conv-hvae run resumes only as itself
PRESET="--data $WORK/side12.h5 --epochs 1 --batch 20 --preset conv-hvae --conv 2,2,2 --hidden 8 --latent 2,2"
run_mpi 2 120 "$VAE" $PRESET --out "$WORK/hv" >"$WORK/hv.log" 2>&1 || { cat "$WORK/hv.log"; fail "small conv-hvae run"; }
hv_before=$(cat "$WORK/hv"/ckpt-*.h5 | cksum)
expect 64 "resume: without --preset"   --data "$WORK/side12.h5" --epochs 1 --batch 20 --conv 2,2 --hidden 8 --latent 2 --out "$WORK/hv"
grep -q "holds a conv-hvae (c2-c2-c2-8) 12x12x1-2,2 model" "$WORK/err" || fail "the message does not name the preset"
expect 64 "resume: other preset sizes" $PRESET --conv 2,3,2 --out "$WORK/hv"
[ "$hv_before" = "$(cat "$WORK/hv"/ckpt-*.h5 | cksum)" ] && pass "the conv-hvae run is untouched" ||
    fail "the conv-hvae run was modified"
# a second run in the directory of one still running stops at once,
# before it reads the data
run_mpi 2 120 "$VAE" --data "$WORK/good.h5" --epochs 100000 --batch 20 --hidden 16 --latent 2 \
    --out "$WORK/busy" >"$WORK/busy.log" 2>&1 &
busy=$!
i=0; while ! grep -q "samples/s" "$WORK/busy.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
grep -q "samples/s" "$WORK/busy.log" || fail "the first run in busy/ did not start training"
expect 73 "run directory in use"       --data "$WORK/good.h5" --epochs 100000 --batch 20 --hidden 16 --latent 2 --out "$WORK/busy"
grep -q "in use by another vae-dist run (pid [0-9]* on " "$WORK/err" || fail "the message does not name the other run"
# before it reads any data: reading these would have refused the NaN (65)
expect 73 "run directory in use, before reading the data" --data "$WORK/nan.h5" --epochs 100000 --batch 20 \
    --hidden 16 --latent 2 --out "$WORK/busy"
[ ! -s "$WORK/out" ] || { cat "$WORK/out"; fail "the second run printed a start line"; }
kill -0 $busy 2>/dev/null || fail "the first run ended before it was stopped"
pkill -TERM -f "^$VAE .*--out $WORK/busy\$"; wait $busy; rc=$?
[ $rc -eq 75 ] && pass "the first run was not disturbed (stopped by SIGTERM: exit 75)" || fail "the first run: exit $rc"
[ "$before" = "$after" ] && pass "existing run untouched" || fail "existing run was modified"
finish
