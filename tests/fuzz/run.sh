#!/bin/sh
# run.sh [SECONDS] [BUILD_DIR] [HARNESS...] — builds the libFuzzer harnesses for the data
# reader and the checkpoint loader with clang, ASan and UBSan, and runs each
# for SECONDS (default 20) on a copy of its seed corpus. Fails on any crash,
# leak or sanitizer report in our code. HDF5 itself is not instrumented.
# Single allocations up to 8 GiB are let through (resident memory is still
# capped at 2 GiB): damaged chunk sizes make HDF5 ask for 4 GiB, which
# Linux grants lazily and HDF5 then fails to fill, cleanly.
# After each input that did not crash HDF5, the harnesses check that no HDF5
# object is left open (a leak of ours aborts on the input that made it).
# HDF5 itself leaks memory after the crashes the guard catches, so runs
# longer than 2 minutes use libFuzzer's fork mode (FUZZ_FORK=0 turns it
# off): the inputs run in child processes that are restarted, and the
# leaked memory goes with them; a finding still stops the campaign.
# Needs: clang libclang-rt-14-dev (and the project's build dependencies).
#   sh tests/fuzz/run.sh 20            # the smoke run CI does
#   sh tests/fuzz/run.sh 3600          # an hour-long campaign, fork mode
#   sh tests/fuzz/run.sh 600 /tmp/f ckpt   # one harness (h5rows or ckpt)
set -eu
SECS=${1:-20}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${2:-${TMPDIR:-/tmp}/vd-fuzz}
[ $# -gt 2 ] && shift 2 && harnesses="$*" || harnesses="h5rows ckpt"
mkdir -p "$out"
CC=${CLANG:-clang}
command -v "$CC" >/dev/null || { echo "run.sh: $CC not found (apt-get install clang libclang-rt-14-dev)"; exit 2; }

# the project's flags, through mpicc and pkg-config, for clang
cflags="-std=c11 -D_GNU_SOURCE -DVD_NO_CLONES -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I$top/include -I$out $(mpicc --showme:compile) \
  $(pkg-config --cflags hdf5-openmpi openblas zlib libpng)"
libs="$(mpicc --showme:link) $(pkg-config --libs hdf5-openmpi openblas zlib libpng) -lm"
printf '#define PACKAGE_STRING "vae-dist fuzz"\n#define PACKAGE_VERSION "fuzz"\n' >"$out/config.h"

src="$top/src"
$CC $cflags -o "$out/fuzz_h5rows" "$here/fuzz_h5rows.c" "$src/data/h5rows.c" "$src/data/shard.c" \
    "$src/data/image.c" "$src/base/util.c" "$src/base/rng.c" "$src/base/h5util.c" \
    "$src/base/durable.c" $libs
model=$(ls "$src"/model/*.c) # the model's sources
$CC $cflags -o "$out/fuzz_ckpt" "$here/fuzz_ckpt.c" "$src/files/ckpt.c" $model "$src/base/rng.c" \
    "$src/base/util.c" "$src/base/opts.c" "$src/base/h5util.c" "$src/base/durable.c" \
    "$src/data/image.c" $libs

status=0
# allocator_may_return_null: a damaged file can make HDF5 ask for exabytes;
# like glibc without ASan, answer NULL (HDF5 then fails cleanly)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:suppressions=$here/asan.supp}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fork=""
[ "${FUZZ_FORK:-1}" != 0 ] && [ "$SECS" -gt 120 ] && fork="-fork=1"
for h in $harnesses; do
    corpus="$out/corpus-$h"
    rm -rf "$corpus"; mkdir -p "$corpus"
    cp "$here/corpus-$h"/* "$corpus"/
    [ $h = h5rows ] && cp "$here/regress"/* "$corpus"/ # files that once crashed HDF5
    echo "== fuzz_$h for ${SECS}s${fork:+ ($fork)}"
    if "$out/fuzz_$h" $fork -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=8192 \
        -artifact_prefix="$out/crash-$h-" -print_final_stats=1 "$corpus" >"$out/fuzz_$h.log" 2>&1; then
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$out/fuzz_$h.log" | sed "s/^/fuzz_$h: /"
    else
        status=1
        tail -n 40 "$out/fuzz_$h.log"
        echo "fuzz_$h: FAILED (artifacts: $out/crash-$h-*)"
    fi
done
exit $status
