#include "vmm/snapshot_store.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "base/fd.hpp"
#include "snapshot/snapshot_file.hpp"
#include "vmm/config/json_fields.hpp"
#include "vmm/snapshot_memory.hpp"

namespace ignition::vmm {

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

Result<void> check_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return err("snapshot name must be 1 to 64 characters");
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return err("snapshot name '{}' may only contain letters, digits, '-', '_' and '.'", name);
  if (name[0] == '.') return err("snapshot name '{}' may not start with '.'", name);
  return {};
}

std::string now_utc() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return err("{}: {}", path, errno_string());
  std::string text{std::istreambuf_iterator<char>(in), {}};
  auto parsed = config::parse_json_text(text);
  if (!parsed.ok()) return context(parsed.error(), path);
  return parsed;
}

Result<void> write_json(const std::string& path, const json& j) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) return err("{}: {}", tmp, errno_string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return err("{}: {}", path, ec.message());
  return {};
}

// A reflink where the file system has them (btrfs, xfs), else an in-kernel copy of the
// data extents only, so a sparse disk image stays sparse (ext4 has no reflink).
Result<void> copy_file(const std::string& from, const std::string& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return err("{}: {}", from, errno_string());
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return err("{}: {}", to, errno_string());
  if (::ioctl(out.get(), FICLONE, in.get()) == 0) return {};
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return err("{}: {}", from, errno_string());
  if (::ftruncate(out.get(), st.st_size) != 0) return err("{}: {}", to, errno_string());
  for (off_t at = 0; at < st.st_size;) {
    off_t data = ::lseek(in.get(), at, SEEK_DATA);
    if (data < 0) break;  // no data after `at`
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) return err("{}: {}", from, errno_string());
    for (off_t pos = data; pos < hole;) {
      off_t src = pos, dst = pos;
      ssize_t n =
          ::copy_file_range(in.get(), &src, out.get(), &dst, static_cast<size_t>(hole - pos), 0);
      if (n <= 0) return err("copying {} to {}: {}", from, to, n < 0 ? errno_string() : "EOF");
      pos += n;
    }
    at = hole;
  }
  if (::fsync(out.get()) != 0) return err("{}: {}", to, errno_string());
  return {};
}

uint64_t allocated_bytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

// The process start time (field 22 of /proc/<pid>/stat), which tells a live instance from
// another process that got its pid later.
std::optional<uint64_t> process_start_time(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat{std::istreambuf_iterator<char>(in), {}};
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return std::nullopt;
  return std::stoull(field);
}

Result<config::VmConfig> snapshot_config(const SnapshotPaths& paths) {
  IGN_ASSIGN_OR_RETURN(auto reader, snapshot::SnapshotReader::open(paths.state));
  return read_snapshot_config(reader);
}

config::MacAddress clone_mac(const std::string& id, size_t nic) {
  uint64_t h = std::hash<std::string>{}(id + "/" + std::to_string(nic));
  config::MacAddress mac;
  mac.bytes[0] = 0x06;  // locally administered, unicast
  for (int i = 1; i < 6; ++i) mac.bytes[i] = static_cast<uint8_t>(h >> (8 * i));
  return mac;
}

}  // namespace

Result<SnapshotPaths> SnapshotStore::create(const std::string& name) const {
  IGN_TRY(check_name(name));
  std::error_code ec;
  if (fs::exists(dir(name), ec)) return err("snapshot '{}' already exists in {}", name, root_);
  fs::create_directories(dir(name), ec);
  if (ec) return err("snapshot store {}: {}", root_, ec.message());
  return SnapshotPaths{dir(name) + "/state", dir(name) + "/memory"};
}

Result<SnapshotPaths> SnapshotStore::find(const std::string& name) const {
  IGN_TRY(check_name(name));
  SnapshotPaths paths{dir(name) + "/state", dir(name) + "/memory"};
  std::error_code ec;
  if (!fs::exists(paths.state, ec))
    return err("no snapshot '{}' in {} (expected {})", name, root_, paths.state);
  return paths;
}

Result<void> SnapshotStore::seal(const std::string& name, const config::VmConfig& config,
                                 std::optional<std::string> parent) const {
  std::error_code ec;
  json drives = json::object();
  for (const auto& d : config.drives) {
    if (!d.path_on_host || d.read_only()) continue;  // read-only drives are shared as they are
    fs::create_directories(dir(name) + "/disks", ec);
    std::string copy = dir(name) + "/disks/" + d.drive_id;
    IGN_TRY(copy_file(*d.path_on_host, copy));
    drives[d.drive_id] = copy;
  }
  json manifest = {{"name", name},
                   {"kind", parent ? "diff" : "full"},
                   {"parent", parent ? json(*parent) : json(nullptr)},
                   {"created", now_utc()},
                   {"disks", drives},
                   {"config", config::to_json(config)}};
  return write_json(dir(name) + "/manifest.json", manifest);
}

Result<std::vector<SnapshotInfo>> SnapshotStore::list_snapshots() const {
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/snapshots", ec)) {
    SnapshotInfo info;
    info.name = e.path().filename().string();
    info.disk_bytes = allocated_bytes(e.path());
    auto manifest = read_json((e.path() / "manifest.json").string());
    info.complete = manifest.ok() && fs::exists(e.path() / "state");
    if (manifest.ok()) {
      info.kind = manifest->value("kind", "full");
      if (manifest->contains("parent") && (*manifest)["parent"].is_string())
        info.parent = (*manifest)["parent"].get<std::string>();
      info.created = manifest->value("created", "");
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

Result<void> SnapshotStore::flatten(const std::string& name) const {
  IGN_ASSIGN_OR_RETURN(auto paths, find(name));
  IGN_TRY(flatten_snapshot(paths.state, paths.memory));
  std::string manifest_path = dir(name) + "/manifest.json";
  IGN_ASSIGN_OR_RETURN(auto manifest, read_json(manifest_path));
  manifest["kind"] = "full";
  manifest["flattened_from"] = manifest["parent"];
  manifest["parent"] = nullptr;
  return write_json(manifest_path, manifest);
}

Result<InstancePlan> SnapshotStore::create_instance(
    const std::string& base, uint32_t index, const std::optional<std::string>& huge_pages) const {
  IGN_ASSIGN_OR_RETURN(auto paths, find(base));
  IGN_ASSIGN_OR_RETURN(auto config, snapshot_config(paths));
  auto base_manifest = read_json(dir(base) + "/manifest.json");

  std::error_code ec;
  fs::create_directories(root_ + "/instances", ec);
  if (ec) return err("snapshot store {}: {}", root_, ec.message());
  // mkdir is the lock: the first free number from `index` on is ours.
  std::string id;
  for (uint32_t n = index;; ++n) {
    id = fmt::format("{}.{}", base, n);
    if (::mkdir(instance_dir(id).c_str(), 0700) == 0) break;
    if (errno != EEXIST) return err("{}: {}", instance_dir(id), errno_string());
  }
  InstancePlan plan{id, instance_dir(id), paths, {}};
  json disks = json::object(), macs = json::object();
  for (const auto& d : config.drives) {
    if (!d.path_on_host || d.read_only()) continue;
    // The base's own copy when it has one (taken while the VM was paused), else the file
    // the snapshot's VM used.
    std::string source = *d.path_on_host;
    if (base_manifest.ok() && (*base_manifest)["disks"].contains(d.drive_id))
      source = (*base_manifest)["disks"][d.drive_id].get<std::string>();
    fs::create_directories(plan.dir + "/disks", ec);
    std::string copy = plan.dir + "/disks/" + d.drive_id;
    IGN_TRY(copy_file(source, copy));
    plan.options.drive_overrides.emplace_back(d.drive_id, copy);
    disks[d.drive_id] = copy;
  }
  for (size_t i = 0; i < config.network_interfaces.size(); ++i) {
    const auto& nic = config.network_interfaces[i];
    if (!nic.guest_mac) continue;
    auto mac = clone_mac(id, i);
    plan.options.mac_overrides.emplace_back(nic.iface_id, mac);
    macs[nic.iface_id] = mac.to_string();
  }
  if (config.vsock) plan.options.vsock_uds_path = plan.dir + "/vsock.sock";
  plan.options.huge_pages = huge_pages;
  json manifest = {
      {"id", id},
      {"base", base},
      {"created", now_utc()},
      {"disks", disks},
      {"macs", macs},
      {"vsock", plan.options.vsock_uds_path ? json(*plan.options.vsock_uds_path) : json(nullptr)},
      {"huge_pages", huge_pages ? json(*huge_pages) : json(nullptr)},
      {"pid", nullptr}};
  IGN_TRY(write_json(plan.dir + "/manifest.json", manifest));
  return plan;
}

Result<InstancePlan> SnapshotStore::load_instance(const std::string& id) const {
  IGN_TRY(check_name(id));
  IGN_ASSIGN_OR_RETURN(auto manifest, read_json(instance_dir(id) + "/manifest.json"));
  std::string base = manifest.value("base", "");
  IGN_ASSIGN_OR_RETURN(auto paths, find(base));
  InstancePlan plan{id, instance_dir(id), paths, {}};
  for (auto& [drive, path] : manifest["disks"].items())
    plan.options.drive_overrides.emplace_back(drive, path.get<std::string>());
  for (auto& [nic, text] : manifest["macs"].items()) {
    IGN_ASSIGN_OR_RETURN(auto mac, config::MacAddress::parse(text.get<std::string>()));
    plan.options.mac_overrides.emplace_back(nic, mac);
  }
  if (manifest["vsock"].is_string()) plan.options.vsock_uds_path = manifest["vsock"];
  if (manifest["huge_pages"].is_string()) plan.options.huge_pages = manifest["huge_pages"];
  return plan;
}

Result<void> SnapshotStore::set_instance_pid(const std::string& id, pid_t pid) const {
  std::string path = instance_dir(id) + "/manifest.json";
  IGN_ASSIGN_OR_RETURN(auto manifest, read_json(path));
  manifest["pid"] = pid;
  auto start = process_start_time(pid);
  manifest["pid_start_time"] = start ? json(*start) : json(nullptr);
  return write_json(path, manifest);
}

Result<std::vector<InstanceInfo>> SnapshotStore::list_instances() const {
  std::vector<InstanceInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/instances", ec)) {
    InstanceInfo info;
    info.id = e.path().filename().string();
    auto manifest = read_json((e.path() / "manifest.json").string());
    if (manifest.ok()) {
      info.base = manifest->value("base", "");
      info.created = manifest->value("created", "");
      if ((*manifest)["pid"].is_number()) {
        info.pid = (*manifest)["pid"].get<pid_t>();
        auto start = process_start_time(info.pid);
        info.running = start && (*manifest)["pid_start_time"].is_number() &&
                       *start == (*manifest)["pid_start_time"].get<uint64_t>();
      }
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return out;
}

Result<GcReport> SnapshotStore::gc() const {
  GcReport report;
  IGN_ASSIGN_OR_RETURN(auto instances, list_instances());
  std::error_code ec;
  for (const auto& i : instances) {
    if (i.running) continue;
    fs::remove_all(instance_dir(i.id), ec);
    if (ec) return err("removing instance {}: {}", i.id, ec.message());
    report.removed_instances.push_back(i.id);
  }
  IGN_ASSIGN_OR_RETURN(auto snapshots, list_snapshots());
  for (const auto& s : snapshots) {
    if (s.complete) continue;
    fs::remove_all(dir(s.name), ec);
    if (ec) return err("removing snapshot {}: {}", s.name, ec.message());
    report.removed_snapshots.push_back(s.name);
  }
  return report;
}

}  // namespace ignition::vmm
