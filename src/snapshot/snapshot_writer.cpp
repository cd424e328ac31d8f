// Builds a snapshot state file and writes it atomically (temporary file, fsync, rename).
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "base/fd.hpp"
#include "snapshot/codec.hpp"
#include "snapshot/crc64.hpp"
#include "snapshot/snapshot_file.hpp"

namespace ignition::snapshot {

namespace {

constexpr size_t kMaxNameSize = 255;
constexpr size_t kLengthOffset = 12;

// Removes the temporary file unless the rename made it the snapshot.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  void keep() { path_.clear(); }

 private:
  std::string path_;
};

Result<void> write_all(int fd, std::span<const uint8_t> data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return err("writing {}: {}", path, errno_string());
    data = data.subspan(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

Result<void> SnapshotWriter::add_section(std::string name, std::vector<uint8_t> payload) {
  if (name.empty() || name.size() > kMaxNameSize)
    return err("snapshot section name '{}' must be 1 to {} bytes", name, kMaxNameSize);
  for (const auto& s : sections_) {
    if (s.name == name) return err("snapshot section '{}' added twice", name);
  }
  sections_.push_back({std::move(name), std::move(payload)});
  return {};
}

Result<std::vector<uint8_t>> SnapshotWriter::serialize() const {
  if (tag_.size() > UINT16_MAX) return err("snapshot tag is {} bytes, too long", tag_.size());
  Encoder e;
  e.raw({reinterpret_cast<const uint8_t*>(kMagic), sizeof(kMagic)});
  e.u32(kFormatVersion);
  e.u64(0);  // the length, known at the end
  e.u16(static_cast<uint16_t>(tag_.size()));
  e.raw({reinterpret_cast<const uint8_t*>(tag_.data()), tag_.size()});
  e.u32(static_cast<uint32_t>(sections_.size()));
  for (const auto& s : sections_) {
    e.u16(static_cast<uint16_t>(s.name.size()));
    e.raw({reinterpret_cast<const uint8_t*>(s.name.data()), s.name.size()});
    e.bytes(s.payload);
  }
  std::vector<uint8_t> out = std::move(e).take();
  const uint64_t length = out.size() + sizeof(uint64_t);
  std::memcpy(out.data() + kLengthOffset, &length, sizeof(length));
  const uint64_t crc = crc64(out);
  const auto* crc_bytes = reinterpret_cast<const uint8_t*>(&crc);
  out.insert(out.end(), crc_bytes, crc_bytes + sizeof(crc));
  return out;
}

Result<void> SnapshotWriter::write(const std::string& path) const {
  IGN_ASSIGN_OR_RETURN(auto bytes, serialize());
  std::string pattern = path + ".tmp-XXXXXX";
  UniqueFd fd(::mkostemp(pattern.data(), O_CLOEXEC));
  if (!fd.valid()) return err("creating a temporary file beside {}: {}", path, errno_string());
  TempFile temp(pattern);
  IGN_TRY(write_all(fd.get(), bytes, temp.path()));
  if (::fsync(fd.get()) < 0) return err("fsync {}: {}", temp.path(), errno_string());
  fd.reset();
  if (::rename(temp.path().c_str(), path.c_str()) < 0)
    return err("renaming {} to {}: {}", temp.path(), path, errno_string());
  temp.keep();
  // The rename itself is durable once the directory is synced.
  std::string dir = std::filesystem::path(path).parent_path().string();
  UniqueFd dir_fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid() || ::fsync(dir_fd.get()) < 0)
    return err("syncing directory of {}: {}", path, errno_string());
  return {};
}

}  // namespace ignition::snapshot
