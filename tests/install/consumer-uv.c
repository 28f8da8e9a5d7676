/* Built against an installed libvigil-uv, as a user would (pkg-config
 * vigil-uv, or CMake find_package(vigil COMPONENTS uv)): the header, the
 * library and libuv resolve together, and a few calls do what they say. */
#include <stdio.h>

#include <uv.h>
#include <vigil.h>
#include <vigil/uv.h>

int main(void) {
  uv_loop_t loop;
  uv_tcp_t tcp;
  vigil_uv_config cfg;
  vigil_uv_conn c;
  int rc;

  vigil_uv_config_init(&cfg);
  if (cfg.role != VIGIL_ROLE_CLIENT || cfg.linger_ms != 1000 || uv_loop_init(&loop) != 0)
    return 1;
  uv_tcp_init(&loop, &tcp);
  rc = vigil_uv_attach(&c, &loop, NULL, &cfg);
  uv_close((uv_handle_t *)&tcp, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (rc != VIGIL_EINVAL || uv_loop_close(&loop) != 0) {
    fprintf(stderr, "consumer-uv: attach(NULL tcp) gave %s\n", vigil_err_name(rc));
    return 1;
  }
  printf("consumer-uv: vigil %s on libuv %s, sizeof(vigil_uv_conn) = %zu\n", vigil_version_string(),
         uv_version_string(), sizeof(vigil_uv_conn));
  return 0;
}
