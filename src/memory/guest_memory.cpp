#include "memory/guest_memory.hpp"

#include <fcntl.h>
#include <linux/memfd.h>
#include <linux/mman.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string_view>

namespace ignition {

namespace {

constexpr uint64_t kPageSize = 4096;

// The bytes `ranges` need, once each is checked to be page-aligned and non-empty.
Result<uint64_t> total_size_of(const std::vector<GuestMemory::Range>& ranges) {
  if (ranges.empty()) return err("guest memory: no regions");
  uint64_t total = 0;
  for (const auto& r : ranges) {
    if (r.size == 0 || r.size % kPageSize != 0 || r.gpa % kPageSize != 0)
      return err("guest memory: region {:#x}+{:#x} is not page-aligned", r.gpa, r.size);
    if (total + r.size < total) return err("guest memory: size overflows");
    total += r.size;
  }
  return total;
}

Result<void> check_huge_ranges(const std::vector<GuestMemory::Range>& ranges) {
  for (const auto& r : ranges)
    if (r.size % GuestMemory::kHugePageSize != 0 || r.gpa % GuestMemory::kHugePageSize != 0)
      return err("huge_pages 2M: guest memory region {:#x}+{:#x} is not 2 MiB aligned", r.gpa,
                 r.size);
  return {};
}

// A count from /proc/meminfo ("HugePages_Free:"), or "?" when it cannot be read.
std::string meminfo_value(std::string_view key) {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) != 0) continue;
    auto first = line.find_first_not_of(' ', key.size());
    return first == std::string::npos ? "?" : line.substr(first);
  }
  return "?";
}

// hugetlbfs pages are reserved when mapped: a pool too small fails here with the counts.
Error huge_pool_error(uint64_t total, const std::string& why) {
  return err(
      "huge_pages 2M: cannot reserve {} huge pages for {} MiB of guest memory ({}); the host's "
      "pool has {} free of {} (/proc/sys/vm/nr_hugepages)",
      total / GuestMemory::kHugePageSize, total >> 20, why, meminfo_value("HugePages_Free:"),
      meminfo_value("HugePages_Total:"));
}

}  // namespace

Result<GuestMemory> GuestMemory::create_anonymous(const std::vector<Range>& ranges, Pages pages) {
  IGN_ASSIGN_OR_RETURN(uint64_t total, total_size_of(ranges));
  if (pages == Pages::kHuge2M) return create_huge(ranges, total);
  UniqueFd fd(::memfd_create("ignition-guest-ram", MFD_CLOEXEC));
  if (!fd.valid()) return err("memfd_create: {}", errno_string());
  if (::ftruncate(fd.get(), static_cast<off_t>(total)) != 0)
    return err("guest memory: cannot size {} MiB: {}", total >> 20, errno_string());
  IGN_ASSIGN_OR_RETURN(GuestMemory memory, map(std::move(fd), ranges, total, false));
  if (pages == Pages::kTransparent) IGN_TRY(memory.advise_huge_pages());
  return memory;
}

// hugetlbfs pages are reserved at mmap (no MAP_NORESERVE): a pool too small fails here with
// a clear message, not with SIGBUS when the guest first touches a page the pool lacks.
Result<GuestMemory> GuestMemory::create_huge(const std::vector<Range>& ranges, uint64_t total) {
  IGN_TRY(check_huge_ranges(ranges));
  UniqueFd fd(::memfd_create("ignition-guest-ram", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB));
  if (!fd.valid()) return err("huge_pages 2M: memfd_create(MFD_HUGETLB): {}", errno_string());
  if (::ftruncate(fd.get(), static_cast<off_t>(total)) != 0)
    return err("huge_pages 2M: cannot size {} MiB: {}", total >> 20, errno_string());
  auto memory = map(std::move(fd), ranges, total, false, /*reserve=*/true);
  if (!memory.ok()) return huge_pool_error(total, memory.error().message);
  memory->backing_page_size_ = kHugePageSize;
  return memory;
}

Result<void> GuestMemory::advise_huge_pages() {
  if (::madvise(base_, total_size_, MADV_HUGEPAGE) != 0)
    return err("huge_pages Transparent: madvise(MADV_HUGEPAGE): {}", errno_string());
  return {};
}

Result<GuestMemory> GuestMemory::map_file_private(const std::string& path,
                                                  const std::vector<Range>& ranges) {
  IGN_ASSIGN_OR_RETURN(uint64_t total, total_size_of(ranges));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return err("memory file {}: {}", path, errno_string());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return err("memory file {}: {}", path, errno_string());
  if (!S_ISREG(st.st_mode)) return err("memory file {} is not a regular file", path);
  if (static_cast<uint64_t>(st.st_size) != total)
    return err("memory file {} has {} bytes, the snapshot's RAM is {}", path, st.st_size, total);
  return map(std::move(fd), ranges, total, true);
}

Result<GuestMemory> GuestMemory::map(UniqueFd fd, const std::vector<Range>& ranges, uint64_t total,
                                     bool copy_on_write, bool reserve) {
  // MAP_NORESERVE: RAM is committed page by page as the guest touches it. MAP_PRIVATE
  // on a snapshot file: reads share the file's page cache with every other clone.
  int flags = (copy_on_write ? MAP_PRIVATE : MAP_SHARED) | (reserve ? 0 : MAP_NORESERVE);
  void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, flags, fd.get(), 0);
  if (base == MAP_FAILED)
    return err("guest memory: cannot map {} MiB: {}", total >> 20, errno_string());
  return adopt(std::move(fd), static_cast<uint8_t*>(base), total, ranges, copy_on_write);
}

Result<GuestMemory> GuestMemory::create_private_anonymous(const std::vector<Range>& ranges,
                                                          Pages pages) {
  IGN_ASSIGN_OR_RETURN(uint64_t total, total_size_of(ranges));
  if (pages == Pages::kHuge2M) {
    IGN_TRY(check_huge_ranges(ranges));
    void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
    if (base == MAP_FAILED) return huge_pool_error(total, errno_string());
    IGN_ASSIGN_OR_RETURN(auto memory,
                         adopt(UniqueFd(), static_cast<uint8_t*>(base), total, ranges, true));
    memory.backing_page_size_ = kHugePageSize;
    return memory;
  }
  void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED)
    return err("guest memory: cannot map {} MiB: {}", total >> 20, errno_string());
  return adopt(UniqueFd(), static_cast<uint8_t*>(base), total, ranges, true);
}

// Takes ownership of the mapping `base` (unmapped again on error) and lays the regions out
// on it back to back, in the order given.
Result<GuestMemory> GuestMemory::adopt(UniqueFd fd, uint8_t* base, uint64_t total,
                                       const std::vector<Range>& ranges, bool copy_on_write) {
  std::vector<MemoryRegion> regions;
  uint64_t offset = 0;
  for (const auto& r : ranges) {
    regions.push_back({r.gpa, r.size, offset, base + offset});
    offset += r.size;
  }
  std::sort(regions.begin(), regions.end(),
            [](const MemoryRegion& a, const MemoryRegion& b) { return a.gpa < b.gpa; });
  for (size_t i = 1; i < regions.size(); ++i) {
    if (regions[i - 1].gpa + regions[i - 1].size > regions[i].gpa) {
      ::munmap(base, total);
      return err("guest memory: regions overlap at {:#x}", regions[i].gpa);
    }
  }
  return GuestMemory(std::move(fd), base, total, std::move(regions), copy_on_write);
}

void GuestMemory::hold(UniqueFd fd) {
  held_.push_back(std::move(fd));
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : fd_(std::move(other.fd_)),
      base_(std::exchange(other.base_, nullptr)),
      total_size_(std::exchange(other.total_size_, 0)),
      regions_(std::move(other.regions_)),
      copy_on_write_(other.copy_on_write_),
      backing_page_size_(other.backing_page_size_),
      written_(std::move(other.written_)),
      held_(std::move(other.held_)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
  if (this != &other) {
    if (base_) ::munmap(base_, total_size_);
    fd_ = std::move(other.fd_);
    base_ = std::exchange(other.base_, nullptr);
    total_size_ = std::exchange(other.total_size_, 0);
    regions_ = std::move(other.regions_);
    copy_on_write_ = other.copy_on_write_;
    backing_page_size_ = other.backing_page_size_;
    written_ = std::move(other.written_);
    held_ = std::move(other.held_);
  }
  return *this;
}

GuestMemory::~GuestMemory() {
  if (base_) ::munmap(base_, total_size_);
}

uint64_t GuestMemory::end_gpa() const {
  return regions_.empty() ? 0 : regions_.back().gpa + regions_.back().size;
}

const MemoryRegion* GuestMemory::find(uint64_t gpa) const {
  for (const auto& r : regions_)
    if (gpa >= r.gpa && gpa - r.gpa < r.size) return &r;
  return nullptr;
}

bool GuestMemory::contains(uint64_t gpa, uint64_t len) const {
  const MemoryRegion* r = find(gpa);
  return r && len <= r->size - (gpa - r->gpa);
}

Result<std::span<uint8_t>> GuestMemory::slice(uint64_t gpa, uint64_t len) {
  if (!contains(gpa, len)) return err("guest address {:#x}+{:#x} is outside RAM", gpa, len);
  const MemoryRegion* r = find(gpa);
  mark_written(r->host + (gpa - r->gpa), len);
  return std::span<uint8_t>(r->host + (gpa - r->gpa), len);
}

Result<std::span<const uint8_t>> GuestMemory::slice(uint64_t gpa, uint64_t len) const {
  if (!contains(gpa, len)) return err("guest address {:#x}+{:#x} is outside RAM", gpa, len);
  const MemoryRegion* r = find(gpa);
  return std::span<const uint8_t>(r->host + (gpa - r->gpa), len);
}

// Walks [gpa, gpa+len) region by region, calling fn(host, offset_in_request, chunk).
template <typename Fn>
static Result<void> for_each_chunk(const GuestMemory& mem, uint64_t gpa, uint64_t len, Fn fn) {
  if (gpa + len < gpa) return err("guest address {:#x}+{:#x} wraps", gpa, len);
  uint64_t done = 0;
  while (done < len) {
    uint64_t at = gpa + done;
    const MemoryRegion* region = nullptr;
    for (const auto& r : mem.regions())
      if (at >= r.gpa && at - r.gpa < r.size) region = &r;
    if (!region) return err("guest address {:#x}+{:#x} is outside RAM", gpa, len);
    uint64_t chunk = std::min(len - done, region->size - (at - region->gpa));
    fn(region->host + (at - region->gpa), done, chunk);
    done += chunk;
  }
  return {};
}

Result<void> GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  return for_each_chunk(*this, gpa, out.size(), [&](uint8_t* host, uint64_t off, uint64_t n) {
    std::memcpy(out.data() + off, host, n);
  });
}

Result<void> GuestMemory::write(uint64_t gpa, std::span<const uint8_t> in) {
  return for_each_chunk(*this, gpa, in.size(), [&](uint8_t* host, uint64_t off, uint64_t n) {
    std::memcpy(host, in.data() + off, n);
    mark_written(host, n);
  });
}

Result<void> GuestMemory::fill(uint64_t gpa, uint8_t value, uint64_t len) {
  return for_each_chunk(*this, gpa, len, [&](uint8_t* host, uint64_t, uint64_t n) {
    std::memset(host, value, n);
    mark_written(host, n);
  });
}

Result<void> GuestMemory::save(const std::string& path) const {
  std::string tmp = path + ".tmp";
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out.valid()) return err("memory file {}: {}", tmp, errno_string());
  if (::ftruncate(out.get(), static_cast<off_t>(total_size_)) != 0)
    return err("memory file {}: {}", tmp, errno_string());
  auto written = save_to(out.get());
  if (!written.ok()) return context(written.error(), "memory file " + tmp);
  if (::fsync(out.get()) != 0) return err("memory file {}: {}", tmp, errno_string());
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return err("memory file {}: {}", path, errno_string());
  return {};
}

Result<void> GuestMemory::save_to(int out) const {
  static const uint8_t zeros[kPageSize] = {};
  auto write_run = [&](const MemoryRegion& r, uint64_t from, uint64_t to) -> Result<void> {
    for (uint64_t at = from; at < to;) {
      ssize_t n = ::pwrite(out, r.host + at, to - at, static_cast<off_t>(r.file_offset + at));
      if (n <= 0) return err("{}", errno_string());
      at += static_cast<uint64_t>(n);
    }
    return {};
  };
  for (const auto& r : regions_) {
    for (uint64_t off = 0; off < r.size;) {
      // In a memfd, skip what was never allocated without touching it (reading a hole
      // through the mapping would allocate it). Private memory is read whole: a page not
      // yet faulted in holds the snapshot's data (from its file, or its uffd handler).
      uint64_t extent_end = r.size;
      if (!copy_on_write_) {
        off_t data = ::lseek(fd_.get(), static_cast<off_t>(r.file_offset + off), SEEK_DATA);
        if (data < 0 || static_cast<uint64_t>(data) >= r.file_offset + r.size) break;
        off = static_cast<uint64_t>(data) - r.file_offset;
        off_t hole = ::lseek(fd_.get(), data, SEEK_HOLE);
        extent_end = std::min<uint64_t>(r.size, static_cast<uint64_t>(hole) - r.file_offset);
      }
      // Runs of non-zero pages are written in one call; zero pages stay holes.
      while (off < extent_end) {
        uint64_t start = off;
        while (off < extent_end && std::memcmp(r.host + off, zeros, kPageSize) != 0)
          off += kPageSize;
        IGN_TRY(write_run(r, start, off));
        while (off < extent_end && std::memcmp(r.host + off, zeros, kPageSize) == 0)
          off += kPageSize;
      }
    }
  }
  return {};
}

}  // namespace ignition

namespace ignition {

void GuestMemory::track_writes() {
  if (written_) return;
  written_ = std::make_unique<std::atomic<uint64_t>[]>((page_count() + 63) / 64);
}

void GuestMemory::mark_written(const uint8_t* host, uint64_t len) {
  if (!written_ || len == 0) return;
  uint64_t first = static_cast<uint64_t>(host - base_) / kPageSize;
  uint64_t last = (static_cast<uint64_t>(host - base_) + len - 1) / kPageSize;
  for (uint64_t p = first; p <= last; ++p)
    written_[p / 64].fetch_or(1ULL << (p % 64), std::memory_order_relaxed);
}

void GuestMemory::take_written(DirtyBitmap& into) {
  if (!written_) return;
  auto words = into.words();
  for (uint64_t i = 0; i < words.size(); ++i)
    if (written_[i].load(std::memory_order_relaxed) != 0)
      words[i] |= written_[i].exchange(0, std::memory_order_relaxed);
}

Result<void> GuestMemory::save_pages(const std::string& path, const DirtyBitmap& pages) const {
  std::string tmp = path + ".tmp";
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out.valid()) return err("memory file {}: {}", tmp, errno_string());
  if (::ftruncate(out.get(), static_cast<off_t>(total_size_)) != 0)
    return err("memory file {}: {}", tmp, errno_string());
  // Runs of consecutive pages go out in one write.
  uint64_t run_start = 0, run_len = 0;
  auto flush = [&]() -> Result<void> {
    for (uint64_t done = 0; done < run_len;) {
      uint64_t at = (run_start + done) * kPageSize;
      ssize_t n =
          ::pwrite(out.get(), base_ + at, (run_len - done) * kPageSize, static_cast<off_t>(at));
      if (n <= 0) return err("memory file {}: {}", tmp, errno_string());
      done += static_cast<uint64_t>(n) / kPageSize;
    }
    run_len = 0;
    return {};
  };
  Result<void> written;
  pages.for_each([&](uint64_t page) {
    if (!written.ok() || page >= page_count()) return;
    if (run_len != 0 && page == run_start + run_len) {
      ++run_len;
      return;
    }
    written = flush();
    run_start = page;
    run_len = 1;
  });
  IGN_TRY(written);
  IGN_TRY(flush());
  if (::fsync(out.get()) != 0) return err("memory file {}: {}", tmp, errno_string());
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return err("memory file {}: {}", path, errno_string());
  return {};
}

Result<void> GuestMemory::apply_diff(const std::string& path) {
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return err("memory diff {}: {}", path, errno_string());
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return err("memory diff {}: {}", path, errno_string());
  if (static_cast<uint64_t>(st.st_size) != total_size_)
    return err("memory diff {} has {} bytes, the guest has {}", path, st.st_size, total_size_);
  for (off_t at = 0;;) {
    off_t data = ::lseek(in.get(), at, SEEK_DATA);
    if (data < 0) break;  // ENXIO: no data past `at`
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) return err("memory diff {}: {}", path, errno_string());
    for (off_t pos = data; pos < hole;) {
      ssize_t n = ::pread(in.get(), base_ + pos, static_cast<size_t>(hole - pos), pos);
      if (n <= 0) return err("memory diff {}: {}", path, errno_string());
      pos += n;
    }
    at = hole;
  }
  return {};
}

}  // namespace ignition
