// Constants of the virtio 1.x specification that the transport and devices share.
#pragma once

#include <cstdint>

namespace ignition::devices::virtio {

// Device types (virtio spec 5).
enum class DeviceType : uint32_t {
  Net = 1,
  Block = 2,
  Rng = 4,
  Balloon = 5,
  Vsock = 19,
  Pmem = 27,
};

// Device status bits (virtio spec 2.1).
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 0x40;
inline constexpr uint32_t kStatusFailed = 0x80;

// Feature bits every device may offer (virtio spec 6).
inline constexpr uint64_t kFeatureRingIndirectDesc = 1ULL << 28;
inline constexpr uint64_t kFeatureRingEventIdx = 1ULL << 29;
inline constexpr uint64_t kFeatureVersion1 = 1ULL << 32;

// Interrupt status bits (virtio-mmio InterruptStatus).
inline constexpr uint32_t kInterruptUsedRing = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

}  // namespace ignition::devices::virtio
