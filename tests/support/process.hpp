// Runs a child process (a VMM, QEMU, the ignition binary) with a deadline, merging its stdout
// and stderr into one captured string, and optionally answering lines it prints on its stdin.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace ignition::test {

// What to do after the child printed a line.
struct LineAction {
  std::string write;         // sent to the child's stdin
  bool close_stdin = false;  // then close it (the child sees EOF)
  bool kill = false;         // stop the child now (SIGKILL); the result says `killed`
};

// Called for every complete line of output, without the trailing "\n" or "\r\n".
using LineHandler = std::function<LineAction(std::string_view line)>;

struct ProcessOptions {
  std::vector<std::string> argv{};  // argv[0] is looked up in PATH
  // Written to stdin first. Stdin is then closed, unless on_line is set (it stays open for
  // the handler's answers until the child exits).
  std::string stdin_data{};
  LineHandler on_line{};
  std::chrono::milliseconds timeout{30000};  // then SIGKILL, and `timed_out`
};

struct ProcessResult {
  std::string output;   // stdout and stderr, interleaved as written
  bool exited = false;  // exited normally; exit_code is valid
  int exit_code = -1;
  int term_signal = 0;  // the signal that ended it, if it did not exit normally
  bool timed_out = false;
  bool killed = false;  // by a LineAction
  std::chrono::milliseconds elapsed{0};

  bool exited_ok() const { return exited && exit_code == 0; }
  // "exit 0 after 120 ms", "timed out after 30000 ms", ... for assertion messages.
  std::string describe() const;
};

// Fails only if the child could not be started (e.g. the program does not exist).
Result<ProcessResult> run_process(const ProcessOptions& options);
// run_process on another thread: the result once the process ends (an empty result if it
// could not be started). For a VMM and its peers (a uffd handler) running side by side.
std::future<ProcessResult> start_process(ProcessOptions options);

// The full path of `program` found in PATH, if it is there and executable.
std::optional<std::string> find_program(std::string_view program);

}  // namespace ignition::test
