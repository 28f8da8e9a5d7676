#!/usr/bin/env python3
"""Layer check: a lower layer never includes a header of an upper one.

The layers are the table under "## Layers" in docs/ARCHITECTURE.md, lowest
first; that table is the only statement of them. Its "files" column names
each layer's files as backticked paths: `src/wire.c`, a directory
`tools/` (everything under it), a glob `src/unix/*.c`, or braces
`src/unix/{epoll,poll}.c`. Other backticked words (not starting with src/,
include/ or tools/) are prose and ignored.

For every .c and .h file under src/, include/ and tools/ of ROOT (default:
the repository), each `#include "x"` is resolved as the build does (the
including file's directory, then src/, include/), and the check fails when
  - the included header belongs to a higher layer than the file
    (printed as file:line with both layers), or
  - a file is in no layer or in two (the map must cover every file), or
  - a path in the table names no file (the map must not name files that
    are gone).
System headers (<...>) are not checked. Exit 0 when clean, 1 otherwise.

usage: scripts/layers.py [ROOT]
"""
import fnmatch
import os
import re
import sys

SCANNED = ("src/", "include/", "tools/")
INCLUDE_DIRS = ("src", "include")


def expand_braces(pat):
    m = re.search(r"\{([^{}]*)\}", pat)
    if not m:
        return [pat]
    out = []
    for alt in m.group(1).split(","):
        out.extend(expand_braces(pat[: m.start()] + alt + pat[m.end():]))
    return out


def read_layers(doc):
    """[(layer name, [patterns])], lowest first, from the table under ## Layers."""
    with open(doc, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        start = lines.index("## Layers")
    except ValueError:
        sys.exit(f"layers: {doc} has no '## Layers' section")
    header = None
    layers = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if layers:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            if "layer" not in header or "files" not in header:
                sys.exit(f"layers: the table in {doc} needs 'layer' and 'files' columns")
            continue
        if set(line.replace("|", "").strip()) <= set("-: "):
            continue  # the |---| row
        name = cells[header.index("layer")]
        files = cells[header.index("files")]
        pats = []
        for tok in re.findall(r"`([^`]+)`", files):
            if tok.startswith(SCANNED):
                pats.extend(expand_braces(tok))
        layers.append((name, pats))
    if not layers:
        sys.exit(f"layers: no layer table under '## Layers' in {doc}")
    return layers


def matches(path, pat):
    if pat.endswith("/"):
        return path.startswith(pat)
    return fnmatch.fnmatchcase(path, pat) and path.count("/") == pat.count("/")


def source_files(root):
    out = []
    for top in SCANNED:
        base = os.path.join(root, top)
        for d, _, names in os.walk(base):
            for n in names:
                if n.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/"))
    return sorted(out)


def resolve(root, including, name):
    cands = [os.path.join(os.path.dirname(including), name)]
    cands += [os.path.join(d, name) for d in INCLUDE_DIRS]
    for c in cands:
        c = os.path.normpath(c).replace(os.sep, "/")
        if os.path.isfile(os.path.join(root, c)):
            return c
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    layers = read_layers(os.path.join(root, "docs", "ARCHITECTURE.md"))
    files = source_files(root)
    rank = {}
    errors = 0
    for f in files:
        hits = [i for i, (_, pats) in enumerate(layers) if any(matches(f, p) for p in pats)]
        if len(hits) != 1:
            where = "no layer" if not hits else "layers " + ", ".join(layers[i][0] for i in hits)
            print(f"{f}: in {where} of docs/ARCHITECTURE.md's table (each file needs exactly one)")
            errors += 1
            continue
        rank[f] = hits[0]
    for name, pats in layers:
        for p in pats:
            if not any(matches(f, p) for f in files):
                print(f"docs/ARCHITECTURE.md: layer '{name}' names `{p}`, which matches no file")
                errors += 1
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    checked = 0
    for f in files:
        if f not in rank:
            continue
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                m = inc.match(line)
                if not m:
                    continue
                h = resolve(root, f, m.group(1))
                if h is None or h not in rank:
                    continue  # generated (test lists) or reported above
                checked += 1
                if rank[h] > rank[f]:
                    print(
                        f"{f}:{lineno}: includes {h} of layer '{layers[rank[h]][0]}' "
                        f"from layer '{layers[rank[f]][0]}' below it"
                    )
                    errors += 1
    if errors:
        print(f"layers: {errors} problem(s) ({len(files)} files, {checked} includes)")
        return 1
    print(f"layers: clean ({len(files)} files in {len(layers)} layers, {checked} includes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
