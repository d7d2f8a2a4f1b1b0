#!/bin/sh
# The README's h5py recipe (jobs/decode.py) decodes the same images as
# `vae-dist sample`, for a relu-Bernoulli and a tanh-Gaussian conditional
# model. Skipped (77) without python3-h5py.
. "$top_srcdir/tests/lib.sh"

PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import h5py, numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 with h5py and numpy (apt-get install python3-h5py)"; exit 77; }

"$GEN" "$WORK/bars.h5" --n 400 --test 100 --side 8 --type f32 || { fail "gen_data"; finish; }
check() {
    name=$1; shift
    run_mpi 2 120 "$VAE" --data "$WORK/bars.h5" --epochs 2 --batch 20 --hidden 32,16 --latent 3 \
        --out "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 || { cat "$WORK/$name.log"; fail "training $name"; return; }
    run_mpi 1 60 "$VAE" sample --ckpt "$WORK/$name" --n 12 --out "$WORK/$name-s" >/dev/null 2>&1 ||
        { fail "sample $name"; return; }
    ck="$WORK/$name/$(cat "$WORK/$name/latest")"
    "$PY" "$top_srcdir/jobs/decode.py" "$ck" "$WORK/$name-s.h5" "$WORK/$name.npy" >"$WORK/$name.py.log" 2>&1 ||
        { cat "$WORK/$name.py.log"; fail "decode.py on $name"; return; }
    diff=$(sed -n 's/^max |difference| from \/samples: //p' "$WORK/$name.py.log")
    awk -v d="$diff" 'BEGIN {exit !(d != "" && d < 1e-4)}' &&
        pass "$name: decode.py matches vae-dist sample (max difference $diff)" ||
        fail "$name: decode.py differs from vae-dist sample by '$diff'"
    "$PY" -c "import numpy, sys; a = numpy.load(sys.argv[1]); sys.exit(a.shape != (12, 8, 8))" "$WORK/$name.npy" &&
        pass "$name: OUT.npy is 12 x 8 x 8" || fail "$name: OUT.npy shape"
}
check plain
check tgc --activation tanh --likelihood gaussian --classes 16
finish
