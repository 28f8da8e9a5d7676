/* Windows platform glue: process start-up (Winsock), the clocks, and the
 * loop's wait on its I/O completion port. Socket operations are in tcp.c.
 *
 * Start-up. Winsock must be started (WSAStartup) before the first socket
 * call of the process. vigil does it once, on first use (a loop's init, or
 * the default clock), under InitOnceExecuteOnce so any thread may be first,
 * and never calls WSACleanup: the process exit releases it, and a library
 * cannot know when the application's last socket is gone.
 *
 * Clocks. The loop needs two clocks (loop.h): MONOTONIC, which stops
 * while the machine sleeps (the loop measures its own stalls with it), and
 * BOOTTIME, which keeps counting, so that BOOTTIME - MONOTONIC grows by
 * exactly the time spent suspended. Windows has precisely that pair in its
 * interrupt time: the "unbiased" count excludes sleep and hibernation, the
 * plain (biased) count includes them. Their *Precise variants (Windows 10)
 * interpolate with the performance counter, so they have QPC's resolution
 * rather than the 15.6 ms clock tick, and vigil uses them when the running
 * system exports them:
 *
 *     MONOTONIC = QueryUnbiasedInterruptTimePrecise   (excludes suspend)
 *     BOOTTIME  = QueryInterruptTimePrecise           (includes suspend)
 *
 * Where they are missing (before Windows 10, and in Wine versions that lack
 * them), MONOTONIC is QueryPerformanceCounter and BOOTTIME falls back to
 * the same value, as loop-internal.h allows: a suspend is then seen only
 * as a gap, never as SUSPEND. docs/WINDOWS.md records this choice.
 *
 * The wait. GetQueuedCompletionStatusEx dequeues up to a batch of
 * completion packets; each names its handle (the completion key) and its
 * OVERLAPPED, and tcp.c turns it into the operation's completion. A wait
 * that returns a full batch is followed by non-blocking ones, so that every
 * packet already queued is processed before the loop runs its timers (the
 * same promise the POSIX pollers keep: a pong already received never loses
 * the race with the deadline it answers). The wait may return up to one
 * clock tick early on Windows; the loop only fires timers that are due, so
 * an early return costs an iteration, never an early verdict. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "sysmem.h"

#define MAX_ENTRIES 128
/* Extra non-blocking batches after a full one, bounded for fairness with
 * timers when packets arrive faster than they are processed. */
#define MAX_EXTRA_BATCHES 8

typedef VOID(WINAPI *interrupt_time_fn)(PULONGLONG t);
typedef ULONG(WINAPI *if_index_fn)(PCSTR name);

/* How long vigil_loop_close waits for closed listeners' cancelled
 * accepts to come back (they normally are already queued). */
#define CLOSE_DRAIN_MS 2000

/* Completion key of the loop's wakeup packet (vigil__plat_wake): sockets'
 * keys are handle addresses, never this. */
#define WAKE_KEY ((ULONG_PTR)1)

typedef struct iocp_state {
  vigil_loop *loop;
  HANDLE port;
  unsigned orphans; /* closed listeners' pools still waiting for packets */
  OVERLAPPED_ENTRY entries[MAX_ENTRIES];
} iocp_state;

static INIT_ONCE init_once = INIT_ONCE_STATIC_INIT;
static int init_error;
static interrupt_time_fn unbiased_precise, biased_precise;
static if_index_fn if_index;
static LARGE_INTEGER qpc_freq;

static void *proc(HMODULE mod, const char *name) {
  /* Through a function-pointer type, as GetProcAddress returns one. */
  FARPROC p = mod != NULL ? GetProcAddress(mod, name) : NULL;
  void *out;
  memcpy(&out, &p, sizeof out);
  return out;
}

static void find_clocks(void) {
  HMODULE mod = GetModuleHandleW(L"kernelbase.dll");
  void *u = proc(mod, "QueryUnbiasedInterruptTimePrecise");
  void *b = proc(mod, "QueryInterruptTimePrecise");
  if (u == NULL || b == NULL) {
    mod = GetModuleHandleW(L"kernel32.dll");
    u = proc(mod, "QueryUnbiasedInterruptTimePrecise");
    b = proc(mod, "QueryInterruptTimePrecise");
  }
  /* Both or neither: half a pair cannot measure a suspend. */
  if (u != NULL && b != NULL) {
    memcpy(&unbiased_precise, &u, sizeof u);
    memcpy(&biased_precise, &b, sizeof b);
  }
  if (!QueryPerformanceFrequency(&qpc_freq) || qpc_freq.QuadPart <= 0)
    qpc_freq.QuadPart = 1000; /* never on XP or later; keeps the division sane */
}

static BOOL CALLBACK init_process(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  WSADATA wsa;
  HMODULE iphlp;
  void *p;
  int rc;
  (void)once;
  (void)param;
  (void)ctx;
  find_clocks();
  iphlp = LoadLibraryW(L"iphlpapi.dll");
  p = proc(iphlp, "if_nametoindex");
  memcpy(&if_index, &p, sizeof p);
  rc = WSAStartup(MAKEWORD(2, 2), &wsa);
  if (rc != 0)
    init_error = rc == WSAVERNOTSUPPORTED ? VIGIL_ENOTSUP : VIGIL_ENOSYS;
  else if (LOBYTE(wsa.wVersion) != 2 || HIBYTE(wsa.wVersion) != 2)
    init_error = VIGIL_ENOTSUP;
  return TRUE;
}

int vigil__win_init(void) {
  if (!InitOnceExecuteOnce(&init_once, init_process, NULL, NULL))
    return VIGIL_ENOSYS;
  return init_error;
}

/* ---- clocks --------------------------------------------------------------- */

static uint64_t qpc_ns(void) {
  LARGE_INTEGER c;
  uint64_t ticks, freq;
  QueryPerformanceCounter(&c);
  ticks = (uint64_t)c.QuadPart;
  freq = (uint64_t)qpc_freq.QuadPart;
  /* Split so ticks * 1e9 cannot overflow (it would after ~30 min at
   * 10 MHz). */
  return ticks / freq * 1000000000u + ticks % freq * 1000000000u / freq;
}

uint64_t vigil__plat_clock(void *arg, vigil_clock_id id) {
  ULONGLONG t100 = 0;
  (void)arg;
  (void)vigil__win_init();
  if (unbiased_precise == NULL)
    return qpc_ns();
  if (id == VIGIL_CLOCK_BOOTTIME)
    biased_precise(&t100);
  else
    unbiased_precise(&t100);
  return (uint64_t)t100 * 100u;
}

/* 1 when BOOTTIME is a distinct, suspend-counting clock here. */
int vigil__win_has_boottime(void) {
  (void)vigil__win_init();
  return unbiased_precise != NULL;
}

unsigned vigil__plat_if_index(const char *name) {
  (void)vigil__win_init();
  return if_index != NULL ? (unsigned)if_index(name) : 0;
}

/* ---- the loop's backend --------------------------------------------------- */

vigil_backend vigil__plat_default_backend(void) {
  return VIGIL_BACKEND_IOCP;
}

int vigil__plat_init(vigil_loop *loop, vigil_backend backend) {
  iocp_state *st;
  int err;

  if (backend != VIGIL_BACKEND_IOCP)
    return VIGIL_ENOTSUP;
  err = vigil__win_init();
  if (err != 0)
    return err;
  st = calloc(1, sizeof *st);
  if (st == NULL)
    return VIGIL_ENOMEM;
  /* One thread runs the loop, so allow one concurrent thread. */
  st->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  if (st->port == NULL) {
    err = vigil__win_error(GetLastError());
    free(st);
    return err;
  }
  st->loop = loop;
  loop->plat = st;
  loop->plat_ops = st; /* any non-NULL marker: the backend is up */
  return 0;
}

/* Any thread: one packet with no OVERLAPPED wakes the wait; dispatch sees
 * its key and runs the wakeup. src/async.c posts at most one per wake-up. */
void vigil__plat_wake(vigil_loop *loop) {
  iocp_state *st = loop->plat;
  (void)PostQueuedCompletionStatus(st->port, 0, WAKE_KEY, NULL);
}

static void dispatch(iocp_state *st, ULONG n);

void vigil__win_orphans(vigil_loop *loop, int delta) {
  iocp_state *st = loop->plat;
  st->orphans = delta > 0 ? st->orphans + 1 : st->orphans - 1;
}

void vigil__plat_close(vigil_loop *loop) {
  iocp_state *st = loop->plat;
  ULONGLONG start;
  ULONG n;
  if (st == NULL)
    return;
  st->loop = NULL; /* a late wakeup packet has nothing left to run */
  /* Every handle is closed, so the only packets left are closed
   * listeners' cancelled accepts; take them so their pools are freed. */
  start = GetTickCount64();
  while (st->orphans > 0 && GetTickCount64() - start < CLOSE_DRAIN_MS) {
    n = 0;
    if (GetQueuedCompletionStatusEx(st->port, st->entries, MAX_ENTRIES, &n, 50, FALSE))
      dispatch(st, n);
  }
  CloseHandle(st->port);
  free(st);
}

const char *vigil__plat_name(const vigil_loop *loop) {
  return loop->plat != NULL ? "iocp" : "none";
}

HANDLE vigil__win_port(const vigil_loop *loop) {
  const iocp_state *st = loop->plat;
  return st->port;
}

static void dispatch(iocp_state *st, ULONG n) {
  ULONG i;
  OVERLAPPED *ov;
  for (i = 0; i < n; i++) {
    ov = st->entries[i].lpOverlapped;
    if (ov == NULL) {
      if (st->entries[i].lpCompletionKey == WAKE_KEY && st->loop != NULL)
        vigil__loop_wakeup(st->loop);
      continue;
    }
    /* Internal holds the operation's NTSTATUS (a 32-bit LONG). */
    vigil__win_complete(st->entries[i].lpCompletionKey, ov, (long)(LONG)(ULONG)ov->Internal,
                        st->entries[i].dwNumberOfBytesTransferred);
  }
}

int vigil__plat_poll(vigil_loop *loop, int timeout_ms) {
  iocp_state *st = loop->plat;
  DWORD timeout = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
  ULONG n = 0;
  int round;
  DWORD e;

  for (round = 0; round <= MAX_EXTRA_BATCHES; round++) {
    if (!GetQueuedCompletionStatusEx(st->port, st->entries, MAX_ENTRIES, &n, timeout, FALSE)) {
      e = GetLastError();
      if (round == 0)
        vigil__loop_awake(loop);
      if (e == WAIT_TIMEOUT)
        return 0;
      return round == 0 ? vigil__win_error(e) : 0;
    }
    /* The time the packets arrived, before their callbacks date frames. */
    if (round == 0)
      vigil__loop_awake(loop);
    dispatch(st, n);
    if (n < MAX_ENTRIES)
      return 0;
    timeout = 0;
  }
  return 0;
}

size_t vigil__phys_memory(void) {
  MEMORYSTATUSEX ms;
  ms.dwLength = sizeof ms;
  if (!GlobalMemoryStatusEx(&ms) || ms.ullTotalPhys > SIZE_MAX)
    return 0;
  return (size_t)ms.ullTotalPhys;
}
