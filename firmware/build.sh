#!/usr/bin/env bash
# Device builds and Debian packages of edge-agent and ingest-server.
#
# Usage (from anywhere):
#   firmware/build.sh [aarch64|armv7|amd64|all]... [--package edge-agent|ingest-server]... [--no-deb]
#
#   aarch64   edge-agent + ingest-server for 64-bit Raspberry Pi OS, Jetson, any arm64 Debian 12
#   armv7     edge-agent for 32-bit Raspberry Pi OS (Pi 2 and newer) and armhf Debian 12
#   amd64     edge-agent + ingest-server for x86_64 Debian 12
#   all       all of the above (the default)
#   --package limits the build to that package (repeatable); --no-deb builds binaries only.
#
# Installs what it needs (idempotently: dpkg-query before apt-get, `apt-get update` only
# when something is missing; rustup targets; a Debian 12 sysroot per cross target, see
# firmware/lib.sh), builds with the `firmware` Cargo profile (size-tuned, root Cargo.toml)
# into the shared target dir, and writes dist/<package>_<version>_<debarch>.deb.
#
# Environment: FIRMWARE_DEB_VERSION (package version; default: the workspace version),
# FIRMWARE_MAINTAINER, CARGO_JOBS (default 1), DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR,
# FIRMWARE_SYSROOT_DIR, DIST_DIR.
set -euo pipefail
umask 022

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKG_DIR="$FW_DIR/packaging"
MAINTAINER="${FIRMWARE_MAINTAINER:-KVS firmware maintainers <firmware@example.com>}"

# The comment block at the top of this file.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

ARCHES=()
ONLY=()
MAKE_DEB=1
while [ $# -gt 0 ]; do
  case "$1" in
    aarch64 | armv7 | amd64) ARCHES+=("$1") ;;
    arm64) ARCHES+=(aarch64) ;;
    armhf) ARCHES+=(armv7) ;;
    all) ARCHES+=(aarch64 armv7 amd64) ;;
    --package)
      [ $# -ge 2 ] || die "--package needs a name"
      case "$2" in edge-agent | ingest-server) ONLY+=("$2") ;; *) die "unknown package '$2'" ;; esac
      shift ;;
    --no-deb) MAKE_DEB="" ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(aarch64 armv7 amd64)

# The packages built for an architecture (the server is not built for 32-bit ARM).
packages_for() {
  local all
  case "$1" in
    armv7) all=(edge-agent) ;;
    *) all=(edge-agent ingest-server) ;;
  esac
  local p o
  for p in "${all[@]}"; do
    if [ ${#ONLY[@]} -eq 0 ]; then echo "$p"; continue; fi
    for o in "${ONLY[@]}"; do [ "$o" = "$p" ] && echo "$p"; done
  done
}

build_binary() { # ARCH PACKAGE
  local arch="$1" pkg="$2"
  target_vars "$arch"
  # shellcheck disable=SC2046
  apt_ensure $(host_packages_for "$arch")
  rust_target_ensure "$RUST_TARGET"
  if [ -n "$CROSS_GCC" ]; then sysroot_ensure "$DEB_ARCH"; fi
  log "cargo build --profile $PROFILE --target $RUST_TARGET -p $pkg"
  (
    cargo_env "$arch"
    cd "$ROOT"
    "${NICE[@]}" cargo build --locked --profile "$PROFILE" --target "$RUST_TARGET" -p "$pkg" -j "$CARGO_JOBS"
  )
  local bin
  bin="$(binary_path "$arch" "$pkg")"
  [ -x "$bin" ] || die "no binary at $bin"
  log "$pkg ($RUST_TARGET): $(stat -c %s "$bin") bytes"
}

# shlibs_depends ARCH BINARY: the Depends dpkg-shlibdeps derives from the binary's
# DT_NEEDED libraries and the symbols files of the packages that ship them (the host's
# dpkg database for amd64, the sysroot's shlibs database for cross builds).
shlibs_depends() {
  local arch="$1" bin="$2" work out sysroot
  target_vars "$arch"
  work="$(mktemp -d)"
  mkdir -p "$work/debian"
  printf 'Source: firmware\n\nPackage: firmware\nArchitecture: any\n' >"$work/debian/control"
  if [ -z "$CROSS_GCC" ]; then
    out="$(cd "$work" && dpkg-shlibdeps -O "$bin" 2>"$work/err")" || { cat "$work/err" >&2; die "dpkg-shlibdeps failed"; }
  else
    sysroot="$(sysroot_path "$DEB_ARCH")"
    out="$(cd "$work" && DEB_HOST_ARCH="$DEB_ARCH" dpkg-shlibdeps --admindir="$sysroot/var/lib/dpkg-shlibdeps" \
      -l"$sysroot/lib/$GNU_TRIPLET" -l"$sysroot/usr/lib/$GNU_TRIPLET" -O "$bin" 2>"$work/err")" \
      || { cat "$work/err" >&2; die "dpkg-shlibdeps failed"; }
  fi
  if grep -v 'binaries to analyze should already be installed' "$work/err" | grep -q .; then
    grep -v 'binaries to analyze should already be installed' "$work/err" >&2
  fi
  rm -rf "$work"
  out="$(printf '%s\n' "$out" | sed -n 's/^shlibs:Depends=//p')"
  [ -n "$out" ] || die "dpkg-shlibdeps found no dependencies for $bin"
  printf '%s\n' "$out"
}

# The packaged /etc/edge-agent/edge-agent.toml: the documented example with the spool in the
# unit's StateDirectory.
default_agent_config() {
  printf '%s\n' \
    "# /etc/edge-agent/edge-agent.toml: configuration of edge-agent.service." \
    "# \`edge-agent provision\` sets endpoint, stream, ca, region, create_stream," \
    "# retention_hours, [capture] source and [spool] dir here in place; the rest is yours." \
    "#"
  sed -e '/^\[spool\]/,/^\[/{s|^# dir = .*|dir = "/var/lib/edge-agent"|}' "$ROOT/edge-agent/edge-agent.example.toml"
}

package_deb() { # ARCH PACKAGE
  local arch="$1" pkg="$2" bin version stage deb sde recommends="" changelog=changelog
  target_vars "$arch"
  bin="$(binary_path "$arch" "$pkg")"
  version="$(deb_version)"
  sde="$(source_date_epoch)"
  stage="$TARGET_DIR/firmware/deb/${pkg}_${DEB_ARCH}"
  rm -rf "$stage"
  mkdir -p "$stage/DEBIAN"

  install -D -m 0755 "$bin" "$stage/usr/bin/$pkg"
  # The profile strips symbols; this drops the sections dh_strip drops too (.comment, .note).
  "${CROSS_GCC:+$GNU_TRIPLET-}strip" --remove-section=.comment --remove-section=.note "$stage/usr/bin/$pkg"
  # Debian 12 keeps system units in /lib/systemd/system (lintian: systemd-service-file-outside-lib).
  install -D -m 0644 "$PKG_DIR/$pkg/$pkg.service" "$stage/lib/systemd/system/$pkg.service"
  install -D -m 0644 "$PKG_DIR/$pkg/environment" "$stage/etc/$pkg/environment"
  local conffiles=("/etc/$pkg/environment")
  if [ "$pkg" = edge-agent ]; then
    default_agent_config >"$stage/etc/edge-agent/edge-agent.toml"
    chmod 0644 "$stage/etc/edge-agent/edge-agent.toml"
    grep -q '^dir = "/var/lib/edge-agent"$' "$stage/etc/edge-agent/edge-agent.toml" \
      || die "the default config lost its spool dir (edge-agent.example.toml changed?)"
    conffiles=("/etc/edge-agent/edge-agent.toml" "${conffiles[@]}")
    install -D -m 0644 "$ROOT/edge-agent/README.md" "$stage/usr/share/doc/$pkg/README.md"
    if [ "$DEB_ARCH" = amd64 ]; then recommends="gstreamer1.0-vaapi"; fi
  fi
  mkdir -p "$stage/usr/share/man/man1"
  gzip -9n <"$PKG_DIR/$pkg/$pkg.1" >"$stage/usr/share/man/man1/$pkg.1.gz"
  mkdir -p "$stage/usr/share/doc/$pkg"
  sed "s/@PACKAGE@/$pkg/g" "$PKG_DIR/copyright" >"$stage/usr/share/doc/$pkg/copyright"
  # A native version (no Debian revision) keeps its changelog as changelog.gz.
  case "$version" in *-*) changelog=changelog.Debian ;; esac
  {
    printf '%s (%s) stable; urgency=medium\n\n' "$pkg" "$version"
    printf '  * Built by firmware/build.sh from commit %s.\n\n' \
      "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf ' -- %s  %s\n' "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$sde")"
  } | gzip -9n >"$stage/usr/share/doc/$pkg/$changelog.gz"
  if [ -f "$PKG_DIR/$pkg/lintian-overrides" ]; then
    install -D -m 0644 "$PKG_DIR/$pkg/lintian-overrides" "$stage/usr/share/lintian/overrides/$pkg"
  fi

  for script in postinst prerm postrm; do
    install -m 0755 "$PKG_DIR/$pkg/$script" "$stage/DEBIAN/$script"
  done
  printf '%s\n' "${conffiles[@]}" >"$stage/DEBIAN/conffiles"
  chmod 0644 "$stage/DEBIAN/conffiles"

  local shlibs size
  shlibs="$(shlibs_depends "$arch" "$stage/usr/bin/$pkg")"
  size="$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)"
  sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$DEB_ARCH/" -e "s/@MAINTAINER@/$MAINTAINER/" \
    -e "s/@INSTALLED_SIZE@/$size/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" \
    -e "s/@RECOMMENDS_LINE@/${recommends:+Recommends: $recommends\\n}/" \
    "$PKG_DIR/$pkg/control.in" >"$stage/DEBIAN/control"
  (cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
  chmod 0644 "$stage/DEBIAN/md5sums"

  mkdir -p "$DIST_DIR"
  rm -f "$DIST_DIR/${pkg}_"*"_${DEB_ARCH}.deb"
  deb="$DIST_DIR/${pkg}_${version}_${DEB_ARCH}.deb"
  # dpkg-deb on a staged tree rather than cargo-deb: the tree is a few files, the maintainer
  # scripts and units are hand-written anyway, and it saves compiling cargo-deb (minutes on
  # two cores) and teaching it cross sysroots for dpkg-shlibdeps.
  SOURCE_DATE_EPOCH="$sde" dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
  log "wrote $deb ($(stat -c %s "$deb") bytes; Depends: $(dpkg-deb -f "$deb" Depends))"
}

SUMMARY=()
for arch in "${ARCHES[@]}"; do
  for pkg in $(packages_for "$arch"); do
    build_binary "$arch" "$pkg"
    bin="$(binary_path "$arch" "$pkg")"
    line="$pkg $arch: binary $(stat -c %s "$bin") bytes"
    if [ -n "$MAKE_DEB" ]; then
      package_deb "$arch" "$pkg"
      target_vars "$arch"
      line="$line, dist/${pkg}_$(deb_version)_${DEB_ARCH}.deb $(stat -c %s "$DIST_DIR/${pkg}_$(deb_version)_${DEB_ARCH}.deb") bytes"
    fi
    SUMMARY+=("$line")
  done
done
printf '%s\n' "${SUMMARY[@]}"
