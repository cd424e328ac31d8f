// The snapshot state file: a versioned, self-describing, checksummed container of named
// sections (vCPU state, VM state, device state...). Guest memory lives in its own file.
//
// Layout, all integers little-endian:
//    0  magic    8 bytes  "IGNSNAP\0"
//    8  version  u32      kFormatVersion of the writer
//   12  length   u64      bytes in the whole file, checksum included
//   20  tag      u16 length + bytes: whose state layout the sections hold (Hypervisor::state_tag)
//       count    u32      number of sections
//       count x  name: u16 length + bytes; payload: u64 length + bytes
//  end-8 crc     u64      CRC-64/XZ of every byte before it
// The first 20 bytes and the trailing checksum keep this form in every version, so any
// ignition tells a corrupt or truncated file from one a newer ignition wrote. Sections are
// found by name: a new optional section needs no version bump; changing what a section
// holds does.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace ignition::snapshot {

inline constexpr char kMagic[8] = {'I', 'G', 'N', 'S', 'N', 'A', 'P', '\0'};
inline constexpr uint32_t kFormatVersion = 1;
// Larger state files are refused unread: the state of a VM is kilobytes to megabytes.
inline constexpr uint64_t kMaxFileSize = 1ull << 30;

class SnapshotWriter {
 public:
  explicit SnapshotWriter(std::string tag) : tag_(std::move(tag)) {}

  // Fails on an empty, over-long (> 255 bytes) or repeated name.
  Result<void> add_section(std::string name, std::vector<uint8_t> payload);
  // The file's bytes; fails only on a tag longer than 65535 bytes.
  Result<std::vector<uint8_t>> serialize() const;
  // Writes the file atomically: a temporary file beside `path` (mode 0600: guest state is
  // private), synced, then renamed over `path`. A crash leaves the old file or the new one.
  Result<void> write(const std::string& path) const;

 private:
  struct Section {
    std::string name;
    std::vector<uint8_t> payload;
  };
  std::string tag_;
  std::vector<Section> sections_;
};

class SnapshotReader {
 public:
  // Reads and validates the whole file (magic, size, checksum, version, section table)
  // before anything is returned. Errors name `path` and say what is wrong.
  static Result<SnapshotReader> open(const std::string& path);
  // The same checks on bytes already in memory; `name` is used in errors.
  static Result<SnapshotReader> parse(std::vector<uint8_t> bytes, std::string_view name);

  uint32_t version() const { return version_; }
  std::string_view tag() const { return tag_; }
  // Fails unless the snapshot's tag is `expected` (the restoring hypervisor's state_tag()).
  Result<void> expect_tag(std::string_view expected) const;

  bool has_section(std::string_view name) const;
  // The payload of section `name` (valid while this reader lives), or an error naming it.
  Result<std::span<const uint8_t>> section(std::string_view name) const;
  std::vector<std::string> section_names() const;

 private:
  struct Section {
    std::string name;
    size_t offset;
    size_t size;
  };
  std::string name_;
  std::vector<uint8_t> bytes_;
  uint32_t version_ = 0;
  std::string tag_;
  std::vector<Section> sections_;
};

}  // namespace ignition::snapshot
