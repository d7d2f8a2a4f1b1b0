#!/bin/sh
# Convolutional models end to end, and images with channels: HWC and CHW
# files train bitwise the same model (convolutional and MLP); every image
# shape users bring gets figures, sample and reconstruct, in colour for three
# channels; a convolutional model works with each option the MLP has (both
# likelihoods, the conditional model, beta and warm-up, binarization,
# streaming, both reductions, resume, eval, sample, reconstruct); and so does
# --preset conv-hvae (small: 12x12 images, channels 2, 4, 2), with every
# command that reads a trained model.
. "$top_srcdir/tests/lib.sh"
need_h5diff

# png_type FILE: 0 gray, 2 RGB (the PNG header's colour type)
png_type() { od -An -tu1 -j25 -N1 "$1" | tr -d ' '; }
same_ckpt() { # same_ckpt A B: parameters and moments bitwise equal
    for g in /params /adam/m /adam/v; do
        "$H5DIFF" -q "$1" "$2" $g >/dev/null 2>&1 || return 1
    done
}

for l in hwc chw; do
    "$GEN" "$WORK/c3-$l.h5" --n 400 --test 100 --side 8 --channels 3 --layout $l --chunk 50 ||
        { fail "gen_data $l"; finish; }
done
"$GEN" "$WORK/c1-chw.h5" --n 400 --test 100 --side 8 --layout chw || fail "gen_data (N, 1, 8, 8)"
"$GEN" "$WORK/c1-hwc.h5" --n 400 --test 100 --side 8 --layout hwc || fail "gen_data (N, 8, 8, 1)"
"$GEN" "$WORK/g.h5" --n 400 --test 100 --side 8 --type f32 --gray 0.6 || fail "gen_data gray"
CONV="--epochs 2 --batch 20 --conv 4,8 --hidden 16 --latent 3 --log-every 10 --seed 3"
MLP="--epochs 2 --batch 20 --hidden 16 --latent 3 --log-every 10 --seed 3"

# 1. the same images stored channels last and channels first: one model
for m in conv mlp; do
    [ $m = conv ] && A=$CONV || A=$MLP
    for l in hwc chw; do
        run_mpi 2 120 "$VAE" --data "$WORK/c3-$l.h5" $A --out "$WORK/$m-$l" >"$WORK/$m-$l.log" 2>&1 ||
            { cat "$WORK/$m-$l.log"; fail "$m on $l data"; }
    done
    same_ckpt "$WORK/$m-hwc/ckpt-0000000040.h5" "$WORK/$m-chw/ckpt-0000000040.h5" &&
        pass "$m: (N, 8, 8, 3) and (N, 3, 8, 8) train bitwise the same model" ||
        fail "$m: the two layouts trained different models"
    grep -q "layout chw" "$WORK/$m-chw/config.txt" && grep -q "layout hwc" "$WORK/$m-hwc/config.txt" &&
        pass "$m: config.txt names the layout" || fail "$m: config.txt lacks the layout"
    for f in samples reconstructions; do
        [ "$(png_type "$WORK/$m-chw/$f.png")" = 2 ] && pass "$m: $f.png is RGB" || fail "$m: $f.png not RGB"
    done
done
run_one 60 "$VAE" sample --ckpt "$WORK/conv-chw" --n 8 --out "$WORK/s" >"$WORK/s.log" 2>&1 &&
    [ "$(png_type "$WORK/s.png")" = 2 ] && grep -q "/samples 8 x 3 x 8 x 8" "$WORK/s.log" &&
    pass "sample: RGB grid, /samples in the stored (N, C, H, W) shape" || { cat "$WORK/s.log"; fail "sample colour"; }
run_one 60 "$VAE" reconstruct --ckpt "$WORK/conv-chw" --data "$WORK/c3-hwc.h5" --n 8 --out "$WORK/r" >"$WORK/r.log" 2>&1 &&
    [ "$(png_type "$WORK/r.png")" = 2 ] &&
    pass "reconstruct: a channels-first model on channels-last data, in colour" || { cat "$WORK/r.log"; fail "reconstruct colour"; }

# 2. one channel, first or last: figures, sample and reconstruct, gray
for l in chw hwc; do
    run_mpi 2 120 "$VAE" --data "$WORK/c1-$l.h5" $MLP --out "$WORK/one-$l" >/dev/null 2>&1 || fail "one channel $l"
    [ "$(png_type "$WORK/one-$l/samples.png")" = 0 ] && [ -s "$WORK/one-$l/reconstructions.png" ] &&
        run_one 60 "$VAE" sample --ckpt "$WORK/one-$l" --n 4 --out "$WORK/one-$l-s" >/dev/null 2>&1 &&
        run_one 60 "$VAE" reconstruct --ckpt "$WORK/one-$l" --n 4 --out "$WORK/one-$l-r" >/dev/null 2>&1 &&
        pass "(N, $( [ $l = chw ] && echo 1, 8, 8 || echo 8, 8, 1)): gray figures, sample, reconstruct" ||
        fail "one channel $l: figures, sample or reconstruct"
done
same_ckpt "$WORK/one-chw/ckpt-0000000040.h5" "$WORK/one-hwc/ckpt-0000000040.h5" &&
    pass "(N, 1, 8, 8) and (N, 8, 8, 1) train the same model" || fail "one channel: layouts differ"

# 3. a convolutional model with the MLP's options
opt() { # opt NAME ARGS...: trains, and the test loss is finite
    name=$1; shift
    run_mpi 2 120 "$VAE" $CONV "$@" --out "$WORK/o-$name" >"$WORK/o-$name.log" 2>&1 &&
        awk -F, 'NR > 1 {n++; if ($4 != $4 + 0) bad = 1} END {exit !(n == 2 && !bad)}' "$WORK/o-$name/epochs.csv" &&
        pass "conv with $name" || { tail -5 "$WORK/o-$name.log"; fail "conv with $name"; }
}
opt gaussian --data "$WORK/g.h5" --likelihood gaussian
opt conditional --data "$WORK/c3-hwc.h5" --classes 16
opt beta-warmup --data "$WORK/c3-hwc.h5" --beta 2 --warmup 15
opt binarize --data "$WORK/g.h5" --binarize
opt stream --data "$WORK/c3-hwc.h5" --data-mode stream --data-budget 0.1
opt reduce-mpi --data "$WORK/c3-hwc.h5" --reduce mpi
same_ckpt "$WORK/conv-hwc/ckpt-0000000040.h5" "$WORK/o-reduce-mpi/ckpt-0000000040.h5" &&
    pass "conv: --reduce shm and --reduce mpi bitwise equal on 2 ranks" || fail "conv: shm and mpi differ"
run_mpi 2 60 "$VAE" sample --ckpt "$WORK/o-conditional" --class 3 --n 4 --out "$WORK/cs" >/dev/null 2>&1 &&
    pass "conv conditional: sample --class" || fail "conv conditional: sample --class"
run_mpi 2 120 "$VAE" eval --ckpt "$WORK/o-conditional" --samples 50 >"$WORK/ev.log" 2>&1 &&
    grep -q "log p(x|y)" "$WORK/ev.log" && pass "conv conditional: eval -log p(x|y)" ||
    { cat "$WORK/ev.log"; fail "conv conditional eval"; }

# 4. resume: stopped inside an epoch, the same command finishes bitwise as
#    a run never stopped
run_mpi 2 120 "$VAE" --data "$WORK/c3-chw.h5" $CONV --out "$WORK/res" --max-steps 13 >/dev/null 2>&1 ||
    fail "conv run to step 13"
run_mpi 2 120 "$VAE" --data "$WORK/c3-chw.h5" $CONV --out "$WORK/res" >"$WORK/res.log" 2>&1 &&
    grep -q "resuming from .*ckpt-0000000013.h5" "$WORK/res.log" &&
    same_ckpt "$WORK/conv-chw/ckpt-0000000040.h5" "$WORK/res/ckpt-0000000040.h5" &&
    pass "conv: stopped at step 13 and resumed, bitwise the uninterrupted run" || fail "conv resume"

# 5. --preset conv-hvae: trains on 2 ranks, resumes bitwise, and every
#    command reads it; the VampPrior and the IWAE bound train too
"$GEN" "$WORK/s12.h5" --n 200 --test 40 --side 12 --chunk 50 || fail "gen_data --side 12"
HV="--data $WORK/s12.h5 --epochs 2 --batch 20 --preset conv-hvae --conv 2,4,2 --hidden 16 --latent 3,2 --log-every 10 --seed 4"
run_mpi 2 120 "$VAE" $HV --out "$WORK/hv" >"$WORK/hv.log" 2>&1 &&
    grep -q "model conv-hvae (c2-c4-c2-16) 12x12x1-3,2 " "$WORK/hv.log" && [ -s "$WORK/hv/samples.png" ] &&
    pass "conv-hvae: trains, with figures" || { tail -5 "$WORK/hv.log"; fail "conv-hvae training"; }
run_mpi 2 120 "$VAE" $HV --out "$WORK/hv-res" --max-steps 7 >/dev/null 2>&1 &&
    run_mpi 2 120 "$VAE" $HV --out "$WORK/hv-res" >"$WORK/hv-res.log" 2>&1 &&
    grep -q "resuming from .*ckpt-0000000007.h5" "$WORK/hv-res.log" &&
    same_ckpt "$WORK/hv/ckpt-0000000020.h5" "$WORK/hv-res/ckpt-0000000020.h5" &&
    pass "conv-hvae: stopped at step 7 and resumed, bitwise the uninterrupted run" || fail "conv-hvae resume"
run_mpi 2 120 "$VAE" eval --ckpt "$WORK/hv" --samples 20 --out "$WORK/hv-ev.json" >"$WORK/hv-ev.log" 2>&1 &&
    grep -q '"nll": [0-9]' "$WORK/hv-ev.json" && pass "conv-hvae: eval" || { cat "$WORK/hv-ev.log"; fail "conv-hvae eval"; }
run_one 60 "$VAE" sample --ckpt "$WORK/hv" --n 6 --out "$WORK/hv-s" >"$WORK/hv-s.log" 2>&1 &&
    run_one 60 "$VAE" reconstruct --ckpt "$WORK/hv" --n 6 --out "$WORK/hv-r" >>"$WORK/hv-s.log" 2>&1 &&
    run_one 60 "$VAE" interpolate --ckpt "$WORK/hv" --steps 5 --out "$WORK/hv-i" >>"$WORK/hv-s.log" 2>&1 &&
    run_mpi 2 60 "$VAE" encode --ckpt "$WORK/hv" --out "$WORK/hv-e.h5" >>"$WORK/hv-s.log" 2>&1 &&
    [ -s "$WORK/hv-s.png" ] && [ -s "$WORK/hv-r.png" ] && [ -s "$WORK/hv-i.png" ] && [ -s "$WORK/hv-e.h5" ] &&
    pass "conv-hvae: sample, reconstruct, interpolate, encode" || { cat "$WORK/hv-s.log"; fail "conv-hvae commands"; }
for extra in "--prior vamp --pseudo-inputs 5" "--iw-samples 3"; do
    run_mpi 2 120 "$VAE" $HV $extra --epochs 1 --out "$WORK/hv-x" --fresh >"$WORK/hv-x.log" 2>&1 &&
        awk -F, 'NR > 1 {n++; if ($4 != $4 + 0) bad = 1} END {exit !(n == 1 && !bad)}' "$WORK/hv-x/epochs.csv" &&
        pass "conv-hvae with $extra" || { tail -5 "$WORK/hv-x.log"; fail "conv-hvae with $extra"; }
done
finish
