# nodes.sh — simulated cluster nodes on one machine, for the multi-node
# tests. Source it after lib.sh; it needs root, iproute2 and util-linux, and
# a test that calls nodes_up without them is skipped (exit 77) with the reason.
#
# A node nI is a network namespace of its own plus UTS and mount namespaces
# owned by a "holder" process (sleep, pid in $NSDIR/nI.pid):
#  - network: eth0 = $ND_NET.I/24, one end of a veth whose other end is on a
#    bridge living in a namespace of its own. No namespace has a default
#    route and the root namespace gets no device or address, so traffic goes
#    only to loopback or to the nodes. IPv6 is off (no link-local address
#    for Open MPI's tcp btl to pick).
#  - hostname nI; /etc/hosts names n1..nN;
#  - /dev/shm and /tmp are the node's own tmpfs, except that $SHARED (the
#    test's $WORK) and the build and source trees, when they lie under
#    /tmp, are the host's directories, the same on every node;
#  - /sys is a sysfs of the node's network namespace with the host's cgroup
#    tree moved under it (slurmd needs /sys/fs/cgroup);
#  - everything else (/usr, a build tree outside /tmp) is the host's.
# Names are unique to the test process (netns "vd<pid>n1", a subnet from
# the pid), so tests running at once do not meet.
#
#   nodes_up N                bring up n1..nN
#   nodes_down                take down everything nodes_up and slurm_up made
#                             (also run on every exit, timeouts included)
#   nsrun NODE CMD...         run CMD inside NODE, in the current directory
#   node_procs NODE           pids of NODE's processes, its holder left out
#   node_pids NODE NAME       those of them whose command name is NAME
#   node_kill SIG NODE        send SIG to every process of NODE but its holder
#   ns_hostfile FILE NODE:SLOTS...   write an Open MPI hostfile
#   ns_mpirun SECS HOSTFILE MPIRUN-ARGS...
#                             mpirun on n1 under timeout; orted reaches the
#                             other nodes through a plm_rsh_agent script
#   slurm_up HEAD COMPUTE...  munged and slurmctld on HEAD, one slurmd on each
#                             COMPUTE node; skipped where SLURM is missing
#   slurm_down                stop them (by their pid files, inside their nodes)
#   slurm SECS CMD...         a SLURM command on the head node, with SLURM_CONF,
#                             under timeout
set -u

ND_ID="vd$$"                          # prefix of this test's namespace names
ND_NET="10.77.$(($$ % 200 + 20))"     # its subnet; namespaces keep it private anyway
ND_SUBNET="$ND_NET.0/24"
SHARED="$WORK"
NSDIR="$SHARED/ns"
ND_AGENT="$NSDIR/bin/nsagent"
ND_NETNS=""                           # namespaces made so far (the bridge's first)
ND_NODES=""                           # nodes whose holder was started
ND_HOLDERS=""                         # their pids
ND_BG=""                              # the background jobs that became them
SL_DIR=""                             # set once slurm_up has started something

_nd_cleanup() {
    rc=$?
    trap '' INT TERM HUP PIPE
    trap - EXIT
    [ -n "$SL_DIR" ] && slurm_down
    nodes_down || rc=1
    rm -rf "$WORK"
    exit $rc
}
trap _nd_cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE # a timeout's SIGTERM (or a reader gone) still runs the clean-up

# _nd_run CMD...: CMD in the background, waited for, so that a SIGTERM to
# the test is handled at once rather than when CMD ends
_nd_run() {
    "$@" &
    ND_LAST=$!
    wait $ND_LAST
}

_nd_alive() { # _nd_alive PID: running (not a zombie)
    [ -r "/proc/$1/stat" ] || return 1
    [ "$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

node_holder() { cat "$NSDIR/$1.pid" 2>/dev/null; }

nsrun() {
    _nr_pid=$(node_holder "$1") || { echo "nsrun: no node $1" >&2; return 255; }
    shift
    nsenter -t "$_nr_pid" -n -u -m --wd="$PWD" -- "$@"
}

node_procs() {
    _np_h=$(node_holder "$1")
    for _np_p in $(ip netns pids "$ND_ID$1" 2>/dev/null); do
        [ "$_np_p" = "$_np_h" ] || echo "$_np_p"
    done
}

node_pids() {
    for _ns_p in $(node_procs "$1"); do
        [ "$(cat "/proc/$_ns_p/comm" 2>/dev/null)" = "$2" ] && echo "$_ns_p"
    done
}

node_kill() {
    _nk_sig=$1; shift
    for _nk_n in "$@"; do
        for _nk_p in $(node_procs "$_nk_n"); do kill -"$_nk_sig" "$_nk_p" 2>/dev/null; done
    done
}

# _nd_sweep SECS: every process in the test's namespaces but the holders
# gets SIGTERM, then SIGKILL for what is left after SECS seconds
_nd_sweep() {
    for _sw_sig in TERM KILL; do
        _sw_left=""
        for _sw_ns in $ND_NETNS; do
            for _sw_p in $(ip netns pids "$_sw_ns" 2>/dev/null); do
                case " $ND_HOLDERS " in *" $_sw_p "*) continue ;; esac
                kill -"$_sw_sig" "$_sw_p" 2>/dev/null && _sw_left="$_sw_left $_sw_p"
            done
        done
        [ -z "$_sw_left" ] && return 0
        _sw_i=0
        while [ $_sw_i -lt $(($1 * 10)) ]; do
            _sw_alive=""
            for _sw_p in $_sw_left; do _nd_alive "$_sw_p" && _sw_alive="$_sw_alive $_sw_p"; done
            [ -z "$_sw_alive" ] && break
            sleep 0.1; _sw_i=$((_sw_i + 1))
        done
    done
}

nodes_down() {
    _nd_ok=0
    [ -n "$ND_NETNS" ] || { rm -rf "$NSDIR"; return 0; }
    # 1. what runs inside the nodes (ranks, orted, daemons, job steps)
    _nd_sweep 5
    # 2. the holders (our children: kill, then reap them)
    for _dn_p in $ND_HOLDERS; do kill "$_dn_p" 2>/dev/null; done
    for _dn_p in $ND_BG; do wait "$_dn_p" 2>/dev/null; done
    for _dn_ns in $ND_NETNS; do
        _dn_left=$(ip netns pids "$_dn_ns" 2>/dev/null | tr '\n' ' ')
        [ -z "$_dn_left" ] || { echo "FAIL: processes left in namespace $_dn_ns: $_dn_left"; _nd_ok=1; }
    done
    # 3. the namespaces: each node's takes its eth0 and the veth's other end
    #    with it, the bridge's namespace the bridge
    for _dn_ns in $ND_NETNS; do ip netns del "$_dn_ns" 2>/dev/null; done
    _dn_left=$(ip netns list 2>/dev/null | grep "^$ND_ID" | tr '\n' ' ')
    [ -z "$_dn_left" ] || { echo "FAIL: namespaces left: $_dn_left"; _nd_ok=1; }
    # 4. directories (the mounts were the holders' and went with them)
    rm -rf "$NSDIR"
    ND_NETNS=""; ND_NODES=""; ND_HOLDERS=""; ND_BG=""
    return $_nd_ok
}

# What the nodes must see of the host's /tmp: the shared directory and the
# trees the tests run from, outermost first, none inside another.
_nd_binds() {
    for _nb_d in "$SHARED" "$top_builddir" "$top_srcdir"; do
        _nb_d=$(cd "$_nb_d" 2>/dev/null && pwd -P) || continue
        case "$_nb_d/" in /tmp/?*) echo "$_nb_d" ;; esac
    done | LC_ALL=C sort -u |
        awk '{ for (i = 1; i <= n; i++) if (index($0 "/", d[i] "/") == 1) next; d[++n] = $0; print }'
}

# The holder's set-up, run by sh inside fresh UTS and mount namespaces:
#   sh -c SCRIPT sh NODE NSDIR BIND...
ND_HOLDER_SCRIPT='
set -e
node=$1; nsdir=$2; shift 2
hostname "$node"
if mountpoint -q /sys/fs/cgroup; then
    mkdir -p "$nsdir/cg.$node"
    mount --rbind /sys/fs/cgroup "$nsdir/cg.$node"
    umount -l /sys
    mount -t sysfs "sysfs-$node" /sys
    mount --move "$nsdir/cg.$node" /sys/fs/cgroup
else
    umount -l /sys
    mount -t sysfs "sysfs-$node" /sys
fi
mount -t tmpfs -o size=1g,mode=1777 "shm-$node" /dev/shm
mount --bind "$nsdir/hosts" /etc/hosts
# /tmp of the node: a tmpfs, made at /mnt, given the shared directories,
# then moved over /tmp
mount -t tmpfs -o mode=1777 "tmp-$node" /mnt
for d in "$@"; do
    mkdir -p "/mnt/${d#/tmp/}"
    mount --rbind "$d" "/mnt/${d#/tmp/}"
done
mount --move /mnt /tmp
# drop this copy of /run/netns, so that the node keeps no namespace of another test alive
umount -l /run/netns 2>/dev/null || true
echo $$ >"$nsdir/$node.pid.tmp"
mv "$nsdir/$node.pid.tmp" "$nsdir/$node.pid"
exec sleep infinity
'

nodes_up() {
    [ "$(id -u)" -eq 0 ] || skip "simulated nodes need root (network and mount namespaces)"
    for _nu_c in ip nsenter unshare setsid mountpoint; do
        command -v $_nu_c >/dev/null 2>&1 || skip "$_nu_c not found (apt-get install iproute2 util-linux)"
    done
    [ -n "${TIMEOUT:-}" ] || skip "timeout (coreutils) not found: every mpirun in the tests runs under it"
    [ -d /mnt ] || skip "no /mnt to build a node's /tmp at"
    unshare --uts --mount true 2>/dev/null || skip "cannot make UTS and mount namespaces (CAP_SYS_ADMIN)"
    _nu_err=$(ip netns add "${ND_ID}sw" 2>&1) || skip "cannot make a network namespace: $_nu_err"
    ND_NETNS="${ND_ID}sw"
    _nu_err=$({ ip -n "${ND_ID}sw" link set lo up && ip -n "${ND_ID}sw" link add br0 type bridge &&
        ip -n "${ND_ID}sw" link set br0 up; } 2>&1) ||
        skip "cannot make a bridge in a network namespace: $_nu_err"
    mkdir -p "$NSDIR/bin"
    {
        echo "127.0.0.1 localhost"
        _nu_i=1; while [ $_nu_i -le "$1" ]; do echo "$ND_NET.$_nu_i n$_nu_i"; _nu_i=$((_nu_i + 1)); done
    } >"$NSDIR/hosts"
    # the plm_rsh_agent: ORTE calls it as it calls ssh (HOST WORDS...; the
    # words are one shell command line), and it runs that line with sh
    # inside HOST, with the fresh environment of a login
    cat >"$ND_AGENT" <<AGENT
#!/bin/sh
h=\$1; shift
pid=\$(cat "$NSDIR/\$h.pid") || exit 255
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" \\
    nsenter -t "\$pid" -n -u -m --wd=/ -- /bin/sh -c "\$*"
AGENT
    chmod +x "$ND_AGENT"
    _nu_binds=$(_nd_binds)
    _nu_i=1
    while [ $_nu_i -le "$1" ]; do
        _nu_n="n$_nu_i"; _nu_ns="$ND_ID$_nu_n"
        _nu_err=$(ip netns add "$_nu_ns" 2>&1) || { fail "netns $_nu_ns: $_nu_err"; finish; }
        ND_NETNS="$ND_NETNS $_nu_ns"
        _nu_err=$({ ip -n "${ND_ID}sw" link add "p$_nu_i" type veth peer name eth0 netns "$_nu_ns" &&
            ip -n "${ND_ID}sw" link set "p$_nu_i" master br0 up &&
            ip -n "$_nu_ns" link set lo up &&
            ip -n "$_nu_ns" addr add "$ND_NET.$_nu_i/24" dev eth0 &&
            ip -n "$_nu_ns" link set eth0 up &&
            ip netns exec "$_nu_ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 \
                net.ipv6.conf.default.disable_ipv6=1; } 2>&1) ||
            skip "cannot wire node $_nu_n (veth, address): $_nu_err"
        # shellcheck disable=SC2086 # the bind list is one path per word
        setsid nsenter --net="/run/netns/$_nu_ns" unshare --uts --mount --propagation private \
            sh -c "$ND_HOLDER_SCRIPT" sh "$_nu_n" "$NSDIR" $_nu_binds \
            </dev/null >"$NSDIR/$_nu_n.log" 2>&1 &
        ND_BG="$ND_BG $!"
        ND_NODES="$ND_NODES $_nu_n"
        _nu_t=0
        while [ ! -s "$NSDIR/$_nu_n.pid" ] && [ $_nu_t -lt 100 ] && _nd_alive $!; do
            sleep 0.1; _nu_t=$((_nu_t + 1))
        done
        [ -s "$NSDIR/$_nu_n.pid" ] ||
            skip "node $_nu_n's mount and UTS namespaces could not be set up: $(tail -n 3 "$NSDIR/$_nu_n.log")"
        ND_HOLDERS="$ND_HOLDERS $(node_holder "$_nu_n")"
        _nu_i=$((_nu_i + 1))
    done
    # each node names itself and sees its own address
    for _nu_n in $ND_NODES; do
        [ "$(nsrun "$_nu_n" hostname)" = "$_nu_n" ] || { fail "node $_nu_n: hostname"; finish; }
    done
    return 0
}

# ns_hostfile FILE NODE:SLOTS...
ns_hostfile() {
    _hf=$1; shift
    : >"$_hf"
    for _hf_e in "$@"; do echo "${_hf_e%%:*} slots=${_hf_e#*:}" >>"$_hf"; done
}

# ns_mpirun SECS HOSTFILE MPIRUN-ARGS...: mpirun started on n1, as on a
# cluster's first node; exit 124 (or 137) if it outlives SECS. The tests'
# OpenBLAS settings (every OPENBLAS_* variable: a CORETYPE set on one node
# alone picks other kernels there, whose sums round otherwise) and sanitizer
# settings are passed on to the ranks of every node, as srun passes its
# whole environment (the agent gives orted a fresh environment).
ns_mpirun() {
    _mr_secs=$1; _mr_hf=$2; shift 2
    _mr_x=""
    for _mr_v in $(env | sed -n 's/^\(OPENBLAS_[A-Z0-9_]*\)=.*/\1/p') ASAN_OPTIONS UBSAN_OPTIONS; do
        eval "[ -n \"\${$_mr_v+set}\" ]" && _mr_x="$_mr_x -x $_mr_v"
    done
    # shellcheck disable=SC2086
    _nd_run "$TIMEOUT" -k 5 "$_mr_secs" nsenter -t "$(node_holder n1)" -n -u -m --wd="$PWD" -- \
        "${MPIRUN:-mpirun}" --hostfile "$_mr_hf" --bind-to none \
        --mca plm_rsh_agent "$ND_AGENT" --mca btl tcp,self,vader \
        --mca btl_tcp_if_include "$ND_SUBNET" --mca oob_tcp_if_include "$ND_SUBNET" \
        $_mr_x "$@"
}

# ---- SLURM on the nodes ----------------------------------------------------

# slurm SECS CMD...: every SLURM client runs inside the head node (no packet
# can leave the nodes' network) with SLURM_CONF set (without it SLURM looks
# its controller up in DNS)
slurm() {
    _sc_secs=$1; shift
    "$TIMEOUT" -k 5 "$_sc_secs" nsenter -t "$(node_holder "$SL_HEAD")" -n -u -m --wd="$PWD" -- \
        env SLURM_CONF="$SLURM_CONF" "$@"
}

slurm_up() {
    SL_HEAD=$1; shift
    SL_COMPUTE="$*"
    for _su_c in munged slurmctld slurmd sbatch srun squeue scontrol scancel sinfo; do
        command -v $_su_c >/dev/null 2>&1 || [ -x /usr/sbin/$_su_c ] ||
            skip "$_su_c not installed (apt-get install slurm-wlm munge libpmix-dev)"
    done
    PATH=/usr/sbin:$PATH
    SL_DIR="$SHARED/slurm"
    mkdir -p "$SL_DIR/state" "$SL_DIR/log" "$SL_DIR/munge" "$SL_DIR/bin" "$SL_DIR/jobs"
    for _su_n in $SL_COMPUTE; do mkdir -p "$SL_DIR/spool/$_su_n"; done
    chmod 700 "$SL_DIR/munge"
    dd if=/dev/urandom of="$SL_DIR/munge/key" bs=1024 count=1 2>/dev/null
    chmod 400 "$SL_DIR/munge/key"
    _su_hosts=$(echo "$SL_COMPUTE" | tr ' ' ',')
    {
        cat <<CONF
ClusterName=vdnodes
SlurmctldHost=$SL_HEAD($ND_NET.${SL_HEAD#n})
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SL_DIR/munge/sock
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
StateSaveLocation=$SL_DIR/state
SlurmdSpoolDir=$SL_DIR/spool/%n
SlurmctldPidFile=$SL_DIR/slurmctld.pid
SlurmdPidFile=$SL_DIR/slurmd.%n.pid
SlurmctldLogFile=$SL_DIR/log/slurmctld.log
SlurmdLogFile=$SL_DIR/log/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
KillWait=10
MinJobAge=300
SlurmdParameters=config_overrides
CONF
        for _su_n in $SL_COMPUTE; do
            echo "NodeName=$_su_n NodeAddr=$ND_NET.${_su_n#n} CPUs=2 State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=$_su_hosts Default=YES MaxTime=INFINITE State=UP"
    } >"$SL_DIR/slurm.conf"
    SLURM_CONF="$SL_DIR/slurm.conf"
    export SLURM_CONF
    nsrun "$SL_HEAD" munged --force --key-file="$SL_DIR/munge/key" --socket="$SL_DIR/munge/sock" \
        --pid-file="$SL_DIR/munge/pid" --log-file="$SL_DIR/log/munged.log" \
        --seed-file="$SL_DIR/munge/seed" ||
        { fail "munged would not start: $(tail -n 3 "$SL_DIR/log/munged.log" 2>/dev/null)"; finish; }
    nsrun "$SL_HEAD" slurmctld -f "$SLURM_CONF" ||
        { fail "slurmctld would not start: $(tail -n 3 "$SL_DIR/log/slurmctld.log" 2>/dev/null)"; finish; }
    for _su_n in $SL_COMPUTE; do
        nsrun "$_su_n" slurmd -f "$SLURM_CONF" -N "$_su_n" ||
            { fail "slurmd on $_su_n would not start: $(tail -n 3 "$SL_DIR/log/slurmd.$_su_n.log" 2>/dev/null)"; finish; }
    done
    _su_i=0
    until [ "$(slurm 20 sinfo -h -o %T 2>/dev/null | sort -u)" = idle ]; do
        _su_i=$((_su_i + 1))
        [ $_su_i -gt 60 ] && { slurm 20 sinfo; fail "the SLURM nodes never became idle"; finish; }
        sleep 0.5
    done
    slurm 20 srun --mpi=list 2>&1 | grep -q pmix || skip "srun has no pmix plugin (apt-get install libpmix-dev)"
    return 0
}

# slurm_down: each daemon by its pid file, inside its node (a pid that is no
# longer in that node is left alone), then waited for
slurm_down() {
    [ -n "$SL_DIR" ] || return 0
    _sd_pids=""
    for _sd_e in $(for n in $SL_COMPUTE; do echo "$n:$SL_DIR/slurmd.$n.pid"; done) \
        "$SL_HEAD:$SL_DIR/slurmctld.pid" "$SL_HEAD:$SL_DIR/munge/pid"; do
        _sd_n=${_sd_e%%:*}; _sd_f=${_sd_e#*:}
        _sd_p=$(cat "$_sd_f" 2>/dev/null) || continue
        node_procs "$_sd_n" | grep -qx "$_sd_p" || continue
        nsrun "$_sd_n" kill "$_sd_p" 2>/dev/null && _sd_pids="$_sd_pids $_sd_p"
    done
    _sd_i=0
    while [ $_sd_i -lt 100 ]; do
        _sd_alive=""
        for _sd_p in $_sd_pids; do _nd_alive "$_sd_p" && _sd_alive="$_sd_alive $_sd_p"; done
        [ -z "$_sd_alive" ] && break
        sleep 0.1; _sd_i=$((_sd_i + 1))
    done
    SL_DIR=""
}
