#!/usr/bin/env bash
# Tests of the device builds, packages and image recipe.
#
# Usage (from anywhere):
#   firmware/test.sh [--ci]   the CI subset (the last step of tests/run.sh): the aarch64 agent
#                             cross-built, its .deb checked (dpkg-deb, lintian, systemd-analyze),
#                             the image recipe on a test image (root only; seconds), and
#                             tests/e2e/test_firmware.py: the agent under qemu-aarch64 streaming
#                             to the real server, and provisioning against it
#   firmware/test.sh --all    everything: firmware/build.sh all (aarch64, armv7, amd64; agent and
#                             server), every .deb checked, the image recipe with the arm64 and armhf
#                             packages, the amd64 packages installed and provisioned in a Debian 12
#                             debootstrap chroot, and the qemu tests for aarch64 and armv7
#
# Installs what it needs (idempotently). Uses target/debug/{ingest-server,edge-agent} for the
# end-to-end tests (INGEST_SERVER_BIN, EDGE_AGENT_BIN), building them when missing.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=ci
case "${1:-}" in
  "" | --ci) MODE=ci ;;
  --all) MODE=all ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) die "unknown argument '$1' (--ci or --all)" ;;
esac

T0=$(date +%s)
TIMES=()
step() { printf '\n==> firmware: %s\n' "$*"; STEP_T0=$(date +%s); STEP_NAME="$*"; }
step_done() { TIMES+=("$(printf '%4d s  %s' "$(($(date +%s) - STEP_T0))" "$STEP_NAME")"); }
fail() { printf 'firmware test FAILED: %s\n' "$*" >&2; exit 1; }
ok() { printf '  ok: %s\n' "$*"; }
WORK="$(mktemp -d /tmp/firmware-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

step "test tools"
apt_ensure lintian shellcheck qemu-user-static mtools dosfstools fdisk e2fsprogs file python3
step_done

# ------------------------------------------------------------------ builds
step "build"
if [ "$MODE" = ci ]; then
  "$FW_DIR/build.sh" aarch64 --package edge-agent
  DEBS=("$DIST_DIR/edge-agent_$(deb_version)_arm64.deb")
else
  "$FW_DIR/build.sh" all
  DEBS=()
  for d in edge-agent_arm64 edge-agent_armhf edge-agent_amd64 ingest-server_arm64 ingest-server_amd64; do
    DEBS+=("$DIST_DIR/${d%_*}_$(deb_version)_${d#*_}.deb")
  done
fi
step_done

# ---------------------------------------------------------------- packages
# check_deb DEB: fields, contents, owners and modes, conffiles, the binary's architecture,
# the default configuration, maintainer scripts, the unit (systemd-analyze verify) and lintian.
check_deb() {
  local deb="$1" pkg arch depends contents dir want elf
  [ -f "$deb" ] || fail "no package $deb"
  pkg="$(dpkg-deb -f "$deb" Package)"
  arch="$(dpkg-deb -f "$deb" Architecture)"
  echo "--- $(basename "$deb")"
  dpkg-deb --info "$deb" >"$WORK/info"
  for field in Package Version Architecture Maintainer Installed-Size Depends Section Priority Description; do
    [ -n "$(dpkg-deb -f "$deb" "$field")" ] || fail "$deb: no $field field"
  done
  [ "$(dpkg-deb -f "$deb" Version)" = "$(deb_version)" ] || fail "$deb: version $(dpkg-deb -f "$deb" Version)"
  depends="$(dpkg-deb -f "$deb" Depends)"
  want=("libc6 (>= " "libgcc-s1" "adduser")
  if [ "$pkg" = edge-agent ]; then
    want+=("libgstreamer1.0-0 (>= " "libgstreamer-plugins-base1.0-0 (>= " "libglib2.0-0 (>= "
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
      gstreamer1.0-plugins-ugly gstreamer1.0-x)
  else
    # GetImages: avdec_h264, jpegenc, pngenc, videoscale, videoconvert.
    want+=(gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav)
  fi
  for d in "${want[@]}"; do
    grep -qF -- "$d" <<<"$depends" || fail "$deb: Depends lacks '$d': $depends"
  done
  ok "fields; Depends: $depends"

  contents="$(dpkg-deb --contents "$deb")"
  want=("./usr/bin/$pkg" "./lib/systemd/system/$pkg.service" "./etc/$pkg/environment"
    "./usr/share/doc/$pkg/copyright" "./usr/share/man/man1/$pkg.1.gz" "./usr/share/lintian/overrides/$pkg")
  if [ "$pkg" = edge-agent ]; then want+=("./etc/edge-agent/edge-agent.toml"); fi
  for f in "${want[@]}"; do
    grep -qE " ${f//./\\.}$" <<<"$contents" || fail "$deb: no $f in the package"
  done
  grep -qE "^-rwxr-xr-x root/root .* \./usr/bin/$pkg$" <<<"$contents" || fail "$deb: /usr/bin/$pkg is not root 0755"
  if awk '$2 != "root/root"' <<<"$contents" | grep -q .; then fail "$deb: files not owned by root"; fi
  dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$WORK/conffiles"
  want=("/etc/$pkg/environment")
  if [ "$pkg" = edge-agent ]; then want+=(/etc/edge-agent/edge-agent.toml); fi
  for f in "${want[@]}"; do
    grep -qx "$f" "$WORK/conffiles" || fail "$deb: $f is not a conffile"
  done
  ok "contents: $(grep -c . <<<"$contents") entries, owners root, conffiles $(tr '\n' ' ' <"$WORK/conffiles")"

  dir="$WORK/x-$pkg-$arch"
  rm -rf "$dir"
  mkdir -p "$dir/DEBIAN"
  dpkg-deb -x "$deb" "$dir"
  dpkg-deb -e "$deb" "$dir/DEBIAN"
  case "$arch" in arm64) elf="ARM aarch64" ;; armhf) elf="ARM, EABI5" ;; amd64) elf="x86-64" ;; esac
  file "$dir/usr/bin/$pkg" | grep -q "$elf" || fail "$deb: binary is not $elf: $(file "$dir/usr/bin/$pkg")"
  file "$dir/usr/bin/$pkg" | grep -q "stripped" || fail "$deb: binary not stripped"
  ok "binary: $elf, stripped, $(stat -c %s "$dir/usr/bin/$pkg") bytes"
  if [ "$pkg" = edge-agent ]; then
    python3 - "$dir/etc/edge-agent/edge-agent.toml" <<'EOF' || fail "$deb: default configuration"
import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
assert c["spool"]["dir"] == "/var/lib/edge-agent", c["spool"]
assert c["endpoint"] and c["stream"] and c["capture"]["source"], c
EOF
    ok "default configuration parses; spool dir /var/lib/edge-agent"
  fi
  for s in postinst prerm postrm; do
    sh -n "$dir/DEBIAN/$s" || fail "$deb: $s syntax"
    shellcheck -s sh "$dir/DEBIAN/$s" || fail "$deb: shellcheck $s"
  done
  ok "maintainer scripts: sh -n, shellcheck"
  # The packaged unit with ExecStart pointing at the extracted binary (verify insists that
  # the command exists); the chroot test verifies it unchanged.
  sed "s|^ExecStart=/usr/bin/$pkg|ExecStart=$dir/usr/bin/$pkg|" "$dir/lib/systemd/system/$pkg.service" >"$WORK/$pkg.service"
  systemd-analyze verify --man=no "$WORK/$pkg.service" 2>"$WORK/verify.err" || { cat "$WORK/verify.err" >&2; fail "$deb: systemd-analyze verify"; }
  ok "systemd-analyze verify $pkg.service; exposure $(systemd-analyze security --offline=yes "$WORK/$pkg.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: //p')"
  nice -n 19 lintian --pedantic -I --fail-on error,warning "$deb" >"$WORK/lintian" 2>&1 \
    || { cat "$WORK/lintian" >&2; fail "$deb: lintian"; }
  ok "lintian --pedantic: $(grep -cE '^[EWIP]:' "$WORK/lintian" || true) tags beyond the documented overrides"
  grep -E '^[EWIP]:' "$WORK/lintian" || true
}

step "packages: dpkg-deb, lintian, systemd-analyze"
for deb in "${DEBS[@]}"; do check_deb "$deb"; done
sed "s|^ExecStart=.*|ExecStart=$FW_DIR/image/edge-agent-firstboot|" "$FW_DIR/image/edge-agent-firstboot.service" >"$WORK/edge-agent-firstboot.service"
systemd-analyze verify --man=no "$WORK/edge-agent-firstboot.service" || fail "systemd-analyze verify edge-agent-firstboot.service"
ok "systemd-analyze verify edge-agent-firstboot.service"
step_done

step "shellcheck"
shellcheck -x "$FW_DIR"/*.sh "$FW_DIR"/tests/*.sh "$FW_DIR"/image/*.sh "$FW_DIR"/image/edge-agent-firstboot \
  "$FW_DIR"/packaging/*/postinst "$FW_DIR"/packaging/*/prerm "$FW_DIR"/packaging/*/postrm "$ROOT"/bench/firmware.sh
ok "firmware scripts and bench/firmware.sh"
step_done

# ------------------------------------------------------------ image recipe
step "image recipe"
if [ "$(id -u)" -ne 0 ]; then
  echo "  skipped: the image recipe test writes root-owned files into a test image (run as root)"
else
  "$FW_DIR/tests/image_test.sh" "$DIST_DIR/edge-agent_$(deb_version)_arm64.deb"
  if [ "$MODE" = all ]; then
    "$FW_DIR/tests/image_test.sh" "$DIST_DIR/edge-agent_$(deb_version)_armhf.deb"
  fi
fi
step_done

# ------------------------------------------------------------------ chroot
if [ "$MODE" = all ]; then
  step "Debian 12 chroot: install, first boot, provision, run, purge"
  "$FW_DIR/tests/chroot_test.sh" "$DIST_DIR/edge-agent_$(deb_version)_amd64.deb" "$DIST_DIR/ingest-server_$(deb_version)_amd64.deb"
  step_done
fi

# --------------------------------------------------------------- e2e tests
step "end-to-end: qemu-user and provisioning (tests/e2e/test_firmware.py)"
export INGEST_SERVER_BIN="${INGEST_SERVER_BIN:-$ROOT/target/debug/ingest-server}"
export EDGE_AGENT_BIN="${EDGE_AGENT_BIN:-$ROOT/target/debug/edge-agent}"
if [ ! -x "$INGEST_SERVER_BIN" ] || [ ! -x "$EDGE_AGENT_BIN" ] || ! "$EDGE_AGENT_BIN" provision --help >/dev/null 2>&1; then
  (cd "$ROOT" && "${NICE[@]}" cargo build -p ingest-server -p edge-agent -j "$CARGO_JOBS")
fi
python3 -c 'import pytest, boto3' 2>/dev/null || python3 -m pip install -q -r "$ROOT/tests/e2e/requirements.txt"
select=()
if [ "$MODE" = ci ]; then select=(-k "not armv7"); fi
(cd "$ROOT" && "${NICE[@]}" python3 -m pytest tests/e2e/test_firmware.py -v -rs "${select[@]}" -p no:cacheprovider)
step_done

printf '\nfirmware %s: passed in %d s\n' "$MODE" "$(($(date +%s) - T0))"
printf '%s\n' "${TIMES[@]}"
