#!/usr/bin/env python3
"""Builds ignition-test.bzImage: the real-mode setup sectors (bzimage_setup.bin) followed by
the protected-mode payload (the flat image of ignition-test.elf from 1 MiB), with the setup
header fields that depend on sizes filled in: setup_sects, syssize and init_size."""
import struct
import sys

LOAD_ADDR = 0x100000
PT_LOAD = 1


def memory_end(elf_path):
    """Highest physical address any PT_LOAD segment occupies (.bss included)."""
    data = open(elf_path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit(f"{elf_path}: not an ELF64 file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    end = 0
    for i in range(phnum):
        p_type, _, _, _, p_paddr, _, p_memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == PT_LOAD:
            end = max(end, p_paddr + p_memsz)
    return end


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: pack_bzimage.py SETUP.bin PAYLOAD.bin PAYLOAD.elf OUT.bzImage")
    setup_path, payload_path, elf_path, out_path = sys.argv[1:]
    setup = bytearray(open(setup_path, "rb").read())
    payload = open(payload_path, "rb").read()

    # A few fields at their boot-protocol offsets prove the header layout is right.
    checks = {0x1fe: ("<H", 0xAA55), 0x202: ("<4s", b"HdrS"), 0x214: ("<I", LOAD_ADDR),
              0x258: ("<Q", LOAD_ADDR)}
    for offset, (fmt, want) in checks.items():
        got, = struct.unpack_from(fmt, setup, offset)
        if got != want:
            sys.exit(f"{setup_path}: setup header field at {offset:#x} is {got!r}, want {want!r}")
    sectors = max(1, (len(setup) + 511) // 512 - 1)  # excluding the boot sector
    setup += bytes((sectors + 1) * 512 - len(setup))
    init_size = (memory_end(elf_path) - LOAD_ADDR + 4095) & ~4095

    setup[0x1f1] = sectors
    struct.pack_into("<I", setup, 0x1f4, (len(payload) + 15) // 16)
    struct.pack_into("<I", setup, 0x260, max(init_size, len(payload)))
    with open(out_path, "wb") as out:
        out.write(setup)
        out.write(payload)


if __name__ == "__main__":
    main()
