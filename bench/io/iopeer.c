/* The host side of the device benchmarks (bench/io.sh): what the guest's bench-net and
 * bench-vsock tests talk to. In C, not python, so the peer is never the bottleneck it measures.
 *
 *   iopeer udp ADDR ECHO_PORT SINK_PORT
 *       UDP echo on ECHO_PORT (latency) and a counting sink on SINK_PORT (throughput); a
 *       datagram "STATS" to the sink is answered with "rx=<datagrams> bytes=<payload bytes>"
 *       (everything else received so far). Runs until SIGTERM/SIGINT, then prints the same
 *       counts as "sink rx=<n> bytes=<b> echoed=<n>".
 *   iopeer unix-sink PATH BYTES     (the host end of ignition's hybrid vsock: <uds_path>_<port>)
 *   iopeer vsock-sink PORT BYTES    (AF_VSOCK, for vhost-vsock)
 *       Accepts one stream, reads it to end-of-file and checks the guest's pattern (the 8-byte
 *       word at stream offset o holds o, little-endian); prints "received bytes=<n> ok=<0|1>
 *       ns=<first byte to end-of-file>" and exits 0 only if it got BYTES bytes, all correct.
 * Each mode prints "ready" once it listens. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define DGRAM 2048
#define STREAM_BUF (1 << 20)
#define SINK_RCVBUF (8 << 20)

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void die(const char* what) {
  perror(what);
  exit(2);
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int udp_socket(const char* addr, int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  /* A burst of MTU-sized datagrams must not overflow a default-sized receive queue before we
   * read it; FORCE (root) goes past net.core.rmem_max. */
  if (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
    fprintf(stderr, "iopeer: bad address %s\n", addr);
    exit(2);
  }
  if (bind(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0) die("bind");
  return fd;
}

static int run_udp(const char* addr, int echo_port, int sink_port) {
  int echo = udp_socket(addr, echo_port, 0);
  int sink = udp_socket(addr, sink_port, SINK_RCVBUF);
  char(*bufs)[DGRAM] = malloc(BATCH * DGRAM);
  if (!bufs) die("malloc");
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  unsigned long long rx = 0, bytes = 0, echoed = 0;
  printf("ready\n");
  fflush(stdout);
  struct pollfd fds[2] = {{.fd = echo, .events = POLLIN}, {.fd = sink, .events = POLLIN}};
  while (!stop_requested) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[0].revents & POLLIN) {
      struct sockaddr_in peer;
      socklen_t len = sizeof(peer);
      ssize_t n = recvfrom(echo, bufs[0], DGRAM, MSG_DONTWAIT, (struct sockaddr*)&peer, &len);
      if (n >= 0 && sendto(echo, bufs[0], (size_t)n, 0, (struct sockaddr*)&peer, len) == n)
        echoed++;
    }
    if (fds[1].revents & POLLIN) {
      for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){bufs[i], DGRAM};
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                          .msg_namelen = sizeof(from[i]),
                                          .msg_iov = &iov[i],
                                          .msg_iovlen = 1};
      }
      int got = recvmmsg(sink, msgs, BATCH, MSG_DONTWAIT, NULL);
      for (int i = 0; i < got; i++) {
        unsigned len = msgs[i].msg_len;
        if (len == 5 && memcmp(bufs[i], "STATS", 5) == 0) {
          char reply[64];
          int l = snprintf(reply, sizeof(reply), "rx=%llu bytes=%llu", rx, bytes);
          sendto(sink, reply, (size_t)l, 0, (struct sockaddr*)&from[i],
                 msgs[i].msg_hdr.msg_namelen);
          continue;
        }
        rx++;
        bytes += len;
      }
    }
  }
  printf("sink rx=%llu bytes=%llu echoed=%llu\n", rx, bytes, echoed);
  return 0;
}

/* Checks stream bytes [offset, offset+len) against the pattern; false at the first wrong one. */
static int pattern_ok(const unsigned char* p, size_t len, uint64_t offset) {
  size_t i = 0;
  while (i < len && (offset + i) % 8) {
    uint64_t o = offset + i, word = o & ~7ull;
    if (p[i] != (unsigned char)(word >> (8 * (o % 8)))) return 0;
    i++;
  }
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != offset + i) return 0;
  }
  for (; i < len; i++) {
    uint64_t o = offset + i, word = o & ~7ull;
    if (p[i] != (unsigned char)(word >> (8 * (o % 8)))) return 0;
  }
  return 1;
}

static int run_sink(int listener, unsigned long long expected) {
  if (listen(listener, 4) != 0) die("listen");
  printf("ready\n");
  fflush(stdout);
  int fd;
  while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0) {
    if (errno != EINTR || stop_requested) die("accept");
  }
  unsigned char* buf = malloc(STREAM_BUF);
  if (!buf) die("malloc");
  unsigned long long total = 0;
  int ok = 1;
  long long first = 0;
  for (;;) {
    ssize_t n = read(fd, buf, STREAM_BUF);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("read");
    if (n == 0) break;
    if (!first) first = now_ns();
    if (ok && !pattern_ok(buf, (size_t)n, total)) {
      ok = 0;
      fprintf(stderr, "iopeer: pattern mismatch in [%llu, %llu)\n", total, total + (size_t)n);
    }
    total += (unsigned long long)n;
  }
  long long end = now_ns();
  close(fd);
  if (total != expected) ok = 0;
  printf("received bytes=%llu ok=%d ns=%lld\n", total, ok, first ? end - first : 0);
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  if (argc == 5 && strcmp(argv[1], "udp") == 0)
    return run_udp(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (argc == 4 && strcmp(argv[1], "unix-sink") == 0) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (fd < 0) die("socket");
    if (strlen(argv[2]) >= sizeof(un.sun_path)) {
      fprintf(stderr, "iopeer: path too long: %s\n", argv[2]);
      return 2;
    }
    strcpy(un.sun_path, argv[2]);
    unlink(argv[2]);
    if (bind(fd, (struct sockaddr*)&un, sizeof(un)) != 0) die("bind");
    int r = run_sink(fd, strtoull(argv[3], NULL, 0));
    unlink(argv[2]);
    return r;
  }
  if (argc == 4 && strcmp(argv[1], "vsock-sink") == 0) {
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket(AF_VSOCK)");
    struct sockaddr_vm vm = {.svm_family = AF_VSOCK,
                             .svm_cid = VMADDR_CID_ANY,
                             .svm_port = (unsigned)strtoul(argv[2], NULL, 0)};
    if (bind(fd, (struct sockaddr*)&vm, sizeof(vm)) != 0) die("bind(AF_VSOCK)");
    return run_sink(fd, strtoull(argv[3], NULL, 0));
  }
  fprintf(stderr,
          "usage: iopeer udp ADDR ECHO_PORT SINK_PORT | unix-sink PATH BYTES | "
          "vsock-sink PORT BYTES\n");
  return 2;
}
