#!/bin/sh
# What a new user meets: data, habits and mistakes of one's own, each one a
# surprise found by trying vae-dist as a new user would, and what it must do
# instead. Numbered as in docs/testing.md.
. "$top_srcdir/tests/lib.sh"

"$GEN" "$WORK/bars.h5" --n 400 --test 50 --side 8 >/dev/null || { fail gen_data; finish; }
SMALL="--epochs 1 --batch 20 --hidden 16 --latent 2"

# one CODE NAME ARGS...: vae-dist on 1 rank (out, err in $WORK/NAME.out,
# .err); it must exit CODE with at most one "vae-dist:" line on stderr
one() {
    code=$1; name=$2; shift 2
    run_mpi 1 60 -q "$VAE" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    [ "$rc" -eq "$code" ] && [ "$(grep -c '^vae-dist: ' "$WORK/$name.err")" -le 1 ] && return 0
    cat "$WORK/$name.out" "$WORK/$name.err"
    echo "($name: exit $rc, want $code)"
    return 1
}

# 1. A data file named by $VAE_DIST_DATA must exist, as one named by --data;
#    only the built-in default is imported on first use.
(
    export VAE_DIST_DATA="$WORK/missing.h5" XDG_DATA_HOME="$WORK/xdg"
    one 66 env-data $SMALL --out "$WORK/env-run"
) && grep -q '^vae-dist: no data: \$VAE_DIST_DATA names .*missing.h5, which does not exist' "$WORK/env-data.err" &&
    [ ! -e "$WORK/missing.h5" ] && [ ! -e "$WORK/env-run" ] &&
    pass "1. \$VAE_DIST_DATA naming a missing file: exit 66, $(cat "$WORK/env-data.err")" ||
    fail "1. \$VAE_DIST_DATA naming a missing file was not refused (or something was written)"

finish
