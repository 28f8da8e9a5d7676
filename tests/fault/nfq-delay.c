/* nfq-delay: a delayed, jittery link for the fault suite.
 *
 * This kernel has no netem qdisc, so delay comes from userspace: an nftables
 * rule inside a test namespace sends packets to an NFQUEUE, and this program
 * holds each one for a random time in [min, max] ms before accepting it.
 * Independent random holds reorder packets, as a jittery path does. Packets
 * are held in a fixed array scanned linearly: the suite queues at most a few
 * hundred heartbeat-sized packets at once, and a full array means the packet
 * is accepted at once rather than dropped (this tool adds delay, not loss).
 *
 * Usage: nfq-delay QUEUE MIN_MS MAX_MS [SEED]
 * Runs until SIGTERM/SIGINT; prints one line when the queue is bound, and a
 * summary (packets, mean delay) on exit. Exit status 2 on setup failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_HELD 4096

struct held {
  uint32_t id;
  int64_t release_ms;
};

static struct held held[MAX_HELD];
static size_t nheld;
static int min_ms, max_ms;
static uint64_t rng_state = 88172645463325252ULL;
static uint64_t total_packets, total_delay_ms;
static volatile sig_atomic_t stop;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 32);
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data) {
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  uint32_t id, span = (uint32_t)(max_ms - min_ms + 1);
  int64_t delay = min_ms + (int64_t)(rng_next() % span);
  (void)msg;
  (void)data;
  if (ph == NULL)
    return 0;
  id = ntohl(ph->packet_id);
  total_packets++;
  if (nheld == MAX_HELD)
    return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
  held[nheld].id = id;
  held[nheld].release_ms = now_ms() + delay;
  nheld++;
  total_delay_ms += (uint64_t)delay;
  return 0;
}

/* Accepts every packet whose time has come; returns ms until the next. */
static int release_due(struct nfq_q_handle *qh) {
  int64_t now = now_ms(), next = -1;
  size_t i = 0;
  while (i < nheld) {
    if (held[i].release_ms <= now) {
      nfq_set_verdict(qh, held[i].id, NF_ACCEPT, 0, NULL);
      held[i] = held[--nheld];
      continue;
    }
    if (next < 0 || held[i].release_ms < next)
      next = held[i].release_ms;
    i++;
  }
  if (next < 0)
    return 200;
  return (int)(next - now);
}

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int parse_ms(const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > 60000)
    return -1;
  *out = (int)v;
  return 0;
}

int main(int argc, char **argv) {
  struct nfq_handle *h;
  struct nfq_q_handle *qh;
  struct sigaction sa;
  char buf[65536] __attribute__((aligned));
  int queue, fd;
  if (argc < 4 || parse_ms(argv[1], &queue) != 0 || parse_ms(argv[2], &min_ms) != 0 ||
      parse_ms(argv[3], &max_ms) != 0 || max_ms < min_ms) {
    fprintf(stderr, "usage: nfq-delay QUEUE MIN_MS MAX_MS [SEED]\n");
    return 2;
  }
  if (argc > 4)
    rng_state ^= strtoull(argv[4], NULL, 10) * 0x9E3779B97F4A7C15ULL;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  h = nfq_open();
  if (h == NULL) {
    perror("nfq-delay: nfq_open");
    return 2;
  }
  qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
  if (qh == NULL || nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
    perror("nfq-delay: nfq_create_queue");
    nfq_close(h);
    return 2;
  }
  nfq_set_queue_maxlen(qh, MAX_HELD);
  fd = nfq_fd(h);
  printf("nfq-delay: queue %d bound, delay %d..%d ms\n", queue, min_ms, max_ms);
  fflush(stdout);
  while (!stop) {
    struct pollfd p = {fd, POLLIN, 0};
    int wait = release_due(qh);
    if (poll(&p, 1, wait) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (p.revents & POLLIN) {
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0)
        nfq_handle_packet(h, buf, (int)n);
    }
  }
  printf("nfq-delay: %llu packets, mean delay %.1f ms\n", (unsigned long long)total_packets,
         total_packets ? (double)total_delay_ms / (double)total_packets : 0.0);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
