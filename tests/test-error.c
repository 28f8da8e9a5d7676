#include <string.h>

#include "task.h"
#include "vigil.h"

TEST_IMPL(strerror_covers_every_code) {
  /* Each code in the table has its own non-generic message and name. */
#define CHECK(name, value, msg)                                                                    \
  ASSERT_STR_EQ(vigil_strerror(VIGIL_##name), msg);                                                \
  ASSERT_STR_EQ(vigil_err_name(VIGIL_##name), #name);                                              \
  ASSERT_LT(VIGIL_##name, 0);
  VIGIL_ERRNO_MAP(CHECK)
#undef CHECK
  ASSERT_STR_EQ(vigil_strerror(0), "success");
  ASSERT_STR_EQ(vigil_strerror(-999999), "unknown error");
  ASSERT_STR_EQ(vigil_err_name(-999999), "EUNKNOWN");
  return 0;
}

TEST_IMPL(error_codes_are_distinct) {
  static const int codes[] = {
#define CODE(name, value, msg) VIGIL_##name,
      VIGIL_ERRNO_MAP(CODE)
#undef CODE
  };
  size_t i, j, n = sizeof codes / sizeof codes[0];
  for (i = 0; i < n; i++)
    for (j = i + 1; j < n; j++)
      ASSERT_NE(codes[i], codes[j]);
  return 0;
}

TEST_IMPL(error_codes_equal_negative_errno_on_posix) {
#ifdef _WIN32
  RETURN_SKIP("Windows uses vigil's private error range, not errno values");
#else
  ASSERT_EQ(VIGIL_ECONNRESET, -ECONNRESET);
  ASSERT_EQ(VIGIL_ETIMEDOUT, -ETIMEDOUT);
  ASSERT_EQ(VIGIL_EHOSTUNREACH, -EHOSTUNREACH);
  return 0;
#endif
}

TEST_IMPL(cause_names_match_design) {
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_CLOSED), "closed");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_RESET), "reset");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_HEARTBEAT_TIMEOUT), "heartbeat_timeout");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_PEER_STALLED), "peer_stalled");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_KEEPALIVE_TIMEOUT), "keepalive_timeout");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_USER_TIMEOUT), "user_timeout");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_UNREACHABLE), "unreachable");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_PROTOCOL_ERROR), "protocol_error");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_POLICY), "policy");
  ASSERT_STR_EQ(vigil_cause_name(VIGIL_CAUSE_LOCAL), "local");
  ASSERT_STR_EQ(vigil_cause_name((vigil_cause)99), "unknown");
  ASSERT_STR_EQ(vigil_version_string(), "0.1.0");
  return 0;
}
