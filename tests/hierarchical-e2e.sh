#!/bin/sh
# Several stochastic layers end to end: a two-layer gated VampPrior model
# trained on the importance-weighted bound (--iw-samples 3) resumes bitwise
# on 1, 2 and 3 ranks (stopped inside an epoch, then the same command
# again), its pseudo-inputs split unevenly over 2 and 3 ranks (and fewer
# of them than ranks); every command that reads a model works on it; bad
# input is one line, exit 64, and no run directory; a run is not resumed
# with other layers or another prior.
. "$top_srcdir/tests/lib.sh"
need_h5diff

"$GEN" "$WORK/bars.h5" --n 600 --test 100 --side 8 --type u8 || { fail gen_data; finish; }
# 20 steps per epoch, 2 epochs; 7 pseudo-inputs: 3 + 4 on 2 ranks, 2 + 2 + 3 on 3
ARGS="--data $WORK/bars.h5 --epochs 2 --batch 30 --hidden 24,16 --latent 3,2 --activation gated
      --prior vamp --pseudo-inputs 7 --iw-samples 3 --warmup 20 --lr 3e-3 --log-every 10 --keep 0"
FINAL=ckpt-0000000040.h5

for np in 1 2 3; do
    run_mpi $np 120 "$VAE" $ARGS --out "$WORK/ref$np" >"$WORK/ref$np.log" 2>&1 ||
        { cat "$WORK/ref$np.log"; fail "np=$np: reference run"; continue; }
    run_mpi $np 120 "$VAE" $ARGS --out "$WORK/cut$np" --max-steps 25 >/dev/null 2>&1 ||
        fail "np=$np: run to step 25"
    run_mpi $np 120 "$VAE" $ARGS --out "$WORK/cut$np" >"$WORK/cut$np.log" 2>&1 ||
        fail "np=$np: resume"
    grep -q "resuming from .*ckpt-0000000025.h5" "$WORK/cut$np.log" || fail "np=$np: did not resume at 25"
    ok=1
    for g in /params /adam/m /adam/v; do
        "$H5DIFF" -q "$WORK/ref$np/$FINAL" "$WORK/cut$np/$FINAL" $g >/dev/null 2>&1 || ok=0
    done
    for f in metrics epochs; do
        cut -d, -f1-6 "$WORK/ref$np/$f.csv" >"$WORK/a.csv"
        cut -d, -f1-6 "$WORK/cut$np/$f.csv" >"$WORK/b.csv"
        cmp -s "$WORK/a.csv" "$WORK/b.csv" || ok=0
    done
    [ $ok -eq 1 ] && pass "np=$np: stopped at step 25 and resumed, bitwise the uninterrupted run" ||
        fail "np=$np: the resumed run differs from the uninterrupted one"
done
# fewer pseudo-inputs than ranks: the ranks holding none still take part in
# the sum of the pseudo-inputs' gradient (a rank skipping it hangs the rest)
for spec in "2 1" "3 1"; do
    set -- $spec
    run_mpi $1 60 "$VAE" $ARGS --pseudo-inputs $2 --max-steps 4 --out "$WORK/few$1" \
        >"$WORK/few$1.log" 2>&1 && grep -q "vamp $2" "$WORK/few$1.log" &&
        pass "np=$1 with $2 pseudo-input(s): trains" ||
        { cat "$WORK/few$1.log"; fail "np=$1 with $2 pseudo-input(s)"; }
done
# the check can fail: 2 ranks do not train the 1-rank run's bits
"$H5DIFF" -q "$WORK/ref1/$FINAL" "$WORK/ref2/$FINAL" /params >/dev/null 2>&1
rc=$? # 1: they differ; 0: the same; 2: h5diff could not compare
[ $rc -eq 1 ] && pass "np=1 and np=2 differ (the comparison can fail)" ||
    fail "np=1 against np=2: h5diff exit $rc (1 would be a difference)"
grep -q "model 64-24-16-3,2, gated, vamp 7" "$WORK/ref2.log" &&
    pass "the start line names the model" || fail "start line: $(grep model "$WORK/ref2.log")"
# the bound's second term may be negative: the progress line prints its sign
n=$(grep -c "^epoch .* step .* loss " "$WORK/ref2.log")
bad=$(grep "^epoch .* step .* loss " "$WORK/ref2.log" | grep -cvE "loss -?[0-9.]+ = -?[0-9.]+ [-+] [0-9.]+  lr ")
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ] && pass "$n progress lines: loss = recon +/- rest, signed once" ||
    fail "progress lines: $bad of $n malformed: $(grep -m1 ' + -' "$WORK/ref2.log")"
for f in reconstructions.png samples.png loss.png; do
    [ -s "$WORK/ref2/$f" ] && pass "figure $f" || fail "no $f"
done

# every command that reads a model
R="$WORK/ref2"
cmd() { # cmd NAME NP ARGS...: runs, and checks it succeeded
    name=$1 np=$2; shift 2
    run_mpi $np 120 "$VAE" "$@" >"$WORK/$name.log" 2>&1 && pass "$name" ||
        { cat "$WORK/$name.log"; fail "$name"; }
}
cmd "eval on 2 ranks" 2 eval --ckpt "$R" --samples 50 --out "$WORK/e.json"
grep -q '"nll"' "$WORK/e.json" && grep -q "of 5 latent units active" "$WORK/eval on 2 ranks.log" &&
    pass "eval: -log p(x) and the units of both layers" || fail "eval's output"
cmd "sample" 1 sample --ckpt "$R" --n 8 --out "$WORK/s"
cmd "reconstruct" 1 reconstruct --ckpt "$R" --n 8 --out "$WORK/rec"
cmd "encode" 2 encode --ckpt "$R" --sample --out "$WORK/enc.h5"
cmd "interpolate" 1 interpolate --ckpt "$R" --steps 5 --out "$WORK/int"
h5ls "$WORK/enc.h5" >"$WORK/enc.ls" 2>&1
for d in mu1 logvar1 z1 mu2 logvar2 z2; do
    grep -q "^$d " "$WORK/enc.ls" || fail "encode wrote no /$d"
done
grep -q "^mu2 .*{100, 2}" "$WORK/enc.ls" && grep -q "^mu1 .*{100, 3}" "$WORK/enc.ls" &&
    pass "encode: every layer's mu, logvar and z, by layer" || { cat "$WORK/enc.ls"; fail "encode's datasets"; }
grep -q "^wrote .*enc.h5 (/muL, /logvarL, /zL for L = 1..2: 100 x 3,2" "$WORK/encode.log" &&
    pass "encode's wrote line names every layer's datasets and widths" ||
    fail "encode's wrote line: $(grep '^wrote' "$WORK/encode.log")"
h5ls "$WORK/s.h5" | grep -q "^z1 .*{8, 3}" && h5ls "$WORK/s.h5" | grep -q "^z .*{8, 2}" &&
    pass "sample: the top layer's /z and the lower /z1" || fail "sample's datasets"

# bad input: one line, exit 64 or 65, no run directory (expect: lib.sh)
B="--data $WORK/bars.h5 --epochs 1 --batch 20 --hidden 16 --out $WORK/bad"
expect 64 "--latent 0" $B --latent 0
expect 64 "--latent -3" $B --latent 3,-3
expect 64 "--latent x" $B --latent 4,x
expect 64 "--latent with 5 layers" $B --latent 4,4,4,4,4
expect 64 "--prior vamp with --classes" $B --prior vamp --classes 2
expect 64 "--pseudo-inputs 0" $B --prior vamp --pseudo-inputs 0
expect 64 "--pseudo-inputs 70000" $B --prior vamp --pseudo-inputs 70000
expect 64 "--prior laplace" $B --prior laplace
expect 64 "--iw-samples 0" $B --iw-samples 0
expect 64 "--iw-samples 5000" $B --iw-samples 5000
# hundreds of GiB of activations per rank: more than half of any node's memory
expect 64 "--iw-samples too big for memory" $B --batch 600 --hidden 4096,4096 --iw-samples 4096
grep -q "GiB of activations" "$WORK/err" || fail "the memory refusal's line: $(cat "$WORK/err")"
[ -e "$WORK/bad" ] && fail "a refused run left $WORK/bad" || pass "no refused run left a directory"
# the run of ref2 with other layers, another prior: refused, the run untouched
sum=$(cat "$R/latest")
expect 64 "resume with --latent 3" $ARGS --latent 3 --out "$R"
expect 64 "resume with --latent 3,2,2" $ARGS --latent 3,2,2 --out "$R"
expect 64 "resume with --prior standard" $ARGS --prior standard --out "$R"
[ "$(cat "$R/latest")" = "$sum" ] && pass "the refused resumes left the run as it was" ||
    fail "a refused resume changed the run"
finish
