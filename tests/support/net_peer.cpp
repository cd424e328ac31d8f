#include "support/net_peer.hpp"

#include "support/process.hpp"

namespace ignition::test {

bool run_command(const std::vector<std::string>& argv, std::string* why) {
  ProcessOptions p;
  p.argv = argv;
  p.timeout = std::chrono::seconds(10);
  auto r = run_process(p);
  bool ok = r.ok() && r->exited_ok();
  if (!ok && why) {
    *why = argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + ": " +
           (r.ok() ? r->describe() + " " + r->output : r.error().message);
  }
  return ok;
}

}  // namespace ignition::test
