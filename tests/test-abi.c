/* The ABI promises of docs/ABI.md, checked as a program built against an
 * older vigil.h would exercise them.
 *
 * An "old" caller is simulated by a smaller size: the layout its header had
 * before the struct's last field(s) were added, i.e. the offset of a field,
 * rounded up to the struct's alignment as its sizeof would be. Its struct is
 * placed so that it ends exactly at an inaccessible page (PROT_NONE, or
 * PAGE_NOACCESS on Windows): a library that read or wrote one byte past the
 * caller's size would crash the test. Writes are also checked with a canary
 * after the old size in ordinary memory. */
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <windows.h>
#else
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "task.h"
#include "vigil.h"

#define ROUND_UP(n, a) (((n) + (a)-1) / (a) * (a))
/* sizeof the struct as it was before `field` (and everything after) existed */
#define OLD_SIZE(type, field) ROUND_UP(offsetof(type, field), alignof(type))
#define CANARY 0xAB

/* ---- a page with an inaccessible page after it ---------------------------- */

typedef struct guarded {
  unsigned char *base; /* two pages; the second one inaccessible */
  size_t page;
} guarded;

static int guarded_open(guarded *g) {
#if defined(_WIN32)
  SYSTEM_INFO si;
  DWORD old;
  GetSystemInfo(&si);
  g->page = si.dwPageSize;
  g->base = VirtualAlloc(NULL, 2 * g->page, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
  if (g->base == NULL)
    return -1;
  return VirtualProtect(g->base + g->page, g->page, PAGE_NOACCESS, &old) ? 0 : -1;
#else
  void *p;
  g->page = (size_t)sysconf(_SC_PAGESIZE);
  p = mmap(NULL, 2 * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return -1;
  g->base = p;
  return mprotect(g->base + g->page, g->page, PROT_NONE);
#endif
}

static void guarded_close(guarded *g) {
#if defined(_WIN32)
  VirtualFree(g->base, 0, MEM_RELEASE);
#else
  munmap(g->base, 2 * g->page);
#endif
}

/* A struct of `size` bytes that ends where the inaccessible page begins. */
static void *guarded_tail(guarded *g, size_t size) {
  return g->base + g->page - size;
}

/* ---- _init writes nothing past the caller's size ------------------------- */

/* Runs init(buf, old) on a canary-filled buffer; checks the size field and
 * that every byte from `old` on is still the canary. */
#define CHECK_INIT(type, init_sized, old)                                                          \
  do {                                                                                             \
    unsigned char buf_[sizeof(type) + 64];                                                         \
    size_t i_, got_;                                                                               \
    memset(buf_, CANARY, sizeof buf_);                                                             \
    init_sized((type *)(void *)buf_, (old));                                                       \
    memcpy(&got_, buf_, sizeof got_);                                                              \
    ASSERT_UEQ(got_, (old));                                                                       \
    for (i_ = (old); i_ < sizeof buf_; i_++)                                                       \
      if (buf_[i_] != CANARY)                                                                      \
        TEST_FAIL_AT("%s wrote byte %zu past an old caller's %zu", #init_sized, i_,                \
                     (size_t)(old));                                                               \
  } while (0)

TEST_IMPL(init_writes_only_the_callers_size) {
  CHECK_INIT(vigil_session_config, vigil_session_config_init_sized,
             OLD_SIZE(vigil_session_config, phi));
  CHECK_INIT(vigil_server_config, vigil_server_config_init_sized,
             OLD_SIZE(vigil_server_config, keepalive_mode));
  CHECK_INIT(vigil_client_config, vigil_client_config_init_sized,
             OLD_SIZE(vigil_client_config, keepalive_mode));
  CHECK_INIT(vigil_loop_options, vigil_loop_options_init_sized,
             OLD_SIZE(vigil_loop_options, clock));
  CHECK_INIT(vigil_keepalive, vigil_keepalive_init_sized, OLD_SIZE(vigil_keepalive, count));
  CHECK_INIT(vigil_workers_config, vigil_workers_config_init_sized,
             OLD_SIZE(vigil_workers_config, stop_timeout_ms));
  /* The current size writes the whole struct and nothing beyond. */
  CHECK_INIT(vigil_server_config, vigil_server_config_init_sized, sizeof(vigil_server_config));
  return 0;
}

TEST_IMPL(from_budget_writes_only_the_callers_size) {
  unsigned char buf[sizeof(vigil_keepalive) + 32];
  size_t old = OLD_SIZE(vigil_keepalive, count), i;
  vigil_keepalive *ka = (vigil_keepalive *)(void *)buf;
  memset(buf, CANARY, sizeof buf);
  ASSERT_EQ(vigil_keepalive_from_budget_sized(ka, old, 10000, 2), 0);
  ASSERT_UEQ(ka->size, old);
  ASSERT_EQ(ka->enable, 1);
  ASSERT_UEQ(ka->idle_ms, 4000); /* S = 10, count 3, interval 10 / 4 = 2, idle 10 - 6 */
  for (i = old; i < sizeof buf; i++)
    ASSERT_EQ(buf[i], CANARY);
  return 0;
}

/* The defaults are those of the library's own _init. */
TEST_IMPL(init_defaults_match_full_size) {
  vigil_session_config a, b;
  unsigned char buf[sizeof(vigil_session_config)];
  size_t old = OLD_SIZE(vigil_session_config, handshake_timeout_ms);
  vigil_session_config_init(&a);
  ASSERT_UEQ(a.size, sizeof a);
  ASSERT_UEQ(a.interval_ms, 1000);
  ASSERT_UEQ(a.max_frame, 16384);
  memset(buf, 0, sizeof buf);
  vigil_session_config_init_sized((vigil_session_config *)(void *)buf, old);
  memcpy(&b, buf, sizeof b);
  ASSERT_UEQ(b.interval_ms, a.interval_ms);
  ASSERT_UEQ(b.timeout_ms, a.timeout_ms);
  ASSERT_UEQ(b.max_frame, a.max_frame);
  ASSERT_UEQ(b.max_message, a.max_message);
  ASSERT_UEQ(b.handshake_timeout_ms, 0); /* past the old size: not written */
  return 0;
}

/* ---- the library reads nothing past the caller's size -------------------- */

TEST_IMPL(session_reads_only_the_callers_size) {
  guarded g;
  size_t old = OLD_SIZE(vigil_session_config, max_frame);
  vigil_session_config *cfg;
  vigil_session s;
  vigil_session_info info;
  char why[160];
  ASSERT_EQ(guarded_open(&g), 0);
  cfg = guarded_tail(&g, old);
  vigil_session_config_init_sized(cfg, old);
  cfg->interval_ms = 2000;
  ASSERT_EQ(vigil_session_config_check(cfg, VIGIL_ROLE_SERVER, why, sizeof why), 0);
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_SERVER, cfg, 0), 0);
  vigil_session_get_info(&s, &info);
  ASSERT_UEQ(info.interval_ms, 2000);
  ASSERT_UEQ(info.max_frame, 16384); /* fields it lacks: the defaults */
  ASSERT_UEQ(info.max_message, 1u << 20);
  guarded_close(&g);
  return 0;
}

static void no_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  (void)info;
  (void)c;
  (void)user;
}

TEST_IMPL(server_and_client_read_only_the_callers_size) {
  guarded g;
  vigil_loop loop;
  vigil_server *srv;
  vigil_client *cli;
  vigil_server_config *scfg;
  vigil_client_config *ccfg;
  size_t sold = OLD_SIZE(vigil_server_config, keepalive_mode);
  size_t cold = OLD_SIZE(vigil_client_config, keepalive_mode);
  ASSERT_EQ(guarded_open(&g), 0);
  ASSERT_EQ(vigil_loop_init(&loop, NULL), 0);

  scfg = guarded_tail(&g, sold);
  vigil_server_config_init_sized(scfg, sold);
  scfg->cb.on_open = no_open;
  scfg->max_connections = 3;
  ASSERT_EQ(vigil_server_new(&srv, &loop, scfg), 0);
  vigil_server_free(srv);

  ccfg = guarded_tail(&g, cold);
  vigil_client_config_init_sized(ccfg, cold);
  ccfg->session.id = "old";
  ccfg->session.id_len = 3;
  ASSERT_EQ(vigil_client_new(&cli, &loop, ccfg), 0);
  ASSERT_EQ(vigil_client_free(cli), 0);

  ASSERT_EQ(vigil_loop_close(&loop), 0);
  guarded_close(&g);
  return 0;
}

TEST_IMPL(loop_and_keepalive_read_only_the_callers_size) {
  guarded g;
  vigil_loop loop;
  vigil_loop_options *opts;
  vigil_keepalive *ka;
  vigil_keepalive_report rep;
  size_t old = OLD_SIZE(vigil_loop_options, clock);
  ASSERT_EQ(guarded_open(&g), 0);
  opts = guarded_tail(&g, old);
  vigil_loop_options_init_sized(opts, old);
  opts->stall_threshold_ms = 700;
  ASSERT_EQ(vigil_loop_init(&loop, opts), 0); /* clock: the OS's (the default) */
  ASSERT(vigil_loop_now_ns(&loop) > 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);

  /* An old keepalive request with no user timeout field: an invalid socket
   * still fails on SO_KEEPALIVE, never on reading past the struct. */
  old = OLD_SIZE(vigil_keepalive, user_timeout_ms);
  ka = guarded_tail(&g, old);
  vigil_keepalive_init_sized(ka, old);
  ka->enable = 0;
  ASSERT_NE(vigil_keepalive_apply(VIGIL_INVALID_SOCKET, ka, &rep), 0);
  ASSERT_EQ(rep.status[VIGIL_KEEPALIVE_OPT_USER_TIMEOUT], VIGIL_KEEPALIVE_NOT_REQUESTED);
  guarded_close(&g);
  return 0;
}

/* ---- the size field itself ------------------------------------------------ */

TEST_IMPL(uninitialised_struct_is_refused) {
  vigil_session_config cfg;
  vigil_server_config scfg;
  vigil_loop loop;
  vigil_server *srv = NULL;
  vigil_keepalive ka;
  char why[160];
  vigil_session_config_init(&cfg);
  cfg.size = 0; /* as a struct filled by hand, never _init'ed */
  ASSERT_EQ(vigil_session_config_check(&cfg, VIGIL_ROLE_SERVER, why, sizeof why), VIGIL_EINVAL);
  ASSERT(strstr(why, "vigil_session_config_init") != NULL);
  cfg.size = (size_t)-1; /* garbage: refused before anything is read */
  ASSERT_EQ(vigil_session_config_check(&cfg, VIGIL_ROLE_SERVER, NULL, 0), VIGIL_EINVAL);
  memset(&scfg, 0, sizeof scfg);
  ASSERT_EQ(vigil_loop_init(&loop, NULL), 0);
  ASSERT_EQ(vigil_server_new(&srv, &loop, &scfg), VIGIL_EINVAL);
  ASSERT_NULL(srv);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  memset(&ka, 0, sizeof ka);
  ka.enable = 1;
  ASSERT_EQ(vigil_keepalive_apply(VIGIL_INVALID_SOCKET, &ka, NULL), VIGIL_EINVAL);
  return 0;
}

/* A program built against a newer vigil.h than the library it runs with:
 * fields this library does not know are fine while zero (their default),
 * and refused when set, rather than silently ignored. */
TEST_IMPL(newer_caller_fields_must_be_zero) {
  unsigned char buf[sizeof(vigil_session_config) + 16];
  vigil_session_config *cfg = (vigil_session_config *)(void *)buf;
  vigil_session s;
  char why[160];
  memset(buf, CANARY, sizeof buf);
  vigil_session_config_init_sized(cfg, sizeof buf);
  ASSERT_UEQ(cfg->size, sizeof buf);
  ASSERT_EQ(buf[sizeof buf - 1], 0); /* the unknown tail is zeroed */
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_SERVER, cfg, 0), 0);
  buf[sizeof buf - 1] = 1; /* a newer field set */
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_SERVER, cfg, 0), VIGIL_ENOTSUP);
  ASSERT_EQ(vigil_session_config_check(cfg, VIGIL_ROLE_SERVER, why, sizeof why), VIGIL_ENOTSUP);
  ASSERT(strstr(why, "does not have") != NULL);
  return 0;
}

/* ---- version ------------------------------------------------------------- */

TEST_IMPL(version_number_matches_string_and_header) {
  unsigned major, minor, patch;
  char tail;
  ASSERT_EQ(sscanf(vigil_version_string(), "%u.%u.%u%c", &major, &minor, &patch, &tail), 3);
  ASSERT_UEQ(vigil_version(), (major << 16) | (minor << 8) | patch);
  ASSERT_UEQ(vigil_version(), VIGIL_VERSION_HEX);
  ASSERT_UEQ(major, VIGIL_VERSION_MAJOR);
  ASSERT_UEQ(minor, VIGIL_VERSION_MINOR);
  ASSERT_UEQ(patch, VIGIL_VERSION_PATCH);
  return 0;
}
