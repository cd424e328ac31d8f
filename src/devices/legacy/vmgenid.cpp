// VMGenID: a fresh generation ID from the kernel's CSPRNG, written into guest memory.
#include "devices/legacy/vmgenid.hpp"

#include <sys/random.h>

#include <cerrno>

#include "base/fd.hpp"

namespace ignition::devices {

namespace {

Result<VmGenId::Id> random_id() {
  VmGenId::Id id{};
  size_t filled = 0;
  while (filled < id.size()) {
    // Requests of at most 256 bytes are never cut short once the pool is ready; the loop
    // only covers EINTR while it is still initialising.
    ssize_t n = ::getrandom(id.data() + filled, id.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err("VMGenID: getrandom: {}", errno_string());
    filled += static_cast<size_t>(n);
  }
  return id;
}

}  // namespace

Result<VmGenId> VmGenId::create(uint64_t gpa, IrqLine irq) {
  if (gpa % 8 != 0) return err("VMGenID: address {:#x} is not 8-byte aligned", gpa);
  return VmGenId(gpa, std::move(irq));
}

Result<void> VmGenId::regenerate(GuestMemory& mem) {
  const Id zero{};
  Id next{};
  // A repeat or all zeros happens with probability 2^-127; retrying keeps the promise
  // absolute (a guest treats an unchanged ID as "not cloned").
  do {
    IGN_ASSIGN_OR_RETURN(next, random_id());
  } while (next == zero || next == id_);
  if (auto r = mem.write(gpa_, next); !r.ok()) return context(r.error(), "writing the VMGenID");
  id_ = next;
  return {};
}

}  // namespace ignition::devices
