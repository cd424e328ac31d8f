// The legacy devices driven as a guest would, through their register interface.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "devices/bus.hpp"
#include "devices/legacy/acpi_sleep.hpp"
#include "devices/legacy/boot_timer.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/serial.hpp"

namespace ignition::devices {
namespace {

uint8_t rd(BusDevice& d, uint64_t off) {
  uint8_t v = 0;
  d.read(off, {&v, 1});
  return v;
}
void wr(BusDevice& d, uint64_t off, uint8_t v) {
  d.write(off, {&v, 1});
}

struct SerialFixture : ::testing::Test {
  void SetUp() override {
    ASSERT_EQ(::pipe2(out, O_NONBLOCK | O_CLOEXEC), 0);
    auto irq_fd = EventFd::create();
    auto space = EventFd::create();
    ASSERT_TRUE(irq_fd.ok() && space.ok());
    irq_probe = ::dup(irq_fd->fd());
    serial = std::make_unique<Serial>(IrqLine(std::move(irq_fd).value(), 4), out[1],
                                      std::move(space).value());
  }
  void TearDown() override {
    ::close(out[0]);
    ::close(out[1]);
    ::close(irq_probe);
  }
  // Interrupts raised since the last call.
  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(irq_probe, &n, sizeof(n)) == sizeof(n) ? n : 0;
  }
  std::string output() {
    char buf[256];
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  int out[2];
  int irq_probe = -1;
  std::unique_ptr<Serial> serial;
};

TEST_F(SerialFixture, TransmitsToTheOutputFd) {
  for (char c : std::string("hi\n")) wr(*serial, 0, static_cast<uint8_t>(c));
  EXPECT_EQ(output(), "hi\n");
  EXPECT_EQ(rd(*serial, 5) & 0x60, 0x60) << "THR empty and transmitter idle";
}

TEST_F(SerialFixture, ReceivesInputAndRaisesDataReadyInterrupt) {
  wr(*serial, 1, 0x01);  // IER: received data available
  EXPECT_EQ(irqs(), 0u);
  const uint8_t in[] = {'a', 'b'};
  EXPECT_EQ(serial->enqueue_input(in), 2u);
  EXPECT_EQ(irqs(), 1u);
  EXPECT_EQ(rd(*serial, 2) & 0x0f, 0x04) << "IIR: received data";
  EXPECT_EQ(rd(*serial, 5) & 0x01, 0x01) << "LSR: data ready";
  EXPECT_EQ(rd(*serial, 0), 'a');
  EXPECT_EQ(rd(*serial, 0), 'b');
  EXPECT_EQ(rd(*serial, 5) & 0x01, 0x00);
  EXPECT_EQ(rd(*serial, 2) & 0x0f, 0x01) << "IIR: nothing pending";
}

TEST_F(SerialFixture, ThrEmptyInterruptOnEnableAndAfterEachByte) {
  wr(*serial, 1, 0x02);  // IER: THR empty
  EXPECT_EQ(irqs(), 1u) << "enabling THRE with an empty THR interrupts at once";
  EXPECT_EQ(rd(*serial, 2) & 0x0f, 0x02);
  EXPECT_EQ(rd(*serial, 2) & 0x0f, 0x01) << "reading IIR acknowledged THRE";
  wr(*serial, 0, 'x');
  EXPECT_EQ(irqs(), 1u);
}

TEST_F(SerialFixture, FifoHoldsSixtyFourBytesAndSignalsSpace) {
  std::vector<uint8_t> in(100, 'z');
  EXPECT_EQ(serial->enqueue_input(in), Serial::kFifoSize);
  rd(*serial, 0);
  uint64_t space = 0;
  EXPECT_EQ(::read(serial->space_fd(), &space, sizeof(space)), 8);
  EXPECT_EQ(space, 1u);
}

TEST_F(SerialFixture, LoopbackAndDivisorLatch) {
  wr(*serial, 3, 0x80);  // DLAB
  wr(*serial, 0, 0x01);
  wr(*serial, 1, 0x00);
  EXPECT_EQ(rd(*serial, 0), 0x01);
  wr(*serial, 3, 0x03);
  wr(*serial, 4, 0x10 | 0x03);  // loopback, DTR, RTS
  wr(*serial, 0, 'L');
  EXPECT_EQ(output(), "") << "loopback keeps bytes off the wire";
  EXPECT_EQ(rd(*serial, 0), 'L');
  EXPECT_EQ(rd(*serial, 6) & 0x30, 0x30) << "MSR mirrors DTR/RTS as DSR/CTS";
}

TEST(I8042, ResetCommandRequestsVmExit) {
  auto fd = EventFd::create();
  ASSERT_TRUE(fd.ok());
  VmExitRequest exit(std::move(fd).value());
  I8042 kbd(exit);
  wr(kbd, 4, 0xaa);  // self-test
  EXPECT_EQ(rd(kbd, 4) & 0x01, 0x01);
  EXPECT_EQ(rd(kbd, 0), 0x55);
  EXPECT_EQ(exit.reason(), ExitReason::None);
  wr(kbd, 4, 0xfe);
  EXPECT_EQ(exit.reason(), ExitReason::Reset);
}

// The i8042 with a keyboard interrupt line whose raises the test can count.
struct KeyboardFixture : ::testing::Test {
  void SetUp() override {
    auto exit_fd = EventFd::create();
    auto irq_fd = EventFd::create();
    ASSERT_TRUE(exit_fd.ok() && irq_fd.ok());
    exit = std::make_unique<VmExitRequest>(std::move(exit_fd).value());
    irq_probe = ::dup(irq_fd->fd());
    kbd = std::make_unique<I8042>(*exit, IrqLine(std::move(irq_fd).value(), 1));
  }
  void TearDown() override { ::close(irq_probe); }
  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(irq_probe, &n, sizeof(n)) == sizeof(n) ? n : 0;
  }
  std::vector<uint8_t> drain() {
    std::vector<uint8_t> bytes;
    while (rd(*kbd, 4) & 0x01) bytes.push_back(rd(*kbd, 0));
    return bytes;
  }
  std::unique_ptr<VmExitRequest> exit;
  std::unique_ptr<I8042> kbd;
  int irq_probe = -1;
};

TEST_F(KeyboardFixture, CtrlAltDelTypesScancodesWithAnInterruptPerKey) {
  EXPECT_EQ(rd(*kbd, 4) & 0x01, 0) << "output buffer empty";
  ASSERT_TRUE(kbd->trigger_ctrl_alt_del().ok());
  EXPECT_EQ(irqs(), 3u) << "Ctrl, Alt, Del";
  EXPECT_EQ(rd(*kbd, 4) & 0x01, 0x01);
  // Set 2 make codes: Ctrl 0x14, Alt 0x11, Del 0xE0 0x71; a further interrupt after each
  // read that leaves bytes behind.
  EXPECT_EQ(drain(), (std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71}));
  EXPECT_EQ(irqs(), 3u);
  EXPECT_EQ(rd(*kbd, 0), 0) << "an empty buffer reads as 0";
  EXPECT_EQ(irqs(), 0u);
  EXPECT_EQ(exit->reason(), ExitReason::None);
}

TEST_F(KeyboardFixture, FullBufferRefusesTheWholeSequence) {
  for (size_t i = 0; i < I8042::kBufferSize / 4; ++i) ASSERT_TRUE(kbd->trigger_ctrl_alt_del().ok());
  irqs();
  EXPECT_FALSE(kbd->trigger_ctrl_alt_del().ok());
  EXPECT_EQ(irqs(), 0u);
  EXPECT_EQ(drain().size(), I8042::kBufferSize) << "nothing of the refused sequence queued";
  EXPECT_TRUE(kbd->trigger_ctrl_alt_del().ok()) << "room again once the guest read";
}

TEST_F(KeyboardFixture, GuestCanMaskTheKeyboardInterrupt) {
  wr(*kbd, 4, 0x60);  // write the control register...
  EXPECT_EQ(rd(*kbd, 4) & 0x08, 0x08) << "waiting for the data byte";
  wr(*kbd, 0, 0x04);  // ...without the keyboard interrupt bit
  ASSERT_TRUE(kbd->trigger_ctrl_alt_del().ok());
  EXPECT_EQ(irqs(), 0u);
  EXPECT_EQ(drain().size(), 4u) << "the keys still wait to be polled";
  wr(*kbd, 4, 0x20);  // read the control register back
  EXPECT_EQ(rd(*kbd, 0), 0x04);
}

TEST_F(KeyboardFixture, KeyboardCommandsAreAcknowledgedAndOutputPortKept) {
  wr(*kbd, 0, 0xff);  // keyboard reset, to the keyboard itself
  EXPECT_EQ(irqs(), 1u);
  EXPECT_EQ(rd(*kbd, 0), 0xfa);
  wr(*kbd, 4, 0xd1);  // write output port
  wr(*kbd, 0, 0x03);
  wr(*kbd, 4, 0xd0);  // read it
  EXPECT_EQ(rd(*kbd, 0), 0x03);
  EXPECT_EQ(kbd->counters().resets, 0u);
  wr(*kbd, 4, 0xfe);
  EXPECT_EQ(exit->reason(), ExitReason::Reset);
  EXPECT_EQ(kbd->counters().resets, 1u);
}

TEST_F(KeyboardFixture, QueuedKeysSurviveASnapshot) {
  ASSERT_TRUE(kbd->trigger_ctrl_alt_del().ok());
  EXPECT_EQ(rd(*kbd, 0), 0x14);
  I8042 restored(*exit);  // no interrupt line: keys wait to be polled
  ASSERT_TRUE(restored.restore_state(kbd->save_state()).ok());
  EXPECT_FALSE(restored.has_keyboard_irq());
  std::vector<uint8_t> rest;
  while (rd(restored, 4) & 0x01) rest.push_back(rd(restored, 0));
  EXPECT_EQ(rest, (std::vector<uint8_t>{0x11, 0xe0, 0x71}));
}

TEST(AcpiSleep, OnlyS5WithSleepEnablePowersOff) {
  auto fd = EventFd::create();
  ASSERT_TRUE(fd.ok());
  VmExitRequest exit(std::move(fd).value());
  AcpiSleep sleep(exit);
  wr(sleep, 0, 5 << 2);               // S5 without SLP_EN
  wr(sleep, 0, (3 << 2) | (1 << 5));  // S3
  EXPECT_EQ(exit.reason(), ExitReason::None);
  wr(sleep, 0, (5 << 2) | (1 << 5));
  EXPECT_EQ(exit.reason(), ExitReason::Shutdown);
}

TEST(BootTimer, ReportsOnlyTheMagicValue) {
  int reports = 0;
  BootTimer timer(BootTimer::Clock::now(), 123,
                  [&](std::chrono::microseconds wall, std::chrono::microseconds) {
                    EXPECT_GE(wall.count(), 0);
                    ++reports;
                  });
  wr(timer, 0, 7);
  wr(timer, 1, 123);
  EXPECT_EQ(reports, 0);
  wr(timer, 0, 123);
  EXPECT_EQ(reports, 1);
}

struct Recorder : BusDevice {
  void read(uint64_t offset, std::span<uint8_t> data) override {
    last = offset;
    data[0] = 0x42;
  }
  void write(uint64_t offset, std::span<const uint8_t>) override { last = offset; }
  uint64_t last = ~0ULL;
};

TEST(Bus, RoutesByRangeAndRejectsOverlaps) {
  Bus bus;
  auto a = std::make_shared<Recorder>();
  auto b = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.insert(a, 0x3f8, 8).ok());
  ASSERT_TRUE(bus.insert(b, 0x60, 5).ok());
  EXPECT_FALSE(bus.insert(b, 0x3fc, 8).ok());
  EXPECT_FALSE(bus.insert(b, 0x3f0, 9).ok());
  EXPECT_FALSE(bus.insert(b, ~0ULL - 1, 4).ok());
  uint8_t v = 0;
  EXPECT_TRUE(bus.read(0x3fd, {&v, 1}));
  EXPECT_EQ(a->last, 5u);
  EXPECT_EQ(v, 0x42);
  EXPECT_TRUE(bus.write(0x64, {&v, 1}));
  EXPECT_EQ(b->last, 4u);
  EXPECT_FALSE(bus.read(0x400, {&v, 1}));
  EXPECT_FALSE(bus.read(0x5f, {&v, 1}));
}

}  // namespace
}  // namespace ignition::devices
