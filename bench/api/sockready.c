/* API benchmark launcher: starts a server command, notices the moment its Unix socket accepts a
 * connection, and reports the server's CPU time and the wall time at that moment, then stops it
 * (SIGTERM) and reports its rusage. Output: "key value" lines on stdout.
 *
 *   sockready [--timeout-ms N] SOCKET -- COMMAND [ARGS...] */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The CPU time is the sum of the server's threads' on-CPU time from /proc/PID/task/TID/schedstat
 * (nanoseconds; threads that already exited are not in it). Not the process CPU clock
 * (clock_getcpuclockid): on the development machines' kernel it sometimes reads 0 or a value
 * well below the per-thread sum for a process that has clearly run; it is only the fallback.
 *
 * Why inotify and not a polling loop: a poller spinning on connect() competes for the same two
 * cores as the server it times. Waiting for the socket file's creation costs nothing; only the
 * short gap between bind() and listen() is polled. */

static long long now_ns(clockid_t clock) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) return -1;
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long tv_us(struct timeval tv) {
  return tv.tv_sec * 1000000LL + tv.tv_usec;
}

static int try_connect(const char* path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int ok = connect(fd, (struct sockaddr*)&addr, sizeof(addr)) == 0;
  close(fd);
  return ok;
}

/* The on-CPU time of every live thread of `pid` (/proc/PID/task/TID/schedstat, ns). */
static long long schedstat_ns(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  DIR* d = opendir(path);
  if (!d) return -1;
  long long sum = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char file[320];
    snprintf(file, sizeof(file), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
    FILE* f = fopen(file, "r");
    long long ns = 0;
    if (f && fscanf(f, "%lld", &ns) == 1) sum += ns;
    if (f) fclose(f);
  }
  closedir(d);
  return sum;
}

static void usage(const char* argv0) {
  fprintf(stderr, "usage: %s [--timeout-ms N] SOCKET -- COMMAND [ARGS...]\n", argv0);
  exit(2);
}

int main(int argc, char** argv) {
  int timeout_ms = 10000;
  int i = 1;
  if (i + 1 < argc && strcmp(argv[i], "--timeout-ms") == 0) {
    timeout_ms = atoi(argv[i + 1]);
    i += 2;
  }
  if (i + 2 >= argc || strcmp(argv[i + 1], "--") != 0) usage(argv[0]);
  const char* sock = argv[i];
  char** cmd = argv + i + 2;
  if (strlen(sock) >= sizeof(((struct sockaddr_un*)0)->sun_path)) {
    fprintf(stderr, "sockready: socket path too long\n");
    return 2;
  }

  char dir_buf[PATH_MAX], base_buf[PATH_MAX];
  snprintf(dir_buf, sizeof(dir_buf), "%s", sock);
  snprintf(base_buf, sizeof(base_buf), "%s", sock);
  const char* dir = dirname(dir_buf);
  const char* base = basename(base_buf);
  unlink(sock);
  int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (in < 0 || inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO) < 0) {
    fprintf(stderr, "sockready: inotify on %s: %s\n", dir, strerror(errno));
    return 2;
  }

  long long start = now_ns(CLOCK_MONOTONIC);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "sockready: fork: %s\n", strerror(errno));
    return 2;
  }
  if (pid == 0) {
    execvp(cmd[0], cmd);
    fprintf(stderr, "sockready: exec %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  clockid_t cpu_clock;
  if (clock_getcpuclockid(pid, &cpu_clock) != 0) {
    fprintf(stderr, "sockready: no CPU clock for the child\n");
    kill(pid, SIGKILL);
    return 2;
  }

  long long deadline = start + (long long)timeout_ms * 1000000LL;
  int created = 0, ready = 0, exited = 0;
  while (!ready && !exited && now_ns(CLOCK_MONOTONIC) < deadline) {
    if (!created) {
      struct pollfd p = {.fd = in, .events = POLLIN};
      if (poll(&p, 1, 10) > 0) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n = read(in, buf, sizeof(buf));
        for (char* q = buf; n > 0 && q < buf + n;) {
          struct inotify_event* e = (struct inotify_event*)q;
          if (e->len && strcmp(e->name, base) == 0) created = 1;
          q += sizeof(*e) + e->len;
        }
      }
      if (!created && access(sock, F_OK) == 0) created = 1;
      if (waitpid(pid, NULL, WNOHANG) == pid) exited = 1;
      continue;
    }
    ready = try_connect(sock) == 1;
    if (!ready) {
      struct timespec pause = {0, 20000};
      nanosleep(&pause, NULL);
    }
  }
  /* Read both clocks at once, before anything else disturbs the server. */
  long long ready_cpu = schedstat_ns(pid);
  long long ready_at = now_ns(CLOCK_MONOTONIC);
  if (ready_cpu < 0) ready_cpu = now_ns(cpu_clock);
  if (exited) {
    fprintf(stderr, "sockready: %s exited before its socket was ready\n", cmd[0]);
    return 1;
  }
  if (!ready) {
    fprintf(stderr, "sockready: %s did not accept a connection in %d ms\n", sock, timeout_ms);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 1;
  }

  kill(pid, SIGTERM);
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "sockready: wait4: %s\n", strerror(errno));
      return 2;
    }
  }
  long long end = now_ns(CLOCK_MONOTONIC);
  printf(
      "ready_wall_us %lld\nready_cpu_us %lld\nexit_wall_us %lld\nutime_us %lld\n"
      "stime_us %lld\nexit_code %d\nsignal %d\n",
      (ready_at - start) / 1000, ready_cpu / 1000, (end - start) / 1000, tv_us(ru.ru_utime),
      tv_us(ru.ru_stime), WIFEXITED(status) ? WEXITSTATUS(status) : -1,
      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return 0;
}
