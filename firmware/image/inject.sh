#!/usr/bin/env bash
# Prepares a stock Raspberry Pi OS image (or any image with a FAT boot partition and an ext4
# root partition) so that the camera streams after its first boot:
#
#   root partition: /var/lib/edge-agent-firstboot/<the .deb>,
#                   /usr/local/sbin/edge-agent-firstboot,
#                   /etc/systemd/system/edge-agent-firstboot.service (enabled)
#   boot partition: edge-agent.env (the provisioning seed), edge-agent-ca.pem (--ca)
#
# On the first boot with network, edge-agent-firstboot.service installs the package with apt
# (which fetches the GStreamer dependencies), runs `edge-agent provision` from the seed,
# deletes the seed (it holds the secret) and disables itself. Flash the image as usual.
#
# Usage (as root):
#   firmware/image/inject.sh IMAGE --deb dist/edge-agent_VERSION_arm64.deb --seed SEED [--ca CA.pem]
#                            [--method auto|mount|offline]
#
#   IMAGE     the .img file, modified in place (decompress first: xz -dk 2024-..-raspios-bookworm-arm64-lite.img.xz)
#   --deb     the edge-agent package of the image's architecture (arm64: 64-bit Raspberry Pi OS
#             or Jetson, armhf: 32-bit Raspberry Pi OS)
#   --seed    KEY=value provisioning seed (firmware/image/edge-agent.env.example)
#   --ca      PEM of the server's CA (ingest-server: /var/lib/ingest-server/tls/ca.pem)
#   --method  mount: loop-mount the partitions (losetup with offsets from sfdisk; the FAT
#             partition through mtools when the kernel has no vfat); offline: write the ext4
#             partition with debugfs and the FAT one with mtools (no mounting: containers,
#             no loop devices); auto (default): mount, else offline.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FIRSTBOOT_SCRIPT="$HERE/edge-agent-firstboot"
FIRSTBOOT_UNIT="$HERE/edge-agent-firstboot.service"
STATE_DIR=/var/lib/edge-agent-firstboot

log() { printf '[inject] %s\n' "$*" >&2; }
die() { printf 'inject: %s\n' "$*" >&2; exit 1; }
# The comment block at the top of this file.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

IMAGE="" DEB="" SEED="" CA="" METHOD=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) DEB="${2:?--deb needs a file}"; shift ;;
    --seed) SEED="${2:?--seed needs a file}"; shift ;;
    --ca) CA="${2:?--ca needs a file}"; shift ;;
    --method) METHOD="${2:?--method needs auto, mount or offline}"; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [ -z "$IMAGE" ] || die "one image only"; IMAGE="$1" ;;
  esac
  shift
done
if [ -z "$IMAGE" ] || [ -z "$DEB" ] || [ -z "$SEED" ]; then
  usage >&2
  die "IMAGE, --deb and --seed are required"
fi
[ -f "$IMAGE" ] || die "no image $IMAGE"
[ -f "$DEB" ] || die "no package $DEB"
[ -f "$SEED" ] || die "no seed $SEED"
[ -z "$CA" ] || [ -f "$CA" ] || die "no CA file $CA"
case "$METHOD" in auto | mount | offline) ;; *) die "--method: auto, mount or offline" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root (image files are written as root:root)"
for tool in sfdisk python3 dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install fdisk python3 dpkg)"
done
grep -q '^EDGE_AGENT_ENDPOINT=' "$SEED" || die "the seed has no EDGE_AGENT_ENDPOINT= line"
[ "$(dpkg-deb -f "$DEB" Package)" = edge-agent ] || die "$DEB is not the edge-agent package"
DEB_ARCH="$(dpkg-deb -f "$DEB" Architecture)"
DEB_NAME="$(basename "$DEB")"

# Partitions: the first FAT one is the boot partition, the first Linux one the root.
read -r BOOT_START BOOT_SIZE ROOT_START ROOT_SIZE < <(sfdisk -J "$IMAGE" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
assert t.get("sectorsize", 512) == 512, "only 512-byte sectors"
fat = {"b", "c", "e", "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"}
linux = {"83", "0fc63daf-8483-4772-8e79-3d69d8477de4"}
parts = t["partitions"]
boot = next(p for p in parts if p["type"].lower() in fat)
root = next(p for p in parts if p["type"].lower() in linux)
print(boot["start"], boot["size"], root["start"], root["size"])
') || die "$IMAGE: no FAT boot partition and Linux root partition found (sfdisk -J)"
log "$IMAGE: boot partition at sector $BOOT_START ($((BOOT_SIZE / 2048)) MiB), root at $ROOT_START ($((ROOT_SIZE / 2048)) MiB)"

WORK="$(mktemp -d /tmp/edge-agent-inject.XXXXXX)"
MOUNTED=() LOOPS=()
cleanup() {
  unmount_all
  rm -rf "$WORK"
}
trap cleanup EXIT

# The image's architecture must be the package's.
check_arch() { # HAS_DIR_FUNCTION
  local want
  case "$DEB_ARCH" in
    arm64) want=/usr/lib/aarch64-linux-gnu ;;
    armhf) want=/usr/lib/arm-linux-gnueabihf ;;
    amd64) want=/usr/lib/x86_64-linux-gnu ;;
    *) die "unexpected package architecture $DEB_ARCH" ;;
  esac
  "$1" "$want" || die "the image has no $want: $DEB_NAME ($DEB_ARCH) does not fit it"
}

# ------------------------------------------------------------------ mount
ROOT_MNT="$WORK/root" BOOT_MNT="$WORK/boot" BOOT_MTOOLS=maybe

# Loop devices at the partitions' offsets (losetup -P needs udev to create the partition
# nodes, which containers and minimal hosts lack). Returns 1 when mounting is impossible.
try_mount() {
  local loop
  mkdir -p "$ROOT_MNT" "$BOOT_MNT"
  loop="$(losetup -f --show -o $((ROOT_START * 512)) --sizelimit $((ROOT_SIZE * 512)) "$IMAGE")" || return 1
  LOOPS+=("$loop")
  mount -t ext4 "$loop" "$ROOT_MNT" || return 1
  MOUNTED+=("$ROOT_MNT")
  # A kernel without vfat (some VMs and containers) still gets the boot files through mtools.
  if ! command -v mcopy >/dev/null; then BOOT_MTOOLS=""; fi
  loop="$(losetup -f --show -o $((BOOT_START * 512)) --sizelimit $((BOOT_SIZE * 512)) "$IMAGE")" || return 1
  LOOPS+=("$loop")
  if mount -t vfat "$loop" "$BOOT_MNT" 2>"$WORK/vfat.err"; then
    MOUNTED+=("$BOOT_MNT")
  elif [ -n "$BOOT_MTOOLS" ]; then
    BOOT_MTOOLS=yes
    log "cannot mount the FAT boot partition ($(tail -n 1 "$WORK/vfat.err")); writing it with mtools"
  else
    return 1
  fi
}

unmount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount "${MOUNTED[i]}" 2>/dev/null || true; done
  for i in "${LOOPS[@]}"; do losetup -d "$i" 2>/dev/null || true; done
  MOUNTED=() LOOPS=()
}

mounted_has_dir() { [ -d "$ROOT_MNT$1" ]; }

inject_mounted() {
  local root="$ROOT_MNT"
  log "mounted the partitions (loop devices)"
  check_arch mounted_has_dir
  install -d -m 0755 "$root$STATE_DIR" "$root/usr/local/sbin" "$root/etc/systemd/system/multi-user.target.wants"
  rm -f "$root$STATE_DIR"/edge-agent_*.deb
  install -m 0644 "$DEB" "$root$STATE_DIR/$DEB_NAME"
  install -m 0755 "$FIRSTBOOT_SCRIPT" "$root/usr/local/sbin/edge-agent-firstboot"
  install -m 0644 "$FIRSTBOOT_UNIT" "$root/etc/systemd/system/edge-agent-firstboot.service"
  ln -sfn /etc/systemd/system/edge-agent-firstboot.service \
    "$root/etc/systemd/system/multi-user.target.wants/edge-agent-firstboot.service"
  sync
  umount "$ROOT_MNT"
  if [ "$BOOT_MTOOLS" = yes ]; then
    write_boot_mtools
  else
    cp "$SEED" "$BOOT_MNT/edge-agent.env"
    if [ -n "$CA" ]; then cp "$CA" "$BOOT_MNT/edge-agent-ca.pem"; fi
    sync
    umount "$BOOT_MNT"
  fi
  MOUNTED=()
  unmount_all
}

# mtools reads and writes the FAT partition in place at its byte offset.
write_boot_mtools() {
  local fat="$IMAGE@@$((BOOT_START * 512))"
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "$fat" "$SEED" ::/edge-agent.env
  if [ -n "$CA" ]; then MTOOLS_SKIP_CHECK=1 mcopy -o -i "$fat" "$CA" ::/edge-agent-ca.pem; fi
}

# ---------------------------------------------------------------- offline
offline_has_dir() { debugfs -R "stat $1" "$WORK/root.ext4" 2>&1 | grep -q 'Type: directory'; }
offline_exists() { debugfs -R "stat $1" "$WORK/root.ext4" 2>&1 | grep -q 'Type: '; }

inject_offline() {
  for tool in debugfs e2fsck mcopy dd; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install e2fsprogs mtools coreutils)"
  done
  local part="$WORK/root.ext4" cmds="$WORK/debugfs.cmds"
  dd if="$IMAGE" of="$part" bs=512 skip="$ROOT_START" count="$ROOT_SIZE" status=none
  check_arch offline_has_dir

  # debugfs: missing directories (only those: debugfs 1.47's mkdir of an existing directory
  # leaks an inode), old files removed, then the files (owner root, exact modes) and the link.
  {
    local d old
    for d in /var /var/lib "$STATE_DIR" /usr /usr/local /usr/local/sbin /etc /etc/systemd \
      /etc/systemd/system /etc/systemd/system/multi-user.target.wants; do
      offline_has_dir "$d" || echo "mkdir $d"
    done
    for old in $(debugfs -R "ls -p $STATE_DIR" "$part" 2>/dev/null | awk -F/ '$6 ~ /^edge-agent_.*\.deb$/ {print $6}'); do
      echo "rm $STATE_DIR/$old"
    done
    for f in /usr/local/sbin/edge-agent-firstboot /etc/systemd/system/edge-agent-firstboot.service \
      /etc/systemd/system/multi-user.target.wants/edge-agent-firstboot.service; do
      offline_exists "$f" && echo "rm $f"
    done
    echo "write \"$DEB\" $STATE_DIR/$DEB_NAME"
    echo "write \"$FIRSTBOOT_SCRIPT\" /usr/local/sbin/edge-agent-firstboot"
    echo "write \"$FIRSTBOOT_UNIT\" /etc/systemd/system/edge-agent-firstboot.service"
    echo "symlink /etc/systemd/system/multi-user.target.wants/edge-agent-firstboot.service /etc/systemd/system/edge-agent-firstboot.service"
    for f in "$STATE_DIR/$DEB_NAME:0100644" /usr/local/sbin/edge-agent-firstboot:0100755 \
      /etc/systemd/system/edge-agent-firstboot.service:0100644 "$STATE_DIR:040755"; do
      echo "set_inode_field ${f%%:*} mode ${f##*:}"
      echo "set_inode_field ${f%%:*} uid 0"
      echo "set_inode_field ${f%%:*} gid 0"
    done
  } >"$cmds"
  # The result is checked below (debugfs's exit status says nothing about its commands).
  debugfs -w -f "$cmds" "$part" >"$WORK/debugfs.log" 2>&1 || { cat "$WORK/debugfs.log" >&2; die "debugfs failed"; }
  local got
  got="$(debugfs -R "stat $STATE_DIR/$DEB_NAME" "$part" 2>/dev/null | sed -n 's/.*Size: \([0-9]*\).*/\1/p' | head -n 1)"
  [ "$got" = "$(stat -c %s "$DEB")" ] || { cat "$WORK/debugfs.log" >&2; die "debugfs did not write the package"; }
  e2fsck -fn "$part" >"$WORK/e2fsck.log" 2>&1 || { cat "$WORK/e2fsck.log" >&2; die "the root file system is inconsistent after debugfs"; }
  dd if="$part" of="$IMAGE" bs=512 seek="$ROOT_START" conv=notrunc status=none

  write_boot_mtools
  log "wrote the partitions offline (debugfs, mtools)"
}

case "$METHOD" in
  mount)
    try_mount || die "mounting the partitions failed (try --method offline)"
    inject_mounted ;;
  offline) inject_offline ;;
  auto)
    if try_mount 2>"$WORK/mount.err"; then
      inject_mounted
    else
      log "loop mounting is not available here ($(tail -n 1 "$WORK/mount.err")); editing the partitions offline"
      unmount_all
      inject_offline
    fi ;;
esac
log "done: $IMAGE carries $DEB_NAME, the first-boot unit and the seed$([ -n "$CA" ] && echo ' and CA')"
