# Shared by the cross/ scripts (sourced, never run): target names, toolchain installs, and the
# per-target environment. Everything is set in the environment of the build, so the host's
# own builds (`cargo build`, `tests/run`) never see a cross linker.
#
# Targets (short name = Rust triple; the C cross compiler is Debian's gnu one for all four):
#   aarch64       aarch64-unknown-linux-gnu        64-bit Raspberry Pi OS (Pi 3/4/5), glibc >= 2.34
#   armv7         armv7-unknown-linux-gnueabihf    32-bit Raspberry Pi OS (Pi 2/3/4), glibc >= 2.34
#   aarch64-musl  aarch64-unknown-linux-musl       one static file, any 64-bit ARM Linux
#   armv7-musl    armv7-unknown-linux-musleabihf   one static file, any ARMv7 hard-float Linux
# The musl targets link Rust's bundled static musl (crt-static is their default) with the gnu
# cross gcc as linker driver; ring's few C/assembly files are compiled by the same gcc.

set -euo pipefail

CROSS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$CROSS_DIR/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CROSS_ALL=(aarch64 armv7 aarch64-musl armv7-musl)

die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
note() { printf '==> %s\n' "$*" >&2; }

# The Rust triple for a short name (or a triple); fails for anything else.
cross_triple() {
  case "$1" in
    aarch64 | arm64 | aarch64-unknown-linux-gnu) echo aarch64-unknown-linux-gnu ;;
    armv7 | armhf | armv7-unknown-linux-gnueabihf) echo armv7-unknown-linux-gnueabihf ;;
    aarch64-musl | aarch64-unknown-linux-musl) echo aarch64-unknown-linux-musl ;;
    armv7-musl | armv7-unknown-linux-musleabihf) echo armv7-unknown-linux-musleabihf ;;
    *) die "unknown target '$1' (one of: ${CROSS_ALL[*]}, or their Rust triples)" ;;
  esac
}

# The GNU tool prefix (aarch64-linux-gnu-gcc, -ar, -strip) for a triple.
cross_prefix() {
  case "$1" in
    aarch64-*) echo aarch64-linux-gnu ;;
    armv7-*) echo arm-linux-gnueabihf ;;
    *) die "no cross toolchain known for $1" ;;
  esac
}

# The qemu-user command line that runs a binary of this triple on the host. The gnu binaries
# are dynamic: -L points qemu at the target's libc from Debian's libc6-<arch>-cross.
cross_qemu() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    aarch64-unknown-linux-musl) echo "qemu-aarch64" ;;
    armv7-unknown-linux-musleabihf) echo "qemu-arm" ;;
    *) die "no qemu known for $1" ;;
  esac
}

APT_UPDATED=${APT_UPDATED:-no}

# Installs Debian packages that are not installed yet (`apt-get update` once per run).
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  note "installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" != yes ]; then
    "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=yes
    export APT_UPDATED
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

# Adds the Rust standard library for a triple when it is missing.
ensure_rust_target() {
  rustup target list --installed | grep -qx "$1" && return 0
  note "adding Rust target $1"
  rustup target add "$1" || die "rustup cannot add $1 (its rust-std must be downloadable)"
}

# Debian packages that build for a triple: gcc plus the target's libc (headers, crt files, and
# the sysroot qemu runs gnu binaries in).
cross_apt_packages() {
  case "$(cross_prefix "$1")" in
    aarch64-linux-gnu) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
    arm-linux-gnueabihf) echo gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
  esac
}

# Installs the C cross compiler and the Rust target, then exports the linker, the C compiler
# and archiver for cc-rs (ring), and the qemu runner (`cargo test`/`cargo run`) for the triple.
cross_setup() {
  local triple=$1 prefix upper lower
  prefix=$(cross_prefix "$triple")
  # shellcheck disable=SC2046 # a list of package names
  ensure_apt $(cross_apt_packages "$triple")
  ensure_rust_target "$triple"
  command -v "$prefix-gcc" >/dev/null || die "$prefix-gcc is missing after the install"
  upper=$(tr 'a-z-' 'A-Z_' <<<"$triple")
  lower=${triple//-/_}
  export "CARGO_TARGET_${upper}_LINKER=$prefix-gcc"
  export "CARGO_TARGET_${upper}_RUNNER=$(cross_qemu "$triple")"
  export "CC_${lower}=$prefix-gcc"
  export "AR_${lower}=$prefix-ar"
}

# Installs qemu-user (for tests and smoke runs).
ensure_qemu() {
  ensure_apt qemu-user
}

# Debian packages of the checks: systemd-analyze, readelf, strace.
CHECK_PACKAGES=(systemd binutils strace)

CARGO_DEB_VERSION=3.8.0
# Installs cargo-deb (from crates.io, into ~/.cargo/bin) when `cargo deb` is missing.
ensure_cargo_deb() {
  cargo deb --version >/dev/null 2>&1 && return 0
  note "installing cargo-deb $CARGO_DEB_VERSION (cargo install, a few minutes)"
  cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION" || die "cannot install cargo-deb"
}

# Where `cargo build --target T [--profile P]` puts twig.
twig_path() {
  local triple=$1 profile=${2:-release}
  [ "$profile" = dev ] && profile=debug
  echo "$TARGET_DIR/$triple/$profile/twig"
}

# The smoke test (tests/tests/cross_smoke.rs) of a triple, and the variable naming its binary.
smoke_test_name() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo aarch64_gnu_serves_host_clients_under_qemu ;;
    armv7-unknown-linux-gnueabihf) echo armv7_gnueabihf_serves_host_clients_under_qemu ;;
    aarch64-unknown-linux-musl) echo aarch64_musl_serves_host_clients_under_qemu ;;
    armv7-unknown-linux-musleabihf) echo armv7_musl_serves_host_clients_under_qemu ;;
  esac
}
smoke_bin_var() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo TWIG_BIN_AARCH64 ;;
    armv7-unknown-linux-gnueabihf) echo TWIG_BIN_ARMV7 ;;
    aarch64-unknown-linux-musl) echo TWIG_BIN_AARCH64_MUSL ;;
    armv7-unknown-linux-musleabihf) echo TWIG_BIN_ARMV7_MUSL ;;
  esac
}
