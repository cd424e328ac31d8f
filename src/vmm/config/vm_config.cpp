// The config-file document: top-level keys, cross-resource checks, file loading.
#include "vmm/config/vm_config.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

namespace {

// "cpu-config" is either a template object or the path of a template file.
struct CpuConfigSource {
  std::optional<CpuConfig> config;
  std::optional<std::string> path;
};

Result<CpuConfigSource> parse_cpu_config_source(const nlohmann::json& j) {
  if (j.is_string()) {
    std::string path = j.get<std::string>();
    if (path.empty()) return err("the template path must not be empty");
    return CpuConfigSource{std::nullopt, path};
  }
  IGN_ASSIGN_OR_RETURN(CpuConfig c, parse_cpu_config(j));
  return CpuConfigSource{c, std::nullopt};
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return err("cannot open '{}': {}", path, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return err("cannot read '{}'", path);
  return text.str();
}

template <typename T, typename Key>
Result<void> check_unique(const std::vector<T>& items, std::string_view what, Key key) {
  std::set<std::string> seen;
  for (const auto& item : items) {
    std::string k = key(item);
    if (!seen.insert(k).second) return err("{} '{}' is used more than once", what, k);
  }
  return {};
}

}  // namespace

Result<VmConfig> parse_vm_config(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(
      auto r,
      FieldReader::open(j, {"boot-source", "machine-config", "drives", "network-interfaces",
                            "vsock", "entropy", "balloon", "logger", "metrics", "mmds-config",
                            "cpu-config", "serial", "pmem", "memory-hotplug"}));
  VmConfig c;
  IGN_ASSIGN_OR_RETURN(c.boot_source, r.required_with("boot-source", parse_boot_source));
  IGN_ASSIGN_OR_RETURN(std::optional<MachineConfig> machine,
                       r.optional_with("machine-config", parse_machine_config));
  if (machine) c.machine_config = *machine;
  IGN_ASSIGN_OR_RETURN(c.drives, r.array_with("drives", parse_drive));
  IGN_ASSIGN_OR_RETURN(c.network_interfaces,
                       r.array_with("network-interfaces", parse_network_interface));
  IGN_ASSIGN_OR_RETURN(c.vsock, r.optional_with("vsock", parse_vsock));
  IGN_ASSIGN_OR_RETURN(c.entropy, r.optional_with("entropy", parse_entropy));
  IGN_ASSIGN_OR_RETURN(c.balloon, r.optional_with("balloon", parse_balloon));
  IGN_ASSIGN_OR_RETURN(c.logger, r.optional_with("logger", parse_logger));
  IGN_ASSIGN_OR_RETURN(c.metrics, r.optional_with("metrics", parse_metrics));
  IGN_ASSIGN_OR_RETURN(c.mmds_config, r.optional_with("mmds-config", parse_mmds_config));
  IGN_ASSIGN_OR_RETURN(std::optional<CpuConfigSource> cpu,
                       r.optional_with("cpu-config", parse_cpu_config_source));
  if (cpu) {
    c.cpu_config = cpu->config;
    c.cpu_config_path = cpu->path;
  }
  IGN_ASSIGN_OR_RETURN(c.serial, r.optional_with("serial", parse_serial));
  IGN_ASSIGN_OR_RETURN(c.pmem, r.array_with("pmem", parse_pmem));
  IGN_ASSIGN_OR_RETURN(c.memory_hotplug, r.optional_with("memory-hotplug", parse_memory_hotplug));
  IGN_TRY(validate_vm_config(c));
  return c;
}

Result<void> validate_vm_config(const VmConfig& c) {
  if (auto r = validate_machine_config(c.machine_config); !r.ok()) {
    return context(r.error(), "machine-config");
  }

  IGN_TRY(check_unique(c.drives, "drives: drive_id", [](const Drive& d) { return d.drive_id; }));
  IGN_TRY(check_unique(c.pmem, "pmem: id", [](const Pmem& p) { return p.id; }));
  std::vector<std::string> roots;
  for (const auto& d : c.drives) {
    if (d.is_root_device) roots.push_back("drive '" + d.drive_id + "'");
  }
  for (const auto& p : c.pmem) {
    if (p.root_device) roots.push_back("pmem '" + p.id + "'");
  }
  if (roots.size() > 1) {
    return err("only one root device is allowed, but {} and {} are both root", roots[0], roots[1]);
  }

  IGN_TRY(check_unique(c.network_interfaces, "network-interfaces: iface_id",
                       [](const NetworkInterface& n) { return n.iface_id; }));
  IGN_TRY(check_unique(c.network_interfaces, "network-interfaces: host_dev_name",
                       [](const NetworkInterface& n) { return n.host_dev_name; }));
  std::vector<NetworkInterface> with_mac;
  for (const auto& n : c.network_interfaces) {
    if (n.guest_mac) with_mac.push_back(n);
  }
  IGN_TRY(check_unique(with_mac, "network-interfaces: guest_mac",
                       [](const NetworkInterface& n) { return n.guest_mac->to_string(); }));

  if (c.mmds_config) {
    for (const auto& id : c.mmds_config->network_interfaces) {
      bool found = false;
      for (const auto& n : c.network_interfaces) found = found || n.iface_id == id;
      if (!found) {
        return err("mmds-config: network interface '{}' is not in network-interfaces", id);
      }
    }
  }

  if (c.balloon && c.balloon->amount_mib > c.machine_config.mem_size_mib) {
    return err("balloon: amount_mib ({}) is larger than machine-config mem_size_mib ({})",
               c.balloon->amount_mib, c.machine_config.mem_size_mib);
  }
  return {};
}

Result<VmConfig> load_vm_config_file(const std::string& path) {
  auto with_path = [&path](const Error& e) { return context(e, path); };
  auto text = read_file(path);
  if (!text.ok()) return text.error();
  auto doc = parse_json_text(*text);
  if (!doc.ok()) return with_path(doc.error());
  auto config = parse_vm_config(*doc);
  if (!config.ok()) return with_path(config.error());
  VmConfig c = std::move(config).value();
  if (c.cpu_config_path) {
    auto tmpl_text = read_file(*c.cpu_config_path);
    if (!tmpl_text.ok()) return with_path(context(tmpl_text.error(), "cpu-config"));
    auto tmpl_doc = parse_json_text(*tmpl_text);
    if (!tmpl_doc.ok()) return with_path(context(tmpl_doc.error(), *c.cpu_config_path));
    auto tmpl = parse_cpu_config(*tmpl_doc);
    if (!tmpl.ok()) return with_path(context(tmpl.error(), *c.cpu_config_path));
    c.cpu_config = std::move(tmpl).value();
    c.cpu_config_path.reset();
  }
  return c;
}

nlohmann::json to_json(const VmConfig& c) {
  nlohmann::json drives = nlohmann::json::array();
  for (const auto& d : c.drives) drives.push_back(to_json(d));
  nlohmann::json nets = nlohmann::json::array();
  for (const auto& n : c.network_interfaces) nets.push_back(to_json(n));
  nlohmann::json pmem = nlohmann::json::array();
  for (const auto& p : c.pmem) pmem.push_back(to_json(p));

  nlohmann::json cpu = to_json_or_null(c.cpu_config);
  if (!c.cpu_config && c.cpu_config_path) cpu = *c.cpu_config_path;

  nlohmann::json j = {{"boot-source", to_json(c.boot_source)},
                      {"machine-config", to_json(c.machine_config)},
                      {"drives", drives},
                      {"network-interfaces", nets},
                      {"vsock", to_json_or_null(c.vsock)},
                      {"entropy", to_json_or_null(c.entropy)},
                      {"balloon", to_json_or_null(c.balloon)},
                      {"logger", to_json_or_null(c.logger)},
                      {"metrics", to_json_or_null(c.metrics)},
                      {"mmds-config", to_json_or_null(c.mmds_config)},
                      {"cpu-config", cpu},
                      {"pmem", pmem},
                      {"memory-hotplug", to_json_or_null(c.memory_hotplug)}};
  // Not part of Firecracker's GET /vm/config; present only when configured.
  if (c.serial) j["serial"] = to_json(*c.serial);
  return j;
}

}  // namespace ignition::config
