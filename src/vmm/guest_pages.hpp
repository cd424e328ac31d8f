// machine-config huge_pages ("None", "Transparent", "2M", validated by the config) as the
// kind of pages GuestMemory puts behind guest RAM.
#pragma once

#include <string_view>

#include "memory/guest_memory.hpp"

namespace ignition::vmm {

inline GuestMemory::Pages guest_pages(std::string_view huge_pages) {
  if (huge_pages == "2M") return GuestMemory::Pages::kHuge2M;
  if (huge_pages == "Transparent") return GuestMemory::Pages::kTransparent;
  return GuestMemory::Pages::kSmall;
}

}  // namespace ignition::vmm
