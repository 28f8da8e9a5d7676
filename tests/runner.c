/* Test runner: `test-<area> NAME` runs one test; `test-<area>` runs them all
 * in this process, in order; `test-<area> --list` prints the names.
 * ctest uses the first form, one process per test, with a timeout. */
#include <stdio.h>
#include <string.h>

#include "task.h"

#define TEST_DECLARE(name) int run_test_##name(void);
#include VIGIL_TEST_LIST_FILE
#undef TEST_DECLARE

struct test_entry {
  const char *name;
  int (*fn)(void);
};

#define TEST_DECLARE(name) {#name, run_test_##name},
static const struct test_entry tests[] = {
#include VIGIL_TEST_LIST_FILE
    {NULL, NULL}};
#undef TEST_DECLARE

static int run_one(const struct test_entry *t) {
  int rc;
  rc = t->fn();
  fflush(stdout);
  fflush(stderr);
  return rc;
}

int main(int argc, char **argv) {
  const struct test_entry *t;
  int failed = 0, passed = 0, skipped = 0, rc;

  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && strcmp(argv[1], "--list") == 0) {
    for (t = tests; t->name != NULL; t++)
      printf("%s\n", t->name);
    return 0;
  }
  if (argc > 1) {
    for (t = tests; t->name != NULL; t++)
      if (strcmp(t->name, argv[1]) == 0)
        return run_one(t);
    fprintf(stderr, "no test named '%s' (try --list)\n", argv[1]);
    return 2;
  }
  for (t = tests; t->name != NULL; t++) {
    rc = run_one(t);
    printf("%s %s\n", rc == 0 ? "ok  " : rc == TEST_SKIP ? "skip" : "FAIL", t->name);
    if (rc == 0)
      passed++;
    else if (rc == TEST_SKIP)
      skipped++;
    else
      failed++;
  }
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed ? 1 : 0;
}
