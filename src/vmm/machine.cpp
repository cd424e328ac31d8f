#include "vmm/machine.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "arch/x86_64/acpi/acpi.hpp"
#include "arch/x86_64/boot_cpu.hpp"
#include "arch/x86_64/boot_params.hpp"
#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/initrd.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/mptable.hpp"
#include "arch/x86_64/msrs.hpp"
#include "devices/legacy/acpi_sleep.hpp"
#include "devices/legacy/boot_timer.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/vmgenid.hpp"
#include "devices/virtio/balloon/balloon.hpp"
#include "devices/virtio/block/block.hpp"
#include "devices/virtio/net/net.hpp"
#include "devices/virtio/pmem/pmem.hpp"
#include "devices/virtio/rng/rng.hpp"
#include "devices/virtio/vsock/vsock.hpp"
#include "mmds/attach.hpp"
#include "vmm/cpu_template.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/guest_pages.hpp"

namespace ignition::vmm {

namespace {
constexpr uint64_t kMiB = 1ULL << 20;
// KVM memory slots: RAM regions from 0, pmem devices from here.
constexpr uint32_t kPmemSlotBase = 16;

// Firecracker's root= for the root device: the root drive is the first disk (/dev/vda, or
// its PARTUUID), a root pmem device is /dev/pmem<its index>; rw unless read-only. Appended
// after boot_args, so it wins over a root= there.
std::string root_device_args(const config::VmConfig& c) {
  for (const auto& d : c.drives) {
    if (!d.is_root_device) continue;
    std::string device = d.partuuid ? "PARTUUID=" + *d.partuuid : "/dev/vda";
    return fmt::format(" root={} {}", device, d.read_only() ? "ro" : "rw");
  }
  for (size_t i = 0; i < c.pmem.size(); ++i)
    if (c.pmem[i].root_device)
      return fmt::format(" root=/dev/pmem{} {}", i, c.pmem[i].read_only ? "ro" : "rw");
  return "";
}
// Used when the configuration gives no boot_args: a serial console and reboot through
// the i8042, which ends the VM.
constexpr const char* kDefaultCmdline = "console=ttyS0 reboot=k panic=1 pci=off";
}  // namespace

Result<std::unique_ptr<Machine>> Machine::create(const config::VmConfig& config,
                                                 const MachineIo& io) {
  const auto& mc = config.machine_config;
  if (mc.vcpu_count == 0) return err("machine-config: vcpu_count must be at least 1");
  if (mc.mem_size_mib == 0) return err("machine-config: mem_size_mib must be at least 1");
  std::vector<GuestMemory::Range> ranges;
  for (const auto& r : x86_64::ram_ranges(mc.mem_size_mib * kMiB))
    ranges.push_back({r.gpa, r.size});
  IGN_ASSIGN_OR_RETURN(auto memory,
                       GuestMemory::create_anonymous(ranges, guest_pages(mc.huge_pages)));
  IGN_ASSIGN_OR_RETURN(auto loop, EventLoop::create());
  IGN_ASSIGN_OR_RETURN(auto task_evt, EventFd::create());

  std::unique_ptr<Machine> m(
      new Machine(config, io, std::move(memory), std::move(loop), std::move(task_evt)));
  IGN_TRY(m->setup_vm());
  IGN_TRY(m->setup_devices());
  IGN_TRY(m->setup_virtio_devices());
  IGN_TRY(m->load_guest());
  IGN_TRY(m->setup_vcpus());
  return m;
}

Machine::~Machine() {
  runners_.clear();
}

Result<void> Machine::setup_vm() {
  IGN_ASSIGN_OR_RETURN(hypervisor_, hv::open_hypervisor());
  IGN_ASSIGN_OR_RETURN(vm_, hypervisor_->create_vm());
  uint32_t slot = 0;
  for (const auto& r : memory_.regions())
    IGN_TRY(vm_->map_memory(slot++, r.gpa, r.size, r.host, /*log_dirty=*/false));
  if (config_.machine_config.track_dirty_pages) IGN_TRY(enable_dirty_tracking());
  return vm_->create_irqchip();
}

Result<void> Machine::setup_devices() {
  IGN_ASSIGN_OR_RETURN(auto exit_fd, EventFd::create());
  exit_request_ = std::make_unique<devices::VmExitRequest>(std::move(exit_fd));

  // VMGenID: a fresh ID on every boot and every restore (restore() then notifies), so a
  // guest can tell it was cloned and reseed.
  IGN_ASSIGN_OR_RETURN(auto vmgenid_fd, EventFd::create());
  IGN_TRY(vm_->register_irqfd(vmgenid_fd.fd(), x86_64::kVmGenIdIrq));
  IGN_ASSIGN_OR_RETURN(
      auto vmgenid,
      devices::VmGenId::create(x86_64::kVmGenIdAddr,
                               devices::IrqLine(std::move(vmgenid_fd), x86_64::kVmGenIdIrq)));
  vmgenid_ = std::move(vmgenid);
  IGN_TRY(vmgenid_->regenerate(memory_));

  IGN_ASSIGN_OR_RETURN(auto serial_irq_fd, EventFd::create());
  IGN_TRY(vm_->register_irqfd(serial_irq_fd.fd(), x86_64::kSerialCom1Irq));
  IGN_ASSIGN_OR_RETURN(auto space_fd, EventFd::create());
  int console_out = io_.console_out;
  if (config_.serial && config_.serial->serial_out_path) {
    const std::string& path = *config_.serial->serial_out_path;
    serial_out_file_.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!serial_out_file_.valid()) return err("serial_out_path {}: {}", path, errno_string());
    console_out = serial_out_file_.get();
  }
  serial_ = std::make_shared<devices::Serial>(
      devices::IrqLine(std::move(serial_irq_fd), x86_64::kSerialCom1Irq), console_out,
      std::move(space_fd));
  IGN_TRY(pio_bus_.insert(serial_, x86_64::kSerialCom1Port, 8));
  IGN_ASSIGN_OR_RETURN(auto kbd_irq, EventFd::create());
  IGN_TRY(vm_->register_irqfd(kbd_irq.fd(), x86_64::kI8042Irq));
  i8042_ = std::make_shared<devices::I8042>(
      *exit_request_, devices::IrqLine(std::move(kbd_irq), x86_64::kI8042Irq));
  IGN_TRY(pio_bus_.insert(i8042_, x86_64::kI8042Port, devices::I8042::kPortCount));
  IGN_TRY(pio_bus_.insert(std::make_shared<devices::AcpiSleep>(*exit_request_),
                          x86_64::kAcpiSleepPort, 1));
  if (io_.reset_port) {
    reset_port_ = std::make_shared<devices::ResetPort>(
        [this](devices::ResetPort::Request r) { on_reset_port(r); });
    IGN_TRY(pio_bus_.insert(reset_port_, x86_64::kResetPort, 4));
  }
  auto report = [this](std::chrono::microseconds wall, std::chrono::microseconds cpu) {
    spdlog::info("Guest-boot-time = {:>6} us {} ms, {:>6} CPU us {} CPU ms", wall.count(),
                 wall.count() / 1000, cpu.count(), cpu.count() / 1000);
    if (io_.snapshot_at_marker && !marker_snapshot_taken_) {
      // The vCPU that wrote the marker parks right after this write, so the snapshot
      // holds the guest exactly at its ready point.
      for (auto& runner : runners_) runner->request_pause();
      post([this] { snapshot_at_marker(); });
    }
  };
  IGN_TRY(mmio_bus_.insert(
      std::make_shared<devices::BootTimer>(io_.start, x86_64::kBootTimerMagic, report),
      x86_64::kBootTimerAddr, 0x1000));
  return {};
}

namespace {
// The VMM's event loop as the devices see it.
class LoopRegistrar final : public devices::virtio::EventRegistrar {
 public:
  explicit LoopRegistrar(EventLoop& loop) : loop_(loop) {}
  Result<void> add(int fd, uint32_t events, Handler handler) override {
    return loop_.add(fd, std::move(handler), events, /*device=*/true);
  }
  void remove(int fd) override { loop_.remove(fd); }

 private:
  EventLoop& loop_;
};
}  // namespace

Result<void> Machine::setup_virtio_devices() {
  registrar_ = std::make_unique<LoopRegistrar>(loop_);
  // The root drive first, so it is the guest's first disk (/dev/vda), as in Firecracker.
  std::vector<const config::Drive*> drives;
  for (const auto& d : config_.drives)
    if (d.is_root_device) drives.push_back(&d);
  for (const auto& d : config_.drives)
    if (!d.is_root_device) drives.push_back(&d);
  for (const config::Drive* d : drives) {
    auto block = devices::virtio::Block::create(*d);
    if (!block.ok()) return context(block.error(), "drive " + d->drive_id);
    IGN_TRY(add_virtio_device(std::move(block).value()));
  }
  for (const auto& iface : config_.network_interfaces) {
    IGN_ASSIGN_OR_RETURN(auto net, devices::virtio::Net::create(iface));
    if (config_.mmds_config && mmds::serves(*config_.mmds_config, iface.iface_id)) {
      if (!io_.mmds) io_.mmds = std::make_shared<mmds::DataStore>();
      mmds_stacks_.push_back(mmds::attach(*net, io_.mmds, *config_.mmds_config));
    }
    IGN_TRY(add_virtio_device(std::move(net)));
  }
  if (config_.vsock) {
    IGN_ASSIGN_OR_RETURN(auto vsock, devices::virtio::Vsock::create(*config_.vsock));
    IGN_TRY(add_virtio_device(std::move(vsock)));
  }
  if (config_.entropy) {
    IGN_ASSIGN_OR_RETURN(auto rng, devices::virtio::Rng::create(*config_.entropy));
    IGN_TRY(add_virtio_device(std::move(rng)));
  }
  if (config_.balloon) {
    IGN_ASSIGN_OR_RETURN(auto balloon, devices::virtio::Balloon::create(
                                           *config_.balloon, config_.machine_config.mem_size_mib));
    balloon_ = balloon.get();
    IGN_TRY(add_virtio_device(std::move(balloon)));
  }
  return setup_pmem_devices();
}

// Each pmem file is mapped into guest-physical memory after RAM (x86_64::pmem_base), in
// configuration order (/dev/pmem0, 1, ...), as its own memory slot: the guest reads and
// writes the file's pages directly, and a read-only device's slot is read-only in KVM.
Result<void> Machine::setup_pmem_devices() {
  using devices::virtio::Pmem;
  // Every file is opened and mapped first, so the regions are placed together from the sizes
  // the guest will see (lseek's, which block devices have too).
  std::vector<devices::virtio::pmem::Mapping> mappings;
  uint64_t total = 0;
  for (const auto& p : config_.pmem) {
    auto mapping =
        devices::virtio::pmem::Mapping::open(p.path_on_host, p.read_only, Pmem::kAlignment);
    if (!mapping.ok()) return context(mapping.error(), "pmem " + p.id);
    total += mapping->size();
    mappings.push_back(std::move(mapping).value());
  }
  const uint64_t ram = config_.machine_config.mem_size_mib * kMiB;
  uint64_t gpa = x86_64::pmem_base(ram, total);
  for (size_t i = 0; i < config_.pmem.size(); ++i) {
    const uint64_t size = mappings[i].size();
    if (!x86_64::pmem_region_fits(gpa, size, ram))
      return err("pmem {}: no room for {} bytes at {:#x}", config_.pmem[i].id, size, gpa);
    auto pmem = Pmem::create(config_.pmem[i], gpa, std::move(mappings[i]));
    if (!pmem.ok()) return pmem.error();  // it names the device
    IGN_TRY(vm_->map_memory(kPmemSlotBase + static_cast<uint32_t>(i), gpa, (*pmem)->size(),
                            (*pmem)->host(), /*log_dirty=*/false, (*pmem)->read_only()));
    gpa += (*pmem)->size();
    IGN_TRY(add_virtio_device(std::move(pmem).value()));
  }
  return {};
}

Result<void> Machine::add_virtio_device(std::unique_ptr<devices::virtio::Device> device) {
  using devices::virtio::MmioTransport;
  uint32_t slot = static_cast<uint32_t>(virtio_.size());
  uint32_t irq = x86_64::kVirtioIrqBase + slot;
  if (irq >= x86_64::kVmGenIdIrq) return err("too many virtio devices (at most {})", slot);
  uint64_t base = x86_64::kVirtioMmioBase + slot * MmioTransport::kWindowSize;

  IGN_ASSIGN_OR_RETURN(auto irq_fd, EventFd::create());
  IGN_TRY(vm_->register_irqfd(irq_fd.fd(), irq));
  auto transport = std::make_shared<MmioTransport>(std::move(device), memory_,
                                                   devices::IrqLine(std::move(irq_fd), irq));
  IGN_TRY(mmio_bus_.insert(transport, base, MmioTransport::kWindowSize));

  // Queue kicks become eventfd signals inside KVM, handled on the event loop: the
  // vCPU that wrote QueueNotify goes straight back into the guest.
  VirtioSlot entry{transport, base, irq, {}};
  for (uint16_t q = 0; q < transport->queue_count(); ++q) {
    IGN_ASSIGN_OR_RETURN(auto kick, EventFd::create());
    IGN_TRY(
        vm_->register_ioeventfd(kick.fd(), base + MmioTransport::kQueueNotifyOffset, 4, false, q));
    IGN_TRY(loop_.add(
        kick.fd(),
        [t = transport.get(), fd = kick.fd(), q](uint32_t) {
          uint64_t n = 0;
          if (::read(fd, &n, sizeof(n)) == sizeof(n)) t->notify(q);
        },
        EPOLLIN, /*device=*/true));
    entry.queue_kicks.push_back(std::move(kick));
  }
  IGN_TRY(transport->register_events(*registrar_));
  virtio_.push_back(std::move(entry));
  return {};
}

Result<void> Machine::load_guest() {
  const auto& boot = config_.boot_source;
  auto kernel = x86_64::load_kernel(memory_, boot.kernel_image_path);
  if (!kernel.ok()) return context(kernel.error(), "kernel " + boot.kernel_image_path);
  kernel_ = *kernel;

  std::optional<x86_64::InitrdPlacement> initrd;
  if (boot.initrd_path) {
    auto placed = x86_64::load_initrd(memory_, *boot.initrd_path, kernel_);
    if (!placed.ok()) return context(placed.error(), "initrd " + *boot.initrd_path);
    initrd = *placed;
  }

  uint32_t vcpus = config_.machine_config.vcpu_count;
  x86_64::AcpiConfig acpi{vcpus, {}};
  acpi.vmgenid = x86_64::VmGenIdSlot{vmgenid_->address(), vmgenid_->gsi()};
  for (const auto& v : virtio_)
    acpi.virtio_devices.push_back({v.base, devices::virtio::MmioTransport::kWindowSize, v.irq});
  IGN_ASSIGN_OR_RETURN(uint64_t rsdp, x86_64::write_acpi_tables(memory_, acpi));
  IGN_TRY(x86_64::write_mptable(memory_, vcpus));

  // Kernels built with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES find the devices here; the
  // others through the DSDT.
  cmdline_ = boot.boot_args.value_or(kDefaultCmdline) + root_device_args(config_);
  for (const auto& v : virtio_)
    cmdline_ += fmt::format(" virtio_mmio.device=4K@{:#x}:{}", v.base, v.irq);
  return x86_64::write_boot_info(memory_, kernel_, {cmdline_, initrd, rsdp});
}

Result<void> Machine::create_vcpus() {
  for (uint32_t id = 0; id < config_.machine_config.vcpu_count; ++id) {
    IGN_ASSIGN_OR_RETURN(auto vcpu, vm_->create_vcpu(id));
    vcpus_.push_back(std::move(vcpu));
  }
  return {};
}

Result<void> Machine::setup_vcpus() {
  IGN_ASSIGN_OR_RETURN(auto supported, hypervisor_->supported_cpuid());
  uint32_t count = config_.machine_config.vcpu_count;
  IGN_TRY(create_vcpus());
  for (uint32_t id = 0; id < count; ++id) {
    hv::Vcpu* vcpu = vcpus_[id].get();
    IGN_ASSIGN_OR_RETURN(auto cpuid,
                         x86_64::build_cpuid(supported, {id, count}, x86_64::CpuidMask{}));
    auto msrs = x86_64::boot_msrs();
    if (config_.cpu_config) apply_cpu_template(*config_.cpu_config, cpuid, msrs);
    if (auto set = vcpu->set_cpuid(cpuid); !set.ok()) return context(set.error(), "cpu-config");
    if (auto set = vcpu->set_msrs(msrs); !set.ok()) return context(set.error(), "cpu-config");
    IGN_ASSIGN_OR_RETURN(auto lapic, vcpu->get_lapic());
    x86_64::configure_lint(lapic);
    IGN_TRY(vcpu->set_lapic(lapic));
    hv::Fpu fpu{};
    fpu.fcw = 0x37f;     // x87 default control word
    fpu.mxcsr = 0x1f80;  // SSE: all exceptions masked
    IGN_TRY(vcpu->set_fpu(fpu));
    if (id == 0) {
      // Only the boot vCPU starts at the kernel; the others wait for INIT/SIPI.
      IGN_ASSIGN_OR_RETURN(auto boot,
                           x86_64::setup_boot_cpu(memory_, kernel_.protocol, kernel_.entry));
      IGN_ASSIGN_OR_RETURN(auto sregs, vcpu->get_sregs());
      x86_64::apply_boot_sregs(sregs, kernel_.protocol);
      IGN_TRY(vcpu->set_sregs(sregs));
      IGN_TRY(vcpu->set_regs(boot.regs));
    }
  }
  return {};
}

void Machine::post(std::function<void()> task) {
  {
    std::lock_guard lock(task_mu_);
    tasks_.push_back(std::move(task));
  }
  task_evt_.signal();
}

void Machine::run_tasks() {
  task_evt_.consume();
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(task_mu_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

void Machine::stop() {
  exit_request_->request(devices::ExitReason::Stop);
}

void Machine::pause() {
  if (paused_) return;
  for (auto& runner : runners_) runner->pause();
  loop_.hold_devices();
  paused_ = true;
}

void Machine::resume() {
  if (!paused_) return;
  loop_.release_devices();
  for (auto& runner : runners_) runner->resume();
  paused_ = false;
}

Result<RunOutcome> Machine::run() {
  IGN_ASSIGN_OR_RETURN(auto stop_evt, EventFd::create());
  for (auto& vcpu : vcpus_) {
    runners_.push_back(std::make_unique<VcpuRunner>(*vcpu, pio_bus_, mmio_bus_, memory_,
                                                    [this, &stop_evt](const VcpuStop& stop) {
                                                      std::lock_guard lock(stop_mu_);
                                                      if (!vcpu_stop_) vcpu_stop_ = stop;
                                                      stop_evt.signal();
                                                    }));
  }
  if (start_paused_) {  // a snapshot loaded without resume_vm: no guest code runs yet
    for (auto& runner : runners_) runner->request_pause();
    loop_.hold_devices();
    paused_ = true;
  }
  for (auto& runner : runners_) runner->start();

  EventLoop& loop = loop_;
  bool done = false;
  IGN_TRY(loop.add(exit_request_->fd(), [&](uint32_t) { done = true; }));
  IGN_TRY(loop.add(stop_evt.fd(), [&](uint32_t) { done = true; }));
  IGN_TRY(loop.add(task_evt_.fd(), [&](uint32_t) { run_tasks(); }));

  // Console input: read what the serial FIFO can take; when it is full, stop reading
  // until the guest drains it (the serial signals its space fd).
  std::vector<uint8_t> pending;
  bool input_open = io_.console_in >= 0;
  auto feed = [&] {
    size_t n = serial_->enqueue_input(pending);
    pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(n));
  };
  std::function<void(uint32_t)> on_input = [&](uint32_t) {
    uint8_t buf[256];
    ssize_t n = ::read(io_.console_in, buf, sizeof(buf));
    if (n <= 0) {
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
      loop.remove(io_.console_in);  // end of input
      input_open = false;
      return;
    }
    pending.assign(buf, buf + n);
    feed();
    if (!pending.empty()) loop.remove(io_.console_in);
  };
  // Files and /dev/null cannot be polled (EPERM); such input is treated as absent.
  if (input_open) input_open = loop.add(io_.console_in, on_input).ok();
  IGN_TRY(loop.add(serial_->space_fd(), [&](uint32_t) {
    serial_->ack_space();
    if (pending.empty()) return;
    feed();
    if (pending.empty() && input_open) (void)loop.add(io_.console_in, on_input);
  }));

  auto looped = [&]() -> Result<void> {
    while (!done) IGN_TRY(loop.run_once(-1));
    return {};
  }();
  for (auto& runner : runners_) runner->stop();
  log_reset_summary();
  // The handlers above captured this frame.
  for (int fd :
       {exit_request_->fd(), stop_evt.fd(), io_.console_in, serial_->space_fd(), task_evt_.fd()})
    loop.remove(fd);
  IGN_TRY(looped);

  switch (exit_request_->reason()) {
    case devices::ExitReason::Reset:
      return RunOutcome{RunOutcome::Kind::Reset, "guest reboot (i8042 reset)"};
    case devices::ExitReason::Shutdown:
      return RunOutcome{RunOutcome::Kind::Shutdown, "guest power-off (ACPI S5)"};
    case devices::ExitReason::Stop:
      return RunOutcome{RunOutcome::Kind::Shutdown, "stopped by the VMM"};
    case devices::ExitReason::None:
      break;
  }
  std::lock_guard lock(stop_mu_);
  if (!vcpu_stop_) return err("event loop stopped without a reason");
  switch (vcpu_stop_->kind) {
    case VcpuStop::Kind::Reset:
      return RunOutcome{RunOutcome::Kind::Reset, vcpu_stop_->detail};
    case VcpuStop::Kind::Shutdown:
      return RunOutcome{RunOutcome::Kind::Shutdown, vcpu_stop_->detail};
    case VcpuStop::Kind::Fatal:
      return RunOutcome{RunOutcome::Kind::Fatal, vcpu_stop_->detail};
  }
  return err("unreachable");
}

}  // namespace ignition::vmm
