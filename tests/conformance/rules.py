"""What the spec's schemas cannot say and the suite needs: when each operation is allowed
(Firecracker's pre-boot/post-boot rules, from its rpc_interface), which routes ignition
documents as partial (docs/api.md), and values that a real VMM accepts where the schema only
gives a type (paths to files that exist, ids that match the path, sizes that fit)."""

from instances import SKIP

PRE, POST, ANY = "pre-boot", "post-boot", "any"

# Every operation of the spec must be listed here: the suite fails on one it does not know,
# so a new route in the spec is noticed.
STATE = {
    "GET /": ANY,
    "GET /version": ANY,
    "GET /vm/config": ANY,
    "GET /machine-config": ANY,
    "GET /balloon": ANY,
    "GET /mmds": ANY,
    "PUT /mmds": ANY,
    "PATCH /mmds": ANY,
    "PUT /actions": PRE,  # InstanceStart; FlushMetrics and SendCtrlAltDel are post-boot
    "PUT /boot-source": PRE,
    "PUT /cpu-config": PRE,
    "PUT /drives/{drive_id}": PRE,
    "PUT /network-interfaces/{iface_id}": PRE,
    "PUT /pmem/{id}": PRE,
    "PUT /vsock": PRE,
    "PUT /entropy": PRE,
    "PUT /serial": PRE,
    "PUT /balloon": PRE,
    "PUT /hotplug/memory": PRE,
    "PUT /logger": PRE,
    "PUT /metrics": PRE,
    "PUT /machine-config": PRE,
    "PATCH /machine-config": PRE,
    "PUT /mmds/config": PRE,
    "PUT /snapshot/load": PRE,
    "PATCH /drives/{drive_id}": POST,
    "PATCH /network-interfaces/{iface_id}": POST,
    "PATCH /pmem/{id}": POST,
    "PATCH /balloon": POST,
    "GET /balloon/statistics": POST,
    "PATCH /balloon/statistics": POST,
    "PATCH /balloon/hinting/start": POST,
    "GET /balloon/hinting/status": POST,
    "PATCH /balloon/hinting/stop": POST,
    "GET /hotplug/memory": POST,
    "PATCH /hotplug/memory": POST,
    "PATCH /vm": POST,
    "PUT /snapshot/create": POST,
}

# Routes docs/api.md lists as "partial" (refused with "not supported yet") or "not yet": in
# their valid state the suite accepts a spec-valid success or a spec-valid fault, and lists
# those that answered "not supported yet". Every other route must succeed where it is valid.
PARTIAL = {
    "PATCH /pmem/{id}",
    "GET /hotplug/memory",
    "PATCH /hotplug/memory",
    # not yet: no free page hinting (a balloon with it fails InstanceStart, so the suite's
    # balloon has it off and these answer "not enabled")
    "PATCH /balloon/hinting/start",
    "GET /balloon/hinting/status",
    "PATCH /balloon/hinting/stop",
}

# Full routes whose valid request may still be refused for a documented reason the test guest
# causes: op -> text the fault must contain.
REFUSAL_ALLOWED = {
    # The test guest has no balloon driver: "refused until the guest's driver has started the
    # device" (docs/api.md), as Firecracker refuses an update before the device is activated.
    "PATCH /balloon": "driver has not started",
}

# PATCH bodies that the spec gives the PUT's schema for ("a subset of" it): its required
# fields are not required in the PATCH (Firecracker's MachineConfigUpdate has them optional).
PATCH_SUBSET = {"PATCH /machine-config"}

# Where Firecracker itself accepts what the spec's schema refuses, and ignition does as
# Firecracker does (a drop-in must): op -> {invalid-body label prefix: why}. Such a request
# may succeed or fault; the suite prints the note.
FIRECRACKER_LENIENT = {
    "PUT /mmds": {
        "body of the wrong type": "Firecracker stores any JSON value (serde_json::Value), "
        "the spec says object"
    },
    "PATCH /mmds": {
        "body of the wrong type": "Firecracker merges any JSON value (RFC 7396: a non-object "
        "patch replaces the document), the spec says object"
    },
}

NOT_YET = "not supported yet"
BEFORE_START = "The requested operation is not supported before starting the microVM."
AFTER_START = "The requested operation is not supported after starting the microVM."

# Ids used in paths (and in the bodies that repeat them).
IDS = {"drive_id": "conf_drive", "iface_id": "conf_net0", "id": "conf_pmem"}

# The pre-boot configuration order (later resources refer to earlier ones: MMDS to the
# network interface).
CONFIGURE_ORDER = [
    "PUT /logger",
    "PUT /metrics",
    "PUT /boot-source",
    "PUT /machine-config",
    "PATCH /machine-config",
    "PUT /cpu-config",
    "PUT /drives/{drive_id}",
    "PUT /network-interfaces/{iface_id}",
    "PUT /pmem/{id}",
    "PUT /vsock",
    "PUT /entropy",
    "PUT /serial",
    "PUT /balloon",
    "PUT /hotplug/memory",
    "PUT /mmds/config",
    "PUT /mmds",
    "PATCH /mmds",
]

# Where a configured resource shows up in GET /vm/config (FullVmConfiguration), to check that
# what was PUT is what is read back: op -> (key, list element id field or None).
VM_CONFIG_KEY = {
    "PUT /boot-source": ("boot-source", None),
    "PUT /machine-config": ("machine-config", None),
    "PUT /cpu-config": ("cpu-config", None),
    "PUT /drives/{drive_id}": ("drives", "drive_id"),
    "PUT /network-interfaces/{iface_id}": ("network-interfaces", "iface_id"),
    "PUT /pmem/{id}": ("pmem", "id"),
    "PUT /vsock": ("vsock", None),
    "PUT /entropy": ("entropy", None),
    "PUT /balloon": ("balloon", None),
    "PUT /hotplug/memory": ("memory-hotplug", None),
    "PUT /mmds/config": ("mmds-config", None),
    "PUT /logger": ("logger", None),
    "PUT /metrics": ("metrics", None),
}


def value_overrides(fx):
    """Values for properties, keyed "Definition.property" or "property" (see
    instances.Generator). fx: the Fixtures (files the run made)."""
    bucket = {"size": 1048576, "one_time_burst": 0, "refill_time": 100}
    return {
        # Paths to files that exist (the VMM opens them at PUT time).
        "BootSource.kernel_image_path": fx.kernel,
        "BootSource.initrd_path": fx.initrd,
        "BootSource.boot_args": fx.boot_args,
        "Drive.path_on_host": fx.disk,
        "PartialDrive.path_on_host": fx.disk,
        "Pmem.path_on_host": fx.pmem,
        "Logger.log_path": fx.log,
        "Metrics.metrics_path": fx.metrics,
        "SerialDevice.serial_out_path": fx.serial,
        "Vsock.uds_path": fx.vsock_uds,
        "SnapshotCreateParams.snapshot_path": fx.snapshot_state,
        "SnapshotCreateParams.mem_file_path": fx.snapshot_mem,
        "SnapshotLoadParams.snapshot_path": fx.snapshot_state,
        "MemoryBackend.backend_path": fx.snapshot_mem,
        # Ids repeat the path's.
        "drive_id": lambda ids: ids["drive_id"],
        "iface_id": lambda ids: ids["iface_id"],
        "Pmem.id": lambda ids: ids["id"],
        "PartialPmem.id": lambda ids: ids["id"],
        # One root device at most, and not a pmem one next to a root drive.
        "Drive.is_root_device": False,
        "Drive.partuuid": SKIP,
        "Drive.socket": SKIP,  # vhost-user-block, exclusive with path_on_host
        "Pmem.root_device": False,
        "NetworkInterface.host_dev_name": fx.tap,
        "NetworkInterface.guest_mac": "06:00:ac:10:00:02",
        "NetworkInterface.mtu": 1500,
        "MachineConfiguration.vcpu_count": 1,
        "MachineConfiguration.mem_size_mib": 64,
        "MachineConfiguration.track_dirty_pages": True,
        "MachineConfiguration.cpu_template": SKIP,  # deprecated, and host-dependent
        "Balloon.amount_mib": 0,
        "Balloon.deflate_on_oom": True,
        "Balloon.stats_polling_interval_s": 1,
        # ignition's balloon has no free page hinting: PUT /balloon keeps it, InstanceStart
        # refuses it. Off, so the boot phase boots. Free page reporting is supported.
        "Balloon.free_page_hinting": False,
        "Balloon.free_page_reporting": True,
        "BalloonUpdate.amount_mib": 1,
        "BalloonStatsUpdate.stats_polling_interval_s": 2,
        "Vsock.guest_cid": 3,
        "Vsock.vsock_id": SKIP,  # deprecated
        "MmdsConfig.version": "V2",
        "MmdsConfig.network_interfaces": lambda ids: [ids["iface_id"]],
        "Metrics.properties": {"cluster": "conformance"},
        "TokenBucket.size": bucket["size"],
        "TokenBucket.one_time_burst": bucket["one_time_burst"],
        "TokenBucket.refill_time": bucket["refill_time"],
        "MemoryHotplugConfig.total_size_mib": 1024,
        "MemoryHotplugConfig.slot_size_mib": 128,
        "MemoryHotplugConfig.block_size_mib": 2,
        "MemoryHotplugSizeUpdate.requested_size_mib": 128,
        # x86_64: a capability number, no-op CPUID and MSR modifiers; the aarch64-only
        # lists are unknown fields on x86_64, as in Firecracker.
        "CpuConfig.kvm_capabilities": ["!0"],
        "CpuConfig.reg_modifiers": SKIP,
        "CpuConfig.vcpu_features": SKIP,
        "CpuidLeafModifier.leaf": "0x1",
        "CpuidLeafModifier.subleaf": "0x0",
        "CpuidLeafModifier.flags": 0,
        "CpuidRegisterModifier.bitmap": "0b" + "x" * 32,
        "MsrModifier.addr": "0x10a",
        "MsrModifier.bitmap": "0b" + "x" * 64,
        "SnapshotCreateParams.snapshot_type": "Full",
        # Exactly one of mem_backend / mem_file_path (deprecated); no overrides of devices
        # the snapshot does not have.
        "SnapshotLoadParams.mem_file_path": SKIP,
        "SnapshotLoadParams.enable_diff_snapshots": SKIP,
        "SnapshotLoadParams.network_overrides": SKIP,
        "SnapshotLoadParams.vsock_override": SKIP,
        "SnapshotLoadParams.huge_pages": SKIP,
        "SnapshotLoadParams.resume_vm": False,
        "SnapshotLoadParams.track_dirty_pages": False,
        "SnapshotLoadParams.clock_realtime": False,
        "BalloonStartCmd.acknowledge_on_stop": True,
        "Logger.level": "Info",
        "Logger.module": SKIP,
    }
