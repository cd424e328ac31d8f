// Constants and layouts of the virtio-net specification (virtio 1.2, section 5.1) that the
// device and its tests share.
#pragma once

#include <cstdint>

namespace ignition::devices::virtio::net {

// Feature bits (spec 5.1.3).
inline constexpr uint64_t kFeatureCsum = 1ULL << 0;       // device takes partial csums
inline constexpr uint64_t kFeatureGuestCsum = 1ULL << 1;  // driver takes partial csums
inline constexpr uint64_t kFeatureMtu = 1ULL << 3;        // config space has an MTU
inline constexpr uint64_t kFeatureMac = 1ULL << 5;        // config space has a MAC
inline constexpr uint64_t kFeatureGuestTso4 = 1ULL << 7;  // driver takes TSOv4
inline constexpr uint64_t kFeatureGuestTso6 = 1ULL << 8;  // driver takes TSOv6
inline constexpr uint64_t kFeatureGuestEcn = 1ULL << 9;   // driver takes TSO with ECN
inline constexpr uint64_t kFeatureGuestUfo = 1ULL << 10;  // driver takes UFO
inline constexpr uint64_t kFeatureHostTso4 = 1ULL << 11;  // device takes TSOv4
inline constexpr uint64_t kFeatureHostTso6 = 1ULL << 12;  // device takes TSOv6
inline constexpr uint64_t kFeatureHostUfo = 1ULL << 14;   // device takes UFO
inline constexpr uint64_t kFeatureMrgRxbuf = 1ULL << 15;  // rx frames may span chains
inline constexpr uint64_t kFeatureStatus = 1ULL << 16;    // config space has a link status

// The header in front of every frame, both ways (virtio_net_hdr_v1, little endian).
struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;  // rx only: how many chains this frame spans
};
static_assert(sizeof(VirtioNetHdr) == 12);
inline constexpr uint32_t kHdrSize = sizeof(VirtioNetHdr);
inline constexpr uint32_t kNumBuffersOffset = 10;

inline constexpr uint8_t kHdrFlagNeedsCsum = 1;
inline constexpr uint8_t kGsoNone = 0;
inline constexpr uint8_t kGsoTcpv4 = 1;
inline constexpr uint8_t kGsoUdp = 3;
inline constexpr uint8_t kGsoTcpv6 = 4;

// Device configuration space (virtio_net_config), the fields up to the MTU.
struct [[gnu::packed]] ConfigSpace {
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
  uint16_t mtu;
};
static_assert(sizeof(ConfigSpace) == 12);

// The largest frame handled either way, virtio header included: a 64 KiB GSO packet with
// its Ethernet and VLAN headers (Firecracker's limit).
inline constexpr uint32_t kMaxFrameSize = 65562;

}  // namespace ignition::devices::virtio::net
