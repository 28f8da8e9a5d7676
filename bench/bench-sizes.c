/* Prints the size of every structure a connection costs the library, so the
 * memory figures quoted in docs/ARCHITECTURE.md and the README come from a
 * command anyone can run: `build/release/bench-sizes`.
 *
 * The budget from DESIGN.md is the sans-I/O engine state, at most 128 bytes
 * per idle connection (asserted at compile time in src/session.c). The whole
 * runtime connection (vigil_conn: session + TCP handle + timer + flush node +
 * peer address + a pointer to the rarely used state, vigil__conn_ext, which
 * exists only while a message is queued or reassembled, a close is under
 * way, or TLS is on) is larger; the measured RSS per connection under load
 * is printed by bench-connections. */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "vigil.h"

/* --abi: the public structs whose size is part of the ABI (docs/ABI.md),
 * one "name size" line each, in the form scripts/abi-sizes.sh records. */
#define ABI_SIZE(type) printf("%s %zu\n", #type, sizeof(type))
static int print_abi(void) {
  printf("version %s\n", vigil_version_string());
  ABI_SIZE(vigil_session_config);
  ABI_SIZE(vigil_server_config);
  ABI_SIZE(vigil_client_config);
  ABI_SIZE(vigil_loop_options);
  ABI_SIZE(vigil_workers_config);
  ABI_SIZE(vigil_worker_event);
  ABI_SIZE(vigil_keepalive);
  ABI_SIZE(vigil_keepalive_report);
  ABI_SIZE(vigil_conn_callbacks);
  ABI_SIZE(vigil_session);
  ABI_SIZE(vigil_session_info);
  ABI_SIZE(vigil_event);
  ABI_SIZE(vigil_phi);
  ABI_SIZE(vigil_wheel);
  ABI_SIZE(vigil_timer);
  ABI_SIZE(vigil_loop);
  ABI_SIZE(vigil_loop_timer);
  ABI_SIZE(vigil_defer);
  ABI_SIZE(vigil_tcp);
  ABI_SIZE(vigil_write_req);
  ABI_SIZE(vigil_connect_req);
  ABI_SIZE(vigil_death);
  ABI_SIZE(vigil_open_info);
  ABI_SIZE(vigil_conn_info);
  ABI_SIZE(vigil_server_stats);
  ABI_SIZE(vigil_client_stats);
  ABI_SIZE(vigil_frame);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--abi") == 0)
    return print_abi();
  printf("sizeof_vigil_session %zu (budget 128)\n", sizeof(vigil_session));
  printf("sizeof_vigil_phi %zu (adaptive mode only)\n", sizeof(vigil_phi));
  printf("sizeof_vigil_timer %zu\n", sizeof(vigil_timer));
  printf("sizeof_vigil_loop_timer %zu\n", sizeof(vigil_loop_timer));
  printf("sizeof_vigil_tcp %zu\n", sizeof(vigil_tcp));
  printf("sizeof_vigil_conn %zu (whole runtime connection, idle: no buffers held)\n",
         sizeof(struct vigil_conn));
  printf("sizeof_vigil_conn_ext %zu (only while messages are queued or reassembled, a close is "
         "under way, or TLS is on)\n",
         sizeof(vigil__conn_ext));
  printf("sizeof_vigil_wheel %zu (one per loop)\n", sizeof(vigil_wheel));
  printf("sizeof_vigil_loop %zu (one per loop)\n", sizeof(vigil_loop));
  return 0;
}
