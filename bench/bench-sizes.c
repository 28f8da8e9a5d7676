/* Prints the size of every structure a connection costs the library, so the
 * memory figures quoted in docs/ARCHITECTURE.md and the README come from a
 * command anyone can run: `build/release/bench-sizes`.
 *
 * The budget from DESIGN.md is the sans-I/O engine state, at most 128 bytes
 * per idle connection (asserted at compile time in src/session.c). The whole
 * runtime connection (vigil_conn: session + TCP handle + timer + flush node +
 * queue pointers + peer address) is larger; the measured heap and RSS per
 * connection under load is printed by bench-connections. */
#include <stdio.h>

#include "conn.h"
#include "vigil.h"

int main(void) {
  printf("sizeof_vigil_session %zu (budget 128)\n", sizeof(vigil_session));
  printf("sizeof_vigil_phi %zu (adaptive mode only)\n", sizeof(vigil_phi));
  printf("sizeof_vigil_timer %zu\n", sizeof(vigil_timer));
  printf("sizeof_vigil_loop_timer %zu\n", sizeof(vigil_loop_timer));
  printf("sizeof_vigil_tcp %zu\n", sizeof(vigil_tcp));
  printf("sizeof_vigil_conn %zu (whole runtime connection, idle: no buffers held)\n",
         sizeof(struct vigil_conn));
  printf("sizeof_vigil_wheel %zu (one per loop)\n", sizeof(vigil_wheel));
  printf("sizeof_vigil_loop %zu (one per loop)\n", sizeof(vigil_loop));
  return 0;
}
