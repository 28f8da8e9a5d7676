/* A separate program built against an installed vigil, as a user would:
 * it uses the public header only and checks a few calls do what they say. */
#include <stdio.h>
#include <string.h>

#include <vigil.h>

int main(void) {
  uint8_t buf[8];
  vigil_frame f;
  int n;

  n = vigil_wire_encode_ping(buf, sizeof buf);
  if (n != 2 || vigil_wire_decode(buf, (size_t)n, 0, &f) != 2 || f.type != VIGIL_FRAME_PING) {
    fprintf(stderr, "consumer: ping round trip failed (%d)\n", n);
    return 1;
  }
  if (strcmp(vigil_cause_name(VIGIL_CAUSE_HEARTBEAT_TIMEOUT), "heartbeat_timeout") != 0)
    return 1;
  if (vigil_version() != VIGIL_VERSION_HEX) { /* the library run is the one compiled against */
    fprintf(stderr, "consumer: library %x, header %x\n", vigil_version(), VIGIL_VERSION_HEX);
    return 1;
  }
  printf("consumer: vigil %s, sizeof(vigil_session) = %zu, %s\n", vigil_version_string(),
         sizeof(vigil_session), vigil_strerror(VIGIL_ECONNRESET));
  return 0;
}
