#!/usr/bin/env python3
"""Writes docs/FAULTS.md from one run of tests/fault/suite.sh.

Usage: report.py RUN_DIR [CLEANUP_LINE] > docs/FAULTS.md
       report.py --soak RUN_DIR COMMAND DOC

The second form (scripts/soak.sh, `make soak`) writes the "Long soaks"
section, from a run of the soak cases alone, into DOC in place, between the
SOAK_BEGIN and SOAK_END markers; the first form copies that section from
the current docs/FAULTS.md, so `make faults` keeps the last long soak.

RUN_DIR holds results/*.tsv (one line per case: scenario, mechanism, role,
expected, bound_ms, outcome, cause, time_ms, status, note) and suite_ms. The
page is generated so that every figure in it comes from that run; nothing
here is typed by hand except the explanations of what the scenarios and
mechanisms are.
"""
import glob
import os
import platform
import sys
import time

SCENARIOS = [
    ("cable", "cable pulled, connection idle", "`ip link set vb down` on the victim's host"),
    ("cable_data", "cable pulled, data in flight", "same, while the observer writes 100 B every 100 ms (heartbeat: `--send-every 100ms --send-size 100`)"),
    ("vanish", "peer host vanishes", "link down, victim killed, its sockets purged (`ss -K`)"),
    ("kill9", "peer process killed", "`kill -9` of the victim process (its kernel sends FIN)"),
    ("reboot", "peer host reboots", "link parked, victim killed, namespace deleted and recreated with the same address and link: the next segment meets RST"),
    ("stop", "peer app hung, idle", "`kill -STOP` of the victim; its kernel still ACKs"),
    ("stop_data", "peer app hung, data pending", "same, while the observer floods until the window closes (heartbeat: `--send-every 20ms --send-size 1048576`, 1 MiB messages into a 1 MiB library queue)"),
    ("oneway", "one-way partition", "nft on the victim's host drops everything it sends to the observer"),
    ("nat_below", "NAT forgets idle flows (4 s), interval below", "router namespace: masquerade, policy drop, `ct state established accept`, conntrack established timeout 4 s, loose 0; time counted from the handshake"),
    ("nat_above", "NAT forgets idle flows (4 s), interval above", "same router; the first probe after 4 s of silence is dropped"),
    ("loss", "lossy link (20% each way), soak", "nft `numgen random mod 100 < 20 drop` on input and output of one host"),
    ("jitter", "delayed, jittery link (0-300 ms each way), soak", "iptables NFQUEUE + tests/fault/nfq-delay holding each packet a random 0-300 ms"),
    ("socat_idle", "socat, cable pulled while idle", "`socat -u TCP:B:7000 STDOUT`, an unmodified Debian program"),
    ("socat_data", "socat, cable pulled with data in flight", "`socat -u EXEC:writer TCP:B:7000`, a line every 100 ms"),
    ("idle_timeout", "`vigil idle-timeout` through the 4 s NAT", "vigil serve behind the router, idle-timeout from the inside"),
]

MECHS = [
    ("ka", "kernel keepalive alone", "SO_KEEPALIVE idle 1 s, interval 1 s, count 2 (fault-peer, plain setsockopt)", "idle + count x interval + 1 s slack = 4 s"),
    ("uto", "TCP_USER_TIMEOUT alone", "2 s, no keepalive (fault-peer)", "UTO + 1.5 s (RTO granularity) = 3.5 s (stalled peer with data: zero-window probes back off, 2 x UTO + 1 s = 5 s)"),
    ("run", "`vigil run --budget 3s --lost 1`", "libvigil's keepalive (idle 1 s, interval 1 s, count 2) + user timeout 3 s derived from a 3 s budget, applied by LD_PRELOAD to an unmodified fault-peer", "budget + 1.5 s = 4.5 s (stalled peer with data: 2 x budget + 1 s = 7 s)"),
    ("hb", "vigil heartbeat", "`vigil serve` / `vigil connect`, interval 500 ms, timeout 1500 ms", "timeout + 500 ms = 2 s"),
    ("tls", "vigil heartbeat over TLS", "the same, with `--tls-cert/--tls-key` and `connect --tls` (TLS 1.3, a certificate made for the run)", "timeout + 500 ms = 2 s"),
    ("plain", "no vigil", "socat as Debian ships it", "-"),
    ("tool", "`vigil idle-timeout`", "parallel idle holds, one ping each", "within 1 s of the configured timeout"),
]


SOAK_BEGIN = "<!-- soak:begin -->"
SOAK_END = "<!-- soak:end -->"
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "FAULTS.md")
LINKS = {"loss": "lossy link (20% each way)", "jitter": "delayed, jittery link (0-300 ms each way)"}
MECH_NAMES = {"ka": "kernel keepalive alone", "hb": "vigil heartbeat"}


def soak_section(run_dir, command):
    """The Long soaks section, markers included, from a run of the soak cases."""
    rows = [r for r in load(run_dir) if r["role"] == "both"]
    lines = [SOAK_BEGIN, "## Long soaks", ""]
    lines.append("<!-- Written by `make soak` (scripts/soak.sh -> tests/fault/report.py --soak);"
                 " `make faults` keeps it. -->")
    lines.append("")
    npass = sum(r["status"] == "PASS" for r in rows)
    try:  # the run's end, not the time this page is written
        ended = os.path.getmtime(os.path.join(run_dir, "suite_ms"))
    except OSError:
        ended = time.time()
    lines.append("Run ended: %s UTC, Linux %s, `%s` (the soak cases alone, in parallel): **%d"
                 " cases, %d passed, %d failed**. Same links and settings as the soak rows"
                 " above, each held for the time shown. Keepalive evidence: probes the"
                 " observer's kernel sent (TcpExtTCPKeepAlive), the longest run of unanswered"
                 " probes, and how many runs had 1, 2, ... unanswered probes (fault-peer's"
                 " TCP_INFO samples); a death needs a run as long as the count."
                 % (time.strftime("%Y-%m-%d %H:%M", time.gmtime(ended)), platform.release(),
                    command, len(rows), npass, len(rows) - npass))
    lines.append("")
    lines.append("| link | mechanism | soaked | false deaths | status | settings and evidence |")
    lines.append("|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["scen"], r["mech"])):
        note = r["note"].replace("|", "/")
        deaths = "0" if r["status"] == "PASS" else (note.split(" false deaths")[0]
                                                   if " false deaths" in note else "-")
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            LINKS.get(r["scen"], r["scen"]), MECH_NAMES.get(r["mech"], r["mech"]),
            secs(r["time"]), deaths, r["status"], note))
    lines.append(SOAK_END)
    return "\n".join(lines) + "\n"


def kept_soak_section(doc):
    """The Long soaks section of an existing page, or "" when it has none."""
    try:
        with open(doc, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return ""
    a, b = text.find(SOAK_BEGIN), text.find(SOAK_END)
    if a < 0 or b < a:
        return ""
    return text[a:b + len(SOAK_END)] + "\n"


def write_soak(run_dir, command, doc):
    section = soak_section(run_dir, command)
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    a, b = text.find(SOAK_BEGIN), text.find(SOAK_END)
    if a >= 0 and b > a:
        text = text[:a] + section + text[b + len(SOAK_END) + 1:]
    else:  # first time: before the Gaps section, or at the end
        g = text.find("## Gaps")
        text = text[:g] + section + "\n" + text[g:] if g >= 0 else text + "\n" + section
    with open(doc + ".new", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(doc + ".new", doc)


def load(run_dir):
    rows = []
    for path in sorted(glob.glob(os.path.join(run_dir, "results", "*.tsv"))):
        with open(path, encoding="utf-8") as f:
            parts = f.read().rstrip("\n").split("\t")
        while len(parts) < 10:
            parts.append("")
        keys = ["scen", "mech", "role", "expect", "bound", "outcome", "cause", "time", "status", "note"]
        rows.append(dict(zip(keys, parts)))
    return rows


def secs(ms):
    try:
        v = int(ms)
    except ValueError:
        return ms
    return "%d ms" % v if v < 1000 else "%.2f s" % (v / 1000.0)


def cell(rs):
    """One matrix cell: the result for both observer roles."""
    if not rs:
        return ""
    out = []
    for r in sorted(rs, key=lambda r: r["role"]):
        tag = {"server": "S", "client": "C", "both": "S+C"}.get(r["role"], r["role"])
        if r["status"] == "SKIP":
            out.append("%s: skipped" % tag)
        elif r["outcome"] == "detected":
            out.append("%s: **%s** %s%s" % (tag, r["cause"], secs(r["time"]),
                                           "" if r["status"] == "PASS" else " FAIL"))
        elif r["outcome"] == "none" and r["role"] == "both":
            out.append("%s: no false death in %s%s" % (tag, secs(r["time"]),
                                                      "" if r["status"] == "PASS" else " FAIL"))
        elif r["outcome"] == "none":
            out.append("%s: not detected in %s%s" % (tag, secs(r["time"]),
                                                    "" if r["status"] == "PASS" else " FAIL"))
        elif r["outcome"] == "found":
            out.append("%s: %s (error %s ms)%s" % (tag, r["cause"].replace("estimate_", "estimate "),
                                                   r["time"], "" if r["status"] == "PASS" else " FAIL"))
        else:
            out.append("%s: %s" % (tag, r["status"]))
    return "<br>".join(out)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--soak":
        write_soak(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    kept = kept_soak_section(DOC)
    run_dir = sys.argv[1]
    cleanup = sys.argv[2] if len(sys.argv) > 2 else "not run"
    cleanup = cleanup.replace("cleanup after SIGINT: ", "")
    rows = load(run_dir)
    try:
        with open(os.path.join(run_dir, "suite_ms"), encoding="utf-8") as f:
            suite_ms = int(f.read().strip())
    except (OSError, ValueError):
        suite_ms = 0
    npass = sum(r["status"] == "PASS" for r in rows)
    nfail = sum(r["status"] == "FAIL" for r in rows)
    nskip = sum(r["status"] == "SKIP" for r in rows)
    p = print
    p("# Fault suite results")
    p()
    p("<!-- GENERATED by `make faults` (scripts/faults.sh -> tests/fault/report.py)"
      " from one run of tests/fault/suite.sh. Do not edit by hand: run it again. -->")
    p()
    p("Run: %s UTC, Linux %s, %s. **%d cases: %d passed, %d failed, %d skipped; "
      "whole suite %.1f s** (cases run in parallel). Cleanup after SIGINT: %s."
      % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), platform.release(),
         platform.machine(), len(rows), npass, nfail, nskip, suite_ms / 1000.0, cleanup))
    p()
    p("Every case runs two real TCP endpoints in network namespaces the suite creates"
      " (tests/fault/lib.sh), injects one real fault on the victim's side, and measures"
      " the time from the fault to the observer's verdict. S = the server observes the"
      " client die; C = the client observes the server die. A case passes when the"
      " verdict and its cause are the expected ones and the time is within the bound"
      " documented for the mechanism, or, where the mechanism cannot see the fault,"
      " when no verdict comes while it is watched (bound + 1 s).")
    p()
    p("## Mechanisms and their bounds")
    p()
    p("| mechanism | settings | bound on detection |")
    p("|---|---|---|")
    for key, name, settings, bound in MECHS:
        if any(r["mech"] == key for r in rows):
            p("| %s (`%s`) | %s | %s |" % (name, key, settings, bound))
    p()
    p("Kill -9 is bounded by 1 s for every mechanism (the FIN arrives within one RTT)."
      " NAT cases count from the handshake (the moment the flow goes idle); their"
      " bounds are keepalive idle 6 s + 2 x 1 s + 1 s = 9 s, and heartbeat timeout"
      " 12 s + 1 s = 13 s.")
    p()
    p("## Scenario x mechanism")
    p()
    present = [m for m in MECHS if any(r["mech"] == m[0] for r in rows)]
    p("| scenario | " + " | ".join("%s" % m[1] for m in present) + " |")
    p("|---|" + "---|" * len(present))
    for key, name, _ in SCENARIOS:
        rs = [r for r in rows if r["scen"] == key]
        if not rs:
            continue
        p("| %s | " % name + " | ".join(cell([r for r in rs if r["mech"] == m[0]]) or "n/a"
                                        for m in present) + " |")
    p()
    p("Times are from the fault to the verdict (pulled cable, vanished host, one-way"
      " loss: from when the `ip` or `nft` command returned, since a loaded machine can take hundreds of ms"
      " to run it; NAT rows: from the handshake, when the flow goes idle). \"not detected in T\": watched for T after the fault with no"
      " verdict, which is the expected outcome where the mechanism cannot see that fault."
      " n/a: not run for that mechanism. In the heartbeat's data rows the observer"
      " (`vigil connect` or `vigil serve`, `--send-every`) was sending when the fault"
      " came; its `dead` line's data keys (`sent`, `unsent`, `queue_full`) are in the"
      " case's note below and checked: for the hung peer, data still held by the library"
      " (`unsent` or `queue_full` > 0); for the pulled cable, data unacknowledged in the"
      " kernel (`tcp_unacked` > 0).")
    p()
    p("## Every case")
    p()
    p("| scenario | mechanism | observer | expected | bound (ms) | outcome | cause | time (ms) | status | note |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["scen"], r["mech"], r["role"], r["expect"].replace("|", " or "), r["bound"],
            r["outcome"], r["cause"], r["time"], r["status"], r["note"].replace("|", "/")))
    p()
    p("## How the faults are made")
    p()
    p("| scenario | how |")
    p("|---|---|")
    for key, name, how in SCENARIOS:
        if any(r["scen"] == key for r in rows):
            p("| %s | %s |" % (name, how))
    p()
    p("## Sizing the timeout for a lossy or jittery path")
    p()
    p("A false death happens when nothing valid arrives for `timeout` although the"
      " peer is alive. The settings must hold over a stated horizon, not over one"
      " soak: vigil's bound is at most 0.001 expected false deaths per connection"
      " over 24 h.")
    p()
    p("Kernel keepalive (docs/KEEPALIVE.md, \"Sizing for a lossy path\";"
      " `vigil_keepalive_count_for_loss`): a probe is not retransmitted, so no RTO"
      " enters; its round trip fails with q = 1 - (1 - p)^2 (probe or ACK lost);"
      " `count` failures in a row kill; a horizon H holds at most H / idle probe"
      " series, so")
    p()
    p("    expected false deaths <= (H / idle) x q^count")
    p()
    p("At p = 20% and idle 1 s that is count 18 (86400 x 0.36^18 = 8.9e-4 a day);"
      " the count 8 this page used to give expects 24 a day and 0.34 in 20 minutes."
      " With 0-300 ms of jitter and no loss every answer comes within the 600 ms"
      " round trip, before the next probe: q = 0, count 1 would do; the soak keeps 3,"
      " the library's default.")
    p()
    p("Heartbeat: on a lossy path each lost segment costs a retransmission timeout"
      " that starts at 200 ms (Linux RTO_min) and doubles, so k consecutive losses of"
      " one segment delay it by 0.2 s x (2^k - 1):")
    p()
    p("    heartbeat timeout >= interval + 0.2 s x (2^k - 1) + 2 x max one-way delay")
    p()
    p("At p = 20%, k = 5: interval 1 s, timeout 8 s; with 0-300 ms of jitter each way"
      " and no loss: timeout >= 1 s + 0.6 s + 0.2 s, so 3 x interval (3 s). The soak rows"
      " above ran with exactly these settings. This rule has no horizon, and over a long"
      " soak it shows: a death needs 6 losses in a row of one segment (5 delay it"
      " 6.2 s, inside the 7 s the timeout leaves after the interval; 6 delay it 12.6 s),"
      " and by the same union bound over the"
      " segments one end receives (its peer's PING and PONG, two a second) that is"
      " 2 x 86400 x 0.2^6 = 11 a day per end, 0.15 per end in 20 minutes; the 20-minute"
      " heartbeat soak on the lossy link in \"Long soaks\" had one, 145 s in (one"
      " death seen by both ends: two `dead` lines, the server silent 8.0 s, the client"
      " 6.8 s with 2 segments unacknowledged). For 0.001 a day the"
      " same bound asks for k + 1 with 2 x 86400 x p^(k+1) <= 0.001 and, with the RTO"
      " capped at 120 s, a timeout of at least interval + the k-loss delay: 4 s at 1%"
      " loss, 13.6 s at 5%, 52 s at 10%, 326 s at 20%. A heartbeat carried by TCP cannot"
      " be both quick and safe on a 20% lossy path; keepalive, whose probes are not"
      " retransmitted, can (19 s). These heartbeat figures are the model's, not"
      " measured; the soak settings are unchanged.")
    p()
    if kept:
        p(kept)
    p("## Gaps")
    p()
    p("- No netem on this kernel: delay comes from a userspace NFQUEUE holder, so"
      " its granularity is the scheduler's (ms), and it reorders packets.")
    p("- The heartbeat's cable-pulled-with-data row sends 100 B messages, which go"
      " straight into the kernel's send buffer: the library's `unsent` is 0 there;"
      " the pending data shows as `tcp_unacked` (segments), not as bytes.")
    p("- A run is one sample per case; timing figures vary by a few hundred ms"
      " from run to run on this shared 2-core machine.")


if __name__ == "__main__":
    main()
