# The two commands of README.md. Everything else is CMake + CTest.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: demo test build setup sanitize fuzz assets bench clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Boots the built-in test guest and shows its console.
demo: build
	@./$(BUILD)/ignition run --kernel $(BUILD)/guest/ignition-test.elf --vcpus 2 --mem-mib 128 \
		--cmdline "console=ttyS0 ign.tests=boot,cmdline,e820,acpi,smp,timer,serial-irq,kvmclock,boottime"

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same tests built with AddressSanitizer + UndefinedBehaviorSanitizer. The stock-Linux
# boot (minutes of emulated guest time, same guest code) runs in `make test` only.
sanitize: setup
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DIGNITION_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && IGNITION_SKIP_LINUX_BOOT=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer on the virtio transport, queues and devices, for FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
fuzz: setup
	@CC=clang CXX=clang++ cmake -S fuzz -B build-fuzz -G Ninja >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@mkdir -p build-fuzz/corpus
	@./build-fuzz/virtio_fuzzer -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 build-fuzz/corpus

# The stock Linux kernel and initramfs the Linux boot test uses (never committed).
assets: setup
	@bash scripts/guest-assets.sh

bench: build
	@bash bench/boot.sh

clean:
	rm -rf build build-asan build-fuzz
