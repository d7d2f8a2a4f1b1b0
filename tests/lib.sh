# lib.sh — helpers for the shell tests. The Makefile exports top_builddir,
# top_srcdir, MPIRUN, H5DIFF and TIMEOUT, and allows mpirun as root.
set -u
VAE="$top_builddir/vae-dist"
GEN="$top_builddir/tests/gen_data"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vd-sh-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
skip() { echo "SKIP: $*"; exit 77; }
finish() { [ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }; exit 0; }

# run_mpi NP SECONDS CMD...: mpirun under a timeout (exit 124 if it hangs).
run_mpi() {
    [ -n "${TIMEOUT:-}" ] || skip "timeout (coreutils) not found: every mpirun in the tests runs under it"
    np=$1; secs=$2; shift 2
    "$TIMEOUT" -k 5 "$secs" "$MPIRUN" --oversubscribe -np "$np" "$@"
}

# run_one SECS CMD...: vae-dist started without mpirun (a singleton, which
# still starts MPI) under the same timeout
run_one() {
    [ -n "${TIMEOUT:-}" ] || skip "timeout (coreutils) not found: every vae-dist in the tests runs under it"
    secs=$1; shift
    "$TIMEOUT" -k 5 "$secs" "$@"
}

# one_error_line FILE: FILE, a stderr, holds exactly one "vae-dist: ..."
# line and nothing else (blank lines aside); $lines and $others count them.
one_error_line() {
    lines=$(grep -c '^vae-dist: ' "$1")
    others=$(grep -v '^vae-dist: ' "$1" | grep -vc '^$')
    [ "$lines" -eq 1 ] && [ "$others" -eq 0 ]
}

# expect CODE NAME ARGS...: bad input on 2 ranks must end within the
# timeout with exit CODE and exactly one "vae-dist: ..." line on stderr
# (from one rank), nothing else there (-q: Open MPI's own banner aside).
expect() {
    code=$1; name=$2; shift 2
    run_mpi 2 60 -q "$VAE" "$@" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    if one_error_line "$WORK/err" && [ "$rc" -eq "$code" ]; then
        pass "$name: exit $rc, $(cat "$WORK/err")"
    else
        fail "$name: exit $rc (want $code), $lines error line(s), $others other stderr line(s)"
        cat "$WORK/err"
    fi
}

# The tools the tests need but the program does not: a test without them
# is skipped (exit 77) with the reason.
need_h5diff() {
    [ -n "${H5DIFF:-}" ] || skip "h5diff not found (apt-get install hdf5-tools)"
}
