/* A small test harness in the spirit of libuv's test/task.h.
 *
 * Each tests/test-<area>.c defines tests with TEST_IMPL(name). The build scans
 * those files for TEST_IMPL, generates the list, links one executable per
 * area (test-<area>), and registers every test with ctest as <area>.<name>,
 * run in its own process with a timeout. The harness uses only C11 and stdio
 * so the same sources build with mingw-w64 and run under wine.
 *
 * A test returns 0 on success; ASSERT* print where and why and return 1;
 * RETURN_SKIP prints its reason and returns TEST_SKIP (ctest shows SKIPPED).
 *
 * The scan is textual, so never put a TEST_IMPL inside #if: define the test
 * on every platform and RETURN_SKIP inside it where it cannot run. */
#ifndef VIGIL_TEST_TASK_H
#define VIGIL_TEST_TASK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define TEST_SKIP 77

#define TEST_IMPL(name)                                                                            \
  int run_test_##name(void);                                                                       \
  int run_test_##name(void)

#define TEST_FAIL_AT(...)                                                                          \
  do {                                                                                             \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                                \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fputc('\n', stderr);                                                                           \
    fflush(stderr);                                                                                \
    return 1;                                                                                      \
  } while (0)

#define ASSERT(expr)                                                                               \
  do {                                                                                             \
    if (!(expr))                                                                                   \
      TEST_FAIL_AT("assertion failed: %s", #expr);                                                 \
  } while (0)

#define ASSERT_OP__(a, op, b, type, fmt)                                                           \
  do {                                                                                             \
    type a__ = (type)(a);                                                                          \
    type b__ = (type)(b);                                                                          \
    if (!(a__ op b__))                                                                             \
      TEST_FAIL_AT("%s %s %s: %" fmt " %s %" fmt, #a, #op, #b, a__, #op, b__);                     \
  } while (0)

#define ASSERT_EQ(a, b) ASSERT_OP__(a, ==, b, int64_t, PRId64)
#define ASSERT_NE(a, b) ASSERT_OP__(a, !=, b, int64_t, PRId64)
#define ASSERT_LT(a, b) ASSERT_OP__(a, <, b, int64_t, PRId64)
#define ASSERT_LE(a, b) ASSERT_OP__(a, <=, b, int64_t, PRId64)
#define ASSERT_GT(a, b) ASSERT_OP__(a, >, b, int64_t, PRId64)
#define ASSERT_GE(a, b) ASSERT_OP__(a, >=, b, int64_t, PRId64)
#define ASSERT_UEQ(a, b) ASSERT_OP__(a, ==, b, uint64_t, PRIu64)
#define ASSERT_ULE(a, b) ASSERT_OP__(a, <=, b, uint64_t, PRIu64)
#define ASSERT_UGE(a, b) ASSERT_OP__(a, >=, b, uint64_t, PRIu64)
#define ASSERT_PTR_EQ(a, b) ASSERT((const void *)(a) == (const void *)(b))
#define ASSERT_NULL(a) ASSERT((a) == NULL)
#define ASSERT_NOT_NULL(a) ASSERT((a) != NULL)

#define ASSERT_STR_EQ(a, b)                                                                        \
  do {                                                                                             \
    const char *a__ = (a);                                                                         \
    const char *b__ = (b);                                                                         \
    if (a__ == NULL || b__ == NULL || strcmp(a__, b__) != 0)                                       \
      TEST_FAIL_AT("%s == %s: \"%s\" vs \"%s\"", #a, #b, a__ ? a__ : "(null)",                     \
                   b__ ? b__ : "(null)");                                                          \
  } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
  do {                                                                                             \
    if (memcmp((a), (b), (n)) != 0)                                                                \
      TEST_FAIL_AT("%s and %s differ in their first %zu bytes", #a, #b, (size_t)(n));              \
  } while (0)

#define RETURN_SKIP(...)                                                                           \
  do {                                                                                             \
    fprintf(stderr, "SKIP: ");                                                                     \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fputc('\n', stderr);                                                                           \
    fflush(stderr);                                                                                \
    return TEST_SKIP;                                                                              \
  } while (0)

#endif
