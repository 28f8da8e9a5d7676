#!/usr/bin/env python3
"""Writes session-shaped seeds for fuzz/fuzz-session.c into fuzz/seeds/session/.

The wire vectors (tests/vectors/) are frames, not sessions: fed to the
session fuzzer they mostly die in the handshake. These seeds follow its input
layout instead, so the fuzzer starts from whole conversations: handshakes
(accepted, clamped, refused), idle ping rounds, silence until the verdict,
busy traffic, a chunked message with a ping between chunks, a ping flood, a
dribbler, closes from either side, a local stall, clock leaps (huge RTTs) and
the end of time. Run it again after changing the harness's input layout:

    python3 fuzz/make-session-seeds.py

Files named regress-*.bin are not made here: they are inputs the fuzzer
found failing, kept (and replayed by ctest) after the fix.

Layout (see fuzz-session.c): mode (bit 0: two sessions back to back, bit 1:
clock origin near UINT64_MAX), origin, then (a, b, c) for the server and the
client, then operations. An operation's top bit picks the client (else the
server); its low 3 bits pick what happens.
"""
import os

SRV, CLI = 0x00, 0x80
RAW, TIME, WAKE, SEND, STALL, CLOSE, TICK, PUMP = range(8)
US, MS_UNIT, MS100, LEAP = 0x00, 0x20, 0x40, 0x60

HELLO = bytes.fromhex("01 15 56 49 47 4c 01 e8 07 00 80 80 01 80 80 40 06 6e 6f 64 65 2d 31")
# Version 3 (with a credential, as from version 2 on): refused with VERSION.
HELLO_V3 = bytes.fromhex("01 17 56 49 47 4c 03 e8 07 00 80 80 01 80 80 40 06 6e 6f 64 65 2d 31 01 6b")
# Version 2 with a token (PROTOCOL.md, hello-v2-token): accepted.
HELLO_CRED = bytes.fromhex("01 4f 56 49 47 4c 02 e8 07 00 80 80 01 80 80 40 06 6e 6f 64 65 2d 31 39") + \
    b"v1.1767225600.tVjTPeRBtGCCgQvMyXEPWCxkEDZ36HsaDhM-wYGJ7xw"
# max_frame 8192: what the SECOND client below proposes.
WELCOME = bytes.fromhex("02 0c 01 e8 07 b8 17 f4 03 80 40 80 80 40")
PING, PONG = b"\x03\x00", b"\x04\x00"
CLOSE_FRAME = bytes.fromhex("07 0d 00 04 88 27") + b"slow down"

# (a, b, c): interval 1 + 7a ms; b bit 0: timeout 0 (default), else
# interval x (2 + b >> 5); handshake 1 + 20b ms; b bit 1: max_message from c;
# b bit 2: min_ping = a; max_frame 64 + 64c; min_interval 1 + (c & 15);
# c bit 7: phi-accrual.
SECOND = (142, 0x41, 0x7F)      # ~1 s interval, default timeout, 8 KiB frames
FAST = (14, 0x41, 0x7F)         # ~100 ms
ADAPTIVE = (142, 0x41, 0xFF)    # phi-accrual, 16 KiB frames
CLAMPING = (142, 0x41, 0x0F)    # server: min_interval 16 ms, max_frame 1 KiB
TINY = (0, 0x40, 0x00)          # client: 1 ms interval, timeout 2 ms


def header(mode=1, origin=1, server=SECOND, client=SECOND):
    return bytes([mode, origin, *server, *client])


def raw(side, data):
    out = b""
    while data:
        out += bytes([side | RAW, min(len(data), 255)]) + data[:255]
        data = data[255:]
    return out


def time(side, unit, count):
    return bytes([side | TIME | unit, count & 0xFF, count >> 8])


def op(side, what, *args):
    return bytes([side | what, *args])


def ping_round(pinger, answerer, rtt_ms=5):
    return (op(pinger, WAKE) + op(pinger, PUMP) + time(pinger, MS_UNIT, rtt_ms) +
            op(answerer, PUMP) + op(pinger, TICK))


def seeds():
    s = {}
    s["idle-ping-rounds"] = header() + ping_round(CLI, SRV) * 12 + ping_round(SRV, CLI) * 4
    s["silence-until-verdict"] = header() + (op(CLI, WAKE) + op(CLI, PUMP) +
                                             op(SRV, WAKE, ) + op(SRV, WAKE | 0x40)) * 8
    s["busy-no-pings"] = header(server=FAST, client=FAST) + (
        op(CLI, SEND, 20) + op(SRV, SEND, 7) + time(CLI, MS_UNIT, 40) +
        op(CLI, TICK) + op(SRV, TICK)) * 40
    s["chunked-message-with-ping"] = header(server=ADAPTIVE, client=ADAPTIVE) + (
        op(CLI, SEND | 0x40, 255) + time(CLI, MS_UNIT, 2) + op(SRV, STALL) +
        op(SRV, PUMP) + op(CLI, SEND | 0x40, 255) + op(CLI, SEND | 0x40, 104)) * 4
    s["ping-flood"] = header(mode=0) + raw(SRV, HELLO) + op(SRV, PUMP) + (
        raw(SRV, PING) + time(SRV, MS_UNIT, 10)) * 8 + op(SRV, PUMP)
    s["dribbler"] = header(mode=0) + raw(SRV, HELLO) + raw(SRV, b"\x05\xe8\x07") + (
        raw(SRV, b"x") + time(SRV, MS100, 1) + op(SRV, TICK)) * 40
    s["client-handshake-then-close"] = header(mode=0) + op(CLI, PUMP) + raw(CLI, WELCOME) + \
        raw(CLI, PING) + op(CLI, PUMP) + raw(CLI, PONG) + raw(CLI, CLOSE_FRAME)
    s["server-refuses-version"] = header(mode=0) + raw(SRV, HELLO_V3) + op(SRV, PUMP) + op(SRV, TICK)
    s["server-hello-with-credential"] = header(mode=0) + raw(SRV, HELLO_CRED) + op(SRV, PUMP) + (
        raw(SRV, PING) + time(SRV, MS100, 5) + op(SRV, PUMP)) * 3
    # b bit 3 on the client: it sends a credential (a version 2 HELLO).
    s["paired-with-credential"] = header(client=(142, 0x49, 0x7F)) + ping_round(CLI, SRV) * 3
    s["handshake-clamped"] = header(server=CLAMPING, client=TINY) + ping_round(SRV, CLI) * 3 + \
        op(CLI, SEND | 0x40, 50)
    s["handshake-timeout"] = header(mode=0) + raw(SRV, HELLO[:9]) + op(SRV, WAKE) + op(SRV, PUMP)
    s["local-close-both-ways"] = header() + ping_round(CLI, SRV) + op(CLI, CLOSE | 0x40, 0, 10) + \
        op(CLI, PUMP) + op(CLI, TICK) + op(SRV, TICK) + op(SRV, CLOSE, 1, 0) + op(SRV, PUMP)
    s["stall-reprobe"] = header() + op(CLI, WAKE) + op(CLI, PUMP) + time(CLI, MS100, 100) + \
        op(CLI, STALL) + op(CLI, TICK) + op(CLI, PUMP) + op(SRV, PUMP) + ping_round(CLI, SRV) + \
        time(CLI, MS100, 200) + op(CLI, STALL) + op(CLI, PUMP) + op(CLI, WAKE) + op(CLI, WAKE)
    s["rtt-leap"] = header() + op(CLI, WAKE) + op(CLI, PUMP) + time(CLI, LEAP, 0x7FFF) + \
        op(SRV, PUMP) + ping_round(CLI, SRV, 1) * 3
    s["end-of-time"] = header(mode=3, origin=200) + ping_round(CLI, SRV) * 4 + \
        time(CLI, LEAP, 0xFFFF) + op(CLI, WAKE) + op(SRV, WAKE) + ping_round(SRV, CLI)
    s["adaptive-steady-then-silent"] = header(server=ADAPTIVE, client=ADAPTIVE) + \
        ping_round(CLI, SRV, 3) * 20 + (op(SRV, WAKE) + op(SRV, PUMP)) * 6
    return s


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "session")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
        print(f"{name}.bin: {len(data)} bytes")


if __name__ == "__main__":
    main()
