// Fuzzes the virtio transport, split-virtqueue parsing and the devices with a driver
// that does anything: arbitrary register writes, arbitrary guest memory (rings,
// descriptors, indirect tables) and kicks. The VMM must never crash, hang, or touch
// memory outside the guest; ASan/UBSan and libFuzzer's timeouts catch it if it does.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <functional>
#include <memory>

#include <spdlog/spdlog.h>

#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/rng/rng.hpp"
#include "fuzz_devices.hpp"
#include "support/virtio_driver.hpp"

namespace {

using namespace ignition;
using namespace ignition::devices::virtio;

constexpr uint64_t kRamSize = 256 * 1024;

GuestMemory& memory() {
  static GuestMemory* mem = [] {
    auto m = GuestMemory::create_anonymous({{0, kRamSize}});
    if (!m.ok()) std::abort();
    return new GuestMemory(std::move(m).value());
  }();
  return *mem;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // malformed input is the point: don't log it
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  GuestMemory& mem = memory();
  (void)mem.fill(0, 0, kRamSize);

  auto device = fuzz::make_device(in.ConsumeIntegral<uint8_t>());
  if (!device) return 0;
  auto irq = EventFd::create();
  if (!irq.ok()) return 0;
  MmioTransport transport(std::move(device), mem, devices::IrqLine(std::move(irq).value(), 5));
  test::VirtioTestDriver driver(transport, mem, 0x1000);

  // Usually start properly, so the fuzzer spends its time past the handshake.
  bool started = in.ConsumeBool();
  if (started) {
    uint64_t features = in.ConsumeIntegral<uint64_t>() | kFeatureVersion1;
    std::vector<uint16_t> sizes(transport.queue_count());
    for (auto& s : sizes) s = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange(0, 8));
    driver.start(features & driver.device_features(), sizes);
  }

  for (int op = 0; op < 64 && in.remaining_bytes() > 0; ++op) {
    switch (in.ConsumeIntegralInRange(0, 5)) {
      case 0: {  // any register or config write
        uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, 0x1ff);
        auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(1, 8));
        transport.write(offset, bytes);
        break;
      }
      case 1: {  // any read
        uint8_t buf[8];
        transport.read(in.ConsumeIntegralInRange<uint64_t>(0, 0x1ff),
                       {buf, in.ConsumeIntegralInRange<size_t>(1, 8)});
        break;
      }
      case 2: {  // scribble on guest memory: rings, descriptors, buffers
        uint64_t at = in.ConsumeIntegralInRange<uint64_t>(0, kRamSize - 8);
        auto bytes = in.ConsumeBytes<uint8_t>(8);
        (void)mem.write(at, bytes);
        break;
      }
      case 3:  // a well-formed-looking chain with fuzzed addresses and lengths
        if (transport.queue_count() > 0) {
          uint16_t q = in.ConsumeIntegralInRange<uint16_t>(0, transport.queue_count() - 1);
          std::vector<test::DriverBuffer> bufs(in.ConsumeIntegralInRange(1, 4));
          for (auto& b : bufs)
            b = {in.ConsumeIntegral<uint64_t>() % (kRamSize * 2), in.ConsumeIntegral<uint32_t>(),
                 in.ConsumeBool()};
          driver.write_reg(0x30, q);
          // The test driver only knows the queue layout it set up itself in start().
          if (started && driver.read_reg(0x44)) driver.post(q, bufs, in.ConsumeIntegral<uint8_t>());
        }
        break;
      case 4:  // kick
        transport.notify(in.ConsumeIntegral<uint16_t>() % 4);
        break;
      case 5:  // reset and maybe restart
        driver.write_reg(0x70, 0);
        break;
    }
  }
  return 0;
}
