// machine-config parsing, PATCH semantics and validation.
#include "vmm/config/machine_config.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

namespace {

// The x86_64 static templates; "None" means "no template". V1N1 is aarch64-only.
Result<void> check_cpu_template(const std::string& t) {
  return check_one_of("cpu_template", t, {"C3", "T2", "T2S", "T2CL", "T2A", "None"});
}

// MiB per page for each huge_pages setting; memory must be a whole number of pages.
Result<uint64_t> huge_page_mib(const std::string& huge_pages) {
  return parse_enum<uint64_t>("huge_pages", huge_pages,
                              {{"None", 1}, {"Transparent", 2}, {"2M", 2}});
}

Result<MachineConfigUpdate> read_update(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r,
                       FieldReader::open(j, {"vcpu_count", "mem_size_mib", "smt", "cpu_template",
                                             "track_dirty_pages", "huge_pages"}));
  MachineConfigUpdate u;
  IGN_ASSIGN_OR_RETURN(u.vcpu_count, r.optional_uint<uint32_t>("vcpu_count"));
  IGN_ASSIGN_OR_RETURN(u.mem_size_mib, r.optional_uint<uint64_t>("mem_size_mib"));
  IGN_ASSIGN_OR_RETURN(u.smt, r.optional_bool("smt"));
  IGN_ASSIGN_OR_RETURN(u.cpu_template, r.optional_string("cpu_template"));
  IGN_ASSIGN_OR_RETURN(u.track_dirty_pages, r.optional_bool("track_dirty_pages"));
  IGN_ASSIGN_OR_RETURN(u.huge_pages, r.optional_string("huge_pages"));
  if (u.cpu_template) IGN_TRY(check_cpu_template(*u.cpu_template));
  if (u.huge_pages) IGN_TRY(huge_page_mib(*u.huge_pages));
  return u;
}

}  // namespace

bool MachineConfigUpdate::empty() const {
  return *this == MachineConfigUpdate{};
}

Result<MachineConfig> parse_machine_config(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(MachineConfigUpdate u, read_update(j));
  if (!u.vcpu_count) return err("missing required field 'vcpu_count'");
  if (!u.mem_size_mib) return err("missing required field 'mem_size_mib'");
  // PUT replaces everything: fields left out take their defaults, not the old values.
  if (!u.cpu_template) u.cpu_template = "None";
  return apply_machine_config_update(MachineConfig{}, u);
}

Result<MachineConfigUpdate> parse_machine_config_update(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(MachineConfigUpdate u, read_update(j));
  if (u.empty()) return err("empty update: a PATCH body needs at least one field");
  return u;
}

Result<MachineConfig> apply_machine_config_update(const MachineConfig& base,
                                                  const MachineConfigUpdate& u) {
  MachineConfig c = base;
  if (u.vcpu_count) c.vcpu_count = *u.vcpu_count;
  if (u.mem_size_mib) c.mem_size_mib = *u.mem_size_mib;
  if (u.smt) c.smt = *u.smt;
  if (u.cpu_template) {
    c.cpu_template = *u.cpu_template == "None" ? std::nullopt : u.cpu_template;
  }
  if (u.track_dirty_pages) c.track_dirty_pages = *u.track_dirty_pages;
  if (u.huge_pages) c.huge_pages = *u.huge_pages;
  IGN_TRY(validate_machine_config(c));
  return c;
}

Result<void> validate_machine_config(const MachineConfig& c) {
  if (c.vcpu_count < 1 || c.vcpu_count > kMaxVcpus) {
    return err("vcpu_count must be between 1 and {}, got {}", kMaxVcpus, c.vcpu_count);
  }
  if (c.smt && c.vcpu_count > 1 && c.vcpu_count % 2 == 1) {
    return err("vcpu_count must be 1 or an even number when smt is enabled, got {}", c.vcpu_count);
  }
  IGN_ASSIGN_OR_RETURN(uint64_t page_mib, huge_page_mib(c.huge_pages));
  if (c.mem_size_mib == 0) return err("mem_size_mib must be at least 1");
  // Byte sizes are computed as mem_size_mib << 20; keep that from overflowing.
  if (c.mem_size_mib > (UINT64_MAX >> 20)) {
    return err("mem_size_mib is too large: {}", c.mem_size_mib);
  }
  if (c.mem_size_mib % page_mib != 0) {
    return err("mem_size_mib must be a multiple of {} with huge_pages \"{}\", got {}", page_mib,
               c.huge_pages, c.mem_size_mib);
  }
  if (c.cpu_template) IGN_TRY(check_cpu_template(*c.cpu_template));
  return {};
}

nlohmann::json to_json(const MachineConfig& c) {
  nlohmann::json j = {{"vcpu_count", c.vcpu_count},
                      {"mem_size_mib", c.mem_size_mib},
                      {"smt", c.smt},
                      {"track_dirty_pages", c.track_dirty_pages},
                      {"huge_pages", c.huge_pages}};
  // Firecracker leaves cpu_template out when none is set.
  if (c.cpu_template && *c.cpu_template != "None") j["cpu_template"] = *c.cpu_template;
  return j;
}

}  // namespace ignition::config
