// The test network namespaces and run_command: iproute2 driven as a child process, and
// setns() on a short-lived thread so the test's own threads never leave the host namespace.
#include "support/net_peer.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

namespace ignition::test {
namespace {

Result<ProcessResult> run_for(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  ProcessOptions p;
  p.argv = std::move(argv);
  p.timeout = timeout;
  return run_process(p);
}

}  // namespace

bool run_command(const std::vector<std::string>& argv, std::string* why) {
  auto r = run_for(argv, std::chrono::seconds(10));
  bool ok = r.ok() && r->exited_ok();
  if (!ok && why) {
    *why = argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + ": " +
           (r.ok() ? r->describe() + " " + r->output : r.error().message);
  }
  return ok;
}

NetNamespace::NetNamespace(std::string name) : name_(std::move(name)) {
  run_command({"ip", "netns", "del", name_});  // a leftover from a killed run with this pid
  if (!run_command({"ip", "netns", "add", name_}, &error_)) return;
  fd_.reset(::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd_.valid()) {
    error_ = "open /run/netns/" + name_ + ": " + errno_string();
    return;
  }
  created_ = true;
}

NetNamespace::NetNamespace() : NetNamespace("ign-virtio-" + std::to_string(::getpid())) {
  created_ = created_ &&
             run_command(exec({"ip", "tuntap", "add", "dev", kTap, "mode", "tap"}), &error_) &&
             run_command(exec({"ip", "addr", "add", "10.0.2.2/24", "dev", kTap}), &error_) &&
             run_command(exec({"ip", "link", "set", kTap, "up"}), &error_);
}

NetNamespace::~NetNamespace() {
  run_command({"ip", "netns", "del", name_});
}

Result<std::unique_ptr<NetNamespace>> NetNamespace::create(const std::string& prefix) {
  std::unique_ptr<NetNamespace> ns(new NetNamespace(prefix + "-" + std::to_string(::getpid())));
  if (!ns->ok()) return err("network namespace {}: {}", ns->name(), ns->error());
  return ns;
}

std::vector<std::string> NetNamespace::exec(std::vector<std::string> argv) const {
  argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
  return argv;
}

Result<ProcessResult> NetNamespace::run(std::vector<std::string> argv) const {
  return run_for(exec(std::move(argv)), std::chrono::seconds(20));
}

::testing::AssertionResult NetNamespace::ip(std::vector<std::string> args) const {
  args.insert(args.begin(), {"ip", "-n", name_});
  auto r = run_for(args, std::chrono::seconds(20));
  if (r.ok() && r->exited_ok()) return ::testing::AssertionSuccess();
  std::string command;
  for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
  return ::testing::AssertionFailure()
         << command << ": " << (r.ok() ? r->describe() + " " + r->output : r.error().message);
}

bool NetNamespace::in_ns(const std::function<void()>& fn) const {
  bool joined = false;
  std::thread t([&] {
    joined = ::setns(fd_.get(), CLONE_NEWNET) == 0;
    if (joined) fn();
  });
  t.join();
  return joined;
}

void quiet_ipv6() {
  UniqueFd fd(::open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY | O_CLOEXEC));
  if (fd.valid()) (void)!::write(fd.get(), "1", 1);
}

}  // namespace ignition::test
