// Reads a snapshot state file, validating all of it before handing out any section.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/fd.hpp"
#include "snapshot/codec.hpp"
#include "snapshot/crc64.hpp"
#include "snapshot/snapshot_file.hpp"

namespace ignition::snapshot {

namespace {

constexpr size_t kVersionOffset = 8;
constexpr size_t kLengthOffset = 12;
constexpr size_t kFixedHeaderSize = 20;  // magic, version, length: the same in every version
constexpr size_t kTrailerSize = 8;
// Fixed header, an empty tag, a section count of 0, the checksum.
constexpr size_t kMinFileSize = kFixedHeaderSize + 2 + 4 + kTrailerSize;
// A section's name length and payload length.
constexpr size_t kMinSectionSize = 2 + 8;

template <typename T>
T load(const std::vector<uint8_t>& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

std::string to_string(std::span<const uint8_t> bytes) {
  return {bytes.begin(), bytes.end()};
}

}  // namespace

Result<SnapshotReader> SnapshotReader::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return err("cannot open snapshot {}: {}", path, errno_string());
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return err("snapshot {}: fstat: {}", path, errno_string());
  if (S_ISDIR(st.st_mode)) return err("snapshot {}: is a directory, not a snapshot file", path);
  if (!S_ISREG(st.st_mode)) return err("snapshot {}: not a regular file", path);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > kMaxFileSize)
    return err("snapshot {}: {} bytes is larger than any ignition state file (at most {})", path,
               size, kMaxFileSize);
  std::vector<uint8_t> bytes(size);
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return err("reading snapshot {}: {}", path, errno_string());
    if (n == 0) break;  // shrank under us: the checks below see a truncated file
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  return parse(std::move(bytes), path);
}

Result<SnapshotReader> SnapshotReader::parse(std::vector<uint8_t> bytes, std::string_view name) {
  auto fail = [&](std::string what) { return Error{fmt::format("snapshot {}: {}", name, what)}; };
  const size_t size = bytes.size();
  if (size == 0) return fail("the file is empty (0 bytes): not an ignition snapshot");
  if (std::memcmp(bytes.data(), kMagic, std::min(size, sizeof(kMagic))) != 0)
    return fail("not an ignition snapshot (no IGNSNAP magic at the start)");
  if (size < kMinFileSize)
    return fail(fmt::format("truncated: {} bytes, less than the smallest snapshot ({})", size,
                            kMinFileSize));
  const auto length = load<uint64_t>(bytes, kLengthOffset);
  if (length > size)
    return fail(fmt::format("truncated: {} bytes of the {} its header records", size, length));
  if (length < size)
    return fail(
        fmt::format("{} bytes, but its header records {}: the length is corrupt or "
                    "data was appended",
                    size, length));
  const auto stored_crc = load<uint64_t>(bytes, size - kTrailerSize);
  const uint64_t crc = crc64(std::span(bytes).first(size - kTrailerSize));
  if (crc != stored_crc)
    return fail(
        fmt::format("checksum mismatch (stored {:#018x}, computed {:#018x}): the file "
                    "is corrupt",
                    stored_crc, crc));
  const auto version = load<uint32_t>(bytes, kVersionOffset);
  if (version > kFormatVersion)
    return fail(fmt::format("snapshot format version {} is newer than this ignition supports ({})",
                            version, kFormatVersion));
  if (version != kFormatVersion)
    return fail(fmt::format("unknown snapshot format version {} (this ignition reads {})", version,
                            kFormatVersion));

  SnapshotReader r;
  r.name_ = std::string(name);
  r.version_ = version;
  const auto body =
      std::span(bytes).subspan(kFixedHeaderSize, size - kFixedHeaderSize - kTrailerSize);
  Decoder d(body);
  r.tag_ = to_string(d.view(d.u16()));
  const size_t count = d.fit(d.u32(), kMinSectionSize);
  for (size_t i = 0; i < count && d.ok(); ++i) {
    std::string section = to_string(d.view(d.u16()));
    auto payload = d.bytes_view();
    if (!d.ok()) break;
    if (section.empty()) d.fail(fmt::format("section {} has an empty name", i));
    if (r.has_section(section)) d.fail(fmt::format("section '{}' appears twice", section));
    const auto offset = static_cast<size_t>(payload.data() - bytes.data());
    r.sections_.push_back({std::move(section), payload.empty() ? 0 : offset, payload.size()});
  }
  if (auto done = d.finish(); !done.ok()) return fail("bad section table: " + done.error().message);
  r.bytes_ = std::move(bytes);
  return r;
}

Result<void> SnapshotReader::expect_tag(std::string_view expected) const {
  if (tag_ != expected)
    return err("snapshot {} holds '{}' state; this host restores '{}'", name_, tag_, expected);
  return {};
}

bool SnapshotReader::has_section(std::string_view name) const {
  return std::any_of(sections_.begin(), sections_.end(),
                     [&](const Section& s) { return s.name == name; });
}

Result<std::span<const uint8_t>> SnapshotReader::section(std::string_view name) const {
  for (const auto& s : sections_) {
    if (s.name == name) return std::span(bytes_).subspan(s.offset, s.size);
  }
  return err("snapshot {} has no '{}' section", name_, name);
}

std::vector<std::string> SnapshotReader::section_names() const {
  std::vector<std::string> out;
  for (const auto& s : sections_) out.push_back(s.name);
  return out;
}

}  // namespace ignition::snapshot
