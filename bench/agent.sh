#!/usr/bin/env bash
# edge-agent benchmark, against a real ingest-server (release builds):
#
#  1. Overhead: the agent (--source test, 1280x720 30 fps, x264enc, uploading over TLS) against
#     the bare GStreamer pipeline with the same source and encoder settings (gst-launch-1.0 ...
#     ! fakesink), one after the other (never concurrently), ROUNDS alternating rounds of
#     DURATION seconds each. CPU = utime+stime from /proc/PID/stat over the run after WARMUP s,
#     peak RSS = VmHWM from /proc/PID/status. Reports agent - pipeline (median of the rounds).
#  2. Recovery: the agent streams PRE_OUTAGE s, then ONLINE s in which its disk writes are
#     measured, then the server is stopped for OUTAGE s and restarted on the same data dir and
#     port; `edge-agent status --json` is polled from the restart until the spool is back to
#     <= 1 fragment. Reports drain speed (outage / drain time), drops during the drain, the
#     ListFragments timeline (strictly increasing producer timestamps, no gap > 3 s), and the
#     agent's disk_write_bytes during the outage against the media captured in it.
#
# Usage (from anywhere):
#   bench/agent.sh                          # 2 rounds x 2 x 60 s overhead, then a 60 s outage
#   DURATION=30 ROUNDS=1 OUTAGE=30 ONLINE=30 bench/agent.sh   # a quicker run
#   SKIP_OVERHEAD=1 bench/agent.sh          # recovery only
#
# Environment:
#   DURATION        seconds per overhead measurement (default 60)
#   ROUNDS          alternating agent/pipeline rounds (default 2; the median is reported)
#   WARMUP          seconds excluded from the CPU window at the start of each process (default 5)
#   WIDTH HEIGHT FRAMERATE BITRATE_KBPS ENCODER
#                   capture settings for the overhead part (default 1280 720 30 2000 x264enc)
#   BASELINE_PIPELINE  gst-launch-1.0 description to compare with; default: the pipeline the
#                   agent logs (appsink replaced by fakesink) if its log has one, else the
#                   agent's test-source pipeline as its source builds it (DEFAULT_PIPELINE)
#   OUTAGE          seconds the server is down (default 60)
#   PRE_OUTAGE      seconds of streaming before the online window (default 20)
#   ONLINE          seconds of the online disk-write window (default 60)
#   REC_WIDTH REC_HEIGHT REC_FRAMERATE REC_ENCODER
#                   capture settings for the recovery part (default: the overhead ones)
#   SKIP_OVERHEAD=1 / SKIP_RECOVERY=1   run only one part
#   WORK_DIR        where server data and spool dirs go (default: a new dir under /tmp)
#   KEEP_DATA=1     keep WORK_DIR
#   NO_BUILD=1      skip cargo build
#
# Output: bench/results/agent-<timestamp>/ (JSON per measurement, server/agent logs) and the
# summary bench/results/agent-<timestamp>.md, also printed. Targets as PASS/FAIL lines: RSS
# overhead < 20 MiB, CPU overhead < 5 % of one core, drain >= 4x real time with no drops,
# producer timestamps strictly increasing without gaps > 3 s, disk writes <= 1.05 x media
# during the outage and ~0 while online (buffered spool mode).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
DURATION="${DURATION:-60}"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-5}"
WIDTH="${WIDTH:-1280}"
HEIGHT="${HEIGHT:-720}"
FRAMERATE="${FRAMERATE:-30}"
BITRATE_KBPS="${BITRATE_KBPS:-2000}"
ENCODER="${ENCODER:-x264enc}"
OUTAGE="${OUTAGE:-60}"
PRE_OUTAGE="${PRE_OUTAGE:-20}"
ONLINE="${ONLINE:-60}"
REC_WIDTH="${REC_WIDTH:-$WIDTH}"
REC_HEIGHT="${REC_HEIGHT:-$HEIGHT}"
REC_FRAMERATE="${REC_FRAMERATE:-$FRAMERATE}"
REC_ENCODER="${REC_ENCODER:-$ENCODER}"
# The agent's own test-source pipeline (edge-agent/src/capture/pipeline.rs and encoder.rs, the
# agent does not log it) with fakesink in place of its appsink. Evaluated by the shell, so
# quotes group words as on a command line.
DEFAULT_PIPELINE="videotestsrc is-live=true pattern=smpte ! clockoverlay time-format=\"%Y-%m-%d %H:%M:%S\" shaded-background=true ! video/x-raw,width=$WIDTH,height=$HEIGHT,framerate=$FRAMERATE/1 ! videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=veryfast bitrate=$BITRATE_KBPS key-int-max=$FRAMERATE bframes=0 ! h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au ! fakesink"

RESULTS_ROOT="$BENCH_DIR/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$RESULTS_ROOT/agent-$STAMP"
SUMMARY="$RESULTS_ROOT/agent-$STAMP.md"
mkdir -p "$OUT"
WORK_DIR="${WORK_DIR:-$(mktemp -d /tmp/agent-bench.XXXXXX)}"
mkdir -p "$WORK_DIR"
PROBE=(python3 "$BENCH_DIR/agent_probe.py")


# --- build -------------------------------------------------------------------------------
if [ -z "${NO_BUILD:-}" ]; then
  log "building ingest-server and edge-agent (release)"
  (cd "$ROOT" && cargo build --release -p ingest-server -p edge-agent)
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET_DIR/release/ingest-server"
AGENT="$TARGET_DIR/release/edge-agent"
[ -x "$SERVER" ] && [ -x "$AGENT" ] || { echo "missing $SERVER or $AGENT" >&2; exit 1; }
command -v gst-launch-1.0 >/dev/null || { echo "gst-launch-1.0 is needed (apt-get install gstreamer1.0-tools)" >&2; exit 1; }

# --- helpers -----------------------------------------------------------------------------
SERVER_PID=""
AGENT_PID=""
GST_PID=""
cleanup() {
  stop_pid "$GST_PID" 5 || true
  stop_pid "$AGENT_PID" 10 || true
  stop_pid "$SERVER_PID" 10 || true
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

# start_server NAME [restart]: a fresh data dir and ports, or (restart) the same data dir and
# ports as the last start. Sets SERVER_PID, DATA, PORT, DPORT, ENDPOINT.
start_server() {
  local name="$1" restart="${2:-}" logf
  if [ -z "$restart" ]; then
    DATA="$WORK_DIR/server-$name"
    rm -rf "$DATA"; mkdir -p "$DATA"
    PORT=$(free_port); DPORT=$((PORT + 1))
  fi
  logf="$OUT/server-$name-$(date +%H%M%S).log"
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-warn,ingest_server=info}" "$SERVER" --data-dir "$DATA" \
    --listen "127.0.0.1:$PORT" --data-listen "127.0.0.1:$DPORT" >"$logf" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    if grep -qi listening "$logf"; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server exited:" >&2; cat "$logf" >&2; exit 1; fi
    sleep 0.1
  done
  grep -qi listening "$logf" || { echo "server did not start:" >&2; cat "$logf" >&2; exit 1; }
  ENDPOINT="https://127.0.0.1:$PORT"
  log "server $name: pid $SERVER_PID on 127.0.0.1:$PORT/$DPORT, data $DATA"
}

stop_server() {
  stop_pid "$SERVER_PID" 20 || true
  SERVER_PID=""
}

# start_agent NAME STREAM SPOOL_DIR ARGS...: sets AGENT_PID, AGENT_LOG
start_agent() {
  local name="$1" stream="$2" spool="$3"
  shift 3
  AGENT_LOG="$OUT/agent-$name.log"
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_DEFAULT_REGION \
    AWS_SHARED_CREDENTIALS_FILE="$DATA/credentials" AWS_PROFILE=default AWS_REGION=us-west-2 \
    AWS_CONFIG_FILE=/dev/null NO_COLOR=1 \
    "$AGENT" run --endpoint "$ENDPOINT" --ca "$DATA/tls/ca.pem" --stream "$stream" --create-stream \
    --spool-dir "$spool" "$@" >"$AGENT_LOG" 2>&1 &
  AGENT_PID=$!
  sleep 1
  if ! kill -0 "$AGENT_PID" 2>/dev/null; then
    echo "edge-agent exited at start-up:" >&2; cat "$AGENT_LOG" >&2; exit 1
  fi
  log "agent $name: pid $AGENT_PID, stream $stream, spool $spool"
}

stop_agent() {
  local rc=0
  stop_pid "$AGENT_PID" 30 || rc=$?
  [ "$rc" -eq 0 ] || log "WARNING: edge-agent exited with $rc after SIGTERM (see $AGENT_LOG)"
  AGENT_PID=""
}

status_json() { # status_json OUTFILE SPOOL
  "${PROBE[@]}" status --agent "$AGENT" --spool-dir "$2" --wait 10 --out "$1" >/dev/null \
    || log "WARNING: edge-agent status failed ($1)"
}

# --- run metadata ------------------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo none) $(cd "$ROOT" && git status --porcelain 2>/dev/null | wc -l | tr -d ' ') uncommitted paths"
  echo "host: $(uname -sr), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "gstreamer: $(gst-launch-1.0 --version | sed -n 's/^GStreamer //p' | head -1)"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "overhead: ${WIDTH}x${HEIGHT}@${FRAMERATE} ${BITRATE_KBPS} kbit/s encoder $ENCODER, ${ROUNDS} round(s) x ${DURATION}s (CPU window after ${WARMUP}s)"
  echo "recovery: ${REC_WIDTH}x${REC_HEIGHT}@${REC_FRAMERATE} encoder $REC_ENCODER, ${PRE_OUTAGE}s + ${ONLINE}s online, ${OUTAGE}s outage"
} >"$OUT/meta.txt"

AGENT_CAPTURE=(--source test --width "$WIDTH" --height "$HEIGHT" --framerate "$FRAMERATE"
  --bitrate-kbps "$BITRATE_KBPS" --keyframe-interval "$FRAMERATE" --encoder "$ENCODER")

# --- 1. overhead -------------------------------------------------------------------------
if [ -z "${SKIP_OVERHEAD:-}" ]; then
  start_server overhead
  PIPELINE="${BASELINE_PIPELINE:-}"
  for r in $(seq 1 "$ROUNDS"); do
    log "overhead round $r/$ROUNDS: agent for ${DURATION}s"
    start_agent "overhead-$r" "bench-overhead-$r" "$WORK_DIR/spool-overhead-$r" "${AGENT_CAPTURE[@]}"
    "${PROBE[@]}" proc --pid "$AGENT_PID" --label agent --warmup "$WARMUP" --duration "$DURATION" \
      --out "$OUT/overhead-agent-$r.json" >/dev/null || log "WARNING: agent measurement incomplete"
    status_json "$OUT/overhead-agent-status-$r.json" "$WORK_DIR/spool-overhead-$r"
    stop_agent
    if [ -z "$PIPELINE" ]; then
      PIPELINE="$("${PROBE[@]}" pipeline --log "$AGENT_LOG" --raw-out "$OUT/agent-pipeline.txt")"
      if [ -n "$PIPELINE" ]; then
        log "baseline = the agent's logged pipeline: $PIPELINE"
      else
        PIPELINE="$DEFAULT_PIPELINE"
        log "the agent log names no pipeline; baseline = $PIPELINE"
      fi
      echo "$PIPELINE" >"$OUT/baseline-pipeline.txt"
    fi
    log "overhead round $r/$ROUNDS: gst-launch-1.0 pipeline for ${DURATION}s"
    (eval "exec gst-launch-1.0 -q $PIPELINE") >"$OUT/pipeline-$r.log" 2>&1 &
    GST_PID=$!
    "${PROBE[@]}" proc --pid "$GST_PID" --label pipeline --warmup "$WARMUP" --duration "$DURATION" \
      --out "$OUT/overhead-pipeline-$r.json" >/dev/null || { log "WARNING: pipeline measurement incomplete:"; cat "$OUT/pipeline-$r.log" >&2; }
    stop_pid "$GST_PID" 10 || true
    GST_PID=""
  done
  stop_server
fi

# --- 2. recovery -------------------------------------------------------------------------
if [ -z "${SKIP_RECOVERY:-}" ]; then
  start_server recovery
  SPOOL="$WORK_DIR/spool-recovery"
  STREAM="bench-recovery"
  start_agent recovery "$STREAM" "$SPOOL" --source test --width "$REC_WIDTH" --height "$REC_HEIGHT" \
    --framerate "$REC_FRAMERATE" --keyframe-interval "$REC_FRAMERATE" --bitrate-kbps "$BITRATE_KBPS" \
    --encoder "$REC_ENCODER"
  log "recovery: streaming ${PRE_OUTAGE}s, then a ${ONLINE}s online window"
  sleep "$PRE_OUTAGE"
  T_ONLINE0=$(date +%s.%N)
  status_json "$OUT/recovery-status-online-start.json" "$SPOOL"
  sleep "$ONLINE"
  status_json "$OUT/recovery-status-online-end.json" "$SPOOL"
  T_ONLINE1=$(date +%s.%N)

  log "recovery: server down for ${OUTAGE}s"
  status_json "$OUT/recovery-status-outage-start.json" "$SPOOL"
  T_DOWN=$(date +%s.%N)
  stop_server
  sleep "$OUTAGE"
  status_json "$OUT/recovery-status-outage-end.json" "$SPOOL"
  T_UP=$(date +%s.%N)
  start_server recovery restart
  log "recovery: server back; polling the agent until the spool is drained"
  "${PROBE[@]}" drain --agent "$AGENT" --spool-dir "$SPOOL" --t0 "$T_UP" --timeout $((OUTAGE * 3 + 60)) \
    --out "$OUT/recovery-drain.json" >/dev/null || log "WARNING: the spool did not drain (see $OUT/recovery-drain.json)"
  sleep 5
  status_json "$OUT/recovery-status-end.json" "$SPOOL"
  stop_agent
  sleep 1
  "${PROBE[@]}" fragments --endpoint "$ENDPOINT" --ca "$DATA/tls/ca.pem" --credentials "$DATA/credentials" \
    --stream "$STREAM" --window "online:$T_ONLINE0:$T_ONLINE1" --window "outage:$T_DOWN:$T_UP" \
    --out "$OUT/recovery-fragments.json" >/dev/null || log "WARNING: ListFragments failed"
  stop_server
fi

# --- summary -----------------------------------------------------------------------------
CMD="$(for v in DURATION ROUNDS OUTAGE ONLINE WIDTH HEIGHT FRAMERATE ENCODER; do printf '%s=%q ' "$v" "${!v}"; done)bench/agent.sh"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.txt"
"${PROBE[@]}" summary --dir "$OUT" --outage "$OUTAGE" --command "$CMD" --out "$SUMMARY" >/dev/null
cp "$SUMMARY" "$OUT/summary.md"
cat "$SUMMARY"
log "results in $OUT, summary $SUMMARY"
