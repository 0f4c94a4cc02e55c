#!/usr/bin/env bash
# Test of the image recipe (firmware/image/inject.sh) without hardware: builds a small
# Raspberry Pi OS-shaped image (MBR; partition 1 FAT32 "bootfs" 34 MiB (the smallest FAT32:
# 65525 clusters of 512 bytes) with config.txt and
# cmdline.txt, partition 2 ext4 "rootfs" 64 MiB with a minimal /etc and /usr tree), injects
# the package with each method (loop mount, offline debugfs+mtools), and reads the result
# back with debugfs and mtools: the package, the first-boot script and unit (owner, modes,
# the enablement link), the seed and CA on the boot partition, the untouched partition
# table and files, and clean file systems (e2fsck, fsck.fat).
#
# Usage: firmware/tests/image_test.sh DEB [METHOD...]     (METHOD: mount offline; default both)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INJECT="$HERE/../image/inject.sh"
DEB="${1:?usage: image_test.sh DEB [mount|offline]...}"
shift
METHODS=("$@")
[ ${#METHODS[@]} -gt 0 ] || METHODS=(mount offline)

fail() { printf 'image test FAILED: %s\n' "$*" >&2; exit 1; }
ok() { printf '  ok: %s\n' "$*"; }

DEB_ARCH="$(dpkg-deb -f "$DEB" Architecture)"
case "$DEB_ARCH" in
  arm64) LIBDIR=usr/lib/aarch64-linux-gnu OTHER=usr/lib/arm-linux-gnueabihf ;;
  armhf) LIBDIR=usr/lib/arm-linux-gnueabihf OTHER=usr/lib/aarch64-linux-gnu ;;
  amd64) LIBDIR=usr/lib/x86_64-linux-gnu OTHER=usr/lib/aarch64-linux-gnu ;;
  *) fail "unexpected architecture $DEB_ARCH" ;;
esac

WORK="$(mktemp -d /tmp/firmware-image-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
BOOT_START=8192 BOOT_SECTORS=69632 ROOT_START=77824 ROOT_SECTORS=131072

# make_image IMAGE LIBDIR: the stock image stand-in.
make_image() {
  local img="$1" libdir="$2" tree="$WORK/tree-$RANDOM"
  mkdir -p "$tree/etc/systemd/system/multi-user.target.wants" "$tree/usr/bin" "$tree/$libdir" \
    "$tree/var/lib" "$tree/boot/firmware" "$tree/usr/local"
  printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n' >"$tree/etc/os-release"
  printf 'raspberrypi\n' >"$tree/etc/hostname"
  printf 'proc /proc proc defaults 0 0\nLABEL=bootfs /boot/firmware vfat defaults 0 2\nLABEL=rootfs / ext4 defaults,noatime 0 1\n' >"$tree/etc/fstab"
  truncate -s 64M "$WORK/root.ext4"
  mkfs.ext4 -q -F -L rootfs -d "$tree" "$WORK/root.ext4"
  truncate -s 34M "$WORK/boot.fat"
  mkfs.vfat -F 32 -s 1 -n BOOTFS "$WORK/boot.fat" >/dev/null
  printf 'arm_64bit=1\n' >"$WORK/config.txt"
  printf 'console=serial0,115200 root=LABEL=rootfs rootfstype=ext4 rootwait\n' >"$WORK/cmdline.txt"
  MTOOLS_SKIP_CHECK=1 mcopy -i "$WORK/boot.fat" "$WORK/config.txt" "$WORK/cmdline.txt" ::/
  truncate -s $(((ROOT_START + ROOT_SECTORS) * 512 + 1048576)) "$img"
  printf 'label: dos\nstart=%d, size=%d, type=c\nstart=%d, size=%d, type=83\n' \
    "$BOOT_START" "$BOOT_SECTORS" "$ROOT_START" "$ROOT_SECTORS" | sfdisk -q "$img"
  dd if="$WORK/boot.fat" of="$img" bs=512 seek="$BOOT_START" conv=notrunc status=none
  dd if="$WORK/root.ext4" of="$img" bs=512 seek="$ROOT_START" conv=notrunc status=none
  rm -rf "$tree" "$WORK/root.ext4" "$WORK/boot.fat"
}

SEED="$WORK/edge-agent.env"
printf 'EDGE_AGENT_ENDPOINT=https://kvs.test:8443\nAWS_ACCESS_KEY_ID=AKIDTEST\nAWS_SECRET_ACCESS_KEY=secret\nEDGE_AGENT_CREATE_STREAM=yes\n' >"$SEED"
CA="$WORK/ca.pem"
printf -- '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n' >"$CA"

# stat_of PART PATH: debugfs's stat of PATH.
stat_of() { debugfs -R "stat $2" "$1" 2>/dev/null; }
# expect TEXT MESSAGE STRING...: every STRING occurs in TEXT.
expect() {
  local text="$1" msg="$2" s
  shift 2
  for s in "$@"; do grep -qF -- "$s" <<<"$text" || fail "$msg: $text"; done
}

verify() { # IMAGE METHOD
  local img="$1" method="$2" part="$WORK/check.ext4" fat="$1@@$((BOOT_START * 512))" s name
  name="$(basename "$DEB")"
  dd if="$img" of="$part" bs=512 skip="$ROOT_START" count="$ROOT_SECTORS" status=none
  e2fsck -fn "$part" >/dev/null 2>&1 || fail "$method: e2fsck reports errors"
  debugfs -R "dump /var/lib/edge-agent-firstboot/$name $WORK/deb.out" "$part" >/dev/null 2>&1
  cmp -s "$WORK/deb.out" "$DEB" || fail "$method: the package in the image differs from $DEB"
  [ "$(dpkg-deb -f "$WORK/deb.out" Package)" = edge-agent ] || fail "$method: not the edge-agent package"
  ok "$method: /var/lib/edge-agent-firstboot/$name is the package"
  s="$(stat_of "$part" /usr/local/sbin/edge-agent-firstboot)"
  expect "$s" "$method: edge-agent-firstboot is not root-owned 0755" 'Mode:  0755' 'User:     0   Group:     0'
  debugfs -R "dump /usr/local/sbin/edge-agent-firstboot $WORK/script.out" "$part" >/dev/null 2>&1
  cmp -s "$WORK/script.out" "$HERE/../image/edge-agent-firstboot" || fail "$method: first-boot script differs"
  ok "$method: /usr/local/sbin/edge-agent-firstboot (root, 0755)"
  s="$(stat_of "$part" /etc/systemd/system/edge-agent-firstboot.service)"
  expect "$s" "$method: unit mode/owner" 'Mode:  0644' 'User:     0   Group:     0'
  debugfs -R "dump /etc/systemd/system/edge-agent-firstboot.service $WORK/unit.out" "$part" >/dev/null 2>&1
  cmp -s "$WORK/unit.out" "$HERE/../image/edge-agent-firstboot.service" || fail "$method: unit differs"
  s="$(stat_of "$part" /etc/systemd/system/multi-user.target.wants/edge-agent-firstboot.service)"
  expect "$s" "$method: the unit is not enabled (multi-user.target.wants link)" \
    'Type: symlink' '"/etc/systemd/system/edge-agent-firstboot.service"'
  ok "$method: edge-agent-firstboot.service installed and enabled"
  debugfs -R "cat /etc/hostname" "$part" 2>/dev/null | grep -qx raspberrypi || fail "$method: /etc/hostname lost"
  MTOOLS_SKIP_CHECK=1 mtype -i "$fat" ::/edge-agent.env >"$WORK/seed.out"
  cmp -s <(tr -d '\r' <"$WORK/seed.out") "$SEED" || fail "$method: seed on the boot partition differs"
  MTOOLS_SKIP_CHECK=1 mtype -i "$fat" ::/edge-agent-ca.pem | tr -d '\r' | cmp -s - "$CA" || fail "$method: CA differs"
  MTOOLS_SKIP_CHECK=1 mtype -i "$fat" ::/cmdline.txt | grep -q 'root=LABEL=rootfs' || fail "$method: cmdline.txt lost"
  dd if="$img" of="$WORK/check.fat" bs=512 skip="$BOOT_START" count="$BOOT_SECTORS" status=none
  fsck.vfat -n "$WORK/check.fat" >/dev/null 2>&1 || fail "$method: fsck.vfat reports errors"
  ok "$method: boot partition holds edge-agent.env and edge-agent-ca.pem; config files kept"
  rm -f "$part" "$WORK/check.fat" "$WORK"/*.out
}

for method in "${METHODS[@]}"; do
  img="$WORK/raspios-$method.img"
  make_image "$img" "$LIBDIR"
  table_before="$(sfdisk -d "$img")"
  size_before="$(stat -c %s "$img")"
  start=$(date +%s%N)
  "$INJECT" "$img" --deb "$DEB" --seed "$SEED" --ca "$CA" --method "$method" 2>"$WORK/inject.log" \
    || { cat "$WORK/inject.log" >&2; fail "inject.sh --method $method failed"; }
  ms=$((($(date +%s%N) - start) / 1000000))
  [ "$(sfdisk -d "$img")" = "$table_before" ] || fail "$method: the partition table changed"
  [ "$(stat -c %s "$img")" = "$size_before" ] || fail "$method: the image size changed"
  ok "$method: inject.sh took ${ms} ms; partition table and size unchanged"
  verify "$img" "$method"
  # Injecting again (a newer package) replaces the files.
  "$INJECT" "$img" --deb "$DEB" --seed "$SEED" --ca "$CA" --method "$method" 2>"$WORK/inject.log" \
    || { cat "$WORK/inject.log" >&2; fail "inject.sh --method $method failed the second time"; }
  verify "$img" "$method (again)"
  rm -f "$img"
done

# A package of another architecture is refused.
img="$WORK/wrong-arch.img"
make_image "$img" "$OTHER"
if "$INJECT" "$img" --deb "$DEB" --seed "$SEED" --method offline 2>"$WORK/inject.log"; then
  fail "inject.sh accepted $DEB_ARCH into an image without /$LIBDIR"
fi
grep -q "does not fit" "$WORK/inject.log" || fail "unclear refusal: $(cat "$WORK/inject.log")"
ok "a $DEB_ARCH package is refused for an image without /$LIBDIR"
echo "image recipe: all checks passed"
