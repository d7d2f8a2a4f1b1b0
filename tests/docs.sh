#!/bin/sh
# The reference pages come from the option tables: docs/options.md is what
# `vae-dist help --markdown` prints (run `make options-md` after changing an
# option), and the man page names every option of every command. The README
# and docs/ link only to files that exist.
. "$top_srcdir/tests/lib.sh"
run_one 60 "$VAE" help --markdown >"$WORK/options.md" || fail "help --markdown"
cmp -s "$WORK/options.md" "$top_srcdir/docs/options.md" && pass "docs/options.md is current" ||
    { diff "$top_srcdir/docs/options.md" "$WORK/options.md" | head -20; fail "docs/options.md is stale: run make options-md"; }
run_one 60 "$VAE" help --man >"$WORK/vae-dist.1" || fail "help --man"
missing=0
for opt in $(sed -n 's/^| `--\([a-z0-9-]*\).*/\1/p' "$WORK/options.md" | sort -u); do
    roff=$(printf '%s' "$opt" | sed 's/-/\\\\-/g') # roff writes - as \-
    grep -q "^\.B \\\\-\\\\-$roff" "$WORK/vae-dist.1" || { echo "man page lacks --$opt"; missing=$((missing + 1)); }
done
[ $missing -eq 0 ] && pass "the man page names every option" || fail "$missing options missing from the man page"
if command -v man >/dev/null 2>&1; then
    MANWIDTH=80 man -l "$WORK/vae-dist.1" >"$WORK/man.txt" 2>"$WORK/man.err" &&
        grep -q "^EXIT STATUS" "$WORK/man.txt" && grep -q "^RECONSTRUCT" "$WORK/man.txt" && ! grep -q "warning" "$WORK/man.err" &&
        pass "man -l renders it" || { cat "$WORK/man.err"; fail "man -l"; }
fi
# every relative link of README.md and docs/*.md points to a file that exists
bad=0
for f in "$top_srcdir/README.md" "$top_srcdir"/docs/*.md; do
    dir=$(dirname "$f")
    for link in $(grep -o '](\([^)#:]*\)' "$f" | sed 's/^](//' | sort -u); do
        [ -e "$dir/$link" ] || { echo "$(basename "$f"): broken link $link"; bad=$((bad + 1)); }
    done
done
[ $bad -eq 0 ] && pass "README.md and docs/ link only to files that exist" || fail "$bad broken links"
# and every link to a heading names one that exists
if command -v python3 >/dev/null 2>&1; then
    (cd "$top_srcdir" && python3 tests/anchors.py README.md docs/*.md) &&
        pass "README.md and docs/ link only to headings that exist" || fail "links to headings that do not exist"
else
    echo "skip: no python3 to check the links' anchors"
fi
finish
