#!/usr/bin/env bash
# Installs what damo-trace needs to build, test and run its VM on a fresh Debian 12 machine.
# Idempotent: every step checks first and does nothing when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { if [ "$(id -u)" -ne 0 ]; then echo "setup: run as root (sudo $0)" >&2; exit 1; fi; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
missing=()
# python3-venv: damo itself for the differential tests; fonts-dejavu-core: labels in PNG reports;
# gcc: the tests' C workloads (with and without frame pointers); nodejs: JIT code named from a
# perf map; golang-go: `go tool pprof` reads what `report export` writes; musl-tools: the C
# compiler for SQLite in the VM's static `damo-workload engine`; openjdk-17-jre-headless:
# Apache Spark (pyspark) reads the Parquet dataset in its test tier; tmux: the
# pseudo-terminal test of `top`'s UI.
for p in llvm-22-dev busybox-static cpio zstd file python3-venv fonts-dejavu-core gcc libc6-dev nodejs golang-go musl-tools openjdk-17-jre-headless tmux; do
  installed "$p" || missing+=("$p")
done
# bookworm's qemu-system-x86 (7.2) would make apt remove the preinstalled qemu-utils 10.0.2 from
# bookworm-backports, so qemu comes from backports too.
missing_qemu=$(installed qemu-system-x86 || echo yes)

if [ ${#missing[@]} -gt 0 ] || [ -n "$missing_qemu" ]; then
  need_root
  backports=/etc/apt/sources.list.d/damo-trace-backports.list
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" >"$backports"
  fi
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-remove "${missing[@]}" >/dev/null
  fi
  if [ -n "$missing_qemu" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-remove -t bookworm-backports \
      qemu-system-x86 >/dev/null
  fi
fi

# The eBPF crate builds with the nightly pinned in damo-ebpf/toolchain.toml (-Z build-std=core);
# its LLVM must be the one bpf-linker links (llvm-22-dev).
pin() { sed -n "s/^$1 *= *\"\(.*\)\"/\1/p" damo-ebpf/toolchain.toml; }
ebpf_toolchain=$(pin toolchain)
if ! version=$(rustup run "$ebpf_toolchain" rustc -vV 2>/dev/null); then
  echo "setup: the eBPF toolchain '$ebpf_toolchain' is missing: rustup toolchain install $ebpf_toolchain" >&2; exit 1
fi
if ! grep -q "^commit-hash: $(pin commit-hash)" <<<"$version" || ! grep -q "^commit-date: $(pin commit-date)" <<<"$version" \
   || ! grep -q "^LLVM version: $(pin llvm-major)\." <<<"$version"; then
  echo "setup: '$ebpf_toolchain' is not the pinned eBPF compiler ($(pin commit-hash) $(pin commit-date), LLVM $(pin llvm-major));" >&2
  echo "setup: it is: $(grep -E '^(commit-hash|commit-date|LLVM)' <<<"$version" | tr '\n' ' ')(see docs/ebpf-build.md)" >&2
  exit 1
fi
rustup component list --toolchain "$ebpf_toolchain" --installed | grep -q '^rust-src' \
  || rustup component add rust-src --toolchain "$ebpf_toolchain"
# The lints `cargo xtask test` runs first.
for c in rustfmt clippy; do
  rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done
# Static binaries for the VM.
rustup target list --installed | grep -q x86_64-unknown-linux-musl \
  || rustup target add x86_64-unknown-linux-musl

# bpf-linker must link against LLVM 22; without LLVM_PREFIX it finds llvm-config 14 and fails.
if ! bpf-linker --version 2>/dev/null | grep -q '0\.13\.0'; then
  LLVM_PREFIX=/usr/lib/llvm-22 cargo install --locked bpf-linker --version 0.13.0 \
    --no-default-features --features llvm-22
fi
echo "setup: ok"
