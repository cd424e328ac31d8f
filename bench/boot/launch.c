/* Boot benchmark launcher: starts one command with fork + exec from this small process and
 * reports its start/exit times (CLOCK_MONOTONIC) and rusage on fd 3 as "key value" lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Why not spawn from python directly: exec folds the old address space's peak RSS into the
 * process's ru_maxrss, and a (v)fork child of python starts from python's ~13 MiB. This
 * launcher's own peak (about 1 MiB) is the floor instead, and the benchmark prints it. */

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long tv_us(struct timeval tv) {
  return tv.tv_sec * 1000000LL + tv.tv_usec;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s COMMAND [ARGS...]   (reports on fd 3)\n", argv[0]);
    return 2;
  }
  FILE* report = fdopen(3, "w");
  if (report == NULL || fcntl(3, F_SETFD, FD_CLOEXEC) != 0) {
    fprintf(stderr, "launch: fd 3 is not open for the report: %s\n", strerror(errno));
    return 2;
  }

  long long start = now_ns();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "launch: fork: %s\n", strerror(errno));
    return 2;
  }
  if (pid == 0) {
    execvp(argv[1], argv + 1);
    fprintf(stderr, "launch: exec %s: %s\n", argv[1], strerror(errno));
    _exit(127);
  }
  /* The pid lets the caller kill a run that hangs. */
  fprintf(report, "start_ns %lld\npid %d\n", start, (int)pid);
  fflush(report);

  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "launch: wait4: %s\n", strerror(errno));
      return 2;
    }
  }
  long long end = now_ns();
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  int signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  fprintf(report,
          "exit_ns %lld\nexit_code %d\nsignal %d\nmaxrss_kib %ld\nutime_us %lld\nstime_us %lld\n"
          "minflt %ld\n",
          end, code, signal, ru.ru_maxrss, tv_us(ru.ru_utime), tv_us(ru.ru_stime), ru.ru_minflt);
  return fclose(report) == 0 ? 0 : 2;
}
