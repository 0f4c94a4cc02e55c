#!/usr/bin/env bash
# Ingest benchmark of ingest-server: N concurrent real-time PutMedia uploads of a 1080p
# ~4 Mbit/s H.264 source, against the machine's own fsync limit measured in the same run,
# then a 32-reader GetMedia fan-out against reading the same fragment files 32 times.
#
# Usage (from anywhere):
#   bench/ingest.sh                        # N = 1, 10, 100; 60 s each
#   DURATION=600 bench/ingest.sh           # 10 minutes per N (the RSS-flatness run)
#   DURATION_MAX=600 bench/ingest.sh       # 60 s for N = 1, 10, and 10 minutes for the largest N
#   STREAMS="100" DURATION=600 bench/ingest.sh
#
# Environment:
#   DURATION       seconds of upload per N (default 60)
#   DURATION_MAX   seconds for the largest N only (default: DURATION)
#   STREAMS        space-separated stream counts (default "1 10 100")
#   BASELINE_SECS  seconds per fsync-baseline phase (default 10)
#   READERS        GetMedia fan-out readers (default 32)
#   FILL_FRAGMENTS fragments stored for the fan-out stream (default 60)
#   PATTERN        videotestsrc properties of the source (default: moving SMPTE bars, which x264
#                  fills to ~4 Mbit/s; pattern=ball only reaches ~0.3 Mbit/s at these settings)
#   WORK_DIR       where the server's data dirs go (default: a new dir under /tmp)
#   KEEP_DATA=1    keep the server data dirs
#   NO_BUILD=1     skip cargo build
#
# Output: bench/results/<timestamp>/{*.json,server-*.log,summary.md}, copied to
# bench/results/summary.md and printed. Targets printed as PASS/FAIL lines: 100 streams held,
# PERSISTED p99 < 100 ms, server CPU < 1 % of one core per stream, RSS < 150 MiB and flat.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
DURATION="${DURATION:-60}"
STREAMS="${STREAMS:-1 10 100}"
BASELINE_SECS="${BASELINE_SECS:-10}"
READERS="${READERS:-32}"
FILL_FRAGMENTS="${FILL_FRAGMENTS:-60}"
PATTERN="${PATTERN:-pattern=smpte horizontal-speed=20}"
MAX_N=0
for n in $STREAMS; do [ "$n" -gt "$MAX_N" ] && MAX_N=$n; done
DURATION_MAX="${DURATION_MAX:-$DURATION}"

RESULTS_ROOT="$BENCH_DIR/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$RESULTS_ROOT/$STAMP"
mkdir -p "$OUT" "$RESULTS_ROOT/media"
WORK_DIR="${WORK_DIR:-$(mktemp -d /tmp/kvs-bench.XXXXXX)}"
mkdir -p "$WORK_DIR"


# --- build -------------------------------------------------------------------------------
if [ -z "${NO_BUILD:-}" ]; then
  log "building ingest-server and loadgen (release)"
  (cd "$ROOT" && cargo build --release -p ingest-server -p loadgen)
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET_DIR/release/ingest-server"
LOADGEN="$TARGET_DIR/release/loadgen"
[ -x "$SERVER" ] && [ -x "$LOADGEN" ] || { echo "missing $SERVER or $LOADGEN" >&2; exit 1; }

# --- source media (generated once) -------------------------------------------------------
PATTERN_TAG="$(printf '%s' "$PATTERN" | tr -c 'a-zA-Z0-9' '_')"
MEDIA="$RESULTS_ROOT/media/src-1080p30-4000k-${PATTERN_TAG}.mkv"
if [ ! -s "$MEDIA" ]; then
  command -v gst-launch-1.0 >/dev/null || { echo "gst-launch-1.0 is needed (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-{base,good,ugly} )" >&2; exit 1; }
  log "generating the 1080p H.264 source ($PATTERN)"
  # shellcheck disable=SC2086
  gst-launch-1.0 -q videotestsrc num-buffers=600 $PATTERN \
    ! video/x-raw,width=1920,height=1080,framerate=30/1 \
    ! x264enc bitrate=4000 key-int-max=30 speed-preset=ultrafast tune=zerolatency \
    ! h264parse ! matroskamux ! filesink location="$MEDIA.tmp"
  mv "$MEDIA.tmp" "$MEDIA"
fi
MEDIA_BYTES=$(stat -c %s "$MEDIA")
log "source: $MEDIA ($MEDIA_BYTES bytes, ~$((MEDIA_BYTES * 8 / 20000)) kbit/s over 20 s)"

# --- helpers -----------------------------------------------------------------------------
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

# start_server NAME: fresh data dir, sets SERVER_PID, DATA, PORT, DPORT
start_server() {
  local name="$1"
  DATA="$WORK_DIR/$name"
  rm -rf "$DATA"; mkdir -p "$DATA"
  PORT=$(free_port); DPORT=$((PORT + 1))
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-warn,ingest_server=info}" "$SERVER" --data-dir "$DATA" \
    --listen "127.0.0.1:$PORT" --data-listen "127.0.0.1:$DPORT" >"$OUT/server-$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if grep -qi listening "$OUT/server-$name.log"; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server exited:" >&2; cat "$OUT/server-$name.log" >&2; exit 1; fi
    sleep 0.1
  done
  grep -qi listening "$OUT/server-$name.log" || { echo "server did not start" >&2; exit 1; }
  CONN=(--endpoint "https://127.0.0.1:$PORT" --data-endpoint "https://127.0.0.1:$DPORT"
        --ca "$DATA/tls/ca.pem" --credentials "$DATA/credentials")
  log "server $name: pid $SERVER_PID on 127.0.0.1:$PORT/$DPORT, data $DATA"
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "WARNING: server pid $SERVER_PID had already exited (see $OUT/server-*.log)"
    fi
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
  if [ -z "${KEEP_DATA:-}" ] && [ -n "${DATA:-}" ]; then rm -rf "$DATA"; fi
  sync
}

# --- run metadata ------------------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo none) $(cd "$ROOT" && git status --porcelain 2>/dev/null | wc -l | tr -d ' ') uncommitted paths"
  echo "host: $(uname -sr), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "filesystem of data dir: $(df -hT "$WORK_DIR" | awk 'NR==2 {print $1, $2}')"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "source: $(basename "$MEDIA"), $MEDIA_BYTES bytes, 20 s, 1920x1080 30 fps, key frame every 30 frames"
  echo "durations: ${DURATION}s per N (largest N: ${DURATION_MAX}s); streams: $STREAMS"
} >"$OUT/meta.txt"

# --- 1. the physical limit ---------------------------------------------------------------
start_server baseline
log "fsync baseline (${BASELINE_SECS}s back-to-back, ${BASELINE_SECS}s paced at ${MAX_N} streams' rate)"
"$LOADGEN" fsync-baseline --dir "$DATA/fsync-baseline" --media "$MEDIA" \
  --paced-streams "$MAX_N" --duration "$BASELINE_SECS" --out "$OUT/fsync-baseline.json" >/dev/null
stop_server

# --- 2. PutMedia fan-in ------------------------------------------------------------------
for n in $STREAMS; do
  d="$DURATION"; [ "$n" -eq "$MAX_N" ] && d="$DURATION_MAX"
  start_server "ingest-$n"
  log "ingest: $n streams for ${d}s"
  "$LOADGEN" ingest "${CONN[@]}" --media "$MEDIA" --streams "$n" --duration "$d" \
    --server-pid "$SERVER_PID" --prefix "bench-n$n" --out "$OUT/ingest-$n.json" >/dev/null \
    || log "WARNING: loadgen ingest N=$n exited with an error"
  echo "load average at the end of N=$n: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.txt"
  stop_server
done

# --- 3. GetMedia fan-out -----------------------------------------------------------------
start_server fanout
log "fan-out: storing $FILL_FRAGMENTS fragments, then $READERS GetMedia readers"
"$LOADGEN" fill "${CONN[@]}" --media "$MEDIA" --stream fanout --fragments "$FILL_FRAGMENTS" \
  --out "$OUT/fill.json" >/dev/null
"$LOADGEN" getmedia-fanout "${CONN[@]}" --stream fanout --readers "$READERS" --data-dir "$DATA" \
  --out "$OUT/getmedia-fanout.json" >/dev/null || log "WARNING: getmedia-fanout exited with an error"
stop_server

# --- summary -----------------------------------------------------------------------------
CMD="$(for v in DURATION DURATION_MAX STREAMS; do printf '%s=%q ' "$v" "${!v}"; done)bench/ingest.sh"
"$LOADGEN" summary --dir "$OUT" --streams "$(echo $STREAMS | tr ' ' ',')" --command "$CMD" \
  --out "$OUT/summary.md" >/dev/null
cp "$OUT/summary.md" "$RESULTS_ROOT/summary.md"
ln -sfn "$STAMP" "$RESULTS_ROOT/latest"
cat "$OUT/summary.md"
log "results in $OUT"
