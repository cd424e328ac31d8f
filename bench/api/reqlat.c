/* API benchmark request timer: sends the same HTTP/1.1 request N times to each server, on one
 * keep-alive Unix socket connection per server, alternating between them, and prints each
 * round trip as "SERVER_INDEX NANOSECONDS" after WARMUP rounds that are not printed. Every
 * reply must carry the expected status. With --serve it is instead the floor peer: a server
 * that answers every request with 204 and does nothing else.
 *
 *   reqlat N WARMUP STATUS METHOD PATH BODY SOCKET...
 *   reqlat --serve SOCKET */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Written in C rather than python so the number is the server's round trip, not an HTTP
 * library's overhead (python's http.client adds tens of microseconds per request). */

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int unix_socket(const char* path, struct sockaddr_un* addr) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(addr->sun_path)) return -1;
  strcpy(addr->sun_path, path);
  return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads one HTTP message (headers + Content-Length body) into buf; returns its length, or -1.
 * `have` bytes are already in buf (pipelined leftovers are not expected: one request at a
 * time). Sets *status for a response. */
static long read_message(int fd, char* buf, size_t cap, int* status) {
  size_t have = 0;
  char* end = NULL;
  while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
    if (have == cap) return -1;
    ssize_t r = read(fd, buf + have, cap - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    have += (size_t)r;
  }
  size_t head = (size_t)(end - buf) + 4;
  long body = 0;
  for (char* line = buf; line < end;) {
    if (strncasecmp(line, "Content-Length:", 15) == 0) body = strtol(line + 15, NULL, 10);
    line = (char*)memmem(line, (size_t)(end + 2 - line), "\r\n", 2) + 2;
  }
  if (status) *status = strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
  while (have < head + (size_t)body) {
    if (have == cap) return -1;
    ssize_t r = read(fd, buf + have, cap - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    have += (size_t)r;
  }
  return (long)have;
}

static int serve(const char* path) {
  struct sockaddr_un addr;
  int ls = unix_socket(path, &addr);
  unlink(path);
  if (ls < 0 || bind(ls, (struct sockaddr*)&addr, sizeof(addr)) != 0 || listen(ls, 64) != 0) {
    fprintf(stderr, "reqlat: cannot listen on %s: %s\n", path, strerror(errno));
    return 2;
  }
  static char buf[1 << 16];
  static const char reply[] = "HTTP/1.1 204 No Content\r\n\r\n";
  for (;;) {
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR) continue;
      return 2;
    }
    while (read_message(c, buf, sizeof(buf), NULL) > 0) {
      if (write_all(c, reply, sizeof(reply) - 1) != 0) break;
    }
    close(c);
  }
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "--serve") == 0) return serve(argv[2]);
  if (argc < 8) {
    fprintf(stderr,
            "usage: %s N WARMUP STATUS METHOD PATH BODY SOCKET...\n       %s --serve SOCKET\n",
            argv[0], argv[0]);
    return 2;
  }
  long n = atol(argv[1]), warmup = atol(argv[2]);
  int want = atoi(argv[3]);
  const char* body = argv[6];
  int nsock = argc - 7;
  if (nsock > 8) return 2;

  static char req[1 << 16];
  int len = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     argv[4], argv[5], strlen(body), body);
  if (len <= 0 || (size_t)len >= sizeof(req)) return 2;

  int fds[8];
  for (int k = 0; k < nsock; k++) {
    struct sockaddr_un addr;
    fds[k] = unix_socket(argv[7 + k], &addr);
    if (fds[k] < 0 || connect(fds[k], (struct sockaddr*)&addr, sizeof(addr)) != 0) {
      fprintf(stderr, "reqlat: connect %s: %s\n", argv[7 + k], strerror(errno));
      return 1;
    }
  }
  /* Round robin over the servers, one request at a time each: they see the same moments of
   * the machine's load. */
  static char buf[1 << 20];
  for (long i = 0; i < warmup + n; i++) {
    for (int k = 0; k < nsock; k++) {
      long long t0 = now_ns();
      int status = 0;
      if (write_all(fds[k], req, (size_t)len) != 0 ||
          read_message(fds[k], buf, sizeof(buf) - 1, &status) < 0) {
        fprintf(stderr, "reqlat: the connection to %s broke at request %ld\n", argv[7 + k], i);
        return 1;
      }
      long long dt = now_ns() - t0;
      if (status != want) {
        fprintf(stderr, "reqlat: %s: request %ld got status %d, expected %d\n", argv[7 + k], i,
                status, want);
        return 1;
      }
      if (i >= warmup) printf("%d %lld\n", k, dt);
    }
  }
  return 0;
}
