// In-process clone latency (bench/clone.sh): restores one snapshot RUNS times inside this one
// process with vmm::Machine::restore, runs each clone until the guest's first console line,
// then stops and destroys it. Prints one line of timings (microseconds) per restore.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/fd.hpp"
#include "vmm/machine.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using ignition::UniqueFd;
using ignition::vmm::Machine;
using ignition::vmm::MachineIo;
using ignition::vmm::SnapshotPaths;

double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

struct Sample {
  double restore_us = 0, run_to_byte_us = 0, first_byte_us = 0, first_line_us = 0;
  double teardown_us = 0;
};

// Reads the console pipe until the first complete line; false on timeout or EOF.
bool wait_first_line(int fd, Clock::time_point& first_byte, Clock::time_point& first_line) {
  bool have_byte = false;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    auto t = Clock::now();
    if (n <= 0) return false;
    if (!have_byte) {
      first_byte = t;
      have_byte = true;
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        first_line = t;
        return true;
      }
    }
  }
  return false;
}

// One clone: restore, run until its first console line, stop, destroy. restore() and run()
// are called back to back on one thread, created before the clock starts, as a server that
// clones on request would do on a worker; this thread only watches the console.
bool clone_once(const SnapshotPaths& paths, Sample& s) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("inproc: pipe2");
    return false;
  }
  UniqueFd out_r(fds[0]), out_w(fds[1]);
  MachineIo io;
  io.console_out = out_w.get();
  io.console_in = -1;

  std::mutex mu;
  std::condition_variable published;
  std::unique_ptr<Machine> machine;
  bool restore_done = false;
  Clock::time_point t0, restored, run_called;
  std::thread worker([&] {
    t0 = Clock::now();
    io.start = t0;
    auto m = Machine::restore(paths, io);
    restored = Clock::now();
    Machine* running = nullptr;
    {
      std::lock_guard lock(mu);
      if (m.ok()) {
        machine = std::move(m).value();
        running = machine.get();
      } else {
        std::fprintf(stderr, "inproc: restore failed: %s\n", m.error().message.c_str());
      }
      restore_done = true;
    }
    published.notify_all();
    if (!running) return;
    run_called = Clock::now();
    auto outcome = running->run();
    if (!outcome.ok()) std::fprintf(stderr, "inproc: run: %s\n", outcome.error().message.c_str());
  });
  Clock::time_point first_byte, first_line;
  bool got = wait_first_line(out_r.get(), first_byte, first_line);
  auto stop_at = Clock::now();
  {
    std::unique_lock lock(mu);
    published.wait(lock, [&] { return restore_done; });
  }
  if (machine) machine->stop();
  worker.join();
  bool restored_ok = machine != nullptr;
  machine.reset();
  auto gone = Clock::now();
  if (!restored_ok) return false;
  if (!got) {
    std::fprintf(stderr, "inproc: no console line from the restored guest within 10 s\n");
    return false;
  }
  s.restore_us = us_between(t0, restored);
  s.run_to_byte_us = us_between(run_called, first_byte);
  s.first_byte_us = us_between(t0, first_byte);
  s.first_line_us = us_between(t0, first_line);
  s.teardown_us = us_between(stop_at, gone);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s STATE_FILE MEMORY_FILE RUNS\n", argv[0]);
    return 2;
  }
  SnapshotPaths paths{argv[1], argv[2]};
  int runs = std::atoi(argv[3]);
  if (runs <= 0) {
    std::fprintf(stderr, "inproc: RUNS must be a positive number\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);  // the machine's info lines would be noise here
  for (int i = 0; i < runs; ++i) {
    Sample s;
    if (!clone_once(paths, s)) return 1;
    std::printf(
        "restore_us %.1f run_to_byte_us %.1f first_byte_us %.1f first_line_us %.1f "
        "teardown_us %.1f\n",
        s.restore_us, s.run_to_byte_us, s.first_byte_us, s.first_line_us, s.teardown_us);
    std::fflush(stdout);
  }
  return 0;
}
