// Vsock parsing and serialization.
#include "vmm/config/vsock.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

namespace {

constexpr size_t kMaxUdsPathLen = 107;    // sizeof(sockaddr_un::sun_path) - 1
constexpr uint32_t kCidAny = UINT32_MAX;  // VMADDR_CID_ANY

}  // namespace

Result<Vsock> parse_vsock(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"guest_cid", "uds_path", "vsock_id"}));
  Vsock v;
  IGN_ASSIGN_OR_RETURN(v.guest_cid, r.required_uint<uint32_t>("guest_cid"));
  if (v.guest_cid < kMinGuestCid) {
    return err("field 'guest_cid' must be at least {} (0-2 are reserved), got {}", kMinGuestCid,
               v.guest_cid);
  }
  if (v.guest_cid == kCidAny)
    return err("field 'guest_cid' must not be {} (VMADDR_CID_ANY)", kCidAny);
  IGN_ASSIGN_OR_RETURN(v.uds_path, r.required_nonempty_string("uds_path"));
  if (v.uds_path.size() > kMaxUdsPathLen) {
    return err("field 'uds_path' is too long for a Unix socket: {} bytes, the limit is {}",
               v.uds_path.size(), kMaxUdsPathLen);
  }
  IGN_ASSIGN_OR_RETURN(std::optional<std::string> deprecated_id, r.optional_string("vsock_id"));
  (void)deprecated_id;
  return v;
}

nlohmann::json to_json(const Vsock& v) {
  return {{"guest_cid", v.guest_cid}, {"uds_path", v.uds_path}};
}

}  // namespace ignition::config
