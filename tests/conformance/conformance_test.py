#!/usr/bin/env python3
"""Conformance of ignition's API with Firecracker's OpenAPI spec (firecracker-api.yaml), read
here at run time. Drives real `ignition --api-sock` processes through every path and method of
the spec with valid and invalid requests, before and after InstanceStart, and checks every
reply's status and body against the spec. A crash, a hang, a dropped connection, an unclean
exit or a sanitizer report fails the run.

  conformance_test.py --spec firecracker-api.yaml --ignition build/ignition \
      --guest-dir build/guest [--work-dir DIR] [--phase api|snapshot] [-v]

Phase `api` (default): the route-by-route suite, with the coverage check (every operation got a
valid and an invalid request). Phase `snapshot`: the end-to-end flow configure -> start ->
pause -> snapshot -> resume, and a second process that loads the snapshot and in which the
guest goes on (it answers a line typed on its console after the load)."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import checker  # noqa: E402
    import instances  # noqa: E402
    import openapi  # noqa: E402
except ImportError as e:  # jsonschema or yaml
    sys.exit(f"conformance: {e}: install python3-yaml and python3-jsonschema (scripts/setup.sh)")
import rules  # noqa: E402
import vmm as vmm_mod  # noqa: E402
from checker import EITHER, FAULT, OK  # noqa: E402

BOOT_TIMEOUT_S = float(os.environ.get("IGNITION_CONFORMANCE_BOOT_TIMEOUT", "120"))


class Fixtures:
    """Files the requests point at, made fresh in the work directory."""

    def __init__(self, work_dir, guest_dir):
        self.dir = work_dir
        self.kernel = os.path.join(guest_dir, "ignition-test.elf")
        if not os.path.isfile(self.kernel):
            raise SystemExit(f"conformance: no test guest at {self.kernel} (build guest_images)")
        self.boot_args = "console=ttyS0 ign.tests=boot ign.exit=hang"
        self.disk = self._file("disk.img", 1 << 20)
        self.initrd = self._file("initrd.img", 4096)
        self.pmem = self._file("pmem.img", 2 << 20)
        self.log = self._file("ignition.log", 0)
        self.metrics = self._file("metrics.json", 0)
        self.serial = self._file("serial.out", 0)
        self.vsock_uds = os.path.join(work_dir, "vsock.sock")
        self.snapshot_state = os.path.join(work_dir, "snapshot.state")
        self.snapshot_mem = os.path.join(work_dir, "snapshot.mem")
        self.missing = os.path.join(work_dir, "no-such-dir", "no-such-file")
        self.tap = f"igncf{os.getpid() % 100000}"

    def _file(self, name, size):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.truncate(size)
        return path


class Suite:
    def __init__(self, args):
        self.args = args
        self.spec = openapi.Spec(args.spec)
        os.makedirs(args.work_dir, exist_ok=True)
        self.fx = Fixtures(args.work_dir, args.guest_dir)
        self.gen = instances.Generator(self.spec, rules.value_overrides(self.fx))
        self.c = checker.Checker(self.spec, args.verbose)
        self.vmms = []

    # -- helpers ----------------------------------------------------------------------------

    def start(self, name):
        v = vmm_mod.Vmm(self.args.ignition, self.args.work_dir, name)
        self.vmms.append(v)
        return v

    def stop(self, v):
        self.vmms.remove(v)
        code, problems = v.stop()
        for p in problems:
            self.c.check(False, p)
        if not problems:
            self.c.check(True, f"{v.name}: clean exit after {v.requests} requests")

    def op(self, key):
        method, path = key.split(" ", 1)
        return self.spec.operation(method, path)

    def valid_body(self, op):
        body = self.gen.body(op, rules.IDS)
        if body is not None:
            errors = self.spec.errors(op.body_schema, body, strict=False)
            if errors:
                raise AssertionError(f"generated body for {op.key} is not spec-valid: {errors}")
        return body

    def special_body(self, op):
        """Bodies whose content the schema leaves open."""
        if op.key == "PUT /mmds":
            return {"latest": {"meta-data": {"ami-id": "ami-1", "hostname": "conf"}}}
        if op.key == "PATCH /mmds":
            return {"latest": {"meta-data": {"hostname": "renamed", "ami-id": None}}}
        if op.key == "PATCH /vm":
            return {"state": "Paused"}
        if op.key == "PUT /actions":
            return {"action_type": "InstanceStart"}
        return self.valid_body(op)

    def expectation(self, key):
        return EITHER if key in rules.PARTIAL or key in rules.REFUSAL_ALLOWED else OK

    def get_json(self, v, key, expect=OK):
        op = self.op(key)
        r = self.c.send(v, op, expect=expect)
        return r.json() if 200 <= r.status < 300 else None

    def state(self, v):
        info = self.get_json(v, "GET /")
        return (info or {}).get("state")

    # -- the route-by-route suite ------------------------------------------------------------

    def check_state_table(self):
        keys = {op.key for op in self.spec.operations}
        self.c.check(len(keys) >= 35, f"the spec has only {len(keys)} operations")
        for k in sorted(keys - set(rules.STATE)):
            self.c.check(False, f"{k} is in the spec but not in rules.STATE (classify it)")
        for k in sorted(set(rules.STATE) - keys):
            self.c.check(False, f"rules.STATE lists {k}, which the spec does not have")

    def roundtrip(self, key, sent, config):
        """What was PUT reads back from GET /vm/config (the fields sent, compared as sent)."""
        if key not in rules.VM_CONFIG_KEY or not isinstance(sent, dict):
            return
        name, id_field = rules.VM_CONFIG_KEY[key]
        got = (config or {}).get(name)
        if id_field:
            got = next((d for d in got or [] if d.get(id_field) == sent[id_field]), None)
        if not self.c.check(isinstance(got, dict), f"GET /vm/config has no {name} after {key}"):
            return
        for field, value in sent.items():
            self.c.check(
                got.get(field) == value,
                f"GET /vm/config {name}.{field} = {got.get(field)!r}, PUT sent {value!r}",
            )

    def invalid_requests(self, v, op):
        """Every invalid body the schema gives, the empty body, a body on a GET, ids that
        break the rules: all must be 400 faults with an Error body. The boot phase sends them
        to the post-boot operations in their own state, so there the fault can only come from
        the request itself."""
        if op.body_schema is not None:
            valid = self.special_body(op) if op.key in ("PATCH /vm", "PUT /actions") else None
            valid = valid or self.valid_body(op)
            lenient = rules.FIRECRACKER_LENIENT.get(op.key, {})
            for desc, text in instances.invalid_bodies(self.spec, op.body_schema, valid):
                if op.key in rules.PATCH_SUBSET and "(required)" in desc:
                    continue
                why = next((w for prefix, w in lenient.items() if desc.startswith(prefix)), None)
                r = self.c.send(
                    v, op, text, expect=EITHER if why else FAULT, kind="invalid", label=desc
                )
                if why and r.status < 300:
                    self.c.notes.add(f"{op.key} [{desc}] accepted: {why}")
        if op.method in ("PUT", "PATCH") and op.body_required:
            self.c.send(
                v, op, "", expect=FAULT, kind="invalid", label="empty body",
                message=f"Empty {op.method} request.",
            )
        if op.method == "GET":
            self.c.send(
                v, op, "{}", expect=FAULT, kind="invalid", label="GET with a body",
                message="GET request cannot have a body.",
            )
        for name in op.path_params:
            bad = dict(rules.IDS, **{name: "bad-id!"})
            self.c.send(
                v, op, self.valid_body(op), expect=FAULT, kind="invalid",
                ids=bad, label=f"{name} with a bad character",
                message="API Resource IDs can only contain alphanumeric characters and underscores.",
            )
            other = dict(rules.IDS, **{name: "other_id"})
            self.c.send(
                v, op, self.valid_body(op), expect=FAULT, kind="invalid", ids=other,
                label=f"{name} differing from the body's",
            )

    def unknown_methods(self, v):
        """Methods the spec does not list for a path: 400 with an Error body."""
        for path in self.spec.paths():
            listed = {op.method for op in self.spec.operations if op.path == path}
            concrete = path.replace("{drive_id}", rules.IDS["drive_id"])
            concrete = concrete.replace("{iface_id}", rules.IDS["iface_id"])
            concrete = concrete.replace("{id}", rules.IDS["id"])
            for m in ("GET", "PUT", "PATCH", "POST", "DELETE"):
                if m in listed:
                    continue
                r = v.request(m, concrete, None if m in ("GET", "DELETE") else "{}")
                what = f"{m} {concrete} [method not in the spec]"
                self.c.judge(None, r, FAULT, what, "Invalid request method and/or path")
        r = v.request("GET", "/no-such-route")
        self.c.judge(None, r, FAULT, "GET /no-such-route", "Invalid request method and/or path")

    def malformed_http(self, v):
        """Broken HTTP on a raw connection: a 400 fault (Error body) or a closed connection,
        and the server keeps serving."""
        cases = [
            ("garbage request line", b"GARBAGE\r\n\r\n"),
            ("bad Content-Length", b"PUT /vm HTTP/1.1\r\nHost: x\r\nContent-Length: xyz\r\n\r\n"),
            (
                "body over 1 MiB",
                b"PUT /mmds HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n"
                + b"{" * 1048577,
            ),
        ]
        for desc, data in cases:
            got = v.raw(data)
            head, _, body = got.partition(b"\r\n\r\n")
            status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
            what = f"raw: {desc}"
            self.c.check(status in (400, 413), f"{what}: status {status}: {got[:200]!r}")
            err = self.spec.errors({"$ref": "#/definitions/Error"}, _json_or_none(body))
            self.c.check(not err, f"{what}: body is not an Error: {err} {body[:200]!r}")
            self.c.check(v.alive(), f"{what}: the server died")
        self.c.check(self.state(v) is not None, "the server answers after malformed HTTP")

    def preboot(self):
        self.check_state_table()
        v = self.start("preboot")
        fresh = {
            key: self.get_json(v, key)
            for key in ("GET /", "GET /version", "GET /machine-config", "GET /vm/config")
        }
        self.c.check(fresh["GET /"]["state"] == "Not started", f"fresh state: {fresh['GET /']}")
        self.c.check(fresh["GET /"]["id"] == "preboot", f"--id not reported: {fresh['GET /']}")
        mc = fresh["GET /machine-config"]
        self.c.check(
            (mc["vcpu_count"], mc["mem_size_mib"]) == (1, 128),
            f"GET /machine-config defaults are Firecracker's (1 vCPU, 128 MiB): {mc}",
        )
        self.c.send(v, self.op("GET /balloon"), expect=FAULT, label="no balloon yet")
        self.c.send(v, self.op("GET /mmds"), expect=OK)

        # Post-boot operations before the boot: refused for the state, whatever their body.
        for op in self.spec.operations:
            if rules.STATE[op.key] == rules.POST:
                self.c.send(
                    v, op, self.special_body(op), expect=FAULT, kind="invalid",
                    label="before InstanceStart", message=rules.BEFORE_START,
                )
        for action in ("FlushMetrics", "SendCtrlAltDel"):
            self.c.send(
                v, self.op("PUT /actions"), {"action_type": action}, expect=FAULT,
                kind="invalid", label=f"{action} before InstanceStart",
                message=rules.BEFORE_START,
            )

        # Missing files, before anything is configured (a failed PUT keeps nothing).
        missing = [
            ("PUT /boot-source", "kernel_image_path"),
            ("PUT /boot-source", "initrd_path"),
            ("PUT /drives/{drive_id}", "path_on_host"),
            ("PUT /pmem/{id}", "path_on_host"),
            ("PUT /metrics", "metrics_path"),
        ]
        for key, field in missing:
            op = self.op(key)
            body = dict(self.valid_body(op), **{field: self.fx.missing})
            self.c.send(v, op, body, expect=FAULT, kind="invalid", label=f"{field} missing file")

        # Everything configured once, each read back through GET /vm/config.
        for key in rules.CONFIGURE_ORDER:
            op = self.op(key)
            body = self.special_body(op)
            self.c.send(v, op, body, expect=self.expectation(key))
            self.roundtrip(key, body, self.get_json(v, "GET /vm/config"))
        self.c.send(
            v, self.op("PUT /metrics"), self.valid_body(self.op("PUT /metrics")),
            expect=FAULT, kind="invalid", label="metrics a second time",
        )
        mmds = self.get_json(v, "GET /mmds")
        self.c.check(
            mmds == {"latest": {"meta-data": {"hostname": "renamed"}}},
            f"GET /mmds after PUT + merge PATCH: {mmds}",
        )
        balloon = self.get_json(v, "GET /balloon")
        sent = self.valid_body(self.op("PUT /balloon"))
        self.c.check(
            all(balloon.get(k) == val for k, val in sent.items()),
            f"GET /balloon {balloon} != PUT {sent}",
        )
        mc = self.get_json(v, "GET /machine-config")
        self.c.check(
            (mc["vcpu_count"], mc["mem_size_mib"], mc.get("track_dirty_pages")) == (1, 64, True),
            f"GET /machine-config after PUT: {mc}",
        )
        before = self.get_json(v, "GET /vm/config")

        # Every invalid request for every operation: nothing may change.
        for op in self.spec.operations:
            self.invalid_requests(v, op)
        self.c.send(
            v, self.op("PUT /snapshot/load"), self.valid_body(self.op("PUT /snapshot/load")),
            expect=FAULT, kind="invalid", label="load after configuring resources",
        )
        self.unknown_methods(v)
        self.malformed_http(v)
        after = self.get_json(v, "GET /vm/config")
        self.c.check(before == after, f"refused requests changed the configuration:\n{before}\n{after}")
        self.stop(v)

        # A fresh process: snapshot/load's own faults (allowed after logger and metrics only).
        v = self.start("fresh")
        load = self.op("PUT /snapshot/load")
        body = self.valid_body(load)
        self.c.send(
            v, load, dict(body, snapshot_path=self.fx.missing), expect=FAULT, kind="invalid",
            label="snapshot file missing",
        )
        self.c.send(
            v, load, dict(body, mem_file_path=self.fx.snapshot_mem), expect=FAULT, kind="invalid",
            label="mem_file_path and mem_backend together",
        )
        self.c.send(
            v, load, {"snapshot_path": self.fx.snapshot_state}, expect=FAULT, kind="invalid",
            label="neither mem_file_path nor mem_backend",
        )
        self.c.check(self.state(v) == "Not started", "a refused load leaves the VM not started")
        self.stop(v)

    def boot_with_tap(self):
        tap = make_tap(self.fx.tap)
        try:
            self.boot(tap)
        finally:
            if tap:
                for v in list(self.vmms):
                    self.stop(v)
                delete_tap(self.fx.tap)

    def boot(self, tap):
        v = self.start("boot")
        # Every resource (so the post-boot routes act on real devices), but the serial console
        # stays on stdout, and the network interface needs a TAP the run can make.
        skip = {"PUT /serial"}
        if not tap:
            print(f"note: no TAP device {self.fx.tap} (needs root): booting without a network "
                  "interface and MMDS config")
            skip |= {"PUT /network-interfaces/{iface_id}", "PUT /mmds/config"}
        for key in rules.CONFIGURE_ORDER:
            if key in skip:
                continue
            op = self.op(key)
            self.c.send(v, op, self.special_body(op), expect=OK, label="configure for boot")
        self.c.send(v, self.op("PUT /actions"), {"action_type": "InstanceStart"}, expect=OK)
        booted = v.wait_console("IGN-PASS boot", BOOT_TIMEOUT_S)
        self.c.check(booted, f"the guest did not report IGN-PASS boot:\n{v.console()[-2000:]}")
        self.c.check(self.state(v) == "Running", "GET / says Running after InstanceStart")

        # Pre-boot operations after the boot: refused for the state.
        for op in self.spec.operations:
            if rules.STATE[op.key] == rules.PRE:
                self.c.send(
                    v, op, self.special_body(op), expect=FAULT, kind="invalid",
                    label="after InstanceStart", message=rules.AFTER_START,
                )

        # Post-boot and any-state operations, valid.
        vm = self.op("PATCH /vm")
        self.c.send(v, vm, {"state": "Paused"}, expect=OK)
        self.c.check(self.state(v) == "Paused", "GET / says Paused after PATCH /vm Paused")
        self.c.send(v, vm, {"state": "Paused"}, expect=OK, label="pausing twice")
        self.c.send(v, vm, {"state": "Resumed"}, expect=OK)
        self.c.check(self.state(v) == "Running", "GET / says Running after PATCH /vm Resumed")
        size_before = os.path.getsize(self.fx.metrics)
        self.c.send(v, self.op("PUT /actions"), {"action_type": "FlushMetrics"}, expect=OK)
        self._check_metrics(size_before)
        for key in ("GET /", "GET /version", "GET /vm/config", "GET /machine-config", "GET /mmds"):
            self.get_json(v, key)
        balloon = self.get_json(v, "GET /balloon")
        self.c.check(balloon and balloon["amount_mib"] == 0, f"GET /balloon after boot: {balloon}")
        for key in ("PUT /mmds", "PATCH /mmds"):
            self.c.send(v, self.op(key), self.special_body(self.op(key)), expect=OK)
        for op in self.spec.operations:
            if rules.STATE[op.key] != rules.POST or op.key in ("PATCH /vm", "PUT /snapshot/create"):
                continue
            expect = self.expectation(op.key)
            if not tap and op.key == "PATCH /network-interfaces/{iface_id}":
                expect = FAULT  # no interface was configured
            r = self.c.send(v, op, self.special_body(op), expect=expect)
            why = rules.REFUSAL_ALLOWED.get(op.key)
            if why and r.status >= 400:
                self.c.check(why in r.text(), f"{op.key}: refused for another reason: {r!r}")
        self.c.send(v, self.op("PATCH /balloon/hinting/start"), None, expect=EITHER, label="no body")

        # Invalid requests for the operations valid now.
        for op in self.spec.operations:
            if rules.STATE[op.key] in (rules.POST, rules.ANY):
                self.invalid_requests(v, op)

        # Snapshot: refused while running, then (paused) Full and Diff.
        create = self.op("PUT /snapshot/create")
        body = self.valid_body(create)
        self.c.send(v, create, body, expect=FAULT, kind="invalid", label="VM not paused")
        self.c.send(v, vm, {"state": "Paused"}, expect=OK)
        self.c.send(v, create, body, expect=self.expectation(create.key), label="Full")
        diff = dict(
            body, snapshot_type="Diff", snapshot_path=self.fx.snapshot_state + ".diff",
            mem_file_path=self.fx.snapshot_mem + ".diff",
        )
        self.c.send(v, create, diff, expect=self.expectation(create.key), label="Diff")
        self.c.send(
            v, create, dict(body, snapshot_path=self.fx.missing), expect=FAULT, kind="invalid",
            label="snapshot_path in a missing directory",
        )
        self.c.send(v, vm, {"state": "Resumed"}, expect=OK)
        self.c.send(
            v, self.op("PUT /actions"), {"action_type": "SendCtrlAltDel"}, expect=OK,
            label="SendCtrlAltDel",
        )
        self.c.check(v.alive(), "ignition is still running after the post-boot requests")
        self.stop(v)

    def load_in_fresh_process(self):
        """The Full snapshot the boot phase made (if the route made it), loaded by a new
        process; without it the load is refused, which a partial route may do."""
        v = self.start("loaded")
        load = self.op("PUT /snapshot/load")
        r = self.c.send(v, load, self.valid_body(load), expect=self.expectation(load.key))
        if r.status == 204:
            self.c.check(self.state(v) == "Paused", "a snapshot loaded with resume_vm false is Paused")
            self.get_json(v, "GET /vm/config")
            self.c.send(
                v, load, self.valid_body(load), expect=FAULT, kind="invalid",
                label="a second load", message=rules.AFTER_START,
            )
        self.stop(v)

    def _check_metrics(self, size_before):
        with open(self.fx.metrics, encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.c.check(len(text) > size_before, "FlushMetrics wrote nothing to the metrics file")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        for ln in lines:
            doc = _json_or_none(ln.encode())
            self.c.check(isinstance(doc, dict), f"metrics line is not a JSON object: {ln[:200]}")

    def coverage(self):
        for op in self.spec.operations:
            seen = self.c.coverage.get(op.key, set())
            self.c.check("valid" in seen, f"{op.key}: no valid request was sent")
            self.c.check("invalid" in seen, f"{op.key}: no invalid request was sent")

    # -- the end-to-end snapshot flow --------------------------------------------------------

    def snapshot_flow(self):
        fx = self.fx
        for p in (fx.snapshot_state, fx.snapshot_mem):
            if os.path.exists(p):
                os.unlink(p)
        v = self.start("source")
        boot = {"kernel_image_path": fx.kernel, "boot_args": "console=ttyS0 ign.tests=boot,echo ign.exit=hang"}
        self.c.send(v, self.op("PUT /boot-source"), boot)
        self.c.send(v, self.op("PUT /machine-config"), {"vcpu_count": 1, "mem_size_mib": 64})
        self.c.send(v, self.op("PUT /actions"), {"action_type": "InstanceStart"})
        ready = v.wait_console("IGN-INFO echo.ready", BOOT_TIMEOUT_S)
        self.c.check(ready, f"the guest did not get to echo.ready:\n{v.console()[-2000:]}")
        vm = self.op("PATCH /vm")
        self.c.send(v, vm, {"state": "Paused"})
        create = {"snapshot_type": "Full", "snapshot_path": fx.snapshot_state, "mem_file_path": fx.snapshot_mem}
        r = self.c.send(
            v, self.op("PUT /snapshot/create"), create,
            expect=self.expectation("PUT /snapshot/create"),
        )
        created = r.status == 204
        if created:
            self.c.check(os.path.getsize(fx.snapshot_state) > 0, "snapshot_path is empty")
            self.c.check(
                os.path.getsize(fx.snapshot_mem) >= 64 << 20,
                f"mem_file_path holds {os.path.getsize(fx.snapshot_mem)} bytes, not 64 MiB",
            )
        self.c.send(v, vm, {"state": "Resumed"})
        self.c.check(self.state(v) == "Running", "the source runs on after the snapshot")
        self.c.check("IGN-PASS echo" not in v.console(), "the guest echoed with no input")
        self.stop(v)
        if not created:
            print(f"snapshot flow: PUT /snapshot/create is not available yet ({r.text()}); "
                  "the load half is not run")
            return

        v = self.start("restored")
        # Firecracker's rule: a load is refused after any resource except the logger and
        # metrics; those two first.
        for key in ("PUT /logger", "PUT /metrics"):
            self.c.send(v, self.op(key), self.valid_body(self.op(key)))
        load = {
            "snapshot_path": fx.snapshot_state,
            "mem_backend": {"backend_type": "File", "backend_path": fx.snapshot_mem},
            "resume_vm": False,
        }
        r = self.c.send(
            v, self.op("PUT /snapshot/load"), load, expect=self.expectation("PUT /snapshot/load")
        )
        if r.status != 204:
            print(f"snapshot flow: PUT /snapshot/load is not available yet ({r.text()})")
            self.stop(v)
            return
        self.c.check(self.state(v) == "Paused", "a snapshot loaded with resume_vm false is Paused")
        config = self.get_json(v, "GET /vm/config")
        mc = (config or {}).get("machine-config") or {}
        self.c.check(
            (mc.get("vcpu_count"), mc.get("mem_size_mib")) == (1, 64),
            f"GET /vm/config after load does not show the snapshot's machine: {mc}",
        )
        # Not checked: the spec's "If the VM is restored from a snapshot, the boot-source ...
        # will be empty". Firecracker itself now restores the boot source from the snapshot
        # (builder.rs: vm_resources.boot_source.config = microvm_state.vm_info.boot_source),
        # and ignition shows it too.
        self.c.send(
            v, self.op("PUT /boot-source"), boot, expect=FAULT, kind="invalid",
            label="after a snapshot load", message=rules.AFTER_START,
        )
        self.c.send(v, vm, {"state": "Resumed"})
        self.c.check(self.state(v) == "Running", "the restored VM runs after PATCH /vm Resumed")
        v.write_stdin(b"hello-from-the-host\n")
        self.c.check(
            v.wait_console("IGN-PASS echo", 60),
            f"the restored guest did not go on (no echo):\n{v.console()[-2000:]}",
        )
        self.c.check(
            "echo=hello-from-the-host" in v.console(),
            f"the restored guest echoed something else:\n{v.console()[-2000:]}",
        )
        self.stop(v)

    # -- run ---------------------------------------------------------------------------------

    def run(self):
        print(f"spec: {self.args.spec} (version {self.spec.version}, "
              f"{len(self.spec.operations)} operations)")
        if self.args.phase == "api":
            parts = [self.preboot, self.boot_with_tap, self.load_in_fresh_process, self.coverage]
        else:
            parts = [self.snapshot_flow]
        # Each part on its own processes: a crash in one does not hide what the others find.
        for part in parts:
            try:
                part()
            except vmm_mod.ServerFailure as e:
                self.c.check(False, f"{part.__name__}: server failure: {e}")
            except Exception:  # a bug in the suite, or a reply it could not read: a failure
                self.c.check(False, f"{part.__name__}: suite error:\n" + traceback.format_exc())
            for v in list(self.vmms):
                self.stop(v)
        for note in sorted(self.c.notes):
            print(f"note: {note}")
        if self.c.not_yet:
            print("partial routes answering 'not supported yet' (accepted, see docs/api.md):")
            for what, text in self.c.not_yet.items():
                print(f"  {what}: {text}")
        if self.c.failures:
            print(f"\n{len(self.c.failures)} failure(s):")
            for f in self.c.failures:
                print(f"  - {f if len(f) < 400 else f[:400] + ' ...'}")
        print(self.c.summary())
        return 1 if self.c.failures else 0


def make_tap(name):
    """A TAP device for the network interface (root only); False when it cannot be made."""
    r = subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], capture_output=True)
    if r.returncode != 0:
        return False
    subprocess.run(["ip", "link", "set", name, "up"], capture_output=True)
    return True


def delete_tap(name):
    subprocess.run(["ip", "link", "del", name], capture_output=True)


def _json_or_none(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spec", required=True)
    p.add_argument("--ignition", required=True)
    p.add_argument("--guest-dir", required=True)
    p.add_argument("--work-dir", help="where the run's files go (default: a new temporary "
                   "directory, removed after a run that passed)")
    p.add_argument("--phase", choices=("api", "snapshot"), default="api")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    if not os.path.isfile(args.spec):
        # The spec is the developers' reference copy beside the repository, not part of it
        # (it is Firecracker's file); CTest reports this exit code as "skipped", not passed.
        print(f"conformance: SKIPPED: the spec {args.spec} is missing "
              "(configure with -DIGNITION_API_SPEC=/path/to/firecracker-api.yaml)",
              file=sys.stderr)
        return 77
    temporary = args.work_dir is None
    if temporary:
        # Short: the API sockets live here and sun_path holds 108 bytes.
        args.work_dir = tempfile.mkdtemp(prefix="ign-conf-")
    code = Suite(args).run()
    if temporary and code == 0:
        shutil.rmtree(args.work_dir, ignore_errors=True)
    elif code != 0:
        print(f"the run's files (consoles, stderr, sockets) are in {args.work_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
