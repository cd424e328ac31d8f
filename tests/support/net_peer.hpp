// A network namespace with a TAP device, and a UDP echo peer to run inside it: the host
// side of a guest's link for the virtio-net tests, so nothing touches the machine's own
// network. Shared by the QEMU and ignition device tests.
#pragma once

#include <unistd.h>
#include <string>

#include <vector>

namespace ignition::test {

// Runs a command to completion; false (with the reason in *why) if it failed.
bool run_command(const std::vector<std::string>& argv, std::string* why = nullptr);

// A network namespace with a TAP device for QEMU's tap netdev: the host side of the guest's
// link, so nothing leaks into the machine's own network. Removed with the object.
class NetNamespace {
 public:
  static constexpr const char* kTap = "igntap0";

  NetNamespace() : name_("ign-virtio-" + std::to_string(::getpid())) {
    run_command({"ip", "netns", "del", name_});  // a leftover from a killed run
    if (!run_command({"ip", "netns", "add", name_}, &error_)) return;
    created_ = run_command(exec({"ip", "tuntap", "add", "dev", kTap, "mode", "tap"}), &error_) &&
               run_command(exec({"ip", "addr", "add", "10.0.2.2/24", "dev", kTap}), &error_) &&
               run_command(exec({"ip", "link", "set", kTap, "up"}), &error_);
  }
  ~NetNamespace() { run_command({"ip", "netns", "del", name_}); }
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  bool ok() const { return created_; }
  const std::string& error() const { return error_; }
  // argv run inside the namespace.
  std::vector<std::string> exec(std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
    return argv;
  }

 private:
  std::string name_;
  std::string error_;
  bool created_ = false;
};

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
