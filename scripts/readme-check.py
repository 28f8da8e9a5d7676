#!/usr/bin/env python3
"""Every fenced block of README.md compiles and runs as shown (ctest: readme.blocks).

Each ``` block in the README must follow a marker line saying how it is checked;
a block without one fails the check, so no example escapes it:

  <!-- readme-check: server -->    a C program serving on port 7000: compiled,
                                   run on a free port instead, `vigil connect`
                                   must reach it and, stopped with SIGINT, be
                                   reported by its on_death as "closed"
  <!-- readme-check: run -->       a C program: compiled and run; its stdout must
                                   equal the next block, marked `output`
  <!-- readme-check: output -->    the output of the `run` block before it
  <!-- readme-check: commands -->  vigil command lines (# comments allowed), run
                                   in order against each other with ports 7000
                                   and 9100 and "host" replaced by free loopback
                                   ones; each `vigil serve` line replaces the
                                   server before it and must say "listening"; probe
                                   and run must exit 0 within 15 s, the others
                                   must still be running (or have exited 0) after
                                   2 s
  <!-- readme-check: skip: WHY --> not run; WHY is printed

C blocks are compiled with -std=c11 -Wall -Wextra -Wpedantic -Werror against the
headers and static library of the build that runs the test. Every process is
bounded in time and stopped by its pid.

  scripts/readme-check.py --readme README.md --cc cc --include include \
      --lib build/dev/libvigil.a --ldflag=-lm --ldflag=-lpthread --ldflag=-lssl \
      --ldflag=-lcrypto --vigil build/dev/vigil --work build/dev/readme
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

MARK = re.compile(r"^<!-- readme-check: (\w+)(?:: (.*?))? -->$")
KINDS = ("server", "run", "output", "commands", "skip")


class Fail(Exception):
    pass


def blocks(text):
    """(line, kind, why, lang, body) for each fenced block, in order."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        start, lang = i, lines[i][3:].strip()
        end = start + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        if end == len(lines):
            raise Fail(f"README.md:{start + 1}: a ``` block that never ends")
        m = MARK.match(lines[start - 1]) if start > 0 else None
        if m is None or m.group(1) not in KINDS:
            raise Fail(f"README.md:{start + 1}: a ```{lang} block without a "
                       "<!-- readme-check: KIND --> line before it (see scripts/readme-check.py)")
        if m.group(1) == "skip" and not m.group(2):
            raise Fail(f"README.md:{start}: skip without a reason")
        out.append((start + 1, m.group(1), m.group(2), lang, "\n".join(lines[start + 1:end]) + "\n"))
        i = end + 1
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child whose output is collected in files; stopped by its pid."""

    def __init__(self, argv, work, name):
        self.name = name
        self.out_path = os.path.join(work, name + ".out")
        self.err_path = os.path.join(work, name + ".err")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=open(self.out_path, "w"),
                                  stderr=open(self.err_path, "w"))

    def out(self):
        return open(self.out_path).read()

    def err(self):
        return open(self.err_path).read()

    def wait_for(self, pattern, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if re.search(pattern, self.out(), re.M):
                return True
            if self.p.poll() is not None:
                return re.search(pattern, self.out(), re.M) is not None
            time.sleep(0.02)
        return False

    def stop(self, sig=signal.SIGINT, seconds=5):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(seconds)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def why(self):
        return f"\n--- {self.name} stdout:\n{self.out()}--- {self.name} stderr:\n{self.err()}"


def compile_c(args, line, body, port=None):
    if port is not None:
        if body.count("7000") != 1:
            raise Fail(f"README.md:{line}: a server block must name port 7000 exactly once")
        body = body.replace("7000", str(port))
    src = os.path.join(args.work, f"block-{line}.c")
    exe = os.path.join(args.work, f"block-{line}")
    with open(src, "w") as f:
        f.write(body)
    argv = [args.cc, "-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I", args.include,
            *args.cflag, src, args.lib, *args.ldflag, "-o", exe]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise Fail(f"README.md:{line}: the C block does not compile:\n{' '.join(argv)}\n{r.stderr}")
    return exe


def check_server(args, line, body):
    port = free_port()
    exe = compile_c(args, line, body, port)
    srv = Proc([exe], args.work, f"block-{line}-server")
    cli = None
    try:
        time.sleep(0.2)
        cli = Proc([args.vigil, "connect", f"127.0.0.1:{port}", "--id", "readme",
                    "--no-reconnect"], args.work, f"block-{line}-connect")
        if not cli.wait_for(r"\bopen\b", 10):
            raise Fail(f"README.md:{line}: vigil connect 127.0.0.1:{port} did not reach the "
                       f"server{cli.why()}{srv.why()}")
        rc = cli.stop(signal.SIGINT)
        if rc != 0:
            raise Fail(f"README.md:{line}: connect exited {rc} after SIGINT{cli.why()}")
        if not srv.wait_for(r"^a client died: closed \(.*\), silent for \d+ ms$", 10):
            raise Fail(f"README.md:{line}: the server did not print the client's death as "
                       f"closed{srv.why()}")
        if srv.p.poll() is not None:
            raise Fail(f"README.md:{line}: the server exited ({srv.p.returncode}){srv.why()}")
        print(f"README.md:{line}: server block: connect reached it, its death printed as: "
              + srv.out().strip().splitlines()[-1])
    finally:
        if cli is not None:
            cli.stop(signal.SIGKILL)
        srv.stop(signal.SIGKILL)


def check_run(args, line, body, want):
    exe = compile_c(args, line, body)
    r = subprocess.run([exe], capture_output=True, text=True, timeout=20)
    if r.returncode != 0 or r.stdout != want:
        raise Fail(f"README.md:{line}: the program exited {r.returncode} and printed\n{r.stdout}"
                   f"{r.stderr}instead of what the README shows:\n{want}")
    print(f"README.md:{line}: run block: printed the {len(want.splitlines())} lines shown")


ENDS_BY_ITSELF = ("probe", "run")


def check_commands(args, line, body):
    ports = {"7000": free_port(), "9100": free_port()}
    running, no_metrics = [], False
    try:
        for k, raw in enumerate(body.splitlines()):
            cmd = raw.split("#", 1)[0].strip()
            if not cmd:
                continue
            words = cmd.split()
            if words[0] != "vigil":
                raise Fail(f"README.md:{line + 1 + k}: not a vigil command: {raw}")
            for i, w in enumerate(words):
                w = w.replace("host:port", "127.0.0.1:7000").replace("host:", "127.0.0.1:")
                for p, q in ports.items():
                    w = re.sub(rf"(^|:){p}$", rf"\g<1>{q}", w)
                words[i] = w
            where = f"README.md:{line + 1 + k}: `{cmd}`"
            if words[1] == "run" and args.sanitized:
                print(f"{where}: skipped: an ASan build's preload library cannot be loaded "
                      "into a program built without ASan")
                continue
            if no_metrics and str(ports["9100"]) in " ".join(words):
                print(f"{where}: skipped, this vigil has no metrics endpoint")
                continue
            if words[1] == "serve":
                # each serve line is an alternative to the one before: the
                # lines after it run against it
                for q in reversed(running):
                    q.stop(signal.SIGINT)
                running = []
            p = Proc([args.vigil] + words[1:], args.work, f"block-{line}-cmd{k}")
            if words[1] == "serve":
                if not p.wait_for(r"listening", 10):
                    if p.p.poll() == 2 and "libmicrohttpd" in p.err() and "--metrics" in words:
                        # the lines after it still get a server, without the endpoint
                        print(f"{where}: without --metrics: {p.err().strip()}")
                        no_metrics = True
                        i = words.index("--metrics")
                        p = Proc([args.vigil] + words[1:i] + words[i + 2:], args.work,
                                 f"block-{line}-cmd{k}b")
                    if not p.wait_for(r"listening", 10):
                        raise Fail(f"{where} never said it was listening{p.why()}")
                running.append(p)
                print(f"{where}: listening")
            elif words[1] in ENDS_BY_ITSELF:
                try:
                    p.p.wait(15)
                except subprocess.TimeoutExpired:
                    p.stop(signal.SIGKILL)
                    raise Fail(f"{where} did not end within 15 s{p.why()}")
                if p.p.returncode != 0:
                    raise Fail(f"{where} exited {p.p.returncode}{p.why()}")
                print(f"{where}: exit 0")
            else:
                time.sleep(2)
                rc = p.p.poll()
                if rc not in (None, 0):
                    raise Fail(f"{where} exited {rc}{p.why()}")
                print(f"{where}: " + ("exit 0" if rc == 0 else "running after 2 s"))
                running.append(p)
    finally:
        for p in reversed(running):
            p.stop(signal.SIGINT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readme", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--include", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--vigil", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cflag", action="append", default=[])
    ap.add_argument("--ldflag", action="append", default=[],
                    help="after the library: its system libraries (-lm -lpthread -lssl ...)")
    ap.add_argument("--sanitized", action="store_true", help="the build runs under ASan")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    try:
        bs = blocks(open(args.readme).read())
        for i, (line, kind, why, lang, body) in enumerate(bs):
            if kind == "skip":
                print(f"README.md:{line}: ```{lang} block not run: {why}")
            elif kind == "server":
                check_server(args, line, body)
            elif kind == "run":
                if i + 1 == len(bs) or bs[i + 1][1] != "output":
                    raise Fail(f"README.md:{line}: a run block must be followed by an output block")
                check_run(args, line, body, bs[i + 1][4])
            elif kind == "output":
                if i == 0 or bs[i - 1][1] != "run":
                    raise Fail(f"README.md:{line}: an output block must follow a run block")
            elif kind == "commands":
                check_commands(args, line, body)
            if kind in ("server", "run") and lang != "c":
                raise Fail(f"README.md:{line}: a {kind} block must be ```c")
        print(f"readme-check: {len(bs)} blocks checked")
    except Fail as e:
        print(f"readme-check: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
