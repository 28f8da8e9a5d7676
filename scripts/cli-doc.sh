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
#   scripts/cli-doc.sh --check-demo DIR
#       writes nothing: fails when the demo run in DIR (DEMO_LOG=DIR
#       scripts/demo.sh) disagrees with docs/CLI.md: a row of the table
#       differs in what is not a measurement (fault, who saw it, verdict,
#       expectation, ok), or the run took more than twice the documented
#       time + 2 s or less than half of it - 1 s (ctest: demo.matches_doc);
#       the fleet rows are left out of the comparison when the run says it
#       skipped them (no redis-server: build/demo/fleet-skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --check-demo ]; then
  exec python3 - docs/CLI.md "$2" <<'EOF'
import os, re, sys

doc_path, run = sys.argv[1:3]
doc = open(doc_path).read()
i = doc.index("<!-- demo-table")
start = doc.index("```\n", i) + 4
doc_table = doc[start:doc.index("```", start)].rstrip("\n")
run_table = open(os.path.join(run, "report.txt")).read().split("\n\nserver events:")[0]


def rows(table):
    """Each row without its measured columns (after fault, silent)."""
    lines = table.split("\n\n")[0].splitlines()  # the lines after a blank one are measurements
    out = []
    for line in lines[1:]:  # columns are 2 or more spaces apart
        f = re.split(r"\s{2,}", line.strip())
        out.append(tuple(f[:3] + f[5:]) if len(f) == 7 else (line,))
    return out


bad = 0
d, r = rows(doc_table), rows(run_table)
skipped = os.path.join(run, "fleet-skipped")
if os.path.exists(skipped):  # no redis-server here: the fleet rows are not run
    print(f"cli-doc: the fleet rows not checked: {open(skipped).read().strip()}")
    d = [row for row in d if not row[0].startswith("fleet:")]
if d != r:
    bad = 1
    print("cli-doc: docs/CLI.md's demo table differs from this run (measured columns aside):")
    for k in range(max(len(d), len(r))):
        a = d[k] if k < len(d) else "(none)"
        b = r[k] if k < len(r) else "(none)"
        if a != b:
            print(f"  doc: {a}\n  run: {b}")
said = int(re.search(r"takes about (\d+) s", doc).group(1))
took = float(open(os.path.join(run, "elapsed_s")).read())
print(f"cli-doc: the demo took {took:.1f} s; docs/CLI.md says about {said} s")
if not said / 2 - 1 <= took <= 2 * said + 2:
    bad = 1
    print("cli-doc: that is not 'about' the documented time (make demo rewrites it)")
if bad:
    sys.exit(1)
print(f"cli-doc: the demo's {len(r)} rows agree with docs/CLI.md")
EOF
fi
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
if os.path.exists(os.path.join(demo, "fleet-skipped")):
    # A run without Redis would drop the fleet rows from the doc.
    print("cli-doc: the demo ran without its fleet view; docs/CLI.md's table and time kept")
elif os.path.exists(report) and os.path.exists(elapsed):
    text = open(report).read()
    table = text.split("\n\nserver events:")[0].rstrip("\n")
    start, end = block(doc, "<!-- demo-table")
    doc = doc[:start] + table + "\n" + doc[end:]
    secs = round(float(open(elapsed).read()))
    doc, n = re.subn(r"takes about \d+ s", f"takes about {secs} s", doc)
    assert n == 1, "cli-doc: no 'takes about N s' in the make demo section"
open(doc_path, "w").write(doc)
print(f"cli-doc: {doc_path} written" + (" (with the demo's table and time)"
      if os.path.exists(report) and not os.path.exists(os.path.join(demo, "fleet-skipped"))
      else ""))
EOF
