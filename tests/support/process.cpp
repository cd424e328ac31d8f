// run_process(): posix_spawn + poll. Stdin is a socketpair rather than a pipe so that writing
// to a child that has gone away fails with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE in
// the test process.
#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>
#include <utility>

#include "base/fd.hpp"

namespace ignition::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Owns a spawned child: kills and reaps it if it is still running when destroyed.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      kill_now();
      wait_blocking();
    }
  }

  void kill_now() { ::kill(pid_, SIGKILL); }

  // True once reaped; fills exit status fields.
  bool try_wait(ProcessResult& result) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r != pid_) return false;
    record(status, result);
    return true;
  }

  void wait(ProcessResult& result) {
    int status = wait_blocking();
    record(status, result);
  }

 private:
  int wait_blocking() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

  void record(int status, ProcessResult& result) {
    pid_ = -1;
    if (WIFEXITED(status)) {
      result.exited = true;
      result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      result.term_signal = WTERMSIG(status);
    }
  }

  pid_t pid_;
};

// posix_spawn's file actions and attributes, destroyed on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// Splits output into lines as it arrives and hands complete ones to the handler.
class LineSplitter {
 public:
  explicit LineSplitter(const LineHandler& handler) : handler_(handler) {}

  // Returns the handlers' combined actions for the lines completed by `chunk`.
  LineAction feed(std::string_view chunk) {
    LineAction all;
    pending_.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (handler_) merge(all, handler_(line));
    }
    pending_.erase(0, start);
    return all;
  }

 private:
  static void merge(LineAction& into, LineAction from) {
    into.write += from.write;
    into.close_stdin = into.close_stdin || from.close_stdin;
    into.kill = into.kill || from.kill;
  }

  const LineHandler& handler_;
  std::string pending_;
};

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

std::string ProcessResult::describe() const {
  std::string how;
  if (timed_out) {
    how = "timed out";
  } else if (killed) {
    how = "killed on request";
  } else if (exited) {
    how = "exit " + std::to_string(exit_code);
  } else {
    how = "signal " + std::to_string(term_signal);
  }
  return how + " after " + std::to_string(elapsed.count()) + " ms";
}

std::optional<std::string> find_program(std::string_view program) {
  if (program.find('/') != std::string_view::npos) {
    std::string path(program);
    if (::access(path.c_str(), X_OK) == 0) return path;
    return std::nullopt;
  }
  const char* env = std::getenv("PATH");
  std::string_view dirs = env ? env : "/usr/bin:/bin";
  while (!dirs.empty()) {
    size_t colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::string path = std::string(dir.empty() ? "." : dir) + "/" + std::string(program);
    if (::access(path.c_str(), X_OK) == 0) return path;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

Result<ProcessResult> run_process(const ProcessOptions& options) {
  if (options.argv.empty()) return err("run_process: empty argv");

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return err("socketpair: {}", errno_string());
  }
  UniqueFd stdin_parent(sv[0]);
  UniqueFd stdin_child(sv[1]);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return err("pipe2: {}", errno_string());
  UniqueFd out_read(out[0]);
  UniqueFd out_write(out[1]);

  SpawnSetup setup;
  posix_spawn_file_actions_adddup2(&setup.actions, stdin_child.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, out_write.get(), STDERR_FILENO);
  // The child starts with no blocked signals and default dispositions, whatever the test
  // process (or gtest) changed.
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  auto start = Clock::now();
  auto deadline = start + options.timeout;
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0], &setup.actions, &setup.attr, argv.data(), environ);
  if (rc != 0) return err("starting {}: {}", options.argv[0], errno_string(rc));
  Child child(pid);
  stdin_child.reset();
  out_write.reset();

  ProcessResult result;
  std::string to_write = options.stdin_data;
  bool close_after_write = !options.on_line;
  LineSplitter lines(options.on_line);

  // Pump output (and pending stdin) until the child closes its output or time runs out.
  while (out_read.valid()) {
    if (stdin_parent.valid() && to_write.empty() && close_after_write) stdin_parent.reset();
    pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {stdin_parent.get(), POLLOUT, 0}};
    nfds_t nfds = (stdin_parent.valid() && !to_write.empty()) ? 2 : 1;
    int left = remaining_ms(deadline);
    if (left == 0) {
      result.timed_out = true;
      break;
    }
    int n = ::poll(fds, nfds, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return err("poll: {}", errno_string());
    if (nfds == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w =
          ::send(stdin_parent.get(), to_write.data(), to_write.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        to_write.erase(0, static_cast<size_t>(w));
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        to_write.clear();  // the child closed its stdin: nobody will read the rest
        stdin_parent.reset();
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      ssize_t r = ::read(out_read.get(), buf, sizeof(buf));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        out_read.reset();
        break;
      }
      std::string_view chunk(buf, static_cast<size_t>(r));
      result.output.append(chunk);
      LineAction action = lines.feed(chunk);
      to_write += action.write;
      if (action.close_stdin) close_after_write = true;
      if (action.kill) {
        result.killed = true;
        break;
      }
    }
  }

  if (result.killed || result.timed_out) {
    child.kill_now();
    child.wait(result);
  } else {
    // Output closed: the child is exiting (or closed its stdout and carries on).
    while (!child.try_wait(result)) {
      if (remaining_ms(deadline) == 0) {
        result.timed_out = true;
        child.kill_now();
        child.wait(result);
        break;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return result;
}

std::future<ProcessResult> start_process(ProcessOptions options) {
  return std::async(std::launch::async, [options = std::move(options)] {
    auto r = run_process(options);
    return r.ok() ? *r : ProcessResult{};
  });
}

}  // namespace ignition::test
