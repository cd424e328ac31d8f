// Where tests find what they run: the ignition binary, the test guest images, the source tree.
#pragma once

#include <string>

namespace ignition::test {

std::string ignition_binary();
// A built test guest image, e.g. guest_image("ignition-test.elf").
std::string guest_image(const std::string& name);
std::string source_dir();

}  // namespace ignition::test
