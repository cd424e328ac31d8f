#include "arch/x86_64/boot/image_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

namespace ignition::x86_64::boot {

namespace {

// True when [offset, offset + len) lies inside an image of `size` bytes, without overflow.
bool in_bounds(uint64_t size, uint64_t offset, uint64_t len) {
  return offset <= size && len <= size - offset;
}

Result<void> pread_all(int fd, const std::string& name, uint64_t offset, std::span<uint8_t> out) {
  uint64_t done = 0;
  while (done < out.size()) {
    ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return err("{}: read at {:#x}: {}", name, offset + done, errno_string());
    }
    if (n == 0) return err("{}: unexpected end of file at {:#x}", name, offset + done);
    done += static_cast<uint64_t>(n);
  }
  return {};
}

}  // namespace

ImageSource ImageSource::from_bytes(std::span<const uint8_t> bytes) {
  ImageSource src;
  src.name_ = "image";
  src.size_ = bytes.size();
  src.bytes_ = bytes;
  return src;
}

Result<ImageSource> ImageSource::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return err("open {}: {}", path, errno_string());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return err("stat {}: {}", path, errno_string());
  if (!S_ISREG(st.st_mode)) return err("{}: not a regular file", path);
  ImageSource src;
  src.name_ = path;
  src.size_ = static_cast<uint64_t>(st.st_size);
  src.fd_ = std::move(fd);
  return src;
}

Result<void> ImageSource::read(uint64_t offset, std::span<uint8_t> out) const {
  if (!in_bounds(size_, offset, out.size()))
    return err("{}: {:#x} bytes at offset {:#x} are past the end ({:#x} bytes)", name_, out.size(),
               offset, size_);
  if (out.empty()) return {};
  if (!fd_.valid()) {
    std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return {};
  }
  return pread_all(fd_.get(), name_, offset, out);
}

Result<void> ImageSource::copy_to_guest(GuestMemory& mem, uint64_t gpa, uint64_t offset,
                                        uint64_t len) const {
  if (!in_bounds(size_, offset, len))
    return err("{}: {:#x} bytes at offset {:#x} are past the end ({:#x} bytes)", name_, len, offset,
               size_);
  if (gpa + len < gpa) return err("guest range {:#x}+{:#x} wraps", gpa, len);
  // The range may cross from one region into a contiguous next one; copy per region.
  uint64_t done = 0;
  while (done < len) {
    uint64_t at = gpa + done;
    const MemoryRegion* region = nullptr;
    for (const auto& r : mem.regions())
      if (at >= r.gpa && at - r.gpa < r.size) region = &r;
    if (!region) return err("guest range {:#x}+{:#x} is outside RAM", gpa, len);
    uint64_t chunk = std::min(len - done, region->size - (at - region->gpa));
    IGN_ASSIGN_OR_RETURN(std::span<uint8_t> dst, mem.slice(at, chunk));
    IGN_TRY(read(offset + done, dst));
    done += chunk;
  }
  return {};
}

}  // namespace ignition::x86_64::boot
