// The devices the virtio fuzzer drives, picked by the first input byte.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "devices/virtio/block/block.hpp"
#include "devices/virtio/device.hpp"
#include "devices/virtio/rng/rng.hpp"

namespace ignition::fuzz {

// A small disk image for the block device, made once per fuzzing process.
inline const std::string& disk_path() {
  static const std::string path = [] {
    char name[] = "/tmp/ignition-fuzz-disk-XXXXXX";
    int fd = ::mkstemp(name);
    if (fd < 0 || ::ftruncate(fd, 64 * 1024) != 0) std::abort();
    ::close(fd);
    std::atexit([] { ::unlink(disk_path().c_str()); });
    return std::string(name);
  }();
  return path;
}

inline std::unique_ptr<devices::virtio::Device> make_device(uint8_t selector) {
  switch (selector % 3) {
    case 0:
      return std::make_unique<devices::virtio::Rng>();
    default: {
      config::Drive drive;
      drive.drive_id = "fuzz";
      drive.path_on_host = disk_path();
      drive.is_read_only = selector % 3 == 2;
      drive.cache_type = config::CacheType::kWriteback;
      auto block = devices::virtio::Block::create(drive);
      if (!block.ok()) return nullptr;
      return std::move(block).value();
    }
  }
}

}  // namespace ignition::fuzz
