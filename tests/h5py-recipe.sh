#!/bin/sh
# The h5py recipe (jobs/decode.py) decodes the same images as `vae-dist
# sample`, for a relu-Bernoulli MLP, a tanh-Gaussian conditional one, a
# convolutional model of channels-first colour images, a tanh-Gaussian
# conditional convolutional one, a two-layer gated VampPrior model, a
# three-layer one, a logistic one, a small --preset conv-hvae (gated
# convolutions of 7x7 .. 1x1 windows, strides 1 and 2, a dense layer read
# as an image), and a checkpoint written before the graph was stored
# (format 3); its encoder agrees with `vae-dist encode` for the layered
# models, layer by layer; it takes a run directory as well as a checkpoint
# file. Skipped (77) without python3-h5py.
. "$top_srcdir/tests/lib.sh"

PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import h5py, numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 with h5py and numpy (apt-get install python3-h5py)"; exit 77; }

"$GEN" "$WORK/bars.h5" --n 400 --test 100 --side 8 --type f32 || { fail "gen_data"; finish; }
"$GEN" "$WORK/rgb.h5" --n 400 --test 100 --side 8 --type f32 --channels 3 --layout chw ||
    { fail "gen_data --channels 3"; finish; }
"$GEN" "$WORK/table.h5" --n 400 --test 100 --table 12 || { fail "gen_data --table"; finish; }
# check NAME DATA SHAPE ARGS...: train, sample 12, decode with decode.py
check() {
    name=$1 data=$2 shape=$3; shift 3
    run_mpi 2 120 "$VAE" --data "$WORK/$data" --epochs 2 --batch 20 --hidden 32,16 --latent 3 \
        --out "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 || { cat "$WORK/$name.log"; fail "training $name"; return; }
    run_mpi 1 60 "$VAE" sample --ckpt "$WORK/$name" --n 12 --out "$WORK/$name-s" >/dev/null 2>&1 ||
        { fail "sample $name"; return; }
    ck="$WORK/$name/$(cat "$WORK/$name/latest")"
    [ "$name" = plain ] && ck="$WORK/$name" # a run directory works too
    "$PY" "$top_srcdir/jobs/decode.py" "$ck" "$WORK/$name-s.h5" "$WORK/$name.npy" >"$WORK/$name.py.log" 2>&1 ||
        { cat "$WORK/$name.py.log"; fail "decode.py on $name"; return; }
    diff=$(sed -n 's/^max |difference| from \/samples: //p' "$WORK/$name.py.log")
    awk -v d="$diff" 'BEGIN {exit !(d != "" && d < 1e-4)}' &&
        pass "$name: decode.py matches vae-dist sample (max difference $diff)" ||
        fail "$name: decode.py differs from vae-dist sample by '$diff'"
    "$PY" -c "import numpy, sys; a = numpy.load(sys.argv[1]); sys.exit(a.shape != $shape)" "$WORK/$name.npy" &&
        pass "$name: OUT.npy is $shape" || fail "$name: OUT.npy is not $shape"
}
check plain bars.h5 "(12, 8, 8)"
check tgc bars.h5 "(12, 8, 8)" --activation tanh --likelihood gaussian --classes 16
check conv-chw rgb.h5 "(12, 3, 8, 8)" --conv 4,6
check conv-tgc bars.h5 "(12, 8, 8)" --conv 5 --activation tanh --likelihood gaussian --classes 16
check hvae-vamp bars.h5 "(12, 8, 8)" --latent 3,2 --activation gated --prior vamp --pseudo-inputs 7
check three bars.h5 "(12, 8, 8)" --latent 2,2,2 --activation tanh
check logistic table.h5 "(12, 12)" --likelihood logistic  # means inside (0, 1), not clamped
"$GEN" "$WORK/bars12.h5" --n 300 --test 60 --side 12 --type u8 || fail "gen_data --side 12"
check conv-hvae bars12.h5 "(12, 12, 12)" --preset conv-hvae --conv 4,6,2 --hidden 16 --latent 3,2 \
    --prior vamp --pseudo-inputs 5 --activation gated

# encode: every layer's mean and log-variance, each given the means above
for name in hvae-vamp three conv-hvae; do
    data=bars.h5; [ $name = conv-hvae ] && data=bars12.h5
    run_mpi 1 60 "$VAE" encode --ckpt "$WORK/$name" --out "$WORK/$name-e.h5" >"$WORK/$name-e.log" 2>&1 ||
        { cat "$WORK/$name-e.log"; fail "encode $name"; continue; }
    out=$("$PY" "$top_srcdir/jobs/decode.py" --encode "$WORK/$name" "$WORK/$data" /test/images \
          "$WORK/$name-e.h5" 2>&1)
    diff=$(echo "$out" | sed -n 's/.*difference.*: //p')
    awk -v d="$diff" 'BEGIN {exit !(d != "" && d < 1e-4)}' &&
        pass "$name: decode.py --encode matches vae-dist encode (max difference $diff)" ||
        { echo "$out"; fail "$name: decode.py --encode differs: '$diff'"; }
done

# a format 3 checkpoint (no /model/graph): the graph its options describe
G="$top_srcdir/tests/golden"
run_mpi 1 60 "$VAE" sample --ckpt "$G/mlp-ckpt-60.h5" --n 5 --out "$WORK/old-s" >/dev/null 2>&1 ||
    fail "sample from the pinned format 3 checkpoint"
out=$("$PY" "$top_srcdir/jobs/decode.py" "$G/mlp-ckpt-60.h5" "$WORK/old-s.h5" 2>&1)
diff=$(echo "$out" | sed -n 's/^max |difference| from \/samples: //p')
awk -v d="$diff" 'BEGIN {exit !(d != "" && d < 1e-4)}' &&
    pass "a format 3 checkpoint decodes as vae-dist samples it (max difference $diff)" ||
    { echo "$out"; fail "format 3 checkpoint: '$diff'"; }

# bad input: one line, not a traceback, and a failing exit
for bad in "$WORK/missing.h5 $WORK/old-s.h5" "$WORK/bars.h5 $WORK/old-s.h5" "$G/mlp-ckpt-60.h5 $WORK/bars.h5"; do
    out=$("$PY" "$top_srcdir/jobs/decode.py" $bad 2>&1); rc=$?
    [ $rc -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "^decode.py: " &&
        pass "decode.py $(echo "$bad" | sed "s|$WORK/||g; s|$G/||g"): exit $rc, $out" ||
        fail "decode.py $bad: exit $rc, $out"
done
finish
