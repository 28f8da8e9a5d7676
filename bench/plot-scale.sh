#!/bin/sh
# plot-scale.sh: draws bench-scale's measured memory and CPU against the
# number of connections held, as an SVG (issue 11, part 4).
#
# usage: bench/plot-scale.sh [RUNS] > docs/scale.svg
#   RUNS: bench-scale outputs, one after another, each introduced by the
#   line "$ <command>" (default docs/scale-runs.txt). Every run whose
#   output has a "ramp:", a "memory:" and a "hold" line becomes one point,
#   except freeze runs (--freeze: another period) and runs with a comment
#   line ("# ...") saying "not plotted".
#
# Three panels, x = connections held at the end of the ramp:
#   1. totals: server RSS (supervisor + workers) and kernel slab (both
#      ends' sockets), MiB;
#   2. per connection: server RSS and kernel slab, bytes;
#   3. server CPU over the hold: % of one core, and us per heartbeat.
# A dashed line continues each total from the largest N held to 1,000,000
# at the largest run's cost per connection: the projection, not a
# measurement. Plain POSIX sh + awk, nothing to install.
set -eu
runs=${1:-docs/scale-runs.txt}
[ -r "$runs" ] || { echo "plot-scale.sh: cannot read $runs" >&2; exit 1; }

awk '
function num(s) { gsub(/[^0-9.]/, "", s); return s + 0 }
/^\$ / { cmd = substr($0, 3); skip = cmd ~ /--freeze/ }
/^# .*not plotted/ { skip = 1 }
/^ramp: / { held = num($2) }
/^memory: / {
  for (i = 1; i <= NF; i++) {
    if ($i == "RSS") { rss = num($(i + 1)); rssb = num($(i + 4)) }
    if ($i == "slab") { slab = num($(i + 1)); slabb = num($(i + 4)) }
  }
}
/^hold [0-9.]+ s: / {
  for (i = 1; i <= NF; i++) {
    if ($i == "CPU") cpus = num($(i + 1))
    if ($i ~ /^us\/heartbeat/) us = num($(i - 1))
    if ($i == "(" || $i ~ /^\([0-9.]+%$/) pct = num($i)
  }
  if (held > 0 && !skip) {
    n++; X[n] = held; RSS[n] = rss; SLAB[n] = slab; RSSB[n] = rssb; SLABB[n] = slabb
    PCT[n] = pct; US[n] = us; CMD[n] = cmd
  }
  held = 0
}
function xmap(x) { return L + (x / XMAX) * W }
function ymap(y, ymax, top) { return top + H - (y / ymax) * H }
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
function axes(top, ymax, label, unit,    k, v, y) {
  printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", L, top, W, H
  for (k = 0; k <= 4; k++) {
    v = ymax * k / 4; y = ymap(v, ymax, top)
    printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n", L, y, L + W, y
    printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n", L - 6, y + 4, v
  }
  for (k = 0; k <= 5; k++) {
    printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%dk</text>\n", xmap(XMAX * k / 5), top + H + 15, XMAX * k / 5000
  }
  printf "<text x=\"%d\" y=\"%d\" font-size=\"13\" font-weight=\"bold\">%s</text>\n", L, top - 8, esc(label)
  printf "<text x=\"%d\" y=\"%d\" font-size=\"11\" transform=\"rotate(-90 %d %d)\" text-anchor=\"middle\">%s</text>\n", 14, top + H / 2, 14, top + H / 2, esc(unit)
}
function series(top, ymax, V, color, name, ly,    i, path) {
  path = ""
  for (i = 1; i <= n; i++) path = path sprintf("%s%.1f,%.1f ", i == 1 ? "" : "", xmap(X[i]), ymap(V[i], ymax, top))
  printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", path, color
  for (i = 1; i <= n; i++)
    printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s: %g at %d connections (%s)</title></circle>\n", xmap(X[i]), ymap(V[i], ymax, top), color, esc(name), V[i], X[i], esc(CMD[i])
  printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/><text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n", L + 10, ly, L + 30, ly, color, L + 36, ly + 4, esc(name)
}
function projection(top, ymax, V, color,    y1) {
  if (X[n] >= 1000000) return
  y1 = V[n] / X[n] * 1000000
  printf "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"5,4\"><title>projection at the largest run'"'"'s cost per connection: %.0f at 1,000,000</title></line>\n", xmap(X[n]), ymap(V[n], ymax, top), xmap(1000000), ymap(y1, ymax, top), color, y1
}
function top_of(V, proj,    i, m) {
  m = 0
  for (i = 1; i <= n; i++) if (V[i] > m) m = V[i]
  if (proj && X[n] < 1000000) m = V[n] / X[n] * 1000000 > m ? V[n] / X[n] * 1000000 : m
  return nice(m * 1.1)
}
function nice(m,    p) { p = 1; while (p * 10 < m) p *= 10; return m <= p * 2 ? p * 2 : m <= p * 5 ? p * 5 : p * 10 }
END {
  if (n == 0) { print "plot-scale.sh: no complete bench-scale run in the input" > "/dev/stderr"; exit 1 }
  for (i = 1; i < n; i++) for (j = i + 1; j <= n; j++) if (X[j] < X[i]) {
    t = X[i]; X[i] = X[j]; X[j] = t; t = RSS[i]; RSS[i] = RSS[j]; RSS[j] = t
    t = SLAB[i]; SLAB[i] = SLAB[j]; SLAB[j] = t; t = RSSB[i]; RSSB[i] = RSSB[j]; RSSB[j] = t
    t = SLABB[i]; SLABB[i] = SLABB[j]; SLABB[j] = t; t = PCT[i]; PCT[i] = PCT[j]; PCT[j] = t
    t = US[i]; US[i] = US[j]; US[j] = t; t = CMD[i]; CMD[i] = CMD[j]; CMD[j] = t
  }
  L = 70; W = 620; H = 200; XMAX = 1000000
  if (X[n] > XMAX) XMAX = X[n]
  printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"860\" font-family=\"sans-serif\">\n"
  printf "<rect width=\"720\" height=\"860\" fill=\"white\"/>\n"
  printf "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">vigil serve under bench-scale: memory and CPU against connections held</text>\n", L - 50
  t1 = 60; m1 = top_of(SLAB, 1)
  axes(t1, m1, "Totals (MiB): server RSS, kernel slab of both ends", "MiB")
  series(t1, m1, SLAB, "#d62728", "kernel slab, both ends (MiB)", t1 + 14)
  series(t1, m1, RSS, "#1f77b4", "server RSS, supervisor + workers (MiB)", t1 + 30)
  projection(t1, m1, SLAB, "#d62728"); projection(t1, m1, RSS, "#1f77b4")
  t2 = 330; m2 = top_of(SLABB, 0)
  axes(t2, m2, "Per connection (bytes)", "bytes")
  series(t2, m2, SLABB, "#d62728", "kernel slab per connection, both ends (B)", t2 + 14)
  series(t2, m2, RSSB, "#1f77b4", "server RSS per connection (B)", t2 + 30)
  t3 = 600; m3 = top_of(PCT, 0); if (top_of(US, 0) > m3) m3 = top_of(US, 0)
  axes(t3, m3, "Server CPU over the hold", "% of one core / us")
  series(t3, m3, PCT, "#2ca02c", "server CPU, % of one core", t3 + 14)
  series(t3, m3, US, "#9467bd", "server CPU per heartbeat (us)", t3 + 30)
  printf "<text x=\"%d\" y=\"%d\" font-size=\"11\">x: connections held after the ramp. Dashed: projection to 1,000,000 at the largest run'"'"'s cost per connection.</text>\n", L - 50, t3 + H + 38
  printf "<text x=\"%d\" y=\"%d\" font-size=\"11\">Data: the bench-scale runs in %s (hover a point for its command); drawn by bench/plot-scale.sh.</text>\n", L - 50, t3 + H + 54, esc(RUNS)
  print "</svg>"
}' RUNS="$runs" "$runs"
