// NetworkInterface / PartialNetworkInterface / MacAddress parsing and serialization.
#include "vmm/config/network_interface.hpp"

#include "vmm/config/json_fields.hpp"
#include "vmm/config/resource_id.hpp"

namespace ignition::config {

namespace {

constexpr size_t kMaxIfaceNameLen = 15;  // IFNAMSIZ - 1
constexpr uint16_t kMinMtu = 68;         // RFC 791's minimum IPv4 MTU

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<MacAddress> parse_mac_json(const nlohmann::json& j) {
  if (!j.is_string()) return type_error("guest_mac", "a string", j);
  return MacAddress::parse(j.get_ref<const std::string&>());
}

}  // namespace

Result<MacAddress> MacAddress::parse(std::string_view text) {
  MacAddress mac;
  Error bad = err("invalid MAC address '{}': expected six hex pairs like 06:00:ac:10:00:02", text);
  if (text.size() != 17) return bad;
  for (size_t i = 0; i < 6; ++i) {
    int hi = hex_digit(text[i * 3]);
    int lo = hex_digit(text[i * 3 + 1]);
    if (hi < 0 || lo < 0) return bad;
    if (i < 5 && text[i * 3 + 2] != ':') return bad;
    mac.bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return mac;
}

std::string MacAddress::to_string() const {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2],
                     bytes[3], bytes[4], bytes[5]);
}

Result<NetworkInterface> parse_network_interface(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"iface_id", "host_dev_name", "guest_mac",
                                                     "mtu", "rx_rate_limiter", "tx_rate_limiter"}));
  NetworkInterface n;
  IGN_ASSIGN_OR_RETURN(n.iface_id, r.required_string("iface_id"));
  IGN_TRY(validate_resource_id("iface_id", n.iface_id));
  IGN_ASSIGN_OR_RETURN(n.host_dev_name, r.required_nonempty_string("host_dev_name"));
  if (n.host_dev_name.size() > kMaxIfaceNameLen) {
    return err("field 'host_dev_name' is too long: '{}' has {} bytes, the limit is {}",
               n.host_dev_name, n.host_dev_name.size(), kMaxIfaceNameLen);
  }
  IGN_ASSIGN_OR_RETURN(n.guest_mac, r.optional_with("guest_mac", parse_mac_json));
  IGN_ASSIGN_OR_RETURN(n.mtu, r.optional_uint<uint16_t>("mtu"));
  if (n.mtu && *n.mtu < kMinMtu) {
    return err("field 'mtu' must be between {} and 65535, got {}", kMinMtu, *n.mtu);
  }
  IGN_ASSIGN_OR_RETURN(n.rx_rate_limiter, r.optional_with("rx_rate_limiter", parse_rate_limiter));
  IGN_ASSIGN_OR_RETURN(n.tx_rate_limiter, r.optional_with("tx_rate_limiter", parse_rate_limiter));
  return n;
}

Result<PartialNetworkInterface> parse_partial_network_interface(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r,
                       FieldReader::open(j, {"iface_id", "rx_rate_limiter", "tx_rate_limiter"}));
  PartialNetworkInterface n;
  IGN_ASSIGN_OR_RETURN(n.iface_id, r.required_string("iface_id"));
  IGN_TRY(validate_resource_id("iface_id", n.iface_id));
  IGN_ASSIGN_OR_RETURN(n.rx_rate_limiter, r.optional_with("rx_rate_limiter", parse_rate_limiter));
  IGN_ASSIGN_OR_RETURN(n.tx_rate_limiter, r.optional_with("tx_rate_limiter", parse_rate_limiter));
  return n;
}

nlohmann::json to_json(const NetworkInterface& n) {
  return {{"iface_id", n.iface_id},
          {"host_dev_name", n.host_dev_name},
          {"guest_mac", n.guest_mac ? nlohmann::json(n.guest_mac->to_string()) : nlohmann::json()},
          {"mtu", or_null(n.mtu)},
          {"rx_rate_limiter", to_json_or_null(n.rx_rate_limiter)},
          {"tx_rate_limiter", to_json_or_null(n.tx_rate_limiter)}};
}

nlohmann::json to_json(const PartialNetworkInterface& n) {
  return {{"iface_id", n.iface_id},
          {"rx_rate_limiter", to_json_or_null(n.rx_rate_limiter)},
          {"tx_rate_limiter", to_json_or_null(n.tx_rate_limiter)}};
}

}  // namespace ignition::config
