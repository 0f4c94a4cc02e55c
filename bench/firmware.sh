#!/usr/bin/env bash
# Device-build benchmark: binary and package sizes per target, and the agent's peak RSS
# streaming the test source at 720p30 (x264enc) to a real ingest-server, under qemu-user for
# aarch64 and armv7 (the target's own Debian 12 GStreamer from the build sysroot) and natively
# for amd64 as the reference.
#
# Peak RSS under qemu-user is that of the emulator process: the guest's memory plus qemu's
# translated-code cache (~tens of MiB) and bookkeeping, so it bounds the device figure from
# above; the native amd64 run of the same code is the closer estimate. Emulated x264 at 720p
# does not keep up with 30 fps, so the frames captured are reported next to the RSS.
#
# Usage (from anywhere):
#   bench/firmware.sh                    # build (firmware/build.sh), then 60 s per target
#   DURATION=30 bench/firmware.sh
#   TARGETS="aarch64" NO_BUILD=1 bench/firmware.sh
#
# Environment:
#   DURATION   seconds each agent streams (default 60)
#   TARGETS    space-separated: aarch64 armv7 amd64 (default all three)
#   WIDTH HEIGHT FRAMERATE   capture settings (default 1280 720 30)
#   NO_BUILD=1 use the binaries already built
#   WORK_DIR   server data and spools (default: a new dir under /tmp); KEEP_DATA=1 keeps it
#
# Output: bench/results/firmware-<date>.md (also printed) and the logs in
# bench/results/firmware-<timestamp>/.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=firmware/lib.sh
. "$ROOT/firmware/lib.sh"
DURATION="${DURATION:-60}"
TARGETS="${TARGETS:-aarch64 armv7 amd64}"
WIDTH="${WIDTH:-1280}"
HEIGHT="${HEIGHT:-720}"
FRAMERATE="${FRAMERATE:-30}"

RESULTS_ROOT="$BENCH_DIR/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$RESULTS_ROOT/firmware-$STAMP"
SUMMARY="$RESULTS_ROOT/firmware-$(date -u +%Y-%m-%d).md"
mkdir -p "$OUT"
WORK_DIR="${WORK_DIR:-$(mktemp -d /tmp/firmware-bench.XXXXXX)}"
mkdir -p "$WORK_DIR"

blog() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- build -------------------------------------------------------------------------------
if [ -z "${NO_BUILD:-}" ]; then
  blog "building (firmware/build.sh $TARGETS)"
  # shellcheck disable=SC2086
  "$ROOT/firmware/build.sh" $TARGETS >&2
fi
apt_ensure qemu-user-static
SERVER="$(binary_path amd64 ingest-server)"
[ -x "$SERVER" ] || SERVER="$TARGET_DIR/debug/ingest-server"
STATUS_AGENT="$(binary_path amd64 edge-agent)"
[ -x "$STATUS_AGENT" ] || STATUS_AGENT="$TARGET_DIR/debug/edge-agent"
if [ ! -x "$SERVER" ] || [ ! -x "$STATUS_AGENT" ]; then
  echo "missing $SERVER or $STATUS_AGENT (firmware/build.sh amd64)" >&2
  exit 1
fi

# --- server ------------------------------------------------------------------------------
SERVER_PID="" AGENT_PID="" TMPFS_DIRS=()
stop_pid() { # stop_pid PID: SIGTERM, SIGKILL after 20 s; returns the exit status
  local pid="$1" rc=0
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}
# stop_agent: SIGTERM to the agent (or its emulator), the child of /usr/bin/time: time
# itself would die of it and leave the agent running. Returns the agent's exit status.
stop_agent() {
  local child rc=0
  [ -n "$AGENT_PID" ] || return 0
  child="$(pgrep -P "$AGENT_PID" | head -n 1 || true)"
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi
  for _ in $(seq 1 300); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
  # Still there after 30 s (time waits for it, so its pid is still the agent's).
  if [ -n "$child" ] && kill -0 "$AGENT_PID" 2>/dev/null; then kill -KILL "$child" 2>/dev/null || true; fi
  stop_pid "$AGENT_PID" || rc=$?
  AGENT_PID=""
  return "$rc"
}
cleanup() {
  stop_agent || true
  stop_pid "$SERVER_PID" || true
  if [ ${#TMPFS_DIRS[@]} -gt 0 ]; then rm -rf "${TMPFS_DIRS[@]}"; fi
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
DATA="$WORK_DIR/server"
NO_COLOR=1 "$SERVER" --data-dir "$DATA" --listen "127.0.0.1:$PORT" --data-listen "127.0.0.1:$((PORT + 1))" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s "$DATA/credentials" ] && [ -s "$DATA/tls/ca.pem" ] && break; sleep 0.1; done
[ -s "$DATA/credentials" ] || { cat "$OUT/server.log" >&2; exit 1; }
blog "server on 127.0.0.1:$PORT ($SERVER)"

# --- one run per target ------------------------------------------------------------------
ROWS=()
SIZE_ROWS=()
for arch in $TARGETS; do
  target_vars "$arch"
  for pkg in edge-agent ingest-server; do
    bin="$(binary_path "$arch" "$pkg")"
    deb="$DIST_DIR/${pkg}_$(deb_version)_${DEB_ARCH}.deb"
    [ -f "$bin" ] || continue
    debsize="-"
    if [ -f "$deb" ]; then debsize="$(stat -c %s "$deb")"; fi
    SIZE_ROWS+=("| $pkg | $RUST_TARGET | $(stat -c %s "$bin") | $(awk -v b="$(stat -c %s "$bin")" 'BEGIN{printf "%.2f", b/1048576}') | $debsize |")
  done

  agent="$(binary_path "$arch" edge-agent)"
  [ -x "$agent" ] || { blog "no $agent: skipping $arch"; continue; }
  cmd=("$agent")
  how=native
  plugin_env=()
  if [ -n "$QEMU" ]; then
    cmd=("$(command -v "$QEMU")" -L "$(sysroot_path "$DEB_ARCH")" "$agent")
    how="$QEMU"
    if [ "$DEB_ARCH" = armhf ]; then
      # Under qemu-user a 32-bit readdir() cannot take ext4's 64-bit directory offsets (the
      # kernel serves a 64-bit process) and GStreamer finds no plugin: list them from tmpfs.
      plugins="$(mktemp -d /dev/shm/firmware-gst-armhf.XXXXXX)"
      TMPFS_DIRS+=("$plugins")
      cp "$(sysroot_path armhf)/usr/lib/$GNU_TRIPLET/gstreamer-1.0/"*.so "$plugins/"
      plugin_env=(GST_PLUGIN_SYSTEM_PATH="$plugins")
    fi
  fi
  spool="$WORK_DIR/spool-$arch"
  stream="bench-$arch-$STAMP"
  blog "$arch ($how): ${WIDTH}x${HEIGHT}@${FRAMERATE} x264enc for $DURATION s"
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$DATA/credentials" AWS_REGION=us-west-2 \
    GST_REGISTRY_FORK=no GST_REGISTRY="$WORK_DIR/registry-$arch.bin" NO_COLOR=1 "${plugin_env[@]}" \
    /usr/bin/time -v -o "$OUT/time-$arch.txt" "${cmd[@]}" run --endpoint "https://127.0.0.1:$PORT" --ca "$DATA/tls/ca.pem" \
    --stream "$stream" --create-stream --source test --encoder x264enc --width "$WIDTH" --height "$HEIGHT" \
    --framerate "$FRAMERATE" --spool-dir "$spool" >"$OUT/agent-$arch.log" 2>&1 &
  AGENT_PID=$!
  sleep "$DURATION"
  # The emulator (or the agent) is the child of /usr/bin/time.
  child="$(pgrep -P "$AGENT_PID" | head -n 1 || true)"
  hwm="$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$child/status" 2>/dev/null || echo 0)"
  status="$("$STATUS_AGENT" status --spool-dir "$spool" --json 2>/dev/null || echo '{}')"
  rc=0
  stop_agent || rc=$?
  maxrss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/time-$arch.txt")"
  cpu="$(sed -n 's/.*Percent of CPU this job got: //p' "$OUT/time-$arch.txt")"
  read -r frames dropped acked < <(python3 -c 'import json,sys; s=json.loads(sys.argv[1] or "{}"); f=s.get("frames",{}); g=s.get("fragments",{}); print(f.get("captured",0), f.get("dropped",0), g.get("acked",0))' "$status")
  fps="$(awk -v f="$frames" -v d="$DURATION" 'BEGIN{printf "%.1f", f/d}')"
  ROWS+=("| $arch | $how | $(awk -v k="$hwm" 'BEGIN{printf "%.1f", k/1024}') | $(awk -v k="$maxrss" 'BEGIN{printf "%.1f", k/1024}') | $cpu | $frames ($fps/s), $dropped dropped | $acked | $rc |")
  blog "$arch: VmHWM $hwm kB, max RSS $maxrss kB, $frames frames, $acked fragments acked, exit $rc"
done

{
  echo "# Firmware benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Host: $(nproc) CPUs, $(uname -m), $(. /etc/os-release && echo "$PRETTY_NAME"); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo "Profile \`firmware\` (root Cargo.toml): opt-level z, fat LTO, codegen-units 1, symbols stripped, panic unwind."
  echo
  echo "## Sizes"
  echo
  echo "| package | target | binary bytes | MiB | .deb bytes |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${SIZE_ROWS[@]}"
  echo
  echo "## Agent peak RSS: test source ${WIDTH}x${HEIGHT}@${FRAMERATE}, x264enc, TLS upload, $DURATION s"
  echo
  echo "VmHWM is sampled just before SIGTERM; max RSS is /usr/bin/time's (whole run, shutdown included)."
  echo "Under qemu-user both include the emulator's translation cache: an upper bound of the device figure."
  echo
  echo "| target | run | VmHWM MiB | max RSS MiB | CPU | frames captured | fragments acked | exit |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} >"$SUMMARY"
cp "$SUMMARY" "$OUT/summary.md"
cat "$SUMMARY"
