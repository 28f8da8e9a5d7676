/* Replays files through a libFuzzer entry point when the build has no
 * libFuzzer: `fuzz-x FILE|DIR...`. Every regular file given, or found one level
 * inside a given directory, is fed once. Exits non-zero if nothing was fed, so
 * a missing corpus is noticed rather than passing silently. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int feed_file(const char *path) {
  FILE *f;
  uint8_t *buf;
  long n;
  size_t got;

  f = fopen(path, "rb");
  if (f == NULL)
    return 0;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return 0;
  }
  buf = malloc((size_t)n + 1);
  if (buf == NULL) {
    fclose(f);
    return 0;
  }
  got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, got);
  free(buf);
  return 1;
}

static int feed_path(const char *path) {
  struct stat st;
  DIR *d;
  struct dirent *e;
  char child[4096];
  int fed = 0;

  if (stat(path, &st) != 0)
    return 0;
  if (!S_ISDIR(st.st_mode))
    return feed_file(path);
  d = opendir(path);
  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(child, sizeof child, "%s/%s", path, e->d_name);
    if (stat(child, &st) == 0 && S_ISREG(st.st_mode))
      fed += feed_file(child);
  }
  closedir(d);
  return fed;
}

int main(int argc, char **argv) {
  int i, fed = 0;

  for (i = 1; i < argc; i++)
    fed += feed_path(argv[i]);
  printf("replayed %d inputs\n", fed);
  return fed > 0 ? 0 : 1;
}
