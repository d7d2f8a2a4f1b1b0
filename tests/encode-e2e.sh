#!/bin/sh
# encode and interpolate on a small trained run: encode's /mu and /logvar do
# not depend on the rank count and agree with an encoder in numpy that reads
# only the checkpoint (jobs/decode.py --encode); --sample draws z around
# them; /labels are the data's. interpolate's ends are the two rows' means
# and its points lie on the line (or the great circle, --slerp). Bad input
# gives one line and exit 64.
. "$top_srcdir/tests/lib.sh"
need_h5diff
PY_H5=""
for p in python3 /usr/bin/python3; do "$p" -c 'import h5py' 2>/dev/null && { PY_H5=$p; break; }; done
[ -n "$PY_H5" ] || skip "no python3 with h5py (apt-get install python3-h5py)"

"$GEN" "$WORK/bars.h5" --n 1000 --test 300 --side 8 --type u8 --chunk 64 || { fail gen_data; finish; }
run_mpi 2 120 "$VAE" --data "$WORK/bars.h5" --epochs 2 --batch 20 --hidden 32 --latent 3 \
    --out "$WORK/run" >"$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; fail training; finish; }

run_mpi 1 60 "$VAE" encode --ckpt "$WORK/run" --out "$WORK/e1.h5" >"$WORK/e1.log" 2>&1 ||
    { cat "$WORK/e1.log"; fail "encode on 1 rank"; }
run_mpi 3 60 "$VAE" encode --ckpt "$WORK/run" --out "$WORK/e3.h5" --sample >"$WORK/e3.log" 2>&1 ||
    { cat "$WORK/e3.log"; fail "encode on 3 ranks"; }
ok=1
for g in /mu /logvar /labels; do "$H5DIFF" -q "$WORK/e1.h5" "$WORK/e3.h5" $g || ok=0; done
[ $ok -eq 1 ] && pass "encode on 1 and 3 ranks: /mu, /logvar, /labels bitwise equal" ||
    fail "encode depends on the rank count"
grep -q "wrote .*(/mu, /logvar: 300 x 3; /labels: 300)" "$WORK/e1.log" &&
    pass "the run's test set by default: 300 rows, with labels" || { cat "$WORK/e1.log"; fail "encode's default rows"; }

out=$("$PY_H5" "$top_srcdir/jobs/decode.py" --encode "$WORK/run" "$WORK/bars.h5" /test/images "$WORK/e1.h5" 2>&1)
diff=$(echo "$out" | sed -n 's/.*difference.*: //p')
awk -v d="$diff" 'BEGIN {exit !(d != "" && d < 1e-4)}' &&
    pass "numpy's encoder from the checkpoint alone agrees: max |difference| $diff" ||
    { echo "$out"; fail "numpy's encoder disagrees: $diff"; }

"$PY_H5" - "$WORK/e3.h5" "$WORK/bars.h5" <<'PYEOF' && pass "--sample: z = mu + exp(logvar/2) eps, eps ~ N(0, 1); labels are the data's" || fail "--sample draws or labels"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "r") as d:
    mu, lv, z, lab = f["mu"][()], f["logvar"][()], f["z"][()], f["labels"][()]
    assert (lab == d["/test/labels"][()].reshape(-1)).all(), "labels"
eps = (z - mu) / np.exp(lv / 2)
print("eps mean %.3f std %.3f over %d values" % (eps.mean(), eps.std(), eps.size))
assert abs(eps.mean()) < 0.15 and abs(eps.std() - 1) < 0.15
PYEOF

# a named dataset: the training rows, and their labels beside them
run_mpi 2 60 "$VAE" encode --ckpt "$WORK/run" --dataset /train/images --out "$WORK/tr.h5" >"$WORK/tr.log" 2>&1 &&
    grep -q "(/mu, /logvar: 1000 x 3; /labels: 1000)" "$WORK/tr.log" && pass "--dataset /train/images: 1000 rows and /train/labels" ||
    { cat "$WORK/tr.log"; fail "encode of the training rows"; }
run_mpi 2 60 "$VAE" encode --ckpt "$WORK/run" --labels none --out "$WORK/nl.h5" >/dev/null 2>&1 &&
    ! h5dump -H "$WORK/nl.h5" | grep -q '"labels"' && pass "--labels none: no /labels" || fail "--labels none"

# interpolate: both ends are the rows' means, the points evenly on the line,
# or on the arc between the two means (--slerp)
run_mpi 2 60 "$VAE" interpolate --ckpt "$WORK/run" --from 5 --to 2 --steps 5 --out "$WORK/lin" \
    >"$WORK/lin.log" 2>&1 && [ -s "$WORK/lin.png" ] || { cat "$WORK/lin.log"; fail "interpolate"; }
run_mpi 1 60 "$VAE" interpolate --ckpt "$WORK/run" --from 5 --to 2 --steps 5 --slerp --out "$WORK/sph" \
    >"$WORK/sph.log" 2>&1 || { cat "$WORK/sph.log"; fail "interpolate --slerp"; }
"$PY_H5" - "$WORK/e1.h5" "$WORK/lin.h5" "$WORK/sph.h5" <<'PYEOF' && pass "interpolate: ends at rows 5 and 2's means, the points on the line and on the arc, /samples (5, 8, 8)" || fail "interpolate's points"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    mu = f["mu"][()]
a, b = mu[5], mu[2]
for path, spherical in ((sys.argv[2], False), (sys.argv[3], True)):
    with h5py.File(path, "r") as f:
        z, t, s = f["z"][()], f["t"][()].reshape(-1), f["samples"][()]
    assert s.shape == (5, 8, 8), s.shape
    assert np.allclose(t, np.linspace(0, 1, 5))
    assert np.abs(z[0] - a).max() < 1e-5 and np.abs(z[-1] - b).max() < 1e-5, (z[0], a, z[-1], b)
    if spherical:  # sin((1 - t) w) / sin w a + sin(t w) / sin w b, w the angle between a and b
        w = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        want = [(np.sin((1 - u) * w) * a + np.sin(u * w) * b) / np.sin(w) for u in t]
        assert np.abs(z - np.array(want)).max() < 1e-5, (z, want)
        assert np.abs(z[2] - (a + b) / 2).max() > 1e-3  # not the straight line
    else:
        assert np.abs(z[2] - (a + b) / 2).max() < 1e-5
        assert np.abs(np.diff(z, axis=0) - (b - a) / 4).max() < 1e-5
PYEOF

bad() {
    want=$1; what=$2; shift 2
    run_mpi 2 60 "$VAE" "$@" >"$WORK/bad.out" 2>"$WORK/bad.err"; rc=$?
    lines=$(grep -c '^vae-dist:' "$WORK/bad.err")
    if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ]; then pass "$what: exit $rc, $(grep '^vae-dist:' "$WORK/bad.err")"
    else cat "$WORK/bad.err"; fail "$what: exit $rc (want $want), $lines lines"; fi
}
bad 64 "interpolate row outside the data" interpolate --ckpt "$WORK/run" --from 0 --to 300 --out "$WORK/x"
bad 64 "interpolate with one step" interpolate --ckpt "$WORK/run" --steps 1 --out "$WORK/x"
bad 64 "encode to a file not .h5" encode --ckpt "$WORK/run" --out "$WORK/x.npy"
bad 66 "encode of a missing dataset" encode --ckpt "$WORK/run" --dataset /nope --out "$WORK/x.h5"
[ ! -e "$WORK/x.png" ] && [ ! -e "$WORK/x.h5" ] && pass "nothing written for bad input" ||
    fail "bad input wrote a file"
finish
