#!/bin/sh
# vae-dist across simulated nodes (tests/nodes.sh: a network, UTS and mount
# namespace per node, mpirun on n1 reaching the others over a bridge), so the
# multi-node path runs for real: shared-memory sums on each node and an
# allreduce between nodes. Checks: 2 nodes x 2 ranks engage the shared-memory
# sum on both nodes, repeat bitwise and equal --reduce mpi bitwise; uneven
# nodes fall back to the allreduce with a note; 3 nodes x 2 ranks repeat
# bitwise; every process of one node killed mid-run ends the job within 30 s,
# and the last checkpoint resumes; with one node's link cut, every rank on
# both sides ends by itself (the stall watchdog) and the run resumes once
# the link is back; under README's settings for mpirun on several nodes,
# mpirun itself ends within --stall-timeout + 60 s of the cut. Skipped
# (exit 77) without root.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/nodes.sh"
need_h5diff

nodes_up 3
cd "$WORK"
"$GEN" "$WORK/data.h5" --n 4000 --test 500 --side 16 --type f32 >/dev/null || { fail gen_data; finish; }
ARGS="train --data $WORK/data.h5 --epochs 2 --batch 100 --hidden 64 --latent 8"
ns_hostfile "$WORK/hosts-2x2" n1:2 n2:2
ns_hostfile "$WORK/hosts-2+1" n1:2 n2:1
ns_hostfile "$WORK/hosts-3x2" n1:2 n2:2 n3:2

final() { echo "$1/$(cat "$1/latest" 2>/dev/null)"; }
# same A B WHAT: the final checkpoints of run directories A and B are equal
same() {
    ok=1
    for g in /params /adam/m /adam/v; do
        "$H5DIFF" -q "$(final "$1")" "$(final "$2")" $g >/dev/null 2>&1 || ok=0
    done
    [ $ok -eq 1 ] && pass "$3: bitwise identical (/params, /adam/m, /adam/v)" || fail "$3: checkpoints differ"
}
# train NAME HOSTFILE NP ARGS...: one run into $WORK/NAME, log in NAME.log;
# it must end 0 (vae-dist compares the replicas' checksums at each checkpoint)
train() {
    name=$1; hf=$2; np=$3; shift 3
    ns_mpirun 120 "$hf" -np "$np" "$VAE" $ARGS --out "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && pass "$name: exit 0 ($(grep -m1 '^done:' "$WORK/$name.log"))" ||
        { tail -n 20 "$WORK/$name.log"; fail "$name: exit $rc"; }
}

# 1. 2 nodes x 2 ranks
train 2x2 "$WORK/hosts-2x2" 4
grep -q "^gradients: summed in shared memory, 2 ranks per node on 2 nodes" "$WORK/2x2.log" &&
    pass "2x2: $(grep -m1 '^gradients:' "$WORK/2x2.log")" || fail "2x2: the shared-memory sum did not engage on both nodes"
[ "$(grep -c '^epoch 2 done' "$WORK/2x2.log")" -eq 1 ] && pass "2x2: one rank prints" || fail "2x2: output repeated"
train 2x2-again "$WORK/hosts-2x2" 4
same 2x2 2x2-again "2x2 rerun"
train 2x2-mpi "$WORK/hosts-2x2" 4 --reduce mpi
grep -q "^gradients: summed in shared memory" "$WORK/2x2-mpi.log" && fail "2x2 --reduce mpi used shared memory"
same 2x2 2x2-mpi "2x2 shared memory against --reduce mpi"

# 2. uneven nodes: 2 ranks on n1, 1 on n2
train 2+1 "$WORK/hosts-2+1" 3
grep -q "^vae-dist: note: the nodes hold different numbers of ranks; summing gradients with MPI_Allreduce instead (--reduce mpi)" \
    "$WORK/2+1.log" && pass "2+1: falls back to the allreduce, with its note" ||
    { cat "$WORK/2+1.log"; fail "2+1: no fallback note"; }

# 3. 3 nodes x 2 ranks (6 ranks on this machine's cores)
train 3x2 "$WORK/hosts-3x2" 6 --batch 120
grep -q "^gradients: summed in shared memory, 2 ranks per node on 3 nodes" "$WORK/3x2.log" &&
    pass "3x2: $(grep -m1 '^gradients:' "$WORK/3x2.log")" || fail "3x2: the shared-memory sum did not engage on 3 nodes"
train 3x2-again "$WORK/hosts-3x2" 6 --batch 120
same 3x2 3x2-again "3x2 rerun"

# 4. every process of n2 (its orted and both ranks) killed with SIGKILL
#    mid-run: the ranks on n1 and mpirun end by themselves within 30 s, not
#    with 0, and the last checkpoint resumes
KARGS="--epochs 200 --log-every 5 --out $WORK/k"
ns_mpirun 120 "$WORK/hosts-2x2" -np 4 "$VAE" $ARGS $KARGS >"$WORK/k.log" 2>&1 &
job=$!
i=0; while [ ! -f "$WORK/k/latest" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
victims=$(node_procs n2 | tr '\n' ' ')
ranks=$(node_pids n2 vae-dist | wc -l)
start=$(date +%s)
node_kill KILL n2
wait $job; rc=$?
took=$(($(date +%s) - start))
# mpirun may return while n1's ranks, killed, still exit (a sanitizer
# build's exit takes a while): they must be gone within the same 30 s
i=0; while [ -n "$(node_procs n1)" ] && [ $((took + i / 10)) -le 30 ]; do sleep 0.1; i=$((i + 1)); done
left=$(node_procs n1 | tr '\n' ' ')
if [ "$ranks" -eq 2 ] && [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && [ $took -le 30 ] && [ -z "$left" ]; then
    pass "n2 killed ($ranks ranks and orted: $victims): the job ended in ${took}s, exit $rc, nothing left on n1 $((i / 10)).$((i % 10)) s after mpirun"
else
    tail -n 20 "$WORK/k.log"
    fail "n2 killed ($ranks ranks of: $victims): exit $rc after ${took}s, left on n1: ${left:-nothing}"
fi
last=$(cat "$WORK/k/latest" 2>/dev/null)
step=$(echo "$last" | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/')
ns_mpirun 120 "$WORK/hosts-2x2" -np 4 "$VAE" $ARGS $KARGS --max-steps $((step + 10)) >"$WORK/k2.log" 2>&1 &&
    grep -q "^resuming from .*$last" "$WORK/k2.log" &&
    pass "after the node's loss: $(grep -m1 '^resuming from' "$WORK/k2.log" | sed "s|$WORK/||")" ||
    { tail -n 20 "$WORK/k2.log"; fail "the last checkpoint ($last) did not resume after the node's loss"; }
# 5. n2's link cut mid-run (eth0 down in its namespace): every rank, on both
#    sides of the cut, ends by itself (--stall-timeout 5) with a line naming
#    its rank, host, step and wait, and rank 0 records "failed 69" in
#    RUN/status. Open MPI's mpirun waits minutes for the daemon it cannot
#    reach (the batch scripts end it once rank 0 has ended), so the test
#    ends it too; with VD_TEST_MPIRUN_WAIT=S (by hand) it first watches
#    mpirun for S s after the cut and says whether it still runs. With the
#    link back, the same command resumes.
WAIT=${VD_TEST_MPIRUN_WAIT:-0}
LARGS="--epochs 200 --log-every 5 --stall-timeout 5 --out $WORK/cut"
ns_mpirun $((WAIT + 120)) "$WORK/hosts-2x2" -np 4 "$VAE" $ARGS $LARGS >"$WORK/cut.log" 2>&1 &
job=$!
i=0; while [ ! -f "$WORK/cut/latest" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
# mid-epoch, past the checkpoint (at an epoch's end the watchdog allows
# ten times the timeout for rank 0's writing): after the next progress line
n=$(grep -c "samples/s" "$WORK/cut.log"); i=0
while [ "$(grep -c "samples/s" "$WORK/cut.log")" -le "$n" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
start=$(date +%s)
nsrun n2 ip link set eth0 down
i=0
while { [ -n "$(node_pids n1 vae-dist)" ] || [ -n "$(node_pids n2 vae-dist)" ]; } && [ $i -lt 300 ]; do
    sleep 0.1; i=$((i + 1))
done
took=$(($(date +%s) - start))
left="$(node_pids n1 vae-dist) $(node_pids n2 vae-dist)"
lines=$(grep -c "^vae-dist: rank [0-9] on n[12] stalled at step [0-9]*: .* made no progress for [0-9]* s (--stall-timeout 5)" "$WORK/cut.log")
# (n2's own lines travel through its daemon, over the cut link, and are
# lost; nothing can reach n2 to end its ranks, so they ended themselves.
# Of n1's two ranks, the first to stall ends the job, and mpirun may kill
# the other before its own line: one line is what the job must print)
if [ -z "$(echo $left)" ] && [ $took -le 20 ] && [ "$lines" -ge 1 ] &&
    grep -q "^failed 69 " "$WORK/cut/status"; then
    pass "n2's link cut: all 4 ranks, on both sides, ended by themselves within ${took}s; n1's ranks said: $(grep -m1 'stalled at' "$WORK/cut.log" | cut -c1-90)...; status: $(cat "$WORK/cut/status")"
else
    tail -n 20 "$WORK/cut.log"
    fail "n2's link cut: after ${took}s ranks left: ${left}; $lines stall lines; status: $(cat "$WORK/cut/status" 2>/dev/null)"
fi
if [ "$WAIT" -gt 0 ]; then
    while _nd_alive $job && [ $(($(date +%s) - start)) -lt "$WAIT" ]; do sleep 1; done
    _nd_alive $job && echo "mpirun still running $(($(date +%s) - start)) s after the cut" ||
        echo "mpirun ended $(($(date +%s) - start)) s after the cut"
fi
for p in $(node_pids n1 mpirun) $(node_pids n1 orted) $(node_pids n2 orted); do kill -9 $p 2>/dev/null; done
wait $job 2>/dev/null
nsrun n2 ip link set eth0 up
last=$(cat "$WORK/cut/latest" 2>/dev/null)
step=$(echo "$last" | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/')
ns_mpirun 120 "$WORK/hosts-2x2" -np 4 "$VAE" $ARGS $LARGS --max-steps $((step + 10)) >"$WORK/cut2.log" 2>&1 &&
    grep -q "^resuming from .*$last" "$WORK/cut2.log" &&
    pass "the link back: the same command resumes ($(grep -m1 '^resuming from' "$WORK/cut2.log" | sed "s|$WORK/||"))" ||
    { tail -n 20 "$WORK/cut2.log"; fail "after the link came back, $last did not resume"; }

# 6. The same cut under the settings README gives for mpirun on several
#    nodes (mpirun checks the links to its daemons): mpirun itself ends
#    within --stall-timeout + 60 s, not only the ranks; the ranks beyond the
#    cut end by themselves; with the link back the same command resumes.
KA=$(sed -n 's/^export \(OMPI_MCA_oob_tcp_keepalive_time=.*\)$/\1/p' "$top_srcdir/README.md")
[ -n "$KA" ] || { fail "README gives no OMPI_MCA_oob_tcp_keepalive settings for mpirun"; finish; }
#    A rank reads them from its environment, which mpirun fills on both
#    nodes from --mca as from exported OMPI_MCA_* variables, but not from
#    a parameter file (docs/faults-and-resume.md); OMPI_MCA_orte_hnp_uri
#    tells it mpirun started it.
seen() { # seen MPIRUN-ARGS...: "seen HOST KEEPALIVE-TIME hnp" from each of 4 ranks
    ns_mpirun 60 "$WORK/hosts-2x2" -np 4 "$@" \
        sh -c 'echo "seen $(hostname) ${OMPI_MCA_oob_tcp_keepalive_time:-unset} ${OMPI_MCA_orte_hnp_uri:+hnp}"' 2>&1
}
printf 'oob_tcp_keepalive_time = 15\n' >"$WORK/ka.conf"
mca=$(seen --mca oob_tcp_keepalive_time 15)
file=$(export OMPI_MCA_mca_base_param_files="$WORK/ka.conf"; seen)
[ "$(echo "$mca" | grep -c '^seen n1 15 hnp$')" -eq 2 ] && [ "$(echo "$mca" | grep -c '^seen n2 15 hnp$')" -eq 2 ] &&
    pass "--mca oob_tcp_keepalive_time 15 is in every rank's environment, on both nodes, with OMPI_MCA_orte_hnp_uri" ||
    fail "--mca oob_tcp_keepalive_time 15, as the ranks see it: $mca"
[ "$(echo "$file" | grep -c '^seen n[12] unset hnp$')" -eq 4 ] &&
    pass "oob_tcp_keepalive_time in a parameter file is in no rank's environment" ||
    fail "a parameter file's oob_tcp_keepalive_time, as the ranks see it: $file"
ST=5
KARGS="--epochs 200 --log-every 5 --stall-timeout $ST --out $WORK/cut-ka"
(
    # shellcheck disable=SC2086 # VAR=value words, as README exports them
    export $KA
    ns_mpirun 300 "$WORK/hosts-2x2" -np 4 "$VAE" $ARGS $KARGS
) >"$WORK/cut-ka.log" 2>&1 &
job=$!
i=0; while [ ! -f "$WORK/cut-ka/latest" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
n=$(grep -c "samples/s" "$WORK/cut-ka.log"); i=0
while [ "$(grep -c "samples/s" "$WORK/cut-ka.log")" -le "$n" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
start=$(date +%s)
nsrun n2 ip link set eth0 down
while _nd_alive $job && [ $(($(date +%s) - start)) -le $((ST + 70)) ]; do sleep 0.2; done
took=$(($(date +%s) - start))
if _nd_alive $job; then
    rc=running
else
    wait $job; rc=$?
fi
left=$(node_procs n1 | tr '\n' ' ')
if [ "$rc" != running ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] &&
    [ $took -le $((ST + 60)) ] && [ -z "$left" ]; then
    pass "n2's link cut, mpirun checking its links ($KA): mpirun ended the job in ${took}s (exit $rc), nothing left on n1"
else
    tail -n 20 "$WORK/cut-ka.log"
    fail "n2's link cut, mpirun checking its links: mpirun ${rc} after ${took}s (limit $((ST + 60))), left on n1: ${left:-nothing}"
fi
grep -q "^vae-dist: rank [0-9] on n1 stalled at step [0-9]*: .*(--stall-timeout $ST).*, once mpirun has seen it (at most [0-9]* s)" \
    "$WORK/cut-ka.log" && grep -q "^failed 69 " "$WORK/cut-ka/status" &&
    pass "n1's ranks said: $(grep -m1 'stalled at' "$WORK/cut-ka.log" | cut -c1-60)...$(grep -m1 'stalled at' "$WORK/cut-ka.log" | sed 's/.*\(, once mpirun.*\)/\1/'); status: $(cat "$WORK/cut-ka/status")" ||
    { tail -n 20 "$WORK/cut-ka.log"; fail "no stall line waiting for mpirun, or no 'failed 69' in RUN/status"; }
# beyond the cut nothing can reach n2's ranks: they end by themselves once
# they have waited for mpirun (their line is lost with the link)
grace=$(grep -m1 -o 'at most [0-9]* s' "$WORK/cut-ka.log" | tr -dc 0-9)
i=0
while [ -n "$(node_pids n2 vae-dist)" ] && [ $i -lt $(((ST + ${grace:-0} + 10) * 10)) ]; do sleep 0.1; i=$((i + 1)); done
[ -z "$(node_pids n2 vae-dist)" ] && pass "n2's ranks ended by themselves within $(($(date +%s) - start))s of the cut" ||
    fail "n2's ranks still run $(($(date +%s) - start))s after the cut"
for p in $(node_pids n1 mpirun) $(node_pids n2 orted); do kill -9 $p 2>/dev/null; done
_nd_alive $job && { kill -9 $job 2>/dev/null; wait $job 2>/dev/null; }
nsrun n2 ip link set eth0 up
last=$(cat "$WORK/cut-ka/latest" 2>/dev/null)
step=$(echo "$last" | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/')
(
    # shellcheck disable=SC2086
    export $KA
    ns_mpirun 120 "$WORK/hosts-2x2" -np 4 "$VAE" $ARGS $KARGS --max-steps $((step + 10))
) >"$WORK/cut-ka2.log" 2>&1 &&
    grep -q "^resuming from .*$last" "$WORK/cut-ka2.log" &&
    pass "the link back: the same command resumes ($(grep -m1 '^resuming from' "$WORK/cut-ka2.log" | sed "s|$WORK/||"))" ||
    { tail -n 20 "$WORK/cut-ka2.log"; fail "after the link came back, $last did not resume"; }
finish
