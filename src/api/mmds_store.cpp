// The MMDS data store.
#include "api/mmds_store.hpp"

#include "api/api_types.hpp"

namespace ignition::api {

Result<void> MmdsStore::put(nlohmann::json data) {
  if (dump_json(data).size() > limit_) return Error{std::string(kLimitExceeded)};
  data_ = std::move(data);
  initialized_ = true;
  return {};
}

Result<void> MmdsStore::patch(const nlohmann::json& patch) {
  if (!initialized_) return err("MMDS error: The MMDS data store is not initialized.");
  nlohmann::json merged = data_;
  merged.merge_patch(patch);
  if (dump_json(merged).size() > limit_) return Error{std::string(kLimitExceeded)};
  data_ = std::move(merged);
  return {};
}

nlohmann::json MmdsStore::get() const {
  return data_.is_null() ? nlohmann::json::object() : data_;
}

}  // namespace ignition::api
