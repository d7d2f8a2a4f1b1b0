#!/bin/sh
# multinode.sh — vae-dist across simulated nodes (tests/nodes.sh: a network,
# UTS and mount namespace per node, TCP over a bridge), in one run: 784-400-20
# at global batch 128, 2 nodes x 1 rank against 1 node x 2 ranks, the same
# mpirun, hostfile style and binding, over the plain link and over links
# shaped with tc tbf to 10 and 1 Gbit/s (both directions); each 2-node
# case also with --compress bf16. Also measures the link itself
# (bench/comm between the two nodes: alpha, bw) and sets the measured step
# beside docs/scaling.md's model of it. Needs root (namespaces); appends to
# bench/results-multinode.md and .csv.
#
#   sh bench/multinode.sh              # REPS=3 STEPS=300 by default
#   REPS=5 DATA=/path/fm.h5 sh bench/multinode.sh
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
REPS=${REPS:-3}
STEPS=${STEPS:-300}
DATA=${DATA:-${VAE_DIST_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/vae-dist/fashion-mnist.h5}}
[ -x ./vae-dist ] && [ -x bench/comm ] && [ -x tests/gen_data ] ||
    { echo "multinode.sh: build first (make bench)" >&2; exit 69; }
[ "$(id -u)" -eq 0 ] || { echo "multinode.sh: needs root for the simulated nodes; skipped" >&2; exit 77; }
[ -f "$DATA" ] || ./vae-dist import --out "$DATA"
export top_builddir="$top" top_srcdir="$top" MPIRUN=$(command -v mpirun) TIMEOUT=$(command -v timeout)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
. "$top/tests/lib.sh"
. "$top/tests/nodes.sh"
set +u
nodes_up 2
cp "$DATA" "$WORK/fm.h5" # visible on every node
ns_hostfile "$WORK/h1x2" n1:2
ns_hostfile "$WORK/h2x1" n1:1 n2:1
csv="$top/bench/results-multinode.csv"
md="$top/bench/results-multinode.md"
[ -f "$csv" ] || echo "date,commit,link,case,metric,value" >"$csv"
stamp=$(date -u +%Y-%m-%dT%H:%MZ)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
row() { echo "$stamp,$commit,$1,$2,$3,$4" >>"$csv"; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# shape RATE: tbf on both nodes' eth0 (egress), or none
shape() {
    for n in n1 n2; do
        nsrun $n tc qdisc del dev eth0 root 2>/dev/null || true
        [ "$1" = plain ] || nsrun $n tc qdisc add dev eth0 root tbf rate "$1" burst 4mb latency 50ms
    done
}
# run HOSTFILE EXTRA...: samples/s of STEPS profiled steps (the loop's own time)
run() {
    hf=$1; shift
    rm -rf "$WORK/o"
    ns_mpirun 600 "$WORK/$hf" -np 2 "$top/vae-dist" --data "$WORK/fm.h5" --hidden 400 --latent 20 \
        --batch 128 --max-steps "$STEPS" --ckpt-every 0 --log-every 100000 --test-dataset none \
        --threads 1 --profile --out "$WORK/o" "$@" >"$WORK/log" 2>&1 || { tail -5 "$WORK/log" >&2; echo nan; return; }
    sed -n 's/^  step [0-9.]* ms, \([0-9.]*\) samples\/s.*/\1/p' "$WORK/log"
    sed -n 's/^  step \([0-9.]*\) ms.*/\1/p' "$WORK/log" >"$WORK/step"
}

{
    echo
    echo "## $stamp, commit $commit: 2 simulated nodes (REPS=$REPS, $STEPS steps each)"
    echo
    echo "784-400-20, global batch 128, one OpenBLAS thread per rank, mpirun through the nodes' own"
    echo "daemons; samples/s are medians. The 1-node case runs on n1 alone, so it does not use the link."
    echo
    echo "| link | alpha (us) | bw (GB/s) | 1 node x 2 ranks | 2 nodes x 1 rank | ratio | with --compress bf16 | ratio | step, model (ms) | step, measured (ms) |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} >>"$md"
for link in plain 10gbit 1gbit; do
    shape $link
    ns_mpirun 120 "$WORK/h2x1" -np 2 "$top/bench/comm" --budget 0.3 784-400-20 >"$WORK/comm" 2>&1 || true
    alpha=$(awk '$1 == "alpha_us" {print $2}' "$WORK/comm")
    bw=$(awk '$1 == "bw_gbs" {print $2}' "$WORK/comm")
    ar=$(awk '$1 == "allreduce_bytes" && $NF == "784-400-20" {print $4}' "$WORK/comm")
    row $link comm alpha_us "${alpha:-nan}"; row $link comm bw_gbs "${bw:-nan}"; row $link comm allreduce_ms "${ar:-nan}"
    : >"$WORK/one"; : >"$WORK/two"; : >"$WORK/twoc"; : >"$WORK/step1"; : >"$WORK/step2"
    for i in $(seq "$REPS"); do # interleaved, so that a slow moment of the machine hits all
        run h1x2 >>"$WORK/one"; cat "$WORK/step" >>"$WORK/step1"
        run h2x1 >>"$WORK/two"; cat "$WORK/step" >>"$WORK/step2"
        run h2x1 --compress bf16 >>"$WORK/twoc"
    done
    one=$(median <"$WORK/one"); two=$(median <"$WORK/two"); twoc=$(median <"$WORK/twoc")
    s1=$(median <"$WORK/step1"); s2=$(median <"$WORK/step2")
    # docs/scaling.md: step(2 nodes) = the 1-node step's compute + ring(2, n) with the link's
    # alpha and bw, the ring after backward (no overlap credited), n = 2,611,316 bytes
    model=$(awk -v s1="$s1" -v a="$alpha" -v b="$bw" 'BEGIN {
        if (a == "" || b == "" || b == 0) {print "nan"; exit}
        print s1 + (2 * a * 1e-3 + 2611316 / (b * 1e9) * 1e3)}')
    for v in "one_node_samples_s $one" "two_nodes_samples_s $two" "two_nodes_bf16_samples_s $twoc" \
        "one_node_step_ms $s1" "two_nodes_step_ms $s2" "two_nodes_step_model_ms $model"; do
        row $link vae ${v% *} ${v#* }
    done
    awk -v l=$link -v a="$alpha" -v b="$bw" -v o="$one" -v t="$two" -v c="$twoc" -v m="$model" -v s="$s2" 'BEGIN {
        printf "| %s | %s | %s | %.0f | %.0f | %.2f | %.0f | %.2f | %.2f | %.2f |\n", l, a, b, o, t, t / o, c, c / o, m, s}' >>"$md"
    echo "$link: 1x2 $one, 2x1 $two ($(awk -v t="$two" -v o="$one" 'BEGIN {printf "%.2f", t / o}')), bf16 $twoc; alpha $alpha us, bw $bw GB/s"
done
shape plain
{
    echo
    echo "Model: docs/scaling.md's ring(2, n) = 2 alpha + n / bw on top of the measured 1-node step"
    echo "(its compute is the same at local batch 64), with alpha and bw from bench/comm between the two"
    echo "nodes, no overlap credited. Rows in bench/results-multinode.csv."
} >>"$md"
finish
