// Putting the MMDS on a virtio-net device.
#include "mmds/attach.hpp"

#include <algorithm>

namespace ignition::mmds {

StackOptions stack_options(const config::MmdsConfig& config) {
  StackOptions options;
  const auto& o = config.ipv4_address.octets;
  options.ipv4 = uint32_t{o[0]} << 24 | uint32_t{o[1]} << 16 | uint32_t{o[2]} << 8 | o[3];
  options.responder.version = config.version;
  options.responder.imds_compat = config.imds_compat;
  return options;
}

bool serves(const config::MmdsConfig& config, std::string_view iface_id) {
  return std::find(config.network_interfaces.begin(), config.network_interfaces.end(), iface_id) !=
         config.network_interfaces.end();
}

std::shared_ptr<Stack> attach(devices::virtio::Net& net, std::shared_ptr<DataStore> store,
                              const config::MmdsConfig& config) {
  auto stack = std::make_shared<Stack>(std::move(store), stack_options(config));
  net.set_tx_filter([stack](std::span<const uint8_t> frame) { return stack->take_frame(frame); },
                    [stack](std::span<const uint8_t> head) { return stack->is_mmds_frame(head); });
  net.set_rx_source([stack](std::span<uint8_t> buf) { return stack->next_frame(buf); });
  return stack;
}

}  // namespace ignition::mmds
