#!/usr/bin/env bash
# Writes the parts of docs/CLI.md that can be generated instead of copied:
#   - the usage-error examples: each "$ vigil ARGS" line of the block after
#     "<!-- usage-errors" is run with the built binary and the line after it
#     replaced by what the command printed (cli.usage_errors_match_doc
#     checks the block under ctest);
#   - with build/demo/ from a passing `make demo` (which runs this script):
#     the demo's table (after "<!-- demo-table") and its measured run time
#     (the "takes about N s" of the make demo section).
#
#   scripts/cli-doc.sh            # VIGIL=/path/to/vigil for another build
set -euo pipefail
cd "$(dirname "$0")/.."
VIGIL=${VIGIL:-$PWD/build/dev/vigil}
[ -x "$VIGIL" ] || { echo "cli-doc: $VIGIL not built (make build)" >&2; exit 1; }
python3 - "$VIGIL" docs/CLI.md build/demo <<'EOF'
import os, re, subprocess, sys

vigil, doc_path, demo = sys.argv[1:4]
doc = open(doc_path).read()

def block(doc, marker):
    """(start, end) of the body of the ``` block after marker."""
    i = doc.index(marker)
    start = doc.index("```\n", i) + 4
    return start, doc.index("```", start)

start, end = block(doc, "<!-- usage-errors")
lines = doc[start:end].splitlines()
out = []
for k in range(0, len(lines), 2):
    cmd = lines[k]
    assert cmd.startswith("$ vigil "), cmd
    r = subprocess.run([vigil] + cmd[8:].split(" "), capture_output=True, text=True, timeout=10)
    if r.returncode != 2 or r.stderr.count("\n") != 1:
        sys.exit(f"cli-doc: '{cmd[2:]}' is not a one-line usage error: {r.returncode} {r.stderr!r}")
    out += [cmd, r.stderr.rstrip("\n")]
doc = doc[:start] + "\n".join(out) + "\n" + doc[end:]

report = os.path.join(demo, "report.txt")
elapsed = os.path.join(demo, "elapsed_s")
if os.path.exists(report) and os.path.exists(elapsed):
    text = open(report).read()
    table = text.split("\n\nserver events:")[0].rstrip("\n")
    start, end = block(doc, "<!-- demo-table")
    doc = doc[:start] + table + "\n" + doc[end:]
    secs = round(float(open(elapsed).read()))
    doc, n = re.subn(r"takes about \d+ s", f"takes about {secs} s", doc)
    assert n == 1, "cli-doc: no 'takes about N s' in the make demo section"
open(doc_path, "w").write(doc)
print(f"cli-doc: {doc_path} written" + (" (with the demo's table and time)"
      if os.path.exists(report) else ""))
EOF
