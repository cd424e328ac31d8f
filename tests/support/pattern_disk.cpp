#include "support/pattern_disk.hpp"

#include <cstring>
#include <fstream>
#include <iterator>

#include "ign_protocol.h"

namespace ignition::test {

void write_pattern_disk(const std::string& path, uint64_t sectors) {
  std::string data(sectors * IGN_BLK_SECTOR_SIZE, '\0');
  for (uint64_t s = 0; s < sectors; s++)
    for (size_t w = 0; w < IGN_BLK_SECTOR_SIZE / 8; w++)
      std::memcpy(data.data() + s * IGN_BLK_SECTOR_SIZE + w * 8, &s, 8);
  std::ofstream(path, std::ios::binary) << data;
}

int64_t first_unexpected_sector(const std::string& path, bool written, uint64_t sectors) {
  std::ifstream in(path, std::ios::binary);
  std::string disk((std::istreambuf_iterator<char>(in)), {});
  if (disk.size() != sectors * IGN_BLK_SECTOR_SIZE) return 0;
  for (uint64_t s = 0; s < sectors; s++) {
    bool rewritten =
        written && s >= IGN_BLK_WRITE_FIRST && s < IGN_BLK_WRITE_FIRST + IGN_BLK_WRITE_COUNT;
    uint64_t want = rewritten ? (IGN_BLK_WRITE_TAG | s) : s;
    for (size_t w = 0; w < IGN_BLK_SECTOR_SIZE / 8; w++) {
      uint64_t v;
      std::memcpy(&v, disk.data() + s * IGN_BLK_SECTOR_SIZE + w * 8, 8);
      if (v != want) return static_cast<int64_t>(s);
    }
  }
  return -1;
}

}  // namespace ignition::test
