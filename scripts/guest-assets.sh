#!/usr/bin/env bash
# Fetches and builds the Linux test guest: Debian's cloud kernel (a bzImage, and its ELF
# vmlinux when lz4 is there) and a busybox initramfs whose /init is guest/linux/init.
# Idempotent; quiet when done.
# Usage: scripts/guest-assets.sh [outdir]   (default: <repo>/assets, never committed)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$repo/assets}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

init_src="$repo/guest/linux/init"
busybox_bin=/bin/busybox
meta=linux-image-cloud-amd64

say() { echo "guest-assets: $*"; }
die() { echo "guest-assets: $*" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The metapackage depends on exactly one real image package, e.g.
# linux-image-6.1.0-28-cloud-amd64; that one holds /boot/vmlinuz-<version>.
resolve_kernel_package() {
  apt-cache depends "$meta" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n1
}

fetch_kernel() {
  local pkg
  pkg="$(resolve_kernel_package)"
  if [ -z "$pkg" ]; then
    say "apt lists do not know $meta; running apt-get update"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    pkg="$(resolve_kernel_package)"
  fi
  [ -n "$pkg" ] || die "cannot resolve $meta to a kernel package"
  say "downloading $pkg"
  # As root, apt would hand the download to its _apt user, which cannot write in $work.
  local sandbox=()
  [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
  (cd "$work" && apt-get download -qq "${sandbox[@]}" "$pkg" >/dev/null) ||
    die "apt-get download $pkg failed"
  local debs=("$work/$pkg"_*.deb)
  local deb="${debs[0]}"
  mkdir -p "$work/kernel"
  dpkg-deb -x "$deb" "$work/kernel"
  local images=("$work"/kernel/boot/vmlinuz-*)
  local image="${images[0]}"
  [ -f "$image" ] || die "$deb has no /boot/vmlinuz-*"
  local version="${image##*/vmlinuz-}"
  cp "$work"/kernel/boot/config-"$version" "$out/kernel-config"
  echo "$pkg $(dpkg-deb -f "$deb" Version) $version" >"$out/kernel-version.tmp"
  # Atomic last step: vmlinuz existing means the kernel is complete.
  mv "$out/kernel-version.tmp" "$out/kernel-version"
  cp "$image" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
}

# The bzImage's payload, decompressed: the ELF vmlinux (PVH-capable). Booting it skips the
# bzImage's own decompressor, which costs ~100 s of emulated ring-0 code on a nested KVM.
# Optional: made only when the payload is LZ4 (Debian's choice) and lz4 is installed.
extract_vmlinux() {
  command -v lz4 >/dev/null || return 0
  local setup_sects payload_offset payload_length
  setup_sects=$(od -An -tu1 -j 0x1f1 -N1 "$out/vmlinuz" | tr -d ' ')
  payload_offset=$(od -An -tu4 -j 0x248 -N4 "$out/vmlinuz" | tr -d ' ')
  payload_length=$(od -An -tu4 -j 0x24c -N4 "$out/vmlinuz" | tr -d ' ')
  local start=$(((setup_sects + 1) * 512 + payload_offset))
  # The kernel build appends the decompressed size (4 bytes) to the LZ4 legacy frame.
  dd if="$out/vmlinuz" of="$work/payload" iflag=skip_bytes,count_bytes bs=64K skip="$start" \
    count=$((payload_length - 4)) status=none
  [ "$(od -An -tx1 -N4 "$work/payload" | tr -d ' ')" = "02214c18" ] || return 0
  lz4 -dc "$work/payload" >"$out/vmlinux.tmp" 2>/dev/null || die "lz4: cannot decompress the payload"
  [ "$(od -An -tx1 -N4 "$out/vmlinux.tmp" | tr -d ' ')" = "7f454c46" ] || die "payload is not an ELF"
  mv "$out/vmlinux.tmp" "$out/vmlinux"
}

build_initrd() {
  [ -x "$busybox_bin" ] || die "$busybox_bin missing (apt-get install busybox-static)"
  command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"
  local root="$work/initrd"
  mkdir -p "$root"/{bin,dev,proc,sys,tmp}
  cp "$busybox_bin" "$root/bin/busybox"
  install -m 0755 "$init_src" "$root/init"
  # The kernel's built-in initramfs already has /dev/console; adding it here (when we
  # may create device nodes) keeps the archive self-sufficient.
  mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
  # Fixed timestamps and order so the same inputs give the same archive.
  find "$root" -exec touch -h -d @0 {} +
  (cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
    gzip -9 -n >"$out/initrd.cpio.gz.tmp"
  mv "$out/initrd.cpio.gz.tmp" "$out/initrd.cpio.gz"
}

did=0
if [ ! -s "$out/vmlinuz" ]; then
  fetch_kernel
  did=1
fi
if [ ! -s "$out/vmlinux" ] || [ "$out/vmlinuz" -nt "$out/vmlinux" ]; then
  rm -f "$out/vmlinux"
  extract_vmlinux
  [ ! -s "$out/vmlinux" ] || did=1
fi
if [ ! -s "$out/initrd.cpio.gz" ] || [ "$init_src" -nt "$out/initrd.cpio.gz" ] ||
  [ "$busybox_bin" -nt "$out/initrd.cpio.gz" ] || [ "$0" -nt "$out/initrd.cpio.gz" ]; then
  build_initrd
  did=1
fi

if [ "$did" -eq 1 ]; then
  say "kernel: $out/vmlinuz ($(cut -d' ' -f3 "$out/kernel-version"))"
  [ ! -s "$out/vmlinux" ] || say "kernel, uncompressed ELF: $out/vmlinux"
  say "initrd: $out/initrd.cpio.gz"
fi
