#!/bin/sh
# A 2-node SLURM on simulated nodes (tests/nodes.sh): munged and slurmctld
# on the head node n3, one slurmd on each of n1 and n2. Each batch script
# (jobs/train.sbatch through srun, jobs/train-mpirun.sbatch through mpirun
# inside the allocation) runs a 2-node job that is preempted with
# `scancel --signal=USR1`, requeues itself, resumes, and must end bitwise
# identical to an uninterrupted 2-node run; a job that loses a node (its
# ranks killed, or its link cut) requeues itself and resumes to the same
# end; then the srun job's run
# directory resumes on one node with more epochs and finishes. Skipped
# (exit 77, with the reason) without root, SLURM, munge or pmix.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/nodes.sh"
need_h5diff

nodes_up 3
slurm_up n3 n1 n2
pass "SLURM is up: $(slurm 20 sinfo -h -N -o '%N %T %c' | tr '\n' ' ')"

# vae-dist from the build tree, as the batch scripts call it (from PATH)
ln -s "$VAE" "$SL_DIR/bin/vae-dist"
"$GEN" "$WORK/bars.h5" --n 2000 --test 200 --side 8 --type u8 --chunk 100 >/dev/null || { fail gen_data; finish; }
EPOCHS=3
ARGS="--data $WORK/bars.h5 --batch 50 --hidden 256,128 --latent 4 --lr 2e-3 --log-every 10"
FINAL=ckpt-0000000120.h5 # 40 steps per epoch

# the uninterrupted run: the same command on the same 2 nodes x 2 ranks
ns_hostfile "$WORK/hosts-2x2" n1:2 n2:2
cd "$WORK"
ns_mpirun 150 "$WORK/hosts-2x2" -np 4 "$VAE" --out "$WORK/ref" --threads 1 $ARGS --epochs $EPOCHS \
    >"$WORK/ref.log" 2>&1 || { tail -n 20 "$WORK/ref.log"; fail "reference run"; finish; }
grep -q "2 ranks per node on 2 nodes" "$WORK/ref.log" || fail "the reference run is not 2 nodes x 2 ranks"

cd "$SL_DIR/jobs"
# submit RUN SBATCH-ARGS... SCRIPT TRAIN-ARGS...: prints the job id
submit() {
    run=$1; shift
    RUN=$run PATH="$SL_DIR/bin:$PATH" OMPI_MCA_btl=tcp,self,vader \
        OMPI_MCA_btl_tcp_if_include="$ND_SUBNET" OMPI_MCA_oob_tcp_if_include="$ND_SUBNET" \
        slurm 30 sbatch --parsable --time=10 --export=ALL "$@"
}
state() { slurm 20 squeue -h -j "$1" -o %T 2>/dev/null; }
# wait_done JOB OUT WHAT: until the job printed its last line and left the
# queue; a requeued job pending is started at once (3 s after its requeue:
# slurmd refuses a job restarted within a second of the requeue); a job
# that ended badly, or is not done in 3 minutes, fails
wait_done() {
    i=0; pending=0
    until grep -q "^done:" "$2" 2>/dev/null && [ -z "$(state "$1")" ]; do
        s=$(state "$1")
        [ "$s" = PENDING ] && pending=$((pending + 1))
        [ "$s" = PENDING ] && [ $pending -eq 6 ] && slurm 20 scontrol update JobId="$1" StartTime=now >/dev/null 2>&1
        if [ -z "$s" ] && slurm 20 scontrol show job "$1" 2>/dev/null | grep -qE "JobState=(FAILED|CANCELLED|NODE_FAIL|TIMEOUT)"; then
            cat "$2"; fail "$3: job $1 ended: $(slurm 20 scontrol show job "$1" | grep -o 'JobState=[A-Z_]* Reason=[^ ]*')"
            return 1
        fi
        i=$((i + 1)); [ $i -gt 360 ] && { cat "$2"; fail "$3: job $1 did not finish"; slurm 20 scancel "$1"; return 1; }
        sleep 0.5
    done
}
same_final() { # same_final DIR WHAT
    ok=1
    for g in /params /adam/m /adam/v; do
        "$H5DIFF" -q "$WORK/ref/$FINAL" "$1/$FINAL" $g >/dev/null 2>&1 || ok=0
    done
    [ $ok -eq 1 ] && pass "$2: final checkpoint bitwise identical to the uninterrupted 2-node run" ||
        fail "$2: final checkpoint differs from the uninterrupted 2-node run"
}

# preempt_and_resume SCRIPT SCANCEL-FLAGS: a 2-node job signalled once mid-run
preempt_and_resume() {
    script=$1; flags=$2; run="$WORK/run-$(basename "$script" .sbatch)"
    job=$(submit "$run" -N2 -n4 "$top_srcdir/jobs/$script" $ARGS --epochs $EPOCHS) ||
        { fail "sbatch $script"; return; }
    out="$SL_DIR/jobs/vae-dist-$job.out"
    i=0
    until grep -q "samples/s" "$out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 900 ] && { cat "$out"; fail "$script: job $job never started training"; return; }
        sleep 0.1
    done
    grep -q "2 ranks per node on 2 nodes" "$out" && pass "$script: job $job: $(grep -m1 '^gradients:' "$out")" ||
        fail "$script: job $job does not run 2 ranks on each of 2 nodes"
    slurm 20 scancel $flags --signal=USR1 "$job" && pass "$script: sent USR1 ($flags) to job $job" ||
        { fail "$script: scancel --signal=USR1 $job"; return; }
    i=0 # the preemption's own line: a failure would requeue too
    until grep -q "preempted with a checkpoint saved; requeueing job" "$out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 300 ] && { cat "$out"; fail "$script: job $job did not requeue"; return; }
        sleep 0.2
    done
    pass "$script: job $job stopped with a checkpoint and requeued itself"
    wait_done "$job" "$out" "$script" || return
    grep -q "restart 1" "$out" && grep -q "^resuming from" "$out" &&
        pass "$script: the requeued job resumed: $(grep -m1 '^resuming from' "$out" | sed "s|$WORK/||")" ||
        { cat "$out"; fail "$script: the requeued job did not resume"; }
    same_final "$run" "$script"
}
preempt_and_resume train.sbatch ""                 # srun delivers the signal to the ranks
preempt_and_resume train-mpirun.sbatch "--batch"   # the batch shell forwards it to mpirun

# lose_node SCRIPT HOW: a 2-node job loses n2 mid-run, after its first
# checkpoint: HOW=kill, n2's ranks (and orted) die by SIGKILL; HOW=cut, n2's
# link goes down, and comes back once the job has requeued itself. The
# ranks left end by themselves (--stall-timeout 5) within 30 s (under
# mpirun, which checks its daemons' links, those beyond a cut first wait up
# to 35 s for mpirun to see the lost node), the job's launcher has ended
# and the batch script has requeued the job within --stall-timeout + 60 s,
# and the next attempt resumes and ends bitwise identical to the
# uninterrupted run.
lose_node() {
    script=$1; how=$2; run="$WORK/lost-$how-$(basename "$script" .sbatch)"
    job=$(submit "$run" -N2 -n4 "$top_srcdir/jobs/$script" $ARGS --epochs $EPOCHS --stall-timeout 5) ||
        { fail "sbatch $script"; return; }
    out="$SL_DIR/jobs/vae-dist-$job.out"
    i=0
    until [ -f "$run/latest" ] && grep -q "samples/s" "$out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 900 ] && { cat "$out"; fail "$script: job $job never checkpointed"; return; }
        sleep 0.1
    done
    # mid-epoch, past the checkpoint: at an epoch's end the ranks wait for
    # rank 0's writing, which the watchdog gives ten times the timeout
    n=$(grep -c "samples/s" "$out"); i=0
    while [ "$(grep -c "samples/s" "$out")" -le "$n" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    start=$(date +%s)
    if [ "$how" = kill ]; then
        for p in $(node_pids n2 vae-dist) $(node_pids n2 orted); do kill -9 "$p" 2>/dev/null; done
    else
        nsrun n2 ip link set eth0 down
    fi
    limit=30
    [ "$how/$script" = cut/train-mpirun.sbatch ] && limit=$((30 + 35))
    ranks_end=""; requeued=""
    while { [ -z "$ranks_end" ] || [ -z "$requeued" ]; } && [ $(($(date +%s) - start)) -le 120 ]; do
        [ -z "$ranks_end" ] && [ -z "$(node_pids n1 vae-dist)$(node_pids n2 vae-dist)" ] &&
            ranks_end=$(($(date +%s) - start))
        [ -z "$requeued" ] && grep -q "requeueing job" "$out" 2>/dev/null && requeued=$(($(date +%s) - start))
        sleep 0.1
    done
    [ "$how" = cut ] && nsrun n2 ip link set eth0 up
    [ -n "$ranks_end" ] && [ "$ranks_end" -le $limit ] &&
        pass "$script, n2 lost ($how): every rank ended within ${ranks_end}s" ||
        fail "$script, n2 lost ($how): ranks still running after ${ranks_end:-120}s (limit ${limit}s)"
    if [ -z "$requeued" ]; then
        cat "$out"; fail "$script, n2 lost ($how): job $job did not requeue"
    elif [ "$requeued" -le $((5 + 60)) ]; then
        pass "$script, n2 lost ($how): the launcher ended and the job requeued itself ${requeued}s after the loss: $(grep -m1 'requeueing job' "$out" | sed "s|$WORK/||")"
    else
        fail "$script, n2 lost ($how): the job requeued itself only ${requeued}s after the loss (limit: --stall-timeout + 60 s)"
    fi
    wait_done "$job" "$out" "$script, n2 lost ($how)" || return
    grep -q "restart 1" "$out" && grep -q "^resuming from" "$out" &&
        pass "$script, n2 lost ($how): the next attempt resumed: $(grep -m1 '^resuming from' "$out" | sed "s|$WORK/||")" ||
        { cat "$out"; fail "$script, n2 lost ($how): no resume"; }
    same_final "$run" "$script, n2 lost ($how)"
}
lose_node train.sbatch kill
lose_node train-mpirun.sbatch kill
lose_node train.sbatch cut
lose_node train-mpirun.sbatch cut

# the srun job's run directory, continued on one node with one more epoch
run="$WORK/run-train"
job=$(submit "$run" -N1 -n2 "$top_srcdir/jobs/train.sbatch" $ARGS --epochs $((EPOCHS + 1))) ||
    { fail "sbatch -N1"; finish; }
out="$SL_DIR/jobs/vae-dist-$job.out"
if wait_done "$job" "$out" "1 node"; then
    grep -q "^resuming from .*$FINAL" "$out" && grep -q "2 ranks per node on 1 node" "$out" &&
        [ -f "$run/ckpt-0000000160.h5" ] &&
        slurm 20 scontrol show job "$job" | tr '\n' ' ' | grep -q "JobState=COMPLETED .*ExitCode=0:0" &&
        pass "1 node x 2 ranks resumed the 2-node run: $(grep -m1 '^resuming from' "$out" | sed "s|$WORK/||"), finished at step 160" ||
        { cat "$out"; fail "the run did not resume and finish on one node"; }
fi
finish
