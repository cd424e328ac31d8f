// MMDS configuration parsing and serialization.
#include "vmm/config/mmds_config.hpp"

#include "vmm/config/json_fields.hpp"
#include "vmm/config/resource_id.hpp"

namespace ignition::config {

namespace {

Result<MmdsVersion> parse_version(const nlohmann::json& j) {
  if (!j.is_string()) return type_error("version", "a string", j);
  return parse_enum<MmdsVersion>("version", j.get_ref<const std::string&>(),
                                 {{"V1", MmdsVersion::kV1}, {"V2", MmdsVersion::kV2}});
}

Result<std::string> parse_iface_id(const nlohmann::json& j) {
  if (!j.is_string()) return type_error("network_interfaces", "an array of strings", j);
  std::string id = j.get<std::string>();
  IGN_TRY(validate_resource_id("network_interfaces", id));
  return id;
}

// Firecracker's is_link_local_valid: 169.254.0.x and 169.254.255.x are reserved (RFC 3927).
bool is_usable_link_local(const Ipv4Address& a) {
  return a.octets[0] == 169 && a.octets[1] == 254 && a.octets[2] != 0 && a.octets[2] != 255;
}

Result<Ipv4Address> parse_address(const nlohmann::json& j) {
  if (!j.is_string()) return type_error("ipv4_address", "a string", j);
  IGN_ASSIGN_OR_RETURN(Ipv4Address a, Ipv4Address::parse(j.get_ref<const std::string&>()));
  if (!is_usable_link_local(a)) {
    return err("'{}' is not a valid link-local address (169.254.1.0 - 169.254.254.255)",
               a.to_string());
  }
  return a;
}

}  // namespace

Result<Ipv4Address> Ipv4Address::parse(std::string_view text) {
  Ipv4Address a;
  Error bad = err("invalid IPv4 address '{}'", text);
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != '.') return bad;
      ++pos;
    }
    size_t start = pos;
    unsigned value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < 3) {
      value = value * 10 + static_cast<unsigned>(text[pos] - '0');
      ++pos;
    }
    size_t len = pos - start;
    if (len == 0 || value > 255 || (len > 1 && text[start] == '0')) return bad;
    a.octets[i] = static_cast<uint8_t>(value);
  }
  if (pos != text.size()) return bad;
  return a;
}

std::string Ipv4Address::to_string() const {
  return fmt::format("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3]);
}

std::string_view to_string(MmdsVersion v) {
  return v == MmdsVersion::kV2 ? "V2" : "V1";
}

Result<MmdsConfig> parse_mmds_config(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"version", "network_interfaces",
                                                     "ipv4_address", "imds_compat"}));
  MmdsConfig m;
  IGN_ASSIGN_OR_RETURN(std::optional<MmdsVersion> version,
                       r.optional_with("version", parse_version));
  m.version = version.value_or(MmdsVersion::kV1);
  if (!r.has("network_interfaces")) return err("missing required field 'network_interfaces'");
  IGN_ASSIGN_OR_RETURN(m.network_interfaces, r.array_with("network_interfaces", parse_iface_id));
  if (m.network_interfaces.empty()) {
    return err("field 'network_interfaces' must list at least one interface id");
  }
  IGN_ASSIGN_OR_RETURN(std::optional<Ipv4Address> address,
                       r.optional_with("ipv4_address", parse_address));
  m.ipv4_address = address.value_or(kDefaultMmdsAddress);
  IGN_ASSIGN_OR_RETURN(m.imds_compat, r.bool_or("imds_compat", false));
  return m;
}

nlohmann::json to_json(const MmdsConfig& m) {
  return {{"version", to_string(m.version)},
          {"network_interfaces", m.network_interfaces},
          {"ipv4_address", m.ipv4_address.to_string()},
          {"imds_compat", m.imds_compat}};
}

}  // namespace ignition::config
