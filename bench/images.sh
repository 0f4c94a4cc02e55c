#!/usr/bin/env bash
# GetImages benchmark, against a real ingest-server (release build):
#
#  1. A fresh server; the real camera agent (`edge-agent run --source test`, 1280x720 30 fps,
#     x264enc, a key frame every second, 1 s fragments) streams DURATION s into it.
#  2. bench/images_probe.py calls GetImages with boto3 (through GetDataEndpoint, over TLS),
#     MaxResults=25, ROUNDS times per scenario: JPEG at 200 ms and 1000 ms sampling (the
#     target: < 150 ms per JPEG at 720p), a scaled JPEG (640x360) and a PNG. Reports wall ms
#     per image, the server's CPU ms per image (/proc), and the frames the server had to
#     decode (estimated from ListFragments).
#  3. The physical limit in the same run: one stored fragment (GetMediaForFragmentList)
#     decoded by gst-launch-1.0 (`matroskademux ! avdec_h264 ! ...`): key frame + one JPEG,
#     the whole fragment, the whole fragment + a JPEG per frame, process start-up subtracted.
#
# Usage (from anywhere):
#   bench/images.sh
#   ROUNDS=5 bench/images.sh
#   NO_BUILD=1 DURATION=40 bench/images.sh
#
# Environment:
#   DURATION        seconds the agent streams (default 32: the 1000 ms scenario needs 25 s
#                   after the first fragment)
#   WIDTH HEIGHT FRAMERATE BITRATE_KBPS ENCODER
#                   capture settings (default 1280 720 30 2000 x264enc)
#   KEYFRAME_INTERVAL  frames between key frames (default FRAMERATE: 1 s)
#   FRAGMENT_DURATION  agent fragment duration in s (default 1)
#   ROUNDS          GetImages calls per scenario (default 3; median reported)
#   REF_ROUNDS      gst-launch-1.0 runs per reference measurement (default 5)
#   CARGO_JOBS      cargo -j for the build (default 1: the machine is shared)
#   WORK_DIR        where server data and the agent spool go (default: a new dir under /tmp)
#   KEEP_DATA=1     keep WORK_DIR
#   NO_BUILD=1      skip cargo build
#
# Output: bench/results/images-<timestamp>/ (measure.json, server and agent logs, the
# reference fragment) and the summary bench/results/images-<timestamp>.md, also printed.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
DURATION="${DURATION:-32}"
WIDTH="${WIDTH:-1280}"
HEIGHT="${HEIGHT:-720}"
FRAMERATE="${FRAMERATE:-30}"
BITRATE_KBPS="${BITRATE_KBPS:-2000}"
ENCODER="${ENCODER:-x264enc}"
KEYFRAME_INTERVAL="${KEYFRAME_INTERVAL:-$FRAMERATE}"
FRAGMENT_DURATION="${FRAGMENT_DURATION:-1}"
ROUNDS="${ROUNDS:-3}"
REF_ROUNDS="${REF_ROUNDS:-5}"
CARGO_JOBS="${CARGO_JOBS:-1}"

RESULTS_ROOT="$BENCH_DIR/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$RESULTS_ROOT/images-$STAMP"
SUMMARY="$RESULTS_ROOT/images-$STAMP.md"
mkdir -p "$OUT"
WORK_DIR="${WORK_DIR:-$(mktemp -d /tmp/images-bench.XXXXXX)}"
mkdir -p "$WORK_DIR"
PROBE=(python3 "$BENCH_DIR/images_probe.py")


# --- build -------------------------------------------------------------------------------
if [ -z "${NO_BUILD:-}" ]; then
  log "building ingest-server and edge-agent (release, -j $CARGO_JOBS)"
  (cd "$ROOT" && nice -n 19 cargo build --release -p ingest-server -p edge-agent -j "$CARGO_JOBS")
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET_DIR/release/ingest-server"
AGENT="$TARGET_DIR/release/edge-agent"
[ -x "$SERVER" ] && [ -x "$AGENT" ] || { echo "missing $SERVER or $AGENT" >&2; exit 1; }
command -v gst-launch-1.0 >/dev/null || { echo "gst-launch-1.0 is needed (apt-get install gstreamer1.0-tools)" >&2; exit 1; }
command -v ffprobe >/dev/null || { echo "ffprobe is needed (apt-get install ffmpeg)" >&2; exit 1; }

# --- helpers -----------------------------------------------------------------------------
SERVER_PID=""
AGENT_PID=""
cleanup() {
  stop_pid "$AGENT_PID" 10 || true
  stop_pid "$SERVER_PID" 10 || true
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

# --- run metadata ------------------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo none) $(cd "$ROOT" && git status --porcelain 2>/dev/null | wc -l | tr -d ' ') uncommitted paths"
  echo "host: $(uname -sr), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "gstreamer: $(gst-launch-1.0 --version | sed -n 's/^GStreamer //p' | head -1)"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "stream: ${WIDTH}x${HEIGHT}@${FRAMERATE} ${BITRATE_KBPS} kbit/s $ENCODER, key frame every $KEYFRAME_INTERVAL frames, ${FRAGMENT_DURATION}s fragments, ${DURATION}s"
} >"$OUT/meta.txt"

# --- 1. server and stream ----------------------------------------------------------------
DATA="$WORK_DIR/server"
mkdir -p "$DATA"
start_ingest_server "$DATA" "$OUT/server.log" || { stop_pid "$INGEST_PID" 5; exit 1; }
SERVER_PID=$INGEST_PID PORT=$INGEST_PORT; DPORT=$((PORT + 1))
ENDPOINT="https://127.0.0.1:$PORT"
log "server: pid $SERVER_PID on 127.0.0.1:$PORT/$DPORT, data $DATA"

STREAM="bench-images"
log "agent: ${WIDTH}x${HEIGHT}@${FRAMERATE} for ${DURATION}s into $STREAM"
with_server_credentials "$DATA" \
  "$AGENT" run --endpoint "$ENDPOINT" --ca "$DATA/tls/ca.pem" --stream "$STREAM" --create-stream \
  --spool-dir "$WORK_DIR/spool" --source test --width "$WIDTH" --height "$HEIGHT" \
  --framerate "$FRAMERATE" --bitrate-kbps "$BITRATE_KBPS" --keyframe-interval "$KEYFRAME_INTERVAL" \
  --encoder "$ENCODER" --fragment-duration "$FRAGMENT_DURATION" >"$OUT/agent.log" 2>&1 &
AGENT_PID=$!
sleep 1
kill -0 "$AGENT_PID" 2>/dev/null || { echo "edge-agent exited at start-up:" >&2; cat "$OUT/agent.log" >&2; exit 1; }
sleep "$DURATION"
rc=0
stop_pid "$AGENT_PID" 30 || rc=$?
AGENT_PID=""
[ "$rc" -eq 0 ] || log "WARNING: edge-agent exited with $rc after SIGTERM (see $OUT/agent.log)"
sleep 1

# --- 2./3. GetImages and the reference ---------------------------------------------------
log "GetImages: $ROUNDS call(s) per scenario, then the gst-launch-1.0 reference"
"${PROBE[@]}" measure --endpoint "$ENDPOINT" --ca "$DATA/tls/ca.pem" --credentials "$DATA/credentials" \
  --stream "$STREAM" --server-pid "$SERVER_PID" --rounds "$ROUNDS" --ref-rounds "$REF_ROUNDS" \
  --framerate "$FRAMERATE" --keyframe-interval "$KEYFRAME_INTERVAL" --out "$OUT/measure.json"
stop_pid "$SERVER_PID" 20 || true
SERVER_PID=""

# --- summary -----------------------------------------------------------------------------
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.txt"
CMD="$(for v in DURATION WIDTH HEIGHT FRAMERATE ROUNDS; do printf '%s=%q ' "$v" "${!v}"; done)bench/images.sh"
"${PROBE[@]}" summary --json "$OUT/measure.json" --meta "$OUT/meta.txt" --command "$CMD" --out "$SUMMARY" >/dev/null
cp "$SUMMARY" "$OUT/summary.md"
cat "$SUMMARY"
log "results in $OUT, summary $SUMMARY"
