#include "cli/store_commands.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/exit_status.hpp"

namespace ignition::cli {

namespace {

// The child side of a clone: console and logs to the instance's console.log, then a fresh
// ignition for the instance. exec, not just fork: each clone is a clean process with its
// own KVM VM, threads and (later) jail, and a crash in one cannot touch another.
[[noreturn]] void exec_instance(const std::string& store_root, const vmm::InstancePlan& plan) {
  int log = ::open((plan.dir + "/console.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int null = ::open("/dev/null", O_RDONLY);
  if (log < 0 || null < 0) ::_exit(127);
  ::dup2(null, STDIN_FILENO);
  ::dup2(log, STDOUT_FILENO);
  ::dup2(log, STDERR_FILENO);
  std::vector<std::string> args = {"ignition", "--store", store_root, "instance", plan.id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  ::_exit(127);
}

}  // namespace

int clone_command(const vmm::SnapshotStore& store, const std::string& base, uint32_t count,
                  bool detach, const std::optional<std::string>& huge_pages) {
  if (count == 0) return fail("clone: -n must be at least 1");
  auto started = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, pid_t>> children;
  for (uint32_t i = 0; i < count; ++i) {
    auto plan = store.create_instance(base, i, huge_pages);
    if (!plan.ok()) {
      std::fprintf(stderr, "ignition: clone %u of %s: %s\n", i, base.c_str(),
                   plan.error().message.c_str());
      break;
    }
    pid_t pid = ::fork();
    if (pid < 0) return fail(fmt::format("clone: fork: {}", errno_string()));
    if (pid == 0) exec_instance(store.root(), *plan);
    if (auto recorded = store.set_instance_pid(plan->id, pid); !recorded.ok())
      std::fprintf(stderr, "ignition: %s\n", recorded.error().message.c_str());
    std::printf("%s\tpid %d\t%s/console.log\n", plan->id.c_str(), pid, plan->dir.c_str());
    children.emplace_back(plan->id, pid);
  }
  auto spawned = std::chrono::steady_clock::now() - started;
  std::printf("started %zu clone(s) of %s in %.1f ms\n", children.size(), base.c_str(),
              std::chrono::duration<double, std::milli>(spawned).count());
  std::fflush(stdout);
  if (children.size() != count) return kExitError;
  if (detach) return 0;
  int worst = 0;
  for (const auto& [id, pid] : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::printf("%s\texit %d\n", id.c_str(), code);
    worst = std::max(worst, code);
  }
  return worst;
}

int store_list_command(const vmm::SnapshotStore& store) {
  auto snapshots = store.list_snapshots();
  if (!snapshots.ok()) return fail(snapshots.error().message);
  std::printf("%-24s %-5s %-24s %-21s %10s\n", "SNAPSHOT", "KIND", "PARENT", "CREATED", "DISK KiB");
  for (const auto& s : *snapshots)
    std::printf("%-24s %-5s %-24s %-21s %10lu%s\n", s.name.c_str(), s.kind.c_str(),
                s.parent.value_or("-").c_str(), s.created.c_str(),
                static_cast<unsigned long>(s.disk_bytes / 1024),
                s.complete ? "" : "  (incomplete)");
  auto instances = store.list_instances();
  if (!instances.ok()) return fail(instances.error().message);
  std::printf("\n%-28s %-24s %-21s %8s %s\n", "INSTANCE", "BASE", "CREATED", "PID", "STATE");
  for (const auto& i : *instances)
    std::printf("%-28s %-24s %-21s %8d %s\n", i.id.c_str(), i.base.c_str(), i.created.c_str(),
                i.pid, i.running ? "running" : "exited");
  return 0;
}

int store_gc_command(const vmm::SnapshotStore& store) {
  auto report = store.gc();
  if (!report.ok()) return fail(report.error().message);
  for (const auto& id : report->removed_instances) std::printf("removed instance %s\n", id.c_str());
  for (const auto& name : report->removed_snapshots)
    std::printf("removed incomplete snapshot %s\n", name.c_str());
  std::printf("%zu instance(s), %zu snapshot(s) removed\n", report->removed_instances.size(),
              report->removed_snapshots.size());
  return 0;
}

int store_flatten_command(const vmm::SnapshotStore& store, const std::string& name) {
  auto flattened = store.flatten(name);
  if (!flattened.ok()) return fail(flattened.error().message);
  std::printf("%s is now a full snapshot\n", name.c_str());
  return 0;
}

}  // namespace ignition::cli
