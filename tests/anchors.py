"""Every link from README.md and docs/*.md to a heading (FILE.md#anchor or
#anchor) names a heading that exists, with the anchors GitHub makes:
lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats.
Prints one line per broken anchor; exits 1 if there is any."""
import os
import re
import sys


def headings(path):
    slugs, seen, fence = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
        if fence or not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        slugs.add(slug if n == 0 else f"{slug}-{n}")
    return slugs


def links(path):
    fence = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
        if not fence:
            yield from re.findall(r"\]\(([^)\s]*#[^)\s]*)\)", line)


bad = 0
for page in sys.argv[1:]:
    for link in links(page):
        target, anchor = link.split("#", 1)
        if ":" in target:
            continue  # another site
        file = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
        if not file.endswith(".md") or not os.path.exists(file):
            continue  # the file check is docs.sh's
        if anchor not in headings(file):
            print(f"{os.path.basename(page)}: no heading for {link}")
            bad += 1
sys.exit(1 if bad else 0)
