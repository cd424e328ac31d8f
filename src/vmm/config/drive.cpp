// Drive / PartialDrive parsing and serialization.
#include "vmm/config/drive.hpp"

#include "vmm/config/json_fields.hpp"
#include "vmm/config/resource_id.hpp"

namespace ignition::config {

namespace {

Result<CacheType> parse_cache_type(const nlohmann::json& j) {
  if (!j.is_string()) return type_error("cache_type", "a string", j);
  return parse_enum<CacheType>(
      "cache_type", j.get_ref<const std::string&>(),
      {{"Unsafe", CacheType::kUnsafe}, {"Writeback", CacheType::kWriteback}});
}

Result<IoEngine> parse_io_engine(const nlohmann::json& j) {
  if (!j.is_string()) return type_error("io_engine", "a string", j);
  return parse_enum<IoEngine>("io_engine", j.get_ref<const std::string&>(),
                              {{"Sync", IoEngine::kSync}, {"Async", IoEngine::kAsync}});
}

}  // namespace

std::string_view to_string(CacheType t) {
  return t == CacheType::kWriteback ? "Writeback" : "Unsafe";
}

std::string_view to_string(IoEngine e) {
  return e == IoEngine::kAsync ? "Async" : "Sync";
}

Result<Drive> parse_drive(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"drive_id", "partuuid", "is_root_device",
                                                     "cache_type", "is_read_only", "path_on_host",
                                                     "rate_limiter", "io_engine", "socket"}));
  Drive d;
  IGN_ASSIGN_OR_RETURN(d.drive_id, r.required_string("drive_id"));
  IGN_TRY(validate_resource_id("drive_id", d.drive_id));
  IGN_ASSIGN_OR_RETURN(d.partuuid, r.optional_string("partuuid"));
  IGN_ASSIGN_OR_RETURN(d.is_root_device, r.required_bool("is_root_device"));
  IGN_ASSIGN_OR_RETURN(std::optional<CacheType> cache,
                       r.optional_with("cache_type", [](auto& v) { return parse_cache_type(v); }));
  d.cache_type = cache.value_or(CacheType::kUnsafe);
  IGN_ASSIGN_OR_RETURN(d.is_read_only, r.optional_bool("is_read_only"));
  IGN_ASSIGN_OR_RETURN(d.path_on_host, r.optional_string("path_on_host"));
  IGN_ASSIGN_OR_RETURN(d.rate_limiter, r.optional_with("rate_limiter", parse_rate_limiter));
  IGN_ASSIGN_OR_RETURN(d.io_engine,
                       r.optional_with("io_engine", [](auto& v) { return parse_io_engine(v); }));
  IGN_ASSIGN_OR_RETURN(d.socket, r.optional_string("socket"));

  // Firecracker picks the backend from which fields are present; mixing them is an error.
  if (d.socket) {
    if (d.socket->empty()) return err("field 'socket' must not be empty");
    if (d.path_on_host || d.is_read_only || d.rate_limiter || d.io_engine) {
      return err(
          "a vhost-user drive ('socket') must not set 'path_on_host', 'is_read_only', "
          "'rate_limiter' or 'io_engine'");
    }
  } else if (!d.path_on_host) {
    return err("missing required field 'path_on_host' (or 'socket' for vhost-user-block)");
  } else if (d.path_on_host->empty()) {
    return err("field 'path_on_host' must not be empty");
  } else {
    // Resolve virtio-block defaults now, so GET shows what the device will use.
    d.is_read_only = d.read_only();
    d.io_engine = d.engine();
  }
  return d;
}

Result<PartialDrive> parse_partial_drive(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"drive_id", "path_on_host", "rate_limiter"}));
  PartialDrive d;
  IGN_ASSIGN_OR_RETURN(d.drive_id, r.required_string("drive_id"));
  IGN_TRY(validate_resource_id("drive_id", d.drive_id));
  IGN_ASSIGN_OR_RETURN(d.path_on_host, r.optional_string("path_on_host"));
  if (d.path_on_host && d.path_on_host->empty()) {
    return err("field 'path_on_host' must not be empty");
  }
  IGN_ASSIGN_OR_RETURN(d.rate_limiter, r.optional_with("rate_limiter", parse_rate_limiter));
  return d;
}

nlohmann::json to_json(const Drive& d) {
  nlohmann::json j = {{"drive_id", d.drive_id},
                      {"partuuid", or_null(d.partuuid)},
                      {"is_root_device", d.is_root_device},
                      {"cache_type", to_string(d.cache_type)},
                      {"is_read_only", or_null(d.is_read_only)},
                      {"path_on_host", or_null(d.path_on_host)},
                      {"rate_limiter", to_json_or_null(d.rate_limiter)},
                      {"io_engine", nlohmann::json()},
                      {"socket", or_null(d.socket)}};
  if (d.io_engine) j["io_engine"] = to_string(*d.io_engine);
  return j;
}

nlohmann::json to_json(const PartialDrive& d) {
  return {{"drive_id", d.drive_id},
          {"path_on_host", or_null(d.path_on_host)},
          {"rate_limiter", to_json_or_null(d.rate_limiter)}};
}

}  // namespace ignition::config
