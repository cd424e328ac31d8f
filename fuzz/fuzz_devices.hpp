// The devices the virtio fuzzer drives, picked by the first input byte.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "devices/virtio/block/block.hpp"
#include "devices/virtio/device.hpp"
#include "devices/virtio/pmem/pmem.hpp"
#include "devices/virtio/rng/rng.hpp"

namespace ignition::fuzz {

// A 64 KiB scratch file, made once per fuzzing process and removed at exit: the block
// device's disk, the pmem device's backing file.
inline std::string scratch_file(const char* pattern) {
  std::string name = pattern;
  int fd = ::mkstemp(name.data());
  if (fd < 0 || ::ftruncate(fd, 64 * 1024) != 0) std::abort();
  ::close(fd);
  return name;
}
inline const std::string& disk_path() {
  static const std::string path = scratch_file("/tmp/ignition-fuzz-disk-XXXXXX");
  static const bool cleanup = (std::atexit([] { ::unlink(disk_path().c_str()); }), true);
  (void)cleanup;
  return path;
}
inline const std::string& pmem_path() {
  static const std::string path = scratch_file("/tmp/ignition-fuzz-pmem-XXXXXX");
  static const bool cleanup = (std::atexit([] { ::unlink(pmem_path().c_str()); }), true);
  (void)cleanup;
  return path;
}

inline std::unique_ptr<devices::virtio::Device> make_device(uint8_t selector) {
  switch (selector % 4) {
    case 0:
      return std::make_unique<devices::virtio::Rng>();
    case 3: {
      config::Pmem pmem;
      pmem.id = "fuzz";
      pmem.path_on_host = pmem_path();
      // The guest-physical address only shows in config space: the fuzzer's RAM is elsewhere.
      auto device = devices::virtio::Pmem::create(pmem, devices::virtio::Pmem::kAlignment * 512);
      if (!device.ok()) return nullptr;
      return std::move(device).value();
    }
    default: {
      config::Drive drive;
      drive.drive_id = "fuzz";
      drive.path_on_host = disk_path();
      drive.is_read_only = selector % 4 == 2;
      drive.cache_type = config::CacheType::kWriteback;
      auto block = devices::virtio::Block::create(drive);
      if (!block.ok()) return nullptr;
      return std::move(block).value();
    }
  }
}

}  // namespace ignition::fuzz
