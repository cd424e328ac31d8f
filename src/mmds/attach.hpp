// Putting the MMDS on a virtio-net device: a Stack for each interface the MMDS config names,
// all sharing the data store the API writes. The machine calls this as it creates the
// devices; afterwards the device's own thread drives the stack.
#pragma once

#include <memory>
#include <string_view>

#include "devices/virtio/net/net.hpp"
#include "mmds/data_store.hpp"
#include "mmds/stack.hpp"
#include "vmm/config/mmds_config.hpp"

namespace ignition::mmds {

// The stack options `config` asks for (its address, version and IMDS compatibility).
StackOptions stack_options(const config::MmdsConfig& config);
// Whether `config` names the interface `iface_id`.
bool serves(const config::MmdsConfig& config, std::string_view iface_id);

// Makes `net` answer the MMDS's address itself: its TX path gives the stack the frames for
// the MMDS, and its RX path delivers the stack's replies before the TAP's frames. Call before
// the device starts. The returned stack (kept alive by the device too) is for its metrics.
std::shared_ptr<Stack> attach(devices::virtio::Net& net, std::shared_ptr<DataStore> store,
                              const config::MmdsConfig& config);

}  // namespace ignition::mmds
