#include "devices/virtio/pmem/pmem.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "devices/virtio/limiter_state.hpp"
#include "devices/virtio/pmem/persist.hpp"
#include "devices/virtio/request_loop.hpp"

namespace ignition::devices::virtio {

using namespace pmem;

namespace pmem {

Result<Mapping> Mapping::open(const std::string& path, bool read_only, uint64_t alignment) {
  UniqueFd fd(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd.valid()) return err("open {}: {}", path, errno_string());
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return err("stat {}: {}", path, errno_string());
  if (S_ISDIR(st.st_mode)) return err("{} is a directory, not a file", path);
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return err("{} is neither a regular file nor a block device", path);
  // lseek gives the size of block devices too (st_size is 0 for them).
  off_t end = ::lseek(fd.get(), 0, SEEK_END);
  if (end < 0) return err("size of {}: {}", path, errno_string());
  uint64_t file_size = static_cast<uint64_t>(end);
  if (file_size == 0) return err("{} is empty: a pmem backing file needs at least one byte", path);
  if (file_size > UINT64_MAX - alignment + 1 || file_size > SIZE_MAX - alignment + 1)
    return err("{}: size {} is too large to map", path, file_size);
  uint64_t size = (file_size + alignment - 1) / alignment * alignment;
  uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // Only whole pages of the file: a page wholly past its end would fault (SIGBUS).
  uint64_t file_pages = (file_size + page - 1) / page * page;

  int prot = PROT_READ | (read_only ? 0 : PROT_WRITE);
  // The whole aligned range first, so the tail past the file is ordinary zeroed memory
  // and the file mapping lands on addresses nobody else can take in between.
  void* base = ::mmap(nullptr, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return err("reserving {} bytes for {}: {}", size, path, errno_string());
  void* file = ::mmap(base, file_pages, prot, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd.get(), 0);
  if (file == MAP_FAILED) {
    std::string why = errno_string();
    ::munmap(base, size);
    return err("mmap {}: {}", path, why);
  }
  return Mapping(std::move(fd), static_cast<uint8_t*>(base), size, file_size);
}

Mapping::Mapping(Mapping&& other) noexcept
    : fd_(std::move(other.fd_)),
      host_(std::exchange(other.host_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      file_size_(std::exchange(other.file_size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    unmap();
    fd_ = std::move(other.fd_);
    host_ = std::exchange(other.host_, nullptr);
    size_ = std::exchange(other.size_, 0);
    file_size_ = std::exchange(other.file_size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  unmap();
}

void Mapping::unmap() {
  if (host_) ::munmap(host_, size_);
  host_ = nullptr;
  size_ = 0;
}

Result<void> Mapping::sync() const {
  // For a shared mapping, stores dirty the file's page cache pages; fdatasync writes them.
  while (::fdatasync(fd_.get()) < 0) {
    if (errno != EINTR) return err("fdatasync: {}", errno_string());
  }
  return {};
}

}  // namespace pmem

namespace {

// Copies the first out.size() bytes of `buffers` into `out`; false if they are fewer.
Result<bool> gather(const GuestMemory& memory, std::span<const Buffer> buffers,
                    std::span<uint8_t> out) {
  size_t pos = 0;
  for (const Buffer& b : buffers) {
    if (pos == out.size()) break;
    size_t n = std::min<size_t>(b.len, out.size() - pos);
    IGN_TRY(memory.read(b.gpa, out.subspan(pos, n)));
    pos += n;
  }
  return pos == out.size();
}

// Writes `in` over the first bytes of `buffers` (the caller checked they are enough).
Result<void> scatter(GuestMemory& memory, std::span<const Buffer> buffers,
                     std::span<const uint8_t> in) {
  size_t pos = 0;
  for (const Buffer& b : buffers) {
    if (pos == in.size()) break;
    size_t n = std::min<size_t>(b.len, in.size() - pos);
    IGN_TRY(memory.write(b.gpa, in.subspan(pos, n)));
    pos += n;
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<Pmem>> Pmem::create(const config::Pmem& config, uint64_t gpa, Clock clock) {
  auto mapping = Mapping::open(config.path_on_host, config.read_only, kAlignment);
  if (!mapping.ok()) return context(mapping.error(), fmt::format("pmem {}", config.id));
  return create(config, gpa, std::move(mapping).value(), std::move(clock));
}

Result<std::unique_ptr<Pmem>> Pmem::create(const config::Pmem& config, uint64_t gpa,
                                           Mapping mapping, Clock clock) {
  if (gpa % kAlignment != 0)
    return err("pmem {}: guest address {:#x} is not aligned to {} MiB", config.id, gpa,
               kAlignment >> 20);
  if (mapping.size() > UINT64_MAX - gpa)
    return err("pmem {}: {} bytes at {:#x} run past the end of the address space", config.id,
               mapping.size(), gpa);
  auto limiter = RateLimiter::create(config.rate_limiter.value_or(config::RateLimiter{}), clock);
  if (!limiter.ok()) return context(limiter.error(), fmt::format("pmem {}", config.id));
  return std::unique_ptr<Pmem>(
      new Pmem(config, gpa, std::move(mapping), std::move(limiter).value()));
}

Pmem::Pmem(const config::Pmem& config, uint64_t gpa, Mapping mapping, RateLimiter limiter)
    : id_(config.id),
      path_(config.path_on_host),
      gpa_(gpa),
      read_only_(config.read_only),
      root_device_(config.root_device),
      mapping_(std::move(mapping)),
      limiter_(std::move(limiter)) {}

void Pmem::read_config(uint64_t offset, std::span<uint8_t> data) {
  std::array<uint8_t, kConfigBytes> config{};
  uint64_t start = gpa_, size = mapping_.size();
  std::memcpy(config.data() + kConfigStart, &start, 8);  // little-endian, as virtio
  std::memcpy(config.data() + kConfigSize, &size, 8);
  for (size_t i = 0; i < data.size(); ++i) {
    bool inside = offset < kConfigBytes && i < kConfigBytes - offset;
    data[i] = inside ? config[offset + i] : 0;
  }
}

Result<void> Pmem::activate(const ActiveContext& ctx) {
  ctx_.emplace(ctx);
  return {};
}

void Pmem::process_queue(uint16_t index) {
  if (!ctx_ || index != 0) return;
  if (limiter_.is_blocked()) return;  // the limiter's timer resumes the queue
  serve_requests(*ctx_, 0, "virtio-pmem",
                 [this](const DescriptorChain& chain) { return serve(chain); });
}

Result<std::optional<uint32_t>> Pmem::serve(const DescriptorChain& chain) {
  std::span<const Buffer> all(chain.buffers);
  std::span<const Buffer> readable = all.first(chain.readable_count);
  std::span<const Buffer> writable = all.subspan(chain.readable_count);
  uint64_t writable_len = chain.writable_bytes();
  if (writable_len < kRespSize)
    return err("request {} has {} writable bytes, too few for its 4-byte response", chain.head,
               writable_len);

  uint32_t ret = kRespError;
  uint32_t type = UINT32_MAX;
  // The request is exactly a le32 type one way and a le32 answer the other (spec 5.19.6).
  if (chain.readable_bytes() == kReqSize && writable_len == kRespSize) {
    std::array<uint8_t, kReqSize> raw{};
    IGN_ASSIGN_OR_RETURN(bool complete, gather(ctx_->memory, readable, raw));
    if (complete) std::memcpy(&type, raw.data(), sizeof(type));
  }
  if (type == kReqTypeFlush) {
    if (!limiter_.consume(1, TokenType::kOps)) {
      counters_.throttled++;
      return std::optional<uint32_t>();
    }
    ret = flush();
  } else {
    counters_.invalid_requests++;
    spdlog::debug("virtio-pmem {}: rejected request {} ({} readable, {} writable bytes)", id_,
                  chain.head, chain.readable_bytes(), writable_len);
  }
  std::array<uint8_t, kRespSize> resp{};
  std::memcpy(resp.data(), &ret, sizeof(ret));
  IGN_TRY(scatter(ctx_->memory, writable, resp));
  return std::optional<uint32_t>(kRespSize);
}

uint32_t Pmem::flush() {
  // A read-only mapping cannot have dirtied the file: nothing to write back.
  if (!read_only_) {
    if (auto synced = mapping_.sync(); !synced.ok()) {
      counters_.flush_errors++;
      spdlog::warn("virtio-pmem {}: flushing {}: {}", id_, path_, synced.error().message);
      return kRespError;
    }
  }
  counters_.flushes++;
  return kRespOk;
}

Result<void> Pmem::register_events(EventRegistrar& registrar) {
  return registrar.add(limiter_.timer_fd(), EPOLLIN, [this](uint32_t) { on_rate_limiter_timer(); });
}

void Pmem::on_rate_limiter_timer() {
  limiter_.on_timer();
  process_queue(0);
}

void Pmem::update_rate_limiter(const config::RateLimiter& limits) {
  limiter_.update(limits);
}

std::vector<uint8_t> Pmem::save_state() const {
  return encode_state(
      {id_, path_, gpa_, mapping_.size(), mapping_.file_size(), read_only_, limiter_.config()});
}

Result<void> Pmem::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(PmemState saved, decode_state(state));
  if (saved.id != id_) return err("the snapshot holds pmem {}, not pmem {}", saved.id, id_);
  if (saved.read_only != read_only_)
    return err("pmem {} was {} in the snapshot, it is {} now", id_,
               saved.read_only ? "read-only" : "read-write",
               read_only_ ? "read-only" : "read-write");
  if (saved.gpa != gpa_)
    return err("pmem {}: the guest saw it at {:#x}, it is at {:#x} now", id_, saved.gpa, gpa_);
  // The guest sized its region when it probed the device, and the file's bytes are the
  // region's contents: another size would change what the guest sees.
  if (saved.size != mapping_.size() || saved.file_size != mapping_.file_size())
    return err(
        "pmem {}: {} is {} bytes (mapped as {}), the snapshot's file was {} bytes (mapped "
        "as {})",
        id_, path_, mapping_.file_size(), mapping_.size(), saved.file_size, saved.size);
  if (saved.path != path_)
    spdlog::info("virtio-pmem {}: snapshot taken over {}, restored over {}", id_, saved.path,
                 path_);
  limiter_.update(exact_update(saved.rate_limiter));
  return {};
}

PmemCounters Pmem::counters() const {
  PmemCounters c;
  c.flushes = counters_.flushes;
  c.flush_errors = counters_.flush_errors;
  c.invalid_requests = counters_.invalid_requests;
  c.throttled = counters_.throttled;
  return c;
}

}  // namespace ignition::devices::virtio
