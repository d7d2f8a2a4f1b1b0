#!/bin/sh
# A real single-node SLURM on this machine (munge and slurm daemons of our
# own, in a scratch directory, on their own ports): submits
# jobs/train.sbatch (srun) and jobs/train-mpirun.sbatch (mpirun), preempts
# each job with `scancel --signal=USR1` mid-run, lets it requeue itself and
# resume, and checks that its final checkpoint equals an uninterrupted run's. Skipped (exit 77, with the reason) when
# SLURM, munge or root are not available.
. "$top_srcdir/tests/lib.sh"


[ "$(id -u)" -eq 0 ] || skip "needs root to run slurmd"
for p in munged slurmctld slurmd sbatch squeue scontrol scancel sacct; do
    command -v $p >/dev/null 2>&1 || [ -x /usr/sbin/$p ] || skip "$p not installed (apt-get install slurm-wlm munge libpmix-dev)"
done
PATH=/usr/sbin:$PATH

S="$WORK/slurm"
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/munge" "$S/bin"
chmod 700 "$S/munge"
dd if=/dev/urandom of="$S/munge/key" bs=1024 count=1 2>/dev/null
chmod 400 "$S/munge/key"
munged --force --key-file="$S/munge/key" --socket="$S/munge/sock" --pid-file="$S/munge/pid" \
    --log-file="$S/log/munged.log" --seed-file="$S/munge/seed" || skip "munged would not start"

cleanup() {
    [ -f "$S/slurmd.pid" ] && kill "$(cat "$S/slurmd.pid")" 2>/dev/null
    [ -f "$S/slurmctld.pid" ] && kill "$(cat "$S/slurmctld.pid")" 2>/dev/null
    [ -f "$S/munge/pid" ] && kill "$(cat "$S/munge/pid")" 2>/dev/null
    sleep 1
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # a timeout still stops the daemons (through the EXIT trap)

cat >"$S/slurm.conf" <<CONF
ClusterName=vdtest
SlurmctldHost=localhost
SlurmctldPort=$((16817 + $$ % 1000))
SlurmdPort=$((17817 + $$ % 1000))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$S/munge/sock
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=10
NodeName=localhost CPUs=8 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$S/slurm.conf"
slurmctld -f "$SLURM_CONF" || skip "slurmctld would not start ($(tail -n 3 "$S/log/slurmctld.log" 2>/dev/null))"
slurmd -f "$SLURM_CONF" -N localhost || skip "slurmd would not start ($(tail -n 3 "$S/log/slurmd.log" 2>/dev/null))"
i=0
until sinfo -h -o %T 2>/dev/null | grep -q idle; do
    i=$((i + 1)); [ $i -gt 60 ] && skip "the node never became idle: $(sinfo 2>&1 | tail -n 2)"
    sleep 0.5
done
srun --mpi=list 2>&1 | grep -q pmix || skip "srun has no pmix plugin (apt-get install libpmix-dev)"
pass "SLURM is up: $(sinfo -h -o '%P %D %T %c')"

# vae-dist from the build tree, as the batch script calls it
ln -s "$VAE" "$S/bin/vae-dist"
"$GEN" "$WORK/bars.h5" --n 2000 --test 200 --side 8 --type u8 --chunk 100 || { fail gen_data; finish; }
ARGS="--data $WORK/bars.h5 --epochs 5 --batch 20 --hidden 256,128 --latent 4 --lr 2e-3 --log-every 10"
FINAL=ckpt-0000000500.h5
run_mpi 2 120 "$VAE" $ARGS --out "$WORK/ref" >"$WORK/ref.log" 2>&1 || { fail "reference run"; finish; }

cd "$WORK"
# preempt_and_resume SCRIPT SCANCEL_FLAGS: one job, signalled once mid-run
preempt_and_resume() {
    script=$1; flags=$2; run="$WORK/run-$(basename "$script" .sbatch)"
    job=$(PATH="$S/bin:$PATH" sbatch --parsable --ntasks=2 --time=10 \
        --export=ALL,OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1,RUN="$run" \
        "$top_srcdir/jobs/$script" $ARGS) || { fail "sbatch $script"; return; }
    out="$WORK/vae-dist-$job.out"
    i=0
    until grep -q "samples/s" "$out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 600 ] && { cat "$out" "$S/log/slurmd.log"; fail "$script: job $job never started training"; return; }
        sleep 0.1
    done
    scancel $flags --signal=USR1 "$job" && pass "$script: sent USR1 ($flags) to job $job" ||
        { fail "$script: scancel --signal=USR1 $job"; return; }
    i=0 # the preemption's own line: a failure would requeue too
    until grep -q "preempted with a checkpoint saved; requeueing job" "$out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 300 ] && { cat "$out"; fail "$script: job $job did not requeue"; return; }
        sleep 0.2
    done
    pass "$script: job $job stopped with a checkpoint and requeued itself"
    i=0
    # skip the requeue delay, then wait for the resumed run's last line and
    # for the job to leave the queue (squeue can miss it while it requeues)
    # (slurmd refuses a job restarted in the same second its credential was
    # revoked by the requeue, hence the pause before StartTime=now)
    pending=0
    until grep -q "^done:" "$out" 2>/dev/null && [ -z "$(squeue -h -j "$job" -o %T 2>/dev/null)" ]; do
        state=$(squeue -h -j "$job" -o %T 2>/dev/null)
        [ "$state" = PENDING ] && pending=$((pending + 1))
        [ "$state" = PENDING ] && [ $pending -eq 6 ] && scontrol update JobId="$job" StartTime=now >/dev/null 2>&1
        if [ -z "$state" ] && scontrol show job "$job" 2>/dev/null | grep -qE "JobState=(FAILED|CANCELLED|NODE_FAIL)"; then
            cat "$out"; fail "$script: job $job ended: $(scontrol show job "$job" | grep -o 'JobState=[A-Z_]* Reason=[^ ]*')"; return
        fi
        i=$((i + 1)); [ $i -gt 600 ] && { cat "$out"; fail "$script: job $job did not finish"; scancel "$job"; return; }
        sleep 0.5
    done
    grep -q "restart 1" "$out" && grep -q "resuming from" "$out" &&
        pass "$script: the requeued job resumed: $(grep -m1 'resuming from' "$out" | sed "s|$WORK/||")" ||
        { cat "$out"; fail "$script: the requeued job did not resume"; }
    ok=1
    for g in /params /adam/m /adam/v; do
        "$H5DIFF" -q "$WORK/ref/$FINAL" "$run/$FINAL" $g >/dev/null 2>&1 || ok=0
    done
    [ $ok -eq 1 ] && pass "$script: final checkpoint bitwise identical to the uninterrupted run" ||
        { cat "$out"; fail "$script: final checkpoint differs from the uninterrupted run"; }
}
preempt_and_resume train.sbatch ""                 # srun delivers the signal to the ranks
preempt_and_resume train-mpirun.sbatch "--batch"   # the batch shell forwards it to mpirun

# until_gone JOB OUT WHAT: waits for the job to leave the queue for good,
# starting each requeued attempt at once; prints its final JobState
until_gone() {
    i=0; pending=0
    while :; do
        state=$(squeue -h -j "$1" -o %T 2>/dev/null)
        if [ "$state" = PENDING ]; then
            pending=$((pending + 1))
            [ $((pending % 6)) -eq 0 ] && scontrol update JobId="$1" StartTime=now >/dev/null 2>&1
        elif [ -z "$state" ] && scontrol show job "$1" 2>/dev/null | grep -qE "JobState=(COMPLETED|FAILED|CANCELLED|NODE_FAIL|TIMEOUT)"; then
            scontrol show job "$1" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2
            return 0
        fi
        i=$((i + 1)); [ $i -gt 900 ] && { cat "$2"; fail "$3: job $1 did not end"; scancel "$1"; return 1; }
        sleep 0.5
    done
}
# a rank killed once (as when its node is lost): the job requeues itself and
# the next attempt resumes and finishes the run, bitwise as if never stopped
for script in train.sbatch train-mpirun.sbatch; do
    run="$WORK/lost-$(basename "$script" .sbatch)"
    job=$(PATH="$S/bin:$PATH" sbatch --parsable --ntasks=2 --time=10 \
        --export=ALL,OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1,RUN="$run",VAE_DIST_TEST_KILL_STEP=250,VAE_DIST_TEST_KILL_ONCE="$WORK/killed-$script" \
        "$top_srcdir/jobs/$script" $ARGS) || { fail "sbatch $script"; continue; }
    out="$WORK/vae-dist-$job.out"
    end=$(until_gone "$job" "$out" "$script, a rank killed") || continue
    ok=1
    for g in /params /adam/m /adam/v; do
        "$H5DIFF" -q "$WORK/ref/$FINAL" "$run/$FINAL" $g >/dev/null 2>&1 || ok=0
    done
    [ "$end" = COMPLETED ] && [ $ok -eq 1 ] && grep -q "attempt 1 of 3 at ckpt-0000000200.h5; requeueing" "$out" &&
        grep -q "resuming from .*ckpt-0000000200.h5" "$out" &&
        pass "$script: a rank killed at step 250: requeued, resumed from step 200, final checkpoint bitwise identical" ||
        { cat "$out"; fail "$script: a rank killed once: $end"; }
done
# a rank killed at the same step every attempt: VAE_DIST_RETRIES attempts, then the job ends
run="$WORK/doomed"
job=$(PATH="$S/bin:$PATH" sbatch --parsable --ntasks=2 --time=10 \
    --export=ALL,OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1,RUN="$run",VAE_DIST_TEST_KILL_STEP=250,VAE_DIST_RETRIES=2 \
    "$top_srcdir/jobs/train-mpirun.sbatch" $ARGS) || fail "sbatch doomed"
out="$WORK/vae-dist-$job.out"
end=$(until_gone "$job" "$out" "doomed")
[ "$end" = FAILED ] && grep -q "restart 1)" "$out" && ! grep -q "restart 2)" "$out" &&
    grep -q "failed (exit [0-9]*) 2 times at ckpt-0000000200.h5; not requeued (VAE_DIST_RETRIES=2)" "$out" &&
    pass "failing at the same step every attempt: 2 attempts (VAE_DIST_RETRIES=2), then the job ends $end" ||
    { cat "$out"; fail "a run failing at the same step: $end"; }
# bad input is not requeued
job=$(PATH="$S/bin:$PATH" sbatch --parsable --ntasks=2 --time=10 \
    --export=ALL,OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1,RUN="$WORK/bad" \
    "$top_srcdir/jobs/train.sbatch" $ARGS --data "$WORK/none.h5") || fail "sbatch bad input"
out="$WORK/vae-dist-$job.out"
end=$(until_gone "$job" "$out" "bad input")
[ "$end" = FAILED ] && ! grep -q "restart 1)" "$out" && grep -q "failed (exit 66); not requeued" "$out" &&
    pass "bad input (exit 66): not requeued" || { cat "$out"; fail "bad input under SLURM: $end"; }
finish
