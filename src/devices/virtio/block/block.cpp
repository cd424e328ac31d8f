#include "devices/virtio/block/block.hpp"

#include <sys/epoll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "devices/virtio/block/persist.hpp"
#include "devices/virtio/limiter_state.hpp"
#include "devices/virtio/request_loop.hpp"

namespace ignition::devices::virtio {

using namespace block;

namespace {

template <typename T>
void store(std::array<uint8_t, kConfigSize>& config, uint64_t offset, T value) {
  std::memcpy(config.data() + offset, &value, sizeof(T));  // little-endian, as virtio
}

}  // namespace

Result<std::unique_ptr<Block>> Block::create(const config::Drive& drive, Clock clock) {
  const std::string& id = drive.drive_id;
  if (drive.is_vhost_user()) return err("drive {}: vhost-user block devices are not supported", id);
  if (!drive.path_on_host) return err("drive {}: path_on_host is required", id);
  if (drive.engine() == config::IoEngine::kAsync)
    return err("drive {}: io_engine Async is not supported; use Sync", id);
  auto disk = DiskFile::open(*drive.path_on_host, drive.read_only());
  if (!disk.ok()) return context(disk.error(), fmt::format("drive {}", id));
  auto limiter = RateLimiter::create(drive.rate_limiter.value_or(config::RateLimiter{}), clock);
  if (!limiter.ok()) return context(limiter.error(), fmt::format("drive {}", id));
  return std::unique_ptr<Block>(
      new Block(drive, std::move(disk).value(), std::move(limiter).value()));
}

Block::Block(const config::Drive& drive, DiskFile disk, RateLimiter limiter)
    : drive_id_(drive.drive_id),
      read_only_(drive.read_only()),
      writeback_(drive.cache_type == config::CacheType::kWriteback),
      disk_(std::move(disk)),
      limiter_(std::move(limiter)) {
  features_ = kFeatureRingEventIdx | kFeatureSegMax | kFeatureBlkSize;
  if (read_only_) features_ |= kFeatureRo;
  // Unsafe does not offer FLUSH, so the guest never waits for the host disk (Firecracker).
  if (writeback_) features_ |= kFeatureFlush;
  if (!read_only_ && disk_.can_punch_hole()) features_ |= kFeatureDiscard;
  if (!read_only_ && (disk_.can_punch_hole() || disk_.can_zero_range()))
    features_ |= kFeatureWriteZeroes;
  may_unmap_ = disk_.can_punch_hole();
  build_config();
}

void Block::build_config() {
  config_.fill(0);
  store<uint64_t>(config_, kConfigCapacity, disk_.capacity_sectors());
  store<uint32_t>(config_, kConfigSegMax, kSegMax);
  store<uint32_t>(config_, kConfigBlkSize, static_cast<uint32_t>(kSectorSize));
  if (features_ & kFeatureDiscard) {
    store<uint32_t>(config_, kConfigMaxDiscardSectors, kMaxRangeSectors);
    store<uint32_t>(config_, kConfigMaxDiscardSeg, kMaxRangeSegments);
    store<uint32_t>(config_, kConfigDiscardSectorAlignment, kDiscardAlignmentSectors);
  }
  if (features_ & kFeatureWriteZeroes) {
    store<uint32_t>(config_, kConfigMaxWriteZeroesSectors, kMaxRangeSectors);
    store<uint32_t>(config_, kConfigMaxWriteZeroesSeg, kMaxRangeSegments);
    store<uint8_t>(config_, kConfigWriteZeroesMayUnmap, may_unmap_ ? 1 : 0);
  }
}

void Block::read_config(uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    bool inside = offset < kConfigSize && i < kConfigSize - offset;
    data[i] = inside ? config_[offset + i] : 0;
  }
}

Result<void> Block::activate(const ActiveContext& ctx) {
  ctx_.emplace(ctx);
  return {};
}

DiskGeometry Block::geometry() const {
  DiskGeometry g;
  g.capacity_sectors = disk_.capacity_sectors();
  g.read_only = read_only_;
  uint64_t acked = ctx_ ? ctx_->acked_features : 0;
  g.discard = (acked & features_ & kFeatureDiscard) != 0;
  g.write_zeroes = (acked & features_ & kFeatureWriteZeroes) != 0;
  g.max_range_segments = kMaxRangeSegments;
  g.max_range_sectors = kMaxRangeSectors;
  return g;
}

void Block::process_queue(uint16_t index) {
  if (!ctx_ || index != 0) return;
  if (limiter_.is_blocked()) return;  // the limiter's timer resumes the queue
  DiskGeometry disk = geometry();
  serve_requests(*ctx_, 0, "virtio-blk",
                 [&](const DescriptorChain& chain) -> Result<std::optional<uint32_t>> {
                   IGN_ASSIGN_OR_RETURN(Request req, parse_request(chain, ctx_->memory, disk));
                   uint32_t written = 0;
                   uint8_t status = req.status;
                   if (status == kStatusOk) {
                     if (!admit(req)) return std::optional<uint32_t>();
                     status = execute(req, written);
                   } else {
                     counters_.invalid_requests++;
                     spdlog::debug("virtio-blk {}: rejected request type {} sector {}: status {}",
                                   drive_id_, req.type, req.sector, status);
                   }
                   IGN_TRY(ctx_->memory.write_obj<uint8_t>(req.status_gpa, status));
                   return std::optional<uint32_t>(written + 1);
                 });
}

bool Block::admit(const Request& req) {
  if (!limiter_.consume(1, TokenType::kOps)) {
    counters_.throttled++;
    return false;
  }
  uint64_t bytes = (req.type == kTypeIn || req.type == kTypeOut) ? req.data_len : 0;
  if (bytes != 0 && !limiter_.consume(bytes, TokenType::kBytes)) {
    limiter_.manual_replenish(1, TokenType::kOps);
    counters_.throttled++;
    return false;
  }
  return true;
}

uint8_t Block::execute(const Request& req, uint32_t& written) {
  Result<void> done;
  switch (req.type) {
    case kTypeIn:
      done = transfer(req);
      if (done.ok()) {
        counters_.reads++;
        counters_.read_bytes += req.data_len;
        // A chain's writable bytes fit in 32 bits: the queue caps each at 4 GiB and
        // Linux never sends anything near that; saturate rather than wrap.
        written = static_cast<uint32_t>(std::min<uint64_t>(req.data_len, UINT32_MAX - 1));
      }
      break;
    case kTypeOut:
      done = transfer(req);
      if (done.ok()) {
        counters_.writes++;
        counters_.write_bytes += req.data_len;
      }
      break;
    case kTypeFlush:
      // Writes are in the host page cache once they complete; Writeback also makes them
      // durable here, Unsafe leaves that to the host (Firecracker's semantics).
      if (writeback_) done = disk_.sync();
      counters_.flushes++;
      break;
    case kTypeGetId:
      done = write_id(req);
      if (done.ok()) written = static_cast<uint32_t>(req.data_len);
      counters_.get_ids++;
      break;
    case kTypeDiscard:
      for (const SectorRange& r : req.ranges) {
        done = disk_.discard(r.sector << kSectorShift, uint64_t{r.num_sectors} << kSectorShift);
        if (!done.ok()) break;
      }
      counters_.discards++;
      break;
    case kTypeWriteZeroes:
      for (const SectorRange& r : req.ranges) {
        done = disk_.write_zeroes(r.sector << kSectorShift, uint64_t{r.num_sectors} << kSectorShift,
                                  r.unmap && may_unmap_);
        if (!done.ok()) break;
      }
      counters_.write_zeroes++;
      break;
    default:
      return kStatusUnsupp;  // parse_request only accepts the types above
  }
  if (!done.ok()) {
    counters_.io_errors++;
    spdlog::warn("virtio-blk {}: {}", drive_id_, done.error().message);
    written = 0;
    return kStatusIoErr;
  }
  return kStatusOk;
}

Result<void> Block::transfer(const Request& req) {
  std::vector<iovec> iov;
  iov.reserve(req.data.size());
  for (const Buffer& b : req.data) {
    IGN_ASSIGN_OR_RETURN(std::span<uint8_t> host, ctx_->memory.slice(b.gpa, b.len));
    iov.push_back({host.data(), host.size()});
  }
  return req.type == kTypeIn ? disk_.read(iov, req.offset()) : disk_.write(iov, req.offset());
}

Result<void> Block::write_id(const Request& req) {
  std::array<uint8_t, kIdBytes> id{};  // NUL-padded; a 20-byte id has no terminator
  std::memcpy(id.data(), drive_id_.data(), std::min<size_t>(drive_id_.size(), kIdBytes));
  size_t pos = 0;
  for (const Buffer& b : req.data) {
    IGN_TRY(ctx_->memory.write(b.gpa, std::span<const uint8_t>(id).subspan(pos, b.len)));
    pos += b.len;
  }
  return {};
}

Result<void> Block::register_events(EventRegistrar& registrar) {
  return registrar.add(limiter_.timer_fd(), EPOLLIN, [this](uint32_t) { on_rate_limiter_timer(); });
}

void Block::on_rate_limiter_timer() {
  limiter_.on_timer();
  process_queue(0);
}

Result<void> Block::update_path(const std::string& path) {
  auto disk = DiskFile::open(path, read_only_);
  if (!disk.ok()) return context(disk.error(), fmt::format("drive {}", drive_id_));
  disk_ = std::move(disk).value();
  build_config();
  spdlog::info("virtio-blk {}: now backed by {} ({} sectors)", drive_id_, path,
               disk_.capacity_sectors());
  if (ctx_) ctx_->interrupt.config_changed();
  return {};
}

void Block::update_rate_limiter(const config::RateLimiter& limits) {
  limiter_.update(limits);
}

std::vector<uint8_t> Block::save_state() const {
  return encode_state({drive_id_, disk_.path(), disk_.capacity_sectors(), read_only_, features_,
                       limiter_.config()});
}

Result<void> Block::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(BlockState saved, decode_state(state));
  if (saved.drive_id != drive_id_)
    return err("the snapshot holds drive {}, not drive {}", saved.drive_id, drive_id_);
  if (saved.read_only != read_only_ || bool(saved.features & kFeatureRo) != read_only_)
    return err("drive {} was {} in the snapshot, it is {} now", drive_id_,
               saved.read_only ? "read-only" : "read-write",
               read_only_ ? "read-only" : "read-write");
  struct stat st {};
  if (::stat(disk_.path().c_str(), &st) != 0)
    return err("drive {}: backing file {}: {}", drive_id_, disk_.path(), errno_string());
  // The guest sized its disk when it probed the device: another size would move its data.
  if (saved.capacity_sectors != disk_.capacity_sectors())
    return err("drive {}: {} has {} sectors, the snapshot's disk had {}", drive_id_, disk_.path(),
               disk_.capacity_sectors(), saved.capacity_sectors);
  // features_ holds everything this file allows; the guest negotiated from the saved set.
  if (saved.features & ~features_)
    return err("drive {}: the snapshot's features {:#x} are more than {} can offer ({:#x})",
               drive_id_, saved.features, disk_.path(), features_);
  if (saved.path != disk_.path())
    spdlog::info("virtio-blk {}: snapshot taken over {}, restored over {}", drive_id_, saved.path,
                 disk_.path());
  features_ = saved.features;
  build_config();
  limiter_.update(exact_update(saved.rate_limiter));
  return {};
}

BlockCounters Block::counters() const {
  BlockCounters c;
  c.reads = counters_.reads;
  c.writes = counters_.writes;
  c.read_bytes = counters_.read_bytes;
  c.write_bytes = counters_.write_bytes;
  c.flushes = counters_.flushes;
  c.discards = counters_.discards;
  c.write_zeroes = counters_.write_zeroes;
  c.get_ids = counters_.get_ids;
  c.io_errors = counters_.io_errors;
  c.invalid_requests = counters_.invalid_requests;
  c.throttled = counters_.throttled;
  return c;
}

}  // namespace ignition::devices::virtio
