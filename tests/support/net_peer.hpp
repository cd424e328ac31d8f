// Network namespaces made for tests (optionally with a TAP: the host side of a guest's link),
// and a UDP echo peer to run inside one, so nothing touches the machine's own network. Shared
// by the TAP, virtio-net and MMDS unit tests and the QEMU and ignition device tests.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "support/process.hpp"

namespace ignition::test {

// Runs a command to completion; false (with the reason in *why) if it failed.
bool run_command(const std::vector<std::string>& argv, std::string* why = nullptr);

// A network namespace made for a test and deleted with the object (pass or fail), so TAPs,
// addresses and sockets made in it never touch the machine's own network.
class NetNamespace {
 public:
  static constexpr const char* kTap = "igntap0";

  // An empty namespace "<prefix>-<pid>" (a leftover of that name, from a killed run, is
  // replaced).
  static Result<std::unique_ptr<NetNamespace>> create(const std::string& prefix);

  // The VM tests' namespace: kTap at 10.0.2.2/24 and up, the host side of a guest's link for
  // QEMU's tap netdev or ignition. ok() says whether all of it was made.
  NetNamespace();
  ~NetNamespace();
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  bool ok() const { return created_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  // The namespace itself (/run/netns/<name>), for setns().
  int fd() const { return fd_.get(); }

  // argv, prefixed so that it runs inside the namespace.
  std::vector<std::string> exec(std::vector<std::string> argv) const;
  // Runs argv inside the namespace to completion.
  Result<ProcessResult> run(std::vector<std::string> argv) const;
  // `ip -n <name> args...`, for ASSERT_TRUE.
  ::testing::AssertionResult ip(std::vector<std::string> args) const;
  // Runs fn on a thread that joined the namespace, so TAPs and sockets it makes belong to it.
  // False, without running fn, if the thread could not join.
  bool in_ns(const std::function<void()>& fn) const;

 private:
  explicit NetNamespace(std::string name);

  std::string name_;
  std::string error_;
  UniqueFd fd_;
  bool created_ = false;
};

// On a thread inside a namespace (see in_ns): no IPv6 chatter (router solicitations, MLD)
// from the links made there after this.
void quiet_ipv6();

// The peer: echoes UDP datagrams on port 7. Before echoing the first one it sends the guest an
// ARP request (from a raw socket on the TAP) and prints the MAC in the reply, because the
// kernel alone never asks: it learns the guest's MAC from the guest's own ARP request.
inline constexpr const char* kEchoPeer = R"PY(
import socket, struct, sys
guest, peer, iface = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((peer, 7))
s.settimeout(20)
print("ready", flush=True)
def arp_probe():
    r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    r.bind((iface, 0))
    mac = r.getsockname()[4]
    req = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac +
           socket.inet_aton(peer) + b"\0" * 6 + socket.inet_aton(guest))
    r.settimeout(0.3)
    for _ in range(10):
        r.send(req)
        try:
            while True:
                f = r.recv(2048)
                if (len(f) >= 42 and f[12:14] == b"\x08\x06" and f[20:22] == b"\0\x02" and
                        f[28:32] == socket.inet_aton(guest)):
                    return ":".join("%02x" % b for b in f[22:28])
        except socket.timeout:
            pass
    return "none"
data, addr = s.recvfrom(2048)
print("arp-reply", arp_probe(), flush=True)
s.sendto(data, addr)
print("echoed", data.decode(errors="replace"), flush=True)
s.settimeout(1)
try:
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(data, addr)
except socket.timeout:
    pass
)PY";

}  // namespace ignition::test
