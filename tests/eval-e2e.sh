#!/bin/sh
# End to end for eval, sample and reconstruct on a small trained run: the
# estimate does not depend on the rank count; it lies below the negative
# ELBO and tightens with K; the ELBO agrees with training's test figure;
# sample and reconstruct reproduce the run's own figures bitwise; bad input
# gives one line and its exit code.
. "$top_srcdir/tests/lib.sh"
PY_H5=""
for p in python3 /usr/bin/python3; do "$p" -c 'import h5py' 2>/dev/null && { PY_H5=$p; break; }; done
[ -n "$PY_H5" ] || skip "no python3 with h5py (apt-get install python3-h5py)"

"$GEN" "$WORK/bars.h5" --n 1200 --test 300 --side 8 --type f32 --chunk 64 --deflate 4 ||
    { fail "gen_data"; finish; }
"$GEN" "$WORK/small.h5" --n 100 --test 50 --side 6 --type u8 || fail "gen_data small"
run_mpi 2 120 "$VAE" --data "$WORK/bars.h5" --epochs 4 --batch 20 --hidden 64 --latent 4 \
    --lr 3e-3 --seed 7 --out "$WORK/run" >"$WORK/train.log" 2>&1 ||
    { cat "$WORK/train.log"; fail "training"; finish; }

# json_val FILE KEY, csv_val FILE COLUMN
json_val() { sed -n "s/.*\"$2\": \([-0-9.e+]*\).*/\1/p" "$1"; }
csv_val() { awk -F, -v k="$2" 'NR==1 {for (i = 1; i <= NF; i++) if ($i == k) c = i} NR==2 {print $c}' "$1"; }
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN {d = a - b; if (d < 0) d = -d; s = a < 0 ? -a : a; exit !(a != "" && d <= t * s)}'; }

run_mpi 1 300 "$VAE" eval --ckpt "$WORK/run" --samples 200 --out "$WORK/e1.json" >"$WORK/e1.log" 2>&1 ||
    { cat "$WORK/e1.log"; fail "eval on 1 rank"; }
run_mpi 2 300 "$VAE" eval --ckpt "$WORK/run" --samples 200 --out "$WORK/e2.csv" >"$WORK/e2.log" 2>&1 ||
    { cat "$WORK/e2.log"; fail "eval on 2 ranks"; }
nll1=$(json_val "$WORK/e1.json" nll); nll2=$(csv_val "$WORK/e2.csv" nll)
elbo1=$(json_val "$WORK/e1.json" neg_elbo); elbo2=$(csv_val "$WORK/e2.csv" neg_elbo)
close "$nll1" "$nll2" 1e-7 && close "$elbo1" "$elbo2" 1e-7 &&
    pass "1 and 2 ranks agree: -log p(x) $nll1 / $nll2, -ELBO $elbo1 / $elbo2" ||
    fail "rank counts disagree: -log p(x) $nll1 / $nll2, -ELBO $elbo1 / $elbo2"
[ "$(json_val "$WORK/e1.json" rows)" = 300 ] && pass "all 300 test rows" || fail "rows: $(cat "$WORK/e1.json")"
awk -v n="$nll1" -v e="$elbo1" 'BEGIN {exit !(n < e)}' && pass "-log p(x) $nll1 < -ELBO $elbo1" ||
    fail "the estimate $nll1 is not below the negative ELBO $elbo1"

# training's last test figure (one z per row) against eval's (K z per row)
test_loss=$(tail -n 1 "$WORK/run/epochs.csv" | cut -d, -f4)
close "$elbo1" "$test_loss" 0.03 && pass "-ELBO $elbo1 matches training's test loss $test_loss" ||
    fail "-ELBO $elbo1 far from training's test loss $test_loss"

# fewer samples, a looser estimate
run_mpi 2 120 "$VAE" eval --ckpt "$WORK/run" --samples 1 --out "$WORK/k1.json" >"$WORK/k1.log" 2>&1 ||
    fail "eval K=1"
nllk1=$(json_val "$WORK/k1.json" nll)
awk -v a="$nllk1" -v b="$nll1" 'BEGIN {exit !(a > b + 0.1)}' && pass "K=1 gives $nllk1 > K=200 $nll1" ||
    fail "K=1 gives $nllk1, not above K=200 $nll1"

# dynamic binarization changes the data, and the figure
run_mpi 2 120 "$VAE" eval --ckpt "$WORK/run" --samples 20 --binarize --out "$WORK/b.h5" \
    >"$WORK/b.log" 2>&1 && grep -q "dynamically binarized" "$WORK/b.log" &&
    h5dump -a /binarized "$WORK/b.h5" 2>/dev/null | grep -q "(0): 1" &&
    pass "--binarize, results as HDF5" || { cat "$WORK/b.log"; fail "--binarize or .h5 results"; }

# the run's own figures, reproduced from its checkpoint
run_mpi 1 60 "$VAE" sample --ckpt "$WORK/run" --seed 7 --out "$WORK/s" >"$WORK/s.log" 2>&1 ||
    { cat "$WORK/s.log"; fail "sample"; }
cmp -s "$WORK/s.png" "$WORK/run/samples.png" && pass "sample --seed 7 reproduces samples.png" ||
    fail "sample differs from the run's samples.png"
h5dump -H "$WORK/s.h5" 2>/dev/null | grep -q "( 64, 8, 8 )" && pass "samples.h5 holds (64, 8, 8)" ||
    fail "samples.h5 shape"
run_mpi 2 60 "$VAE" reconstruct --ckpt "$WORK/run" --n 16 --out "$WORK/r.png" >"$WORK/r.log" 2>&1 ||
    { cat "$WORK/r.log"; fail "reconstruct"; }
cmp -s "$WORK/r.png" "$WORK/run/reconstructions.png" &&
    pass "reconstruct reproduces reconstructions.png" || fail "reconstruct differs"
run_mpi 1 60 "$VAE" sample --ckpt "$WORK/run" --seed 8 --out "$WORK/s8" >/dev/null 2>&1
cmp -s "$WORK/s8.png" "$WORK/s.png"
rc=$? # 1: they differ; 0: the same; 2: a file missing
[ $rc -eq 1 ] && pass "another seed, other samples" ||
    fail "sample --seed 8 against --seed 7: cmp exit $rc (1 would be a difference)"

# the run's own data by default: trained from its directory with a relative
# --data and its own dataset names, evaluated from elsewhere
mkdir -p "$WORK/d" "$WORK/elsewhere"
"$PY_H5" - "$WORK/d/custom.h5" "$WORK/bars.h5" <<'PYEOF' || fail "custom dataset names"
import sys, h5py
with h5py.File(sys.argv[2], "r") as src, h5py.File(sys.argv[1], "w") as f:
    f["/train/x"] = src["/train/images"][...]
    f["/test/x"] = src["/test/images"][...][:100]
PYEOF
(cd "$WORK/d" && run_mpi 2 120 "$VAE" --data custom.h5 --dataset /train/x --test-dataset /test/x \
    --epochs 1 --batch 20 --hidden 32 --latent 3 --out run >"$WORK/c.log" 2>&1) || fail "training on custom.h5"
(cd "$WORK/elsewhere" && run_mpi 2 120 "$VAE" eval --ckpt "$WORK/d/run" --samples 5 >"$WORK/ce.log" 2>&1) &&
    grep -q "on $WORK/d/custom.h5:/test/x: 100 rows" "$WORK/ce.log" &&
    pass "eval from elsewhere takes the run's data (absolute) and its test set /test/x" ||
    { cat "$WORK/ce.log"; fail "eval of a run trained with a relative path and /test/x"; }
(cd "$WORK/elsewhere" && run_mpi 1 60 "$VAE" reconstruct --ckpt "$WORK/d/run" --n 8 --out r >/dev/null 2>&1) &&
    pass "reconstruct from elsewhere, the run's test set" || fail "reconstruct from elsewhere"

# a model of tabular data: sample writes /samples (n, 12) and /z, no PNG
"$GEN" "$WORK/table.h5" --n 400 --test 50 --table 12 || fail "gen_data --table"
run_mpi 2 120 "$VAE" --data "$WORK/table.h5" --likelihood gaussian --epochs 1 --batch 20 --hidden 16 \
    --latent 2 --out "$WORK/tab" >/dev/null 2>&1 || fail "training on tabular data"
run_mpi 1 60 "$VAE" sample --ckpt "$WORK/tab" --n 10 --out "$WORK/tabs" >"$WORK/tabs.log" 2>&1 &&
    [ ! -e "$WORK/tabs.png" ] && h5dump -H "$WORK/tabs.h5" 2>/dev/null | grep -q "( 10, 12 )" &&
    h5dump -H "$WORK/tabs.h5" 2>/dev/null | grep -q 'DATASET "z"' &&
    pass "sample of a tabular model: /samples (10, 12) and /z, no PNG" ||
    { cat "$WORK/tabs.log"; fail "sample of a tabular model"; }

# the results file parses as JSON: a density (Gaussian) has no bits per
# dimension; a logistic model's are -log p(x) / (D log 2)
run_mpi 2 120 "$VAE" --data "$WORK/table.h5" --likelihood logistic --epochs 1 --batch 20 --hidden 16 \
    --latent 2 --out "$WORK/tablog" >/dev/null 2>&1 || fail "logistic training on tabular data"
for m in tab tablog; do
    run_mpi 2 60 "$VAE" eval --ckpt "$WORK/$m" --samples 4 --out "$WORK/$m.json" >/dev/null 2>&1 ||
        fail "eval of $m"
done
/usr/bin/python3 - "$WORK/tab.json" "$WORK/tablog.json" <<'PY' && pass "eval's JSON: the Gaussian without bits per dimension, the logistic's right" || fail "eval's JSON"
import json, math, sys
g, l = (json.load(open(p)) for p in sys.argv[1:])
assert "nll_bits_per_dim" not in g and math.isfinite(g["nll"]), g
assert abs(l["nll_bits_per_dim"] - l["nll"] / (12 * math.log(2))) < 1e-6 * abs(l["nll"]) + 1e-9, l
assert abs(l["neg_elbo_bits_per_dim"] - l["neg_elbo"] / (12 * math.log(2))) < 1e-6 * abs(l["neg_elbo"]) + 1e-9, l
PY

# bad input: exit code and exactly one line, on 2 ranks
bad() {
    want=$1; what=$2; shift 2
    run_mpi 2 60 "$VAE" "$@" >"$WORK/bad.out" 2>"$WORK/bad.err"; rc=$?
    lines=$(grep -c '^vae-dist:' "$WORK/bad.err")
    if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ]; then pass "$what: exit $rc, $(cat "$WORK/bad.err")"
    else cat "$WORK/bad.err"; fail "$what: exit $rc (want $want), $lines lines"; fi
}
bad 66 "missing checkpoint" eval --ckpt "$WORK/nothing"
bad 66 "run directory without checkpoints" eval --ckpt "$WORK"
bad 64 "results file of unknown kind" eval --ckpt "$WORK/run" --out "$WORK/x.txt"
bad 65 "data of another shape" eval --ckpt "$WORK/run" --data "$WORK/small.h5"
bad 66 "missing dataset" reconstruct --ckpt "$WORK/run" --dataset /nope
bad 64 "rows past the end" reconstruct --ckpt "$WORK/run" --first 290 --n 16
ck=$(cat "$WORK/run/latest")
head -c 3000 "$WORK/run/$ck" >"$WORK/trunc.h5"
bad 65 "truncated checkpoint" sample --ckpt "$WORK/trunc.h5" --out "$WORK/t"
[ ! -e "$WORK/t.png" ] && pass "nothing written for a bad checkpoint" || fail "wrote t.png"
finish
