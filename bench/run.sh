#!/bin/sh
# run.sh — the benchmark (`make bench`). In one run on this machine, for the
# reference model 784-400-20 at global batch 128 and a larger 784-1024-1024-64
# at batch 512 (and the convolutional VAE 28x28x1-conv32-conv64-256-20 at
# batch 128, and the two-level gated VAE with each prior at batch 100: their
# ceilings, np=1, PyTorch, np=2, memory), measures:
#   - the sgemm ceiling: OpenBLAS alone on the step's matrix products (bench/sgemm),
#     and the same products at the local batches of 2 to 512 ranks;
#   - vae-dist at np=1 (one OpenBLAS thread): samples/s, GFLOP/s, the step's
#     time split from --profile, peak resident memory per rank;
#   - PyTorch (python3-torch, CPU, one thread, same model and batch), if present;
#   - vae-dist at np=2, 4 and 8 (oversubscribed past the cores) and the
#     scaling efficiency against np=1;
#   - the allreduce's latency and bandwidth (bench/comm at np=2 and 4) and
#     the cost model's projection to 512 ranks (bench/scaling.sh,
#     docs/scaling.md);
#   - as root, 2 simulated nodes x 1 rank against 1 node x 2 ranks over plain
#     and shaped links (bench/multinode.sh, bench/results-multinode.md).
# Each figure is the median of REPS runs (default 3), and only ratios taken
# in this one run are compared. Writes bench/results.md and bench/results.csv.
#
#   make bench                       # or: sh bench/run.sh
#   REPS=5 DATA=/path/fm.h5 sh bench/run.sh
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
VAE=${VAE:-./vae-dist}
SGEMM=${SGEMM:-bench/sgemm}
COMM=${COMM:-bench/comm}
GEN=${GEN:-tests/gen_data}
[ -x "$VAE" ] && [ -x "$SGEMM" ] && [ -x "$COMM" ] ||
    { echo "run.sh: build first (make bench builds all three)" >&2; exit 69; }
DATA=${DATA:-${VAE_DIST_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/vae-dist/fashion-mnist.h5}}
[ -f "$DATA" ] || "$VAE" import --out "$DATA"
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vd-bench-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch, h5py' 2>/dev/null; then PY=$p; break; fi
done

median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# field NAME FILE: the number after "NAME" on vae-dist's --profile lines
prof() {
    case $1 in
    samples) sed -n 's/.*ms, \([0-9.]*\) samples\/s.*/\1/p' "$2" ;;
    gflops) sed -n 's/.* \([0-9.]*\) GFLOP\/s per rank.*/\1/p' "$2" ;;
    step) sed -n 's/^  step \([0-9.]*\) ms.*/\1/p' "$2" ;;
    rss) sed -n 's/.*MiB (rank 0), \([0-9.]*\) MiB (max over ranks).*/\1/p' "$2" ;;
    allreduce) sed -n "s/^  reduce *\([0-9.]*\) ms .*/\1/p" "$2" ;; # the profile's reduction row
    *) sed -n "s/^  $1 *\([0-9.]*\) ms .*/\1/p" "$2" ;;
    esac
}
# vae NP HIDDEN LATENT BATCH STEPS: one profiled run; its log is $TMP/log
vae() {
    rm -rf "$TMP/run"
    timeout 900 mpirun --oversubscribe -np "$1" "$VAE" --data "${VD_DATA:-$DATA}" --hidden "$2" --latent "$3" \
        --batch "$4" --max-steps "$5" --profile --ckpt-every 0 --log-every 100000 \
        --test-dataset none --out "$TMP/run" ${VD_EXTRA:-} >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; return 1; }
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
cores=$(getconf _NPROCESSORS_ONLN)  # not nproc: it obeys OMP_NUM_THREADS
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
ompi=$(ver openmpi-bin); blas=$(ver libopenblas0-pthread); hdf5=$(ver libhdf5-openmpi-103-1)
torchv=$([ -n "$PY" ] && "$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "absent")

csv=bench/results.csv md=bench/results.md
echo "model,batch,metric,value" >"$csv.tmp"
row() { echo "$1,$2,$3,$4" >>"$csv.tmp"; }
{
    echo "# vae-dist benchmark"
    echo
    echo "$(date -u +%Y-%m-%d), $cpu, $cores cores; Open MPI $ompi, OpenBLAS $blas, HDF5 $hdf5,"
    echo "PyTorch $torchv; one OpenBLAS (or torch) thread per rank; medians of $REPS runs."
    echo "OpenBLAS build and kernels: $("$SGEMM" --config)."
    [ -z "${OPENBLAS_CORETYPE:-}" ] ||
        echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE in the environment chose the kernels, not OpenBLAS's detection."
    echo "Reproduce: \`make bench\` (or \`sh bench/run.sh\`)."
} >"$md.tmp"

for spec in "784-400-20 400 20 128 1000" "784-1024-1024-64 1024,1024 64 512 150"; do
    set -- $spec
    name=$1 hidden=$2 latent=$3 batch=$4 steps=$5
    echo "== $name, batch $batch"
    ceil=$(for i in $(seq "$REPS"); do "$SGEMM" --hidden "$hidden" --latent "$latent" --batch "$batch" |
        sed -n 's/sgemm_gflops=\([0-9.]*\).*/\1/p'; done | median)
    # the same products at the local batches of bench/scaling.sh's ranks
    sg=""
    for lp in 2 4 8 16 32 64 128 256 512; do
        lb=$((batch / lp))
        [ "$lb" -ge 1 ] || continue
        sg="$sg $lb $(for i in $(seq "$REPS"); do "$SGEMM" --hidden "$hidden" --latent "$latent" --batch "$lb" \
            --reps $((256 / lb + 2)) | sed -n 's/sgemm_gflops=\([0-9.]*\).*/\1/p'; done | median)"
    done
    for i in $(seq "$REPS"); do vae 1 "$hidden" "$latent" "$batch" "$steps"; cp "$TMP/log" "$TMP/np1.$i"; done
    m1() { for i in $(seq "$REPS"); do prof "$1" "$TMP/np1.$i"; done | median; }
    s1=$(m1 samples) g1=$(m1 gflops) st1=$(m1 step) rss1=$(m1 rss)
    split=""
    for part in data forward backward allreduce optimizer; do split="$split $(m1 $part)"; done
    tps="absent"
    if [ -n "$PY" ]; then
        tps=$(for i in $(seq "$REPS"); do "$PY" bench/torch_vae.py --data "$DATA" --steps "$steps" \
            --warmup 20 --hidden "$hidden" --latent "$latent" --batch "$batch" --threads 1 |
            sed -n 's/^samples_per_s=//p'; done | median)
    fi
    row "$name" "$batch" sgemm_ceiling_gflops "$ceil"
    set -- $sg
    while [ $# -ge 2 ]; do row "$name" "$batch" "sgemm_b$1_gflops" "$2"; shift 2; done
    row "$name" "$batch" np1_samples_per_s "$s1"
    row "$name" "$batch" np1_gflops "$g1"
    row "$name" "$batch" np1_peak_rss_mib "$rss1"
    row "$name" "$batch" torch_1thread_samples_per_s "$tps"
    set -- $split
    for part in data forward backward allreduce optimizer; do
        row "$name" "$batch" "np1_${part}_ms" "$1"
        shift
    done
    {
        echo
        echo "## $name, global batch $batch"
        echo
        echo "| measure | value |"
        echo "| --- | --- |"
        echo "| sgemm ceiling (the step's products alone) | $ceil GFLOP/s |"
        echo "| vae-dist np=1 | $s1 samples/s, $g1 GFLOP/s, $(awk -v a="$g1" -v b="$ceil" 'BEGIN {printf "%.2f", a / b}') of the ceiling |"
        if [ "$tps" = absent ]; then echo "| PyTorch, 1 thread | absent (no python3-torch) |"
        else echo "| PyTorch, 1 thread | $tps samples/s; vae-dist np=1 is $(awk -v a="$s1" -v b="$tps" 'BEGIN {printf "%.2fx", a / b}') |"; fi
        echo "| peak resident memory, np=1 | $rss1 MiB |"
        set -- $split
        echo "| step split at np=1 (ms) | data $1, forward $2, backward $3, allreduce $4, optimizer $5 (total $st1) |"
        echo
        echo "| ranks | samples/s (global) | vs np=1 | efficiency | step ms | allreduce ms | peak RSS per rank MiB |"
        echo "| --- | --- | --- | --- | --- | --- | --- |"
        echo "| 1 | $s1 | 1.00 | 1.00 | $st1 | $4 | $rss1 |"
    } >>"$md.tmp"
    # the ceiling at np=2: two sgemm copies at once, each at the local batch
    two=$(for i in $(seq "$REPS"); do
        "$SGEMM" --hidden "$hidden" --latent "$latent" --batch $((batch / 2)) >"$TMP/sg.a" &
        "$SGEMM" --hidden "$hidden" --latent "$latent" --batch $((batch / 2)) >"$TMP/sg.b"
        wait
        cat "$TMP/sg.a" "$TMP/sg.b" | sed -n 's/sgemm_gflops=\([0-9.]*\).*/\1/p' | awk '{s += $1} END {print s / NR}'
    done | median)
    row "$name" "$batch" sgemm_two_copies_half_batch_gflops "$two"
    # np=2 through MPI_Allreduce (--reduce mpi): one blocking call after
    # backward (--bucket 0, rows np2_blocking_*), and buckets posted during
    # it (--bucket 1, rows np2_bucketed_*); and the shared-memory sum made
    # inside Adam's pass instead of during backward (rows np2_adam_*)
    for vb in "blocking:--reduce mpi --bucket 0" "bucketed:--reduce mpi --bucket 1" \
        "adam:--node-sum adam"; do
        v=${vb%%:*}
        for i in $(seq "$REPS"); do
            VD_EXTRA="${vb#*:}" vae 2 "$hidden" "$latent" "$batch" "$steps"
            cp "$TMP/log" "$TMP/$v.$i"
        done
        mb() { for i in $(seq "$REPS"); do prof "$1" "$TMP/$v.$i"; done | median; }
        eval "s_$v=$(mb samples) st_$v=$(mb step) ar_$v=$(mb allreduce)"
        row "$name" "$batch" "np2_${v}_samples_per_s" "$(mb samples)"
        for part in data forward backward allreduce optimizer step; do
            row "$name" "$batch" "np2_${v}_${part}_ms" "$(mb $part)"
        done
    done
    for np in 2 4 8; do
        for i in $(seq "$REPS"); do vae "$np" "$hidden" "$latent" "$batch" "$steps"; cp "$TMP/log" "$TMP/np$np.$i"; done
        mn() { for i in $(seq "$REPS"); do prof "$1" "$TMP/np$np.$i"; done | median; }
        s=$(mn samples) st=$(mn step) ar=$(mn allreduce) rss=$(mn rss)
        row "$name" "$batch" "np${np}_samples_per_s" "$s"
        row "$name" "$batch" "np${np}_allreduce_ms" "$ar"
        for part in data forward backward optimizer; do
            row "$name" "$batch" "np${np}_${part}_ms" "$(mn $part)"
        done
        if [ "$np" = 2 ]; then
            for v in blocking bucketed adam; do
                eval "sv=\$s_$v stv=\$st_$v arv=\$ar_$v"
                case $v in
                blocking) what="--reduce mpi --bucket 0: one MPI_Allreduce after backward" ;;
                bucketed) what="--reduce mpi: MPI_Iallreduce buckets during backward" ;;
                adam) what="--node-sum adam: each slice summed inside the Adam pass" ;;
                esac
                echo "| 2, $what | $sv | $(awk -v a="$sv" -v b="$s1" 'BEGIN {printf "%.2f", a / b}') | $(awk -v a="$sv" -v b="$s1" 'BEGIN {printf "%.2f", a / b / 2}') | $stv | $arv | |" >>"$md.tmp"
            done
        fi
        echo "| $np | $s | $(awk -v a="$s" -v b="$s1" 'BEGIN {printf "%.2f", a / b}') | $(awk -v a="$s" -v b="$s1" -v n="$np" 'BEGIN {printf "%.2f", a / b / n}') | $st | $ar | $rss |" >>"$md.tmp"
    done
    echo >>"$md.tmp"
    echo "Compute ceiling at np=2: two sgemm copies at once at batch $((batch / 2)) run at $two GFLOP/s each." >>"$md.tmp"
done
# Models beyond the MLPs above, each with the same measures: the ceiling of
# its own products (one step's sgemm calls, recorded by bench/sgemm_trace.so
# and replayed alone by bench/sgemm --products), np=1 against it and against
# PyTorch's same net, np=2 against np=1, peak memory, the step's split.
TRACE=${TRACE:-bench/sgemm_trace.so}
TRACE_ABS=$(cd "$(dirname "$TRACE")" && pwd)/$(basename "$TRACE")
# model_bench NAME TITLE BATCH STEPS "VAE OPTIONS" TORCH_SCRIPT "TORCH OPTIONS"
model_bench() {
    name=$1 title=$2 batch=$3 steps=$4 vopts=$5 tscript=$6 topts=$7
    echo "== $name, batch $batch"
    ceil=nan
    if [ -f "$TRACE" ]; then
        rm -rf "$TMP/run" "$TMP/trace"
        timeout 600 mpirun -np 1 -x LD_PRELOAD="$TRACE_ABS" -x VD_SGEMM_TRACE="$TMP/trace" \
            "$VAE" --data "$DATA" $vopts --batch "$batch" --max-steps 1 --test-dataset none \
            --out "$TMP/run" >/dev/null 2>&1 || rm -f "$TMP/trace"
        [ -s "$TMP/trace" ] && ceil=$(for i in $(seq "$REPS"); do "$SGEMM" --products "$TMP/trace" \
            --reps 5 | sed -n 's/sgemm_gflops=\([0-9.]*\).*/\1/p'; done | median)
    fi
    for np in 1 2; do
        for i in $(seq "$REPS"); do
            rm -rf "$TMP/run"
            timeout 900 mpirun --oversubscribe -np "$np" "$VAE" --data "$DATA" $vopts --batch "$batch" \
                --max-steps "$steps" --profile --ckpt-every 0 --log-every 100000 \
                --test-dataset none --out "$TMP/run" >"$TMP/m$np.$i" 2>&1 ||
                { cat "$TMP/m$np.$i" >&2; return 1; }
        done
    done
    mm() { for i in $(seq "$REPS"); do prof "$2" "$TMP/m$1.$i"; done | median; }
    s1=$(mm 1 samples) g1=$(mm 1 gflops) rss1=$(mm 1 rss) s2=$(mm 2 samples) rss2=$(mm 2 rss)
    split=""
    for part in data forward backward allreduce optimizer step; do split="$split $(mm 1 $part)"; done
    tps="absent"
    if [ -n "$PY" ]; then
        tps=$(for i in $(seq "$REPS"); do "$PY" "bench/$tscript" --data "$DATA" $topts \
            --batch "$batch" --threads 1 | sed -n 's/^samples_per_s=//p'; done | median)
    fi
    row "$name" "$batch" sgemm_ceiling_gflops "$ceil"
    row "$name" "$batch" np1_samples_per_s "$s1"
    row "$name" "$batch" np1_gflops "$g1"
    row "$name" "$batch" np1_peak_rss_mib "$rss1"
    row "$name" "$batch" torch_1thread_samples_per_s "$tps"
    row "$name" "$batch" np2_samples_per_s "$s2"
    row "$name" "$batch" np2_peak_rss_mib "$rss2"
    set -- $split
    {
        echo
        echo "## $title, global batch $batch"
        echo
        echo "\`$vopts\`"
        echo
        echo "| measure | value |"
        echo "| --- | --- |"
        echo "| sgemm ceiling (one step's recorded products alone) | $ceil GFLOP/s |"
        echo "| vae-dist np=1 | $s1 samples/s, $g1 GFLOP/s, $(awk -v a="$g1" -v b="$ceil" 'BEGIN {printf "%.2f", a / b}') of the ceiling |"
        if [ "$tps" = absent ]; then echo "| PyTorch, 1 thread | absent (no python3-torch) |"
        else echo "| PyTorch, 1 thread (bench/$tscript) | $tps samples/s; vae-dist np=1 is $(awk -v a="$s1" -v b="$tps" 'BEGIN {printf "%.2fx", a / b}') |"; fi
        echo "| vae-dist np=2 | $s2 samples/s, $(awk -v a="$s2" -v b="$s1" 'BEGIN {printf "%.2fx", a / b}') np=1 |"
        echo "| peak resident memory per rank, np=1 / np=2 | $rss1 / $rss2 MiB |"
        echo "| step split at np=1 (ms) | data $1, forward $2, backward $3, reduce $4, optimizer $5 (total $6) |"
    } >>"$md.tmp"
}
model_bench conv32-64-256-20 "28x28x1-conv32-conv64-256-20 (1,691,369 parameters)" 128 60 \
    "--conv 32,64 --hidden 256 --latent 20" torch_vae.py "--steps 40 --warmup 5 --conv 32,64 --hidden 256 --latent 20"
# The two-level VAE of Tomczak and Welling (gated 300-unit layers, z of
# 40 + 40) with each prior; the VampPrior's pseudo-inputs split over the ranks.
model_bench hvae-300x2-40x2-standard "Two-level gated VAE, standard prior (2,431,024 parameters)" 100 120 \
    "--hidden 300,300 --latent 40,40 --activation gated" torch_hvae.py "--steps 60 --warmup 5 --latent 40,40"
model_bench hvae-300x2-40x2-vamp "Two-level gated VAE, VampPrior of 500 (2,823,024 parameters)" 100 60 \
    "--hidden 300,300 --latent 40,40 --activation gated --prior vamp" torch_hvae.py \
    "--steps 30 --warmup 5 --latent 40,40 --prior vamp"
# The convolutional two-level model (--preset conv-hvae, about 1.3 GFLOP per
# image per step), and its peak memory per rank as the batch grows, with
# and without --accumulate holding a large batch in a part's memory.
model_bench conv-hvae "Convolutional two-level VAE, --preset conv-hvae (2,210,861 parameters)" 100 6 \
    "--preset conv-hvae" torch_hvae.py "--steps 3 --warmup 1 --preset conv-hvae"
echo "== conv-hvae, peak memory against the batch"
mem=""
for spec in "25 1" "50 1" "100 1" "200 1" "50 4"; do
    set -- $spec
    rm -rf "$TMP/run"
    timeout 900 mpirun -np 1 "$VAE" --data "$DATA" --preset conv-hvae --batch "$1" --accumulate "$2" \
        --max-steps 2 --profile --ckpt-every 0 --log-every 100000 --test-dataset none \
        --out "$TMP/run" >"$TMP/mem" 2>&1 || { cat "$TMP/mem" >&2; continue; }
    rss=$(prof rss "$TMP/mem")
    row conv-hvae "$1" "np1_accumulate$2_peak_rss_mib" "$rss"
    mem="$mem| $(($1 * $2)) | $1 | $2 | $rss |
"
done
{
    echo
    echo "Peak resident memory of conv-hvae at np=1 (2 steps; the work holds at least 64 rows), and"
    echo "a step of 200 in 4 parts of 50 (--batch 50 --accumulate 4):"
    echo
    echo "| samples per step | --batch (a part) | --accumulate | peak RSS MiB |"
    echo "| --- | --- | --- | --- |"
    printf "%s" "$mem"
} >>"$md.tmp"

{
    echo
    echo "np=4 and np=8 run $cores cores oversubscribed: they show per-rank overheads, not scaling."
    echo "The step split comes from vae-dist's --profile (rank 0). Rows without --reduce run the"
    echo "default, --reduce shm: gradients summed in node shared memory, Adam sharded over the"
    echo "ranks, the chunks of each slice summed as backward finishes them; there the allreduce"
    echo "column (the profile's \"reduce\") is what is left after backward: the last chunks' sums"
    echo "and the barrier. With --node-sum adam each slice is summed inside the Adam pass, the"
    echo "column is the barrier that agrees the step's verdict, and the optimizer holds the sums."
    echo "With --reduce mpi --bucket 1 it is the wait left after backward, the buckets posted"
    echo "during it."
} >>"$md.tmp"

# Data larger than the budget: a generated file of 400,000 28x28 uint8 rows
# (314 MB), streamed within a 64 MiB budget, against holding it resident;
# and the resident blocks read independently or with MPI-IO collective reads.
if [ -x "$GEN" ]; then
    echo "== streaming"
    "$GEN" "$TMP/big.h5" --n 400000 --test 0 --side 28 --chunk 256 >/dev/null
    big=$(du -m "$TMP/big.h5" | cut -f1)
    for mode in "stream --data-budget 64" "resident"; do
        set -- $mode
        VD_DATA="$TMP/big.h5" VD_EXTRA="--data-mode $mode" vae 1 400 20 128 1500
        echo "$1 $(prof samples "$TMP/log") $(prof rss "$TMP/log") $(prof data "$TMP/log")" >>"$TMP/stream"
    done
    for pio in "" "--parallel-io"; do
        for i in $(seq "$REPS"); do
            VD_DATA="$TMP/big.h5" VD_EXTRA="--data-mode resident $pio" vae 2 400 20 128 10
            sed -n 's/.* read in \([0-9.]*\) s.*/\1/p' "$TMP/log"
        done | median >>"$TMP/pio"
    done
    set -- $(cat "$TMP/stream") $(cat "$TMP/pio")
    row data 128 stream_budget64_samples_per_s "$2"
    row data 128 stream_budget64_peak_rss_mib "$3"
    row data 128 stream_budget64_data_ms "$4"
    row data 128 resident_samples_per_s "$6"
    row data 128 resident_peak_rss_mib "$7"
    row data 128 resident_data_ms "$8"
    row data 128 np2_block_read_independent_s "$9"
    row data 128 np2_block_read_collective_s "${10}"
    {
        echo
        echo "## Data larger than memory"
        echo
        echo "A generated file of 400,000 rows of 28x28 uint8 ($big MB on disk, chunks of 256 rows),"
        echo "784-400-20 at batch 128, np=1, 1500 steps:"
        echo
        echo "| mode | samples/s | peak RSS MiB | data ms per step |"
        echo "| --- | --- | --- | --- |"
        echo "| --data-mode stream --data-budget 64 | $2 | $3 | $4 |"
        echo "| --data-mode resident | $6 | $7 | $8 |"
        echo
        echo "Reading the resident blocks at np=2 (median of $REPS): independent reads $9 s,"
        echo "MPI-IO collective reads (--parallel-io) ${10} s."
    } >>"$md.tmp"
fi
# bench/comm's "key value" and "allreduce_bytes N ms T" lines as rows
# comm,RANKS,METRIC,VALUE; then the cost model over all the rows. A failure
# here costs the projection, not the measurements above.
for np in 2 4; do
    echo "== bench/comm, np=$np"
    timeout 120 mpirun --oversubscribe -np "$np" "$COMM" >"$TMP/comm" 2>"$TMP/comm.err" ||
        { cat "$TMP/comm" "$TMP/comm.err" >&2; continue; }
    awk -v np="$np" '$1 == "allreduce_bytes" {print "comm," np ",allreduce_ms_" $2 "," $4; next}
        NF == 2 && $1 !~ /^#/ {print "comm," np "," $1 "," $2}' "$TMP/comm" >>"$csv.tmp"
done
if sh bench/scaling.sh "$csv.tmp" >"$TMP/model.md" &&
    sh bench/scaling.sh --csv "$csv.tmp" >"$TMP/model.csv"; then
    { echo; cat "$TMP/model.md"; } >>"$md.tmp"
    cat "$TMP/model.csv" >>"$csv.tmp"
else
    echo "run.sh: no projection (bench/scaling.sh failed)" >&2
fi
mv "$csv.tmp" "$csv"
mv "$md.tmp" "$md"
cat "$md"
# across simulated nodes (root only): bench/results-multinode.md and .csv
if [ "$(id -u)" -eq 0 ]; then
    echo "== 2 simulated nodes against 1 (bench/multinode.sh)"
    REPS=$REPS DATA=$DATA sh bench/multinode.sh || echo "run.sh: bench/multinode.sh failed" >&2
fi
