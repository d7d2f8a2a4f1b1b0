#!/bin/sh
# node-sum.sh — does summing the node's gradients inside Adam's pass
# (--node-sum adam) make a step faster than summing them during backward
# (--node-sum backward)? One run of either is within the other's run-to-run
# spread on a shared VM, so this runs PAIRS pairs of short runs at np=2 on
# one node, the two paths back to back in alternating order (so that a
# machine growing busier or quieter weighs on both alike), and compares
# the pairs: the median step time of each path, the median of the per-pair
# ratios with its quartiles, and how many pairs each path won.
#
#   sh bench/node-sum.sh                         # 784-400-20, batch 128
#   PAIRS=40 STEPS=400 HIDDEN=1024,1024 LATENT=64 BATCH=512 sh bench/node-sum.sh
#
# Needs a data file of 784 values per row: DATA=fm.h5, or one made by
# tests/gen_data (GEN). Prints a summary, and the pairs to $OUT (a CSV,
# default node-sum.csv in the current directory).
set -eu
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-30}
STEPS=${STEPS:-400}
HIDDEN=${HIDDEN:-400}
LATENT=${LATENT:-20}
BATCH=${BATCH:-128}
VAE=${VAE:-./vae-dist}
GEN=${GEN:-tests/gen_data}
OUT=${OUT:-node-sum.csv}
[ -x "$VAE" ] || { echo "node-sum.sh: build vae-dist first" >&2; exit 69; }
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vd-nodesum-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
if [ -z "${DATA:-}" ]; then
    [ -x "$GEN" ] || { echo "node-sum.sh: set DATA, or build $GEN (make check builds it)" >&2; exit 69; }
    DATA=$TMP/data.h5
    "$GEN" "$DATA" --n 60000 --test 0 --side 28 >/dev/null
fi

# run PATH: one run; prints its step ms, and its reduce + optimizer ms
run() {
    rm -rf "$TMP/run"
    timeout 600 mpirun -np 2 "$VAE" --data "$DATA" --hidden "$HIDDEN" --latent "$LATENT" \
        --batch "$BATCH" --max-steps "$STEPS" --profile --ckpt-every 0 --log-every 100000 \
        --test-dataset none --node-sum "$1" --out "$TMP/run" >"$TMP/log" 2>&1 ||
        { cat "$TMP/log" >&2; exit 1; }
    step=$(sed -n 's/^  step \([0-9.]*\) ms.*/\1/p' "$TMP/log")
    red=$(sed -n 's/^  reduce *\([0-9.]*\) ms .*/\1/p' "$TMP/log")
    opt=$(sed -n 's/^  optimizer *\([0-9.]*\) ms .*/\1/p' "$TMP/log")
    echo "$step $(awk -v a="$red" -v b="$opt" 'BEGIN {print a + b}')"
}

echo "pair,first,adam_step_ms,backward_step_ms,adam_reduce_opt_ms,backward_reduce_opt_ms" >"$OUT"
i=1
while [ "$i" -le "$PAIRS" ]; do
    if [ $((i % 2)) = 1 ]; then
        a=$(run adam) b=$(run backward) first=adam
    else
        b=$(run backward) a=$(run adam) first=backward
    fi
    echo "$i,$first,${a% *},${b% *},${a#* },${b#* }" >>"$OUT"
    i=$((i + 1))
done

awk -F, -v pairs="$PAIRS" -v what="784-$(echo "$HIDDEN" | tr , -)-$LATENT, batch $BATCH, $STEPS steps, np=2" '
function median(v, n,   i, j, t) {
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function quart(v, n, q,   k) { k = int(q * (n - 1) + 1.5); return v[k] } # v sorted by median()
NR > 1 {
    n++; a[n] = $3; b[n] = $4; r[n] = $3 / $4; ua[n] = $5; ub[n] = $6
    wins += $3 < $4
}
END {
    ma = median(a, n); mb = median(b, n); mr = median(r, n)
    printf "%s, %d interleaved pairs\n", what, n
    printf "  step ms, median:               adam %.3f   backward %.3f\n", ma, mb
    printf "  reduce + optimizer rows, median:adam %.3f   backward %.3f\n", median(ua, n), median(ub, n)
    printf "  step ratio adam / backward:    median %.3f, quartiles %.3f .. %.3f\n", mr, quart(r, n, 0.25), quart(r, n, 0.75)
    printf "  pairs where adam was faster:   %d of %d\n", wins, n
}' "$OUT"
