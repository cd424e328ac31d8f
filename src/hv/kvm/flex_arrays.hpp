// C layouts of KVM's variable-length ioctl arguments. Linux 6.1's uapi headers declare
// their trailing arrays with __DECLARE_FLEX_ARRAY, which in C++ adds a one-byte empty
// struct: sizeof() differs from C, the ioctl numbers built from it are wrong and KVM
// answers EINVAL. So ignition spells the headers and the ioctl numbers out itself.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ignition::hv::kvm {

struct CpuidHeader {  // struct kvm_cpuid2 without its entries
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {  // struct kvm_msrs without its entries
  uint32_t nmsrs;
  uint32_t pad;
};
struct MsrListHeader {  // struct kvm_msr_list without its indices
  uint32_t nmsrs;
};

// struct kvm_xsave without its `extra` tail: the legacy 4 KiB area. KVM_GET_XSAVE2 and
// KVM_SET_XSAVE use KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) bytes, which may be more.
struct XsaveHeader {
  uint32_t region[1024];
};

inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, CpuidHeader);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, XsaveHeader);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, XsaveHeader);
inline constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, XsaveHeader);

// The numbers a C compiler derives from <linux/kvm.h> (x86_64).
static_assert(kGetMsrs == 0xc008ae88 && kSetCpuid2 == 0x4008ae90 && kGetCpuid2 == 0xc008ae91);
static_assert(kGetXsave == 0x9000aea4 && kSetXsave == 0x5000aea5 && kGetXsave2 == 0x9000aecf);

// A header followed by `n` entries in one buffer, as the ioctls expect.
template <typename Header, typename Entry>
class FlexBuffer {
 public:
  explicit FlexBuffer(size_t n) : bytes_(sizeof(Header) + n * sizeof(Entry)) {}
  Header* header() { return reinterpret_cast<Header*>(bytes_.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(bytes_.data() + sizeof(Header)); }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace ignition::hv::kvm
