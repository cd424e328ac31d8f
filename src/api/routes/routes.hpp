// The API's routes, one function per resource group (as Firecracker's request/ modules).
#pragma once

#include "api/router.hpp"

namespace ignition::api {

void add_instance_routes(RouteTable& t);  // GET /, /version, /vm/config; PUT /actions; PATCH /vm
void add_machine_config_routes(RouteTable& t);     // GET/PUT/PATCH /machine-config
void add_boot_source_routes(RouteTable& t);        // PUT /boot-source
void add_drive_routes(RouteTable& t);              // PUT/PATCH /drives/{drive_id}
void add_network_interface_routes(RouteTable& t);  // PUT/PATCH /network-interfaces/{iface_id}
void add_pmem_routes(RouteTable& t);               // PUT/PATCH /pmem/{id}
void add_vsock_routes(RouteTable& t);              // PUT /vsock
void add_entropy_routes(RouteTable& t);            // PUT /entropy
void add_serial_routes(RouteTable& t);             // PUT /serial
void add_balloon_routes(RouteTable& t);         // /balloon, /balloon/statistics, /balloon/hinting/*
void add_logger_routes(RouteTable& t);          // PUT /logger
void add_metrics_routes(RouteTable& t);         // PUT /metrics
void add_mmds_routes(RouteTable& t);            // GET/PUT/PATCH /mmds, PUT /mmds/config
void add_cpu_config_routes(RouteTable& t);      // PUT /cpu-config
void add_snapshot_routes(RouteTable& t);        // PUT /snapshot/create, /snapshot/load
void add_memory_hotplug_routes(RouteTable& t);  // GET/PUT/PATCH /hotplug/memory

}  // namespace ignition::api
