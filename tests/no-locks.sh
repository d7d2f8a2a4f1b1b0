#!/bin/sh
# A file system that refuses file locks (flock fails with ENOLCK, through
# the LD_PRELOAD library tests/nolock.c): HDF5 1.10 would report every open
# as a failure. vae-dist notices, turns HDF5's locking off with one note, and
# trains, evaluates and resumes; a user's own HDF5_USE_FILE_LOCKING is left
# alone.
. "$top_srcdir/tests/lib.sh"
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || skip "no C compiler to build the preload library"
"$CC" -shared -fPIC -o "$WORK/nolock.so" "$top_srcdir/tests/nolock.c" || { fail "building nolock.so"; finish; }
"$GEN" "$WORK/bars.h5" --n 400 --test 50 --side 8 --type u8 || { fail gen_data; finish; }
# a sanitizer build needs its runtime first in the preload list
PRELOAD="$WORK/nolock.so"
asan=$(ldd "$VAE" 2>/dev/null | sed -n 's/.*\(libasan[^ ]*\) => \([^ ]*\).*/\2/p' | head -n 1)
[ -n "$asan" ] && PRELOAD="$asan:$PRELOAD"
ARGS="--data $WORK/bars.h5 --batch 20 --hidden 16 --latent 2 --out $WORK/run"

run_mpi 2 60 -x LD_PRELOAD="$PRELOAD" "$VAE" $ARGS --epochs 1 >"$WORK/a.log" 2>"$WORK/a.err" &&
    [ "$(grep -c 'refuses file locks' "$WORK/a.err")" -eq 1 ] && [ "$(grep -c '^vae-dist: note:' "$WORK/a.err")" -eq 1 ] &&
    pass "no file locks: trains, with one note: $(cut -c1-100 "$WORK/a.err")..." ||
    { cat "$WORK/a.log" "$WORK/a.err"; fail "training where locks are refused"; }
run_mpi 2 60 -x LD_PRELOAD="$PRELOAD" "$VAE" $ARGS --epochs 2 >"$WORK/b.log" 2>&1 &&
    grep -q "^resuming from" "$WORK/b.log" && pass "no file locks: resumes" ||
    { cat "$WORK/b.log"; fail "resume where locks are refused"; }
run_mpi 2 60 -x LD_PRELOAD="$PRELOAD" "$VAE" eval --ckpt "$WORK/run" --samples 2 >"$WORK/e.log" 2>&1 &&
    grep -q "^negative ELBO" "$WORK/e.log" && pass "no file locks: eval" || { cat "$WORK/e.log"; fail "eval where locks are refused"; }
# the user's own setting wins: forced on, the open fails as HDF5 reports it
run_mpi 2 60 -x LD_PRELOAD="$PRELOAD" -x HDF5_USE_FILE_LOCKING=TRUE "$VAE" $ARGS --epochs 3 \
    >"$WORK/f.log" 2>"$WORK/f.err"
rc=$?
[ $rc -eq 74 ] && grep -q "refuses file locks, which HDF5_USE_FILE_LOCKING=TRUE asks for" "$WORK/f.err" &&
    pass "HDF5_USE_FILE_LOCKING=TRUE is left alone (exit $rc)" || fail "HDF5_USE_FILE_LOCKING=TRUE overridden (exit $rc)"
finish
