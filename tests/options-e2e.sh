#!/bin/sh
# End to end for the model options on the bars data (tests/gen_data.c, whose
# label is vertical * 8 + position): a conditional VAE generates the class
# it is asked for; the Gaussian likelihood learns its variance and takes data
# outside [0, 1]; --binarize changes training on gray data and is a no-op on
# binary data; beta and warm-up change the objective; the checkpoint carries
# every option, so eval and sample need no flags; --accumulate N trains as
# a batch N times larger (up to float summation order) on every path a step
# takes (the shared-memory sum, the allreduce in buckets, the sum inside
# Adam's pass, the streaming feed, parts left empty), resumes bitwise, and
# a resume with another N is refused.
. "$top_srcdir/tests/lib.sh"

"$GEN" "$WORK/bars.h5" --n 1200 --test 200 --side 8 --type f32 || { fail "gen_data"; finish; }
"$GEN" "$WORK/gray.h5" --n 400 --test 100 --side 8 --type f32 --gray 0.6 || fail "gen_data gray"
"$GEN" "$WORK/range.h5" --n 400 --test 100 --side 8 --type f32 --bad range || fail "gen_data range"

# values of an HDF5 dataset, one per line
h5values() { h5dump -y -w 0 -d "$2" "$1" 2>/dev/null | sed -n '/DATA {/,/}/p' | tr ',' '\n' |
    sed -n 's/^ *\(-*[0-9][-0-9.e+]*\) *$/\1/p'; }
train() { out=$1; shift; run_mpi 2 180 "$VAE" --batch 20 --hidden 64 --latent 4 --lr 3e-3 --seed 7 \
    --log-every 1000 --out "$WORK/$out" "$@" >"$WORK/$out.log" 2>&1 || { cat "$WORK/$out.log"; fail "training $out"; }; }

# ---- conditional VAE: class 3 is a horizontal bar in row 3, class 13 a vertical bar in column 5
train cvae --data "$WORK/bars.h5" --epochs 20 --classes 16
grep -q "16 classes" "$WORK/cvae.log" && pass "the run reports a 16-class model" || fail "no class count"
# shows C: how many of the 20 draws in FILE have their brightest row (class
# < 8) or column (class >= 8) where class C's bar is
shows() { h5values "$1" /samples | awk -v c="$2" '
    { k = int((NR - 1) / 64); p = (NR - 1) % 64; line = c < 8 ? int(p / 8) : p % 8; s[k, line] += $1 }
    END { for (k = 0; k < 20; k++) { best = 0; for (l = 1; l < 8; l++) if (s[k, l] > s[k, best]) best = l;
          if (best == c % 8) h++ } print h + 0 }'; }
for c in 3 13; do
    run_mpi 1 60 "$VAE" sample --ckpt "$WORK/cvae" --class "$c" --n 20 --out "$WORK/c$c" \
        >"$WORK/c$c.log" 2>&1 || { cat "$WORK/c$c.log"; fail "sample --class $c"; continue; }
    h5values "$WORK/c$c.h5" /classes | sort -u | grep -qx "$c" && pass "/classes holds $c" ||
        fail "/classes of class $c"
done
# each class's draws show that class, and not the other one (chance: 2.5 of 20)
h3=$(shows "$WORK/c3.h5" 3) h13=$(shows "$WORK/c13.h5" 13) x3=$(shows "$WORK/c3.h5" 13) x13=$(shows "$WORK/c13.h5" 3)
[ "$h3" -ge 15 ] && [ "$h13" -ge 15 ] && [ "$x3" -le 6 ] && [ "$x13" -le 6 ] &&
    pass "sample --class: class 3 draws show it $h3/20 (class 13's bar $x3/20), class 13 $h13/20 (class 3's $x13/20)" ||
    fail "sample --class: class 3 draws show it $h3/20 (13: $x3), class 13 $h13/20 (3: $x13)"
run_mpi 2 120 "$VAE" eval --ckpt "$WORK/cvae" --samples 50 --out "$WORK/cvae.json" >"$WORK/ce.log" 2>&1 &&
    grep -q "conditional on the labels" "$WORK/ce.log" && grep -q '"conditional": 1' "$WORK/cvae.json" &&
    pass "eval of a conditional model uses the labels" || { cat "$WORK/ce.log"; fail "eval of the conditional model"; }
jv() { sed -n "s/.*\"$2\": \([-0-9.e+]*\).*/\1/p" "$1"; }
awk -v n="$(jv "$WORK/cvae.json" nll)" -v e="$(jv "$WORK/cvae.json" neg_elbo)" 'BEGIN {exit !(n != "" && n < e)}' &&
    pass "-log p(x|y) $(jv "$WORK/cvae.json" nll) < -ELBO $(jv "$WORK/cvae.json" neg_elbo)" ||
    fail "-log p(x|y) not below the -ELBO: $(cat "$WORK/cvae.json")"
run_mpi 2 120 "$VAE" eval --ckpt "$WORK/cvae" --dataset /train/images --max-rows 100 --samples 5 \
    >"$WORK/ct.log" 2>&1 && grep -q "conditional on the labels" "$WORK/ct.log" &&
    pass "eval --dataset /train/images takes /train/labels" || { cat "$WORK/ct.log"; fail "eval on /train/images"; }
run_mpi 2 60 "$VAE" eval --ckpt "$WORK/cvae" --labels /nope --samples 5 >/dev/null 2>"$WORK/ce.err"
[ $? -eq 66 ] && grep -q "conditional" "$WORK/ce.err" && pass "missing labels: exit 66, $(cat "$WORK/ce.err")" ||
    fail "missing labels for a conditional model: $(cat "$WORK/ce.err")"
run_mpi 1 60 "$VAE" sample --ckpt "$WORK/cvae" --class 16 --out "$WORK/c16" >/dev/null 2>"$WORK/c16.err"
[ $? -eq 64 ] && pass "--class past the classes: exit 64" || fail "--class 16: $(cat "$WORK/c16.err")"

# ---- Gaussian likelihood, learned variance: s^2 falls from its start at 1
train gauss --data "$WORK/bars.h5" --epochs 4 --likelihood gaussian --activation tanh
ck=$(cat "$WORK/gauss/latest")
lv=$(h5values "$WORK/gauss/$ck" /params/likelihood.logvar)
awk -v v="$lv" 'BEGIN {exit !(v != "" && v < -0.5)}' && pass "learned log s^2 is $lv" ||
    fail "learned log s^2 is '$lv', not below -0.5"
run_mpi 1 120 "$VAE" eval --ckpt "$WORK/gauss" --samples 20 --out "$WORK/g1.json" >/dev/null 2>&1 &&
    run_mpi 2 120 "$VAE" eval --ckpt "$WORK/gauss" --samples 20 --out "$WORK/g2.json" >/dev/null 2>&1
nll() { sed -n 's/.*"nll": \([-0-9.e+]*\).*/\1/p' "$1"; }
awk -v a="$(nll "$WORK/g1.json")" -v b="$(nll "$WORK/g2.json")" \
    'BEGIN {d = a - b; if (d < 0) d = -d; s = a < 0 ? -a : a; exit !(a != "" && d <= 1e-7 * s)}' &&
    pass "Gaussian eval, -log p(x) on 1 and 2 ranks: $(nll "$WORK/g1.json") / $(nll "$WORK/g2.json")" ||
    fail "Gaussian eval on 1 and 2 ranks: '$(nll "$WORK/g1.json")' / '$(nll "$WORK/g2.json")'"
train grange --data "$WORK/range.h5" --epochs 1 --likelihood gaussian --variance 0.1
tl=$(sed -n 2p "$WORK/grange/epochs.csv" 2>/dev/null | cut -d, -f3)
awk -v v="$tl" 'BEGIN {exit !(v != "" && v + 0 == v && v > -1e6 && v < 1e6)}' &&
    pass "Gaussian trains on a value outside [0, 1] (train loss $tl)" || fail "Gaussian on range data: train loss '$tl'"
run_mpi 2 60 "$VAE" --data "$WORK/range.h5" --epochs 1 --batch 20 --out "$WORK/brange" >/dev/null 2>"$WORK/br.err"
[ $? -eq 65 ] && grep -q "gaussian" "$WORK/br.err" && pass "Bernoulli refuses it: $(cat "$WORK/br.err")" ||
    fail "Bernoulli on range data: $(cat "$WORK/br.err")"

# ---- --binarize: a no-op on binary data, a change on gray data
train bin0 --data "$WORK/bars.h5" --epochs 1
train bin1 --data "$WORK/bars.h5" --epochs 1 --binarize
"$H5DIFF" -q "$WORK/bin0/$(cat "$WORK/bin0/latest")" "$WORK/bin1/$(cat "$WORK/bin1/latest")" /params /params &&
    pass "--binarize leaves binary data as it is" || fail "--binarize changed training on binary data"
train gray0 --data "$WORK/gray.h5" --epochs 1
train gray1 --data "$WORK/gray.h5" --epochs 1 --binarize
"$H5DIFF" -q "$WORK/gray0/$(cat "$WORK/gray0/latest")" "$WORK/gray1/$(cat "$WORK/gray1/latest")" /params /params
rc=$? # 1: they differ; 0: the same; 2: h5diff could not compare
[ $rc -eq 1 ] && pass "--binarize changes training on gray data" ||
    fail "--binarize on gray data: h5diff exit $rc (1 would be a change)"
l0=$(sed -n 2p "$WORK/gray0/epochs.csv" | cut -d, -f3); l1=$(sed -n 2p "$WORK/gray1/epochs.csv" | cut -d, -f3)
[ "$l0" != "$l1" ] && pass "train loss $l0 without, $l1 with --binarize" || fail "same train loss $l0"

# ---- a 2-D latent: latent.png, the test means coloured by label (its pixels: tests/test_plot.c)
train lat2 --data "$WORK/bars.h5" --epochs 1 --latent 2
[ "$(head -c 8 "$WORK/lat2/latent.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
    pass "a 2-D latent gives latent.png" || fail "no latent.png for a 2-D latent"

# ---- beta and warm-up: the weighted objective changes the model; the logged ELBO stays unweighted
train beta --data "$WORK/bars.h5" --epochs 1 --beta 4
train warm --data "$WORK/bars.h5" --epochs 1 --warmup 200
kl() { sed -n 2p "$WORK/$1/epochs.csv" | cut -d, -f6; }
awk -v b="$(kl beta)" -v a="$(kl bin0)" -v w="$(kl warm)" 'BEGIN {exit !(b < a && w > a)}' &&
    pass "test KL: beta 4 $(kl beta) < beta 1 $(kl bin0) < warm-up $(kl warm)" ||
    fail "test KL: beta 4 $(kl beta), beta 1 $(kl bin0), warm-up $(kl warm)"
# ---- --reduce: node shared memory (the default, summed during backward;
# and with --node-sum adam, inside Adam's pass), MPI_Allreduce, and the
# fallback when /dev/shm cannot hold the segment train bitwise alike on 2
# ranks
train red_shm --data "$WORK/bars.h5" --epochs 2
train red_mpi --data "$WORK/bars.h5" --epochs 2 --reduce mpi
train red_adam --data "$WORK/bars.h5" --epochs 2 --node-sum adam
VAE_DIST_TEST_NO_SHM=0 train red_full0 --data "$WORK/bars.h5" --epochs 2
VAE_DIST_TEST_NO_SHM=1 train red_full1 --data "$WORK/bars.h5" --epochs 2
grep -q "summed in shared memory" "$WORK/red_shm.log" && grep -q "MPI_Allreduce" "$WORK/red_mpi.log" &&
    pass "the run says how gradients are summed" || fail "no reduction line: $(grep gradients "$WORK"/red_*.log)"
for r in 0 1; do # node rank r cannot reserve its pages: one note (from rank 0), then the allreduce
    [ "$(grep -c "^vae-dist: note: /dev/shm cannot hold" "$WORK/red_full$r.log")" -eq 1 ] &&
        [ "$(grep -c "vae-dist:" "$WORK/red_full$r.log")" -eq 1 ] &&
        grep -q "gradients: MPI_Allreduce" "$WORK/red_full$r.log" &&
        pass "a full /dev/shm at node rank $r: one note, then the allreduce" ||
        fail "fallback at node rank $r: $(cat "$WORK/red_full$r.log")"
done
for v in mpi adam full0 full1; do
    for g in params adam/m adam/v; do
        "$H5DIFF" -q "$WORK/red_shm/$(cat "$WORK/red_shm/latest")" "$WORK/red_$v/$(cat "$WORK/red_$v/latest")" \
            "/$g" "/$g" || { fail "--reduce shm and $v differ in /$g"; continue 2; }
    done
    pass "--reduce shm and $v: bitwise the same parameters and moments"
done

# ---- --accumulate: 4 parts of --batch 10 are one step of 40 (on 2 ranks, a
# rank's 20 rows in 4 parts); only the summation order differs
ACC="--data $WORK/bars.h5 --epochs 1 --hidden 32 --latent 3,2 --activation gated --lr 3e-3 --seed 3
     --log-every 5 --keep 0"
run_mpi 2 120 "$VAE" $ACC --batch 40 --out "$WORK/big" >"$WORK/big.log" 2>&1 || fail "--batch 40"
run_mpi 2 120 "$VAE" $ACC --batch 10 --accumulate 4 --out "$WORK/acc" >"$WORK/acc.log" 2>&1 ||
    { cat "$WORK/acc.log"; fail "--accumulate 4"; }
grep -q "30 steps per epoch of 40" "$WORK/acc.log" && pass "--batch 10 --accumulate 4: steps of 40" ||
    fail "steps: $(grep 'steps per epoch' "$WORK/acc.log")"
"$H5DIFF" -q -d 1e-5 "$WORK/big/ckpt-0000000030.h5" "$WORK/acc/ckpt-0000000030.h5" /params >/dev/null 2>&1 &&
    pass "--accumulate 4 trains as --batch 40: parameters within 1e-5 after 30 steps" ||
    fail "--accumulate 4 differs from --batch 40 by more than 1e-5"
"$H5DIFF" -q "$WORK/big/ckpt-0000000030.h5" "$WORK/acc/ckpt-0000000030.h5" /params >/dev/null 2>&1
rc=$?
[ $rc -eq 1 ] && pass "(not bitwise: the parts' sums round otherwise; the comparison can tell)" ||
    fail "--accumulate 4 against --batch 40: h5diff exit $rc (0: bitwise, was it in parts?)"
run_mpi 2 120 "$VAE" $ACC --batch 10 --accumulate 4 --out "$WORK/acc-cut" --max-steps 13 >/dev/null 2>&1
run_mpi 2 120 "$VAE" $ACC --batch 10 --accumulate 4 --out "$WORK/acc-cut" >"$WORK/acc-cut.log" 2>&1
ok=1
for g in /params /adam/m /adam/v; do
    "$H5DIFF" -q "$WORK/acc/ckpt-0000000030.h5" "$WORK/acc-cut/ckpt-0000000030.h5" $g >/dev/null 2>&1 || ok=0
done
grep -q "resuming from" "$WORK/acc-cut.log" && [ $ok -eq 1 ] &&
    pass "--accumulate 4 stopped at step 13 and resumed: bitwise the uninterrupted run" ||
    fail "--accumulate 4 resumed differs"
expect 64 "resume with another --accumulate" $ACC --batch 10 --accumulate 2 --out "$WORK/acc"

# the other paths of a step in parts, each against --batch N x G on the
# same path at step 30: the allreduce posted in 1 KiB buckets during each
# part's backward (--reduce mpi), the sum inside Adam's pass (--node-sum
# adam), the streaming feed; and parts left empty: --batch 1 --accumulate 4
# on 2 ranks gives each rank 2 rows in 4 parts
acc_path() { # acc_path NAME BIG G N ARGS...
    name=$1; big=$2; g=$3; n=$4; shift 4
    run_mpi 2 120 "$VAE" $ACC --max-steps 30 --batch "$big" "$@" --out "$WORK/$name-big" \
        >"$WORK/$name-big.log" 2>&1 &&
        run_mpi 2 120 "$VAE" $ACC --max-steps 30 --batch "$g" --accumulate "$n" "$@" \
            --out "$WORK/$name-acc" >"$WORK/$name-acc.log" 2>&1 ||
        { cat "$WORK/$name-big.log" "$WORK/$name-acc.log"; fail "$name: --batch $big or --batch $g --accumulate $n"; return 1; }
    "$H5DIFF" -q -d 1e-5 "$WORK/$name-big/ckpt-0000000030.h5" "$WORK/$name-acc/ckpt-0000000030.h5" \
        /params >/dev/null 2>&1 &&
        pass "$name: --batch $g --accumulate $n trains as --batch $big, parameters within 1e-5 after 30 steps" ||
        fail "$name: --batch $g --accumulate $n differs from --batch $big by more than 1e-5"
}
acc_path buckets 40 10 4 --reduce mpi --bucket 0.001 && {
    grep -q "^gradients: MPI_Allreduce in buckets of 0.001 MiB" "$WORK/buckets-acc.log" ||
        fail "buckets: $(grep '^gradients' "$WORK/buckets-acc.log")"; }
acc_path adam 40 10 4 --node-sum adam && {
    grep -q "^gradients: summed in shared memory" "$WORK/adam-acc.log" || fail "adam: not the shared-memory sum"; }
acc_path stream 40 10 4 --data-mode stream --data-budget 0.05 && {
    grep -q "^data: streamed" "$WORK/stream-acc.log" || fail "stream: $(grep '^data:' "$WORK/stream-acc.log")"; }
acc_path empty 4 1 4 && {
    grep -q "300 steps per epoch of 4 " "$WORK/empty-acc.log" ||
        fail "empty parts: $(grep 'steps per epoch' "$WORK/empty-acc.log")"; }
finish
