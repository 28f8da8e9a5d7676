/* Helpers the process-level benchmarks share (bench-connections,
 * bench-freeze, bench-presence, bench-scale): clocks, the server under test
 * as a child process, /proc readings, and client sockets from several
 * loopback sources. Linux only, like those benchmarks. */
#ifndef VIGIL_BENCH_UTIL_H
#define VIGIL_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC, nanoseconds. */
uint64_t bench_now_ns(void);
void bench_sleep_ms(unsigned ms);
/* A loopback TCP port that was free a moment ago (0 if none). */
uint16_t bench_free_port(void);
/* Runs argv[0] with its stdout to out_path (NULL: /dev/null); -1 if fork
 * failed. */
pid_t bench_spawn(char *const argv[], const char *out_path);
/* 0 once 127.0.0.1:port accepts, -1 if pid exits or 5 s pass. */
int bench_wait_listening(pid_t pid, uint16_t port);
/* SIGTERM, up to 5 s for it to exit, then SIGKILL; reaps it. */
void bench_stop(pid_t pid);
/* The directory of this executable ("." if unknown). */
void bench_self_dir(char *out, size_t cap);
/* utime + stime of pid in seconds (-1 on failure); *user_s, if not NULL,
 * gets utime. */
double bench_proc_cpu_seconds(pid_t pid, double *user_s);
/* VmRSS of pid in KiB, -1 on failure. */
long bench_proc_rss_kb(pid_t pid);
/* The same over pid and its children (a supervisor and its workers:
 * /proc/PID/task/PID/children), -1 when pid itself cannot be read. A
 * child that ends between the listing and its reading is left out. */
double bench_tree_cpu_seconds(pid_t pid, double *user_s);
long bench_tree_rss_kb(pid_t pid);
/* Raises RLIMIT_NOFILE to its hard limit; returns the limit now in force. */
unsigned long bench_raise_nofile(void);

/* A non-blocking TCP socket bound to 127.0.0.(2 + source % 8) with
 * IP_BIND_ADDRESS_NO_PORT (each source address has its own ephemeral
 * ports) and TCP_NODELAY, its connect to 127.0.0.1:port begun. The
 * descriptor, or -errno with nothing left open. */
int bench_loopback_connect(unsigned source, uint16_t port);

#endif
