#!/usr/bin/env bash
# The amd64 packages in a fresh Debian 12 chroot (debootstrap --variant=minbase), the way
# a device gets them: ingest-server installed with apt; edge-agent installed and provisioned
# by the image's first-boot script (firmware/image/edge-agent-firstboot) from a seed on
# /boot/firmware, against an ingest-server running on this host; then the agent runs as the
# service would (user edge-agent, credentials 0640 root:edge-agent) and its fragments are
# listed; systemd-analyze verify accepts the units inside the chroot; remove keeps the
# data, purge deletes it.
#
# Usage (as root): firmware/tests/chroot_test.sh EDGE_AGENT_DEB INGEST_SERVER_DEB
# The minbase tree is cached as target/firmware/chroot/bookworm-minbase.tar.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

AGENT_DEB="$(realpath "${1:?usage: chroot_test.sh EDGE_AGENT_DEB INGEST_SERVER_DEB}")"
SERVER_DEB="$(realpath "${2:?usage: chroot_test.sh EDGE_AGENT_DEB INGEST_SERVER_DEB}")"
[ "$(id -u)" -eq 0 ] || die "the chroot test needs root"
[ "$(dpkg-deb -f "$AGENT_DEB" Architecture)" = amd64 ] || die "$AGENT_DEB: the chroot is amd64"

fail() { printf 'chroot test FAILED: %s\n' "$*" >&2; exit 1; }
ok() { printf '  ok: %s\n' "$*"; }
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0)) s"; }

apt_ensure debootstrap
CACHE="$TARGET_DIR/firmware/chroot/bookworm-minbase.tar"
if [ ! -s "$CACHE" ]; then
  log "debootstrap --variant=minbase $SUITE ($DEBIAN_MIRROR)"
  mkdir -p "$(dirname "$CACHE")"
  tmp="$(mktemp -d /tmp/firmware-debootstrap.XXXXXX)"
  "${NICE[@]}" debootstrap --variant=minbase "$SUITE" "$tmp" "$DEBIAN_MIRROR" >"$tmp.log" 2>&1 \
    || { tail -20 "$tmp.log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
  tar --numeric-owner -C "$tmp" -cf "$CACHE.tmp" .
  mv "$CACHE.tmp" "$CACHE"
  rm -rf "$tmp" "$tmp.log"
  log "debootstrap done after $(elapsed)"
fi

ROOTFS="$(mktemp -d /tmp/firmware-chroot.XXXXXX)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  umount "$ROOTFS/proc" 2>/dev/null || true
  rm -rf "$ROOTFS"
}
trap cleanup EXIT
# Numeric owners: the chroot's users are not the host's.
tar --numeric-owner -C "$ROOTFS" -xf "$CACHE"
chmod 0755 "$ROOTFS" # a root directory (mktemp made it 0700): _apt and edge-agent must enter it
mount -t proc proc "$ROOTFS/proc"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $SUITE main
deb $DEBIAN_MIRROR $SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $SUITE-security main
EOF
# No service starts in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
in_root() { chroot "$ROOTFS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# A server on this host (the chroot shares its network).
SERVER_BIN="$(binary_path amd64 ingest-server)"
[ -x "$SERVER_BIN" ] || SERVER_BIN="$ROOT/target/debug/ingest-server"
[ -x "$SERVER_BIN" ] || die "no ingest-server binary (firmware/build.sh amd64)"
DATA="$ROOTFS/srv-test-data"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$SERVER_BIN" --data-dir "$DATA" --listen "127.0.0.1:$PORT" --data-listen "127.0.0.1:$((PORT + 1))" >"$ROOTFS/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s "$DATA/credentials" ] && [ -s "$DATA/tls/ca.pem" ] && break; sleep 0.1; done
[ -s "$DATA/credentials" ] || fail "the test server did not start: $(cat "$ROOTFS/server.log")"
KEY="$(sed -n 's/^aws_access_key_id *= *//p' "$DATA/credentials" | head -n 1)"
SECRET="$(sed -n 's/^aws_secret_access_key *= *//p' "$DATA/credentials" | head -n 1)"

# 1. ingest-server with apt, and systemd for systemd-analyze.
cp "$SERVER_DEB" "$ROOTFS/tmp/"
log "apt-get install ingest-server (+ systemd) in the chroot"
in_root apt-get update -q >/dev/null
in_root apt-get install -y -q --no-install-recommends "/tmp/$(basename "$SERVER_DEB")" systemd >"$ROOTFS/apt-server.log" 2>&1 \
  || { tail -30 "$ROOTFS/apt-server.log" >&2; fail "installing ingest-server"; }
in_root getent passwd ingest-server | grep -q ':/var/lib/ingest-server:' || fail "no ingest-server system user"
in_root systemctl is-enabled ingest-server.service | grep -qx enabled || fail "ingest-server.service is not enabled"
ok "ingest-server installed, user created, service enabled ($(elapsed))"

# 2. First boot: the image's script installs edge-agent and provisions it from the seed.
install -d "$ROOTFS/var/lib/edge-agent-firstboot" "$ROOTFS/boot/firmware" "$ROOTFS/usr/local/sbin"
cp "$AGENT_DEB" "$ROOTFS/var/lib/edge-agent-firstboot/"
install -m 0755 "$FW_DIR/image/edge-agent-firstboot" "$ROOTFS/usr/local/sbin/edge-agent-firstboot"
install -m 0644 "$FW_DIR/image/edge-agent-firstboot.service" "$ROOTFS/etc/systemd/system/"
in_root systemctl enable edge-agent-firstboot.service >/dev/null 2>&1
STREAM="chroot-$(date +%s)"
cat >"$ROOTFS/boot/firmware/edge-agent.env" <<EOF
# written on Windows: CRLF line ends
EDGE_AGENT_ENDPOINT=https://127.0.0.1:$PORT
AWS_ACCESS_KEY_ID=$KEY
AWS_SECRET_ACCESS_KEY="$SECRET"
EDGE_AGENT_REGION=us-west-2
EDGE_AGENT_STREAM=$STREAM
EDGE_AGENT_SOURCE=test
EDGE_AGENT_CREATE_STREAM=yes
EOF
sed -i 's/$/\r/' "$ROOTFS/boot/firmware/edge-agent.env"
cp "$DATA/tls/ca.pem" "$ROOTFS/boot/firmware/edge-agent-ca.pem"
log "running edge-agent-firstboot in the chroot"
in_root /usr/local/sbin/edge-agent-firstboot >"$ROOTFS/firstboot.log" 2>&1 \
  || { tail -40 "$ROOTFS/firstboot.log" >&2; fail "edge-agent-firstboot failed"; }
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
in_root dpkg-query -W -f='${Status}' edge-agent | grep -q 'install ok installed' || fail "edge-agent not installed"
[ ! -e "$ROOTFS/boot/firmware/edge-agent.env" ] || fail "the seed (with the secret) is still on the boot partition"
grep -q provisioned "$ROOTFS/boot/firmware/edge-agent-status.txt" || fail "no status: $(cat "$ROOTFS/boot/firmware/edge-agent-status.txt")"
[ ! -e "$ROOTFS/var/lib/edge-agent-firstboot" ] || fail "the first-boot state is left"
state="$(in_root systemctl is-enabled edge-agent-firstboot.service 2>&1 || true)"
[ "$state" = disabled ] || fail "edge-agent-firstboot.service is $state"
in_root systemctl is-enabled edge-agent.service | grep -qx enabled || fail "edge-agent.service was not enabled by provision"
ok "first boot: package installed, provisioned, seed removed, edge-agent.service enabled, first-boot unit disabled ($(elapsed))"

# Names as the chroot's own /etc/passwd and /etc/group resolve them.
perms="$(in_root stat -c '%a %U %G' /etc/edge-agent/credentials)"
[ "$perms" = "640 root edge-agent" ] || fail "credentials: $perms"
grep -q "^stream = \"$STREAM\"$" "$ROOTFS/etc/edge-agent/edge-agent.toml" || fail "stream not in the config"
grep -q '^dir = "/var/lib/edge-agent"$' "$ROOTFS/etc/edge-agent/edge-agent.toml" || fail "spool dir not in the config"
in_root id -nG edge-agent | grep -qw video || fail "edge-agent is not in group video"
# shellcheck disable=SC2016
in_root dpkg-query -W -f='${Conffiles}\n' edge-agent | grep -q '/etc/edge-agent/edge-agent.toml' || fail "config is not a conffile"
ok "credentials 0640 root:edge-agent, config provisioned, user in group video, conffiles registered"

# 3. The agent as the service runs it: user edge-agent, the unit's environment.
in_root install -d -o edge-agent -g edge-agent -m 0750 /var/lib/edge-agent /var/cache/edge-agent
log "edge-agent run as user edge-agent in the chroot"
timeout -s TERM 25 chroot --userspec=edge-agent:edge-agent --groups=video "$ROOTFS" env -i PATH=/usr/bin:/bin \
  AWS_SHARED_CREDENTIALS_FILE=/etc/edge-agent/credentials XDG_CACHE_HOME=/var/cache/edge-agent HOME=/var/lib/edge-agent \
  edge-agent run --config /etc/edge-agent/edge-agent.toml --width 320 --height 240 --framerate 15 \
  >"$ROOTFS/agent.log" 2>&1 || true
grep -q 'edge-agent stopped' "$ROOTFS/agent.log" || { tail -30 "$ROOTFS/agent.log" >&2; fail "the agent did not run"; }
python3 - "$PORT" "$DATA" "$STREAM" <<'EOF' || fail "no fragments from the chrooted agent: $(tail -20 "$ROOTFS/agent.log")"
import configparser, sys, boto3
port, data, stream = sys.argv[1:]
cp = configparser.ConfigParser(); cp.read(f"{data}/credentials")
c = boto3.client("kinesis-video-archived-media", endpoint_url=f"https://127.0.0.1:{port}", region_name="us-west-2",
                 aws_access_key_id=cp["default"]["aws_access_key_id"], aws_secret_access_key=cp["default"]["aws_secret_access_key"],
                 verify=f"{data}/tls/ca.pem")
n = len(c.list_fragments(StreamName=stream)["Fragments"])
print(f"  ok: {n} fragments listed for {stream}")
sys.exit(0 if n >= 3 else 1)
EOF

# 4. systemd accepts the units (inside the chroot: the binaries and users exist there).
for unit in edge-agent.service ingest-server.service edge-agent-firstboot.service; do
  in_root systemd-analyze verify --man=no "$unit" >"$ROOTFS/verify.log" 2>&1 \
    || { cat "$ROOTFS/verify.log" >&2; fail "systemd-analyze verify $unit"; }
done
ok "systemd-analyze verify: edge-agent.service, ingest-server.service, edge-agent-firstboot.service"

# 5. remove keeps data and provisioned secrets; purge deletes them (the system user stays).
touch "$ROOTFS/var/lib/edge-agent/kept"
in_root apt-get remove -y -q edge-agent >/dev/null 2>&1 || fail "apt-get remove edge-agent"
for f in /var/lib/edge-agent/kept /etc/edge-agent/credentials; do
  [ -e "$ROOTFS$f" ] || fail "remove deleted $f"
done
in_root apt-get purge -y -q edge-agent >/dev/null 2>&1 || fail "apt-get purge edge-agent"
for f in /var/lib/edge-agent /var/cache/edge-agent /etc/edge-agent; do
  [ ! -e "$ROOTFS$f" ] || fail "purge left $f"
done
in_root getent passwd edge-agent >/dev/null || fail "purge removed the system user"
install -d "$ROOTFS/var/lib/ingest-server" && touch "$ROOTFS/var/lib/ingest-server/data"
in_root apt-get purge -y -q ingest-server >/dev/null 2>&1 || fail "apt-get purge ingest-server"
[ ! -e "$ROOTFS/var/lib/ingest-server" ] || fail "purge left /var/lib/ingest-server"
ok "remove keeps /var/lib/edge-agent and /etc/edge-agent; purge deletes them; users stay"
echo "chroot test: all checks passed in $(elapsed)"
