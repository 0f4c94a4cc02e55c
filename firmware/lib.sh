# shellcheck shell=bash
# Shared by firmware/build.sh, firmware/test.sh and bench/firmware.sh (sourced, not run).
#
# Cross builds link against a Debian 12 (bookworm) *sysroot* per target architecture: the
# target's own -dev and runtime packages (GStreamer 1.22, GLib, glibc 2.36) unpacked with
# `mmdebstrap --variant=extract` under target/firmware/sysroot/<debarch>. The same tree
# is the `-L` prefix of qemu-user for the tests. It is used instead of multiarch packages
# on the build host (`dpkg --add-architecture arm64 armhf` + `libgstreamer1.0-dev:arm64`)
# because Multi-Arch: same packages must be at exactly the host's version: every security
# update of the host's GStreamer/GLib then needs the matching :arm64/:armhf build on the
# mirror at the same moment, or apt refuses (here the mirror's armhf security index was out
# of sync, and a failed `apt-get update` would also break tests/run.sh's installs). The
# sysroot leaves the host's dpkg database alone and pins nothing on it.

FW_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FW_DIR/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TARGET_DIR="$CARGO_TARGET_DIR"
DIST_DIR="${DIST_DIR:-$ROOT/dist}"
SYSROOT_BASE="${FIRMWARE_SYSROOT_DIR:-$TARGET_DIR/firmware/sysroot}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE=bookworm
# The Cargo profile of device builds (root Cargo.toml: [profile.firmware]).
PROFILE=firmware

# What the sysroot holds: enough to link (glibc, GStreamer core and app/base libraries) and
# to run the agent's test pipeline under qemu (videotestsrc, clockoverlay, x264enc,
# h264parse, appsink).
SYSROOT_PACKAGES=(
  libc6-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-x
)

log() { printf '[firmware %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'firmware: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Heavy work yields to whatever else runs on the machine (CI runners are shared).
NICE=(nice -n 19)
CARGO_JOBS="${CARGO_JOBS:-1}"

_APT_UPDATED=""
# apt_ensure PKG...: installs the packages not installed yet (dpkg-query first; `apt-get
# update` at most once per run, and only when something is missing).
apt_ensure() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$_APT_UPDATED" ]; then
    log "apt-get update"
    $SUDO "${NICE[@]}" apt-get update -q >/dev/null
    _APT_UPDATED=1
  fi
  log "installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive "${NICE[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

rust_target_ensure() {
  local target="$1"
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    log "rustup target add $target"
    rustup target add "$target" >/dev/null
  fi
}

# target_vars ARCH: sets RUST_TARGET, DEB_ARCH, GNU_TRIPLET, CROSS_GCC (empty when native), QEMU.
# shellcheck disable=SC2034 # used by the scripts that source this file
target_vars() {
  case "$1" in
    aarch64 | arm64)
      RUST_TARGET=aarch64-unknown-linux-gnu DEB_ARCH=arm64 GNU_TRIPLET=aarch64-linux-gnu
      CROSS_GCC=aarch64-linux-gnu-gcc QEMU=qemu-aarch64-static ;;
    armv7 | armhf)
      RUST_TARGET=armv7-unknown-linux-gnueabihf DEB_ARCH=armhf GNU_TRIPLET=arm-linux-gnueabihf
      CROSS_GCC=arm-linux-gnueabihf-gcc QEMU=qemu-arm-static ;;
    amd64 | x86_64)
      RUST_TARGET=x86_64-unknown-linux-gnu DEB_ARCH=amd64 GNU_TRIPLET=x86_64-linux-gnu
      CROSS_GCC="" QEMU="" ;;
    *) die "unknown architecture '$1' (aarch64, armv7 or amd64)" ;;
  esac
  [ "$(dpkg --print-architecture)" = amd64 ] || die "the build host must be Debian amd64"
}

binary_path() { # binary_path ARCH NAME
  target_vars "$1"
  printf '%s/%s/%s/%s\n' "$TARGET_DIR" "$RUST_TARGET" "$PROFILE" "$2"
}

sysroot_path() { # sysroot_path DEBARCH
  printf '%s/%s\n' "$SYSROOT_BASE" "$1"
}

# sysroot_ensure DEBARCH: the target's Debian 12 tree, created once (a stamp records the
# package list; a changed list rebuilds it).
sysroot_ensure() {
  local arch="$1" dir stamp want
  dir="$(sysroot_path "$arch")"
  stamp="$dir/.firmware-sysroot"
  want="$SUITE $(printf '%s ' "${SYSROOT_PACKAGES[@]}")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  apt_ensure mmdebstrap
  log "creating the $arch sysroot (Debian $SUITE: ${SYSROOT_PACKAGES[*]}) in $dir"
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$(dirname "$dir")"
  local include
  include="$(IFS=,; echo "${SYSROOT_PACKAGES[*]}")"
  local base=("deb $DEBIAN_MIRROR $SUITE main" "deb $DEBIAN_MIRROR $SUITE-updates main")
  if ! "${NICE[@]}" mmdebstrap --quiet --variant=extract --architectures="$arch" --include="$include" \
      --skip=cleanup/apt/cache "$SUITE" "$dir.tmp" "${base[@]}" \
      "deb $DEBIAN_SECURITY_MIRROR $SUITE-security main" >"$dir.log" 2>&1; then
    # A mirror whose security index is mid-sync fails the whole update: the point-release
    # packages link and run the same (same sonames, same GStreamer 1.22).
    log "mmdebstrap with $SUITE-security failed (see $dir.log); retrying without it"
    rm -rf "$dir.tmp"
    "${NICE[@]}" mmdebstrap --quiet --variant=extract --architectures="$arch" --include="$include" \
      --skip=cleanup/apt/cache "$SUITE" "$dir.tmp" "${base[@]}" >>"$dir.log" 2>&1 \
      || die "mmdebstrap failed for $arch; log: $dir.log"
  fi
  relative_symlinks "$dir.tmp"
  shlibs_admindir "$dir.tmp" "$dir" "$arch"
  rm -f "$dir.tmp"/var/cache/apt/archives/*.deb
  printf '%s' "$want" >"$dir.tmp/.firmware-sysroot"
  mv "$dir.tmp" "$dir"
}

# relative_symlinks TREE: absolute symlinks inside TREE made relative. With --sysroot the
# linker follows e.g. usr/lib/<triplet>/libm.so -> /lib/<triplet>/libm.so.6 on the *host*,
# finds nothing there and silently links the static libm.a instead (pow() with a
# GLIBC_PRIVATE errno reference, and an exact libc6 version in Depends).
relative_symlinks() {
  local root="$1" link target
  while IFS= read -r -d '' link; do
    target="$(readlink "$link")"
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$root$target")" "$link"
  done < <(find "$root" -type l -lname '/*' -print0)
}

# shlibs_admindir TREE FINAL_PATH DEBARCH: a dpkg database for dpkg-shlibdeps only, in
# TREE/var/lib/dpkg-shlibdeps, built from the downloaded .debs (the extract variant installs
# nothing, so the sysroot's own database is empty): package stanzas, file lists (prefixed
# with the sysroot's final path, as dpkg-shlibdeps asks `dpkg-query --search` for the paths
# it finds there) and the shlibs/symbols control files.
shlibs_admindir() { # TREE FINAL_PATH DEBARCH
  local root="$1" final="$2" arch="$3" admin deb ctl pkg ma a name
  admin="$root/var/lib/dpkg-shlibdeps"
  rm -rf "$admin"
  mkdir -p "$admin/info" "$admin/updates"
  : >"$admin/status"
  printf '%s\n' "$arch" >"$admin/arch"
  # The multiarch layout of info/ (NAME:ARCH.list for Multi-Arch: same packages).
  printf '1\n' >"$admin/info/format"
  ctl="$(mktemp -d)"
  for deb in "$root"/var/cache/apt/archives/*.deb; do
    rm -rf "${ctl:?}"/*
    dpkg-deb -e "$deb" "$ctl"
    pkg="$(dpkg-deb -f "$deb" Package)"
    ma="$(dpkg-deb -f "$deb" Multi-Arch)"
    a="$(dpkg-deb -f "$deb" Architecture)"
    name="$pkg"
    if [ "$ma" = same ]; then name="$pkg:$a"; fi
    { grep -v '^Status:' "$ctl/control"; printf 'Status: install ok installed\n\n'; } >>"$admin/status"
    dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' -e '/^$/d' \
      | sed -e "s|^|$final|" >"$admin/info/$name.list"
    for f in shlibs symbols; do
      if [ -f "$ctl/$f" ]; then cp "$ctl/$f" "$admin/info/$name.$f"; fi
    done
  done
  rm -rf "$ctl"
}

# cargo_env ARCH: exports what cargo, cc and pkg-config need to build for ARCH.
cargo_env() {
  target_vars "$1"
  local upper sysroot
  upper="$(printf '%s' "$RUST_TARGET" | tr 'a-z-' 'A-Z_')"
  # C code of dependencies (ring, SQLite) is built with glibc's fortified functions, as
  # Debian builds C (dpkg-buildflags).
  if [ -z "$CROSS_GCC" ]; then
    unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
    export "CFLAGS_${RUST_TARGET//-/_}=-D_FORTIFY_SOURCE=2"
    return 0
  fi
  sysroot="$(sysroot_path "$DEB_ARCH")"
  export PKG_CONFIG_ALLOW_CROSS=1
  export PKG_CONFIG_SYSROOT_DIR="$sysroot"
  export PKG_CONFIG_LIBDIR="$sysroot/usr/lib/$GNU_TRIPLET/pkgconfig:$sysroot/usr/share/pkgconfig"
  export "CARGO_TARGET_${upper}_LINKER=$CROSS_GCC"
  export "CARGO_TARGET_${upper}_RUSTFLAGS=-C link-arg=--sysroot=$sysroot"
  # ... against the target's glibc headers.
  export "CC_${RUST_TARGET//-/_}=$CROSS_GCC"
  export "CFLAGS_${RUST_TARGET//-/_}=--sysroot=$sysroot -D_FORTIFY_SOURCE=2"
}

# Host packages the builds need, per architecture.
host_packages_for() {
  case "$1" in
    aarch64 | arm64) echo gcc-aarch64-linux-gnu mmdebstrap dpkg-dev pkg-config ;;
    armv7 | armhf) echo gcc-arm-linux-gnueabihf mmdebstrap dpkg-dev pkg-config ;;
    amd64 | x86_64) echo build-essential dpkg-dev pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev ;;
  esac
}

# The version of the packages: the workspace's, unless FIRMWARE_DEB_VERSION says otherwise
# (e.g. 0.1.0+20261124 for a fleet update).
deb_version() {
  if [ -n "${FIRMWARE_DEB_VERSION:-}" ]; then
    printf '%s\n' "$FIRMWARE_DEB_VERSION"
    return
  fi
  sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' "$ROOT/Cargo.toml"
}

# Reproducible timestamps in packages: the last commit's time.
source_date_epoch() {
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    printf '%s\n' "$SOURCE_DATE_EPOCH"
  else
    git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s
  fi
}
