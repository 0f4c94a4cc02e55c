#!/usr/bin/env bash
# Live HLS latency of the web page's player, against a real ingest-server and edge-agent
# (release builds), on loopback:
#
#   latency = wall clock - producer timestamp of the frame the player shows
#           = Date.now() - hls.playingDate   (EXT-X-PROGRAM-DATE-TIME = producer timestamps)
#
# The agent streams its test source with 1 s fragments (--fragment-duration 1, a key frame every
# FRAMERATE frames). For each mode, headless Debian Chromium (playwright-core, tests/browser)
# opens the real page at /?stream=NAME&ll=0|1 with the server's keys in sessionStorage; after
# playback starts and WARMUP s pass, bench/hls-latency.mjs samples the latency every INTERVAL ms
# for DURATION s. Modes:
#   standard  hls.js defaults with lowLatencyMode off (standard HLS, LL-HLS parts ignored)
#   ll        hls.js defaults (lowLatencyMode on): LL-HLS when the playlist has EXT-X-PART
# Targets (median): standard < 4 s, LL-HLS < 1.5 s. While the server serves no EXT-X-PART the
# ll figure is standard HLS too, and the summary says so instead of judging it.
#
# Usage (from anywhere):
#   bench/hls-latency.sh                       # 10 s warm-up + 60 s per mode
#   DURATION=30 MODES=standard bench/hls-latency.sh
#
# Environment:
#   DURATION       seconds sampled per mode (default 60)
#   WARMUP         seconds between playback start and the first sample (default 10)
#   INTERVAL_MS    sampling period (default 500)
#   MODES          modes to run, in order (default "standard ll")
#   WIDTH HEIGHT FRAMERATE BITRATE_KBPS ENCODER   capture (default 640 360 30 1000 x264enc)
#   FRAGMENT_DURATION   the agent's --fragment-duration (default 1)
#   WORK_DIR       server data and spool (default: a new dir under /tmp); KEEP_DATA=1 keeps it
#   NO_BUILD=1     skip cargo build; CARGO_JOBS=N passes -j N to it
#
# Output: bench/results/hls-latency-<date>/ (JSON per mode, server/agent logs) and the summary
# bench/results/hls-latency-<date>.md, also printed. Exit status 0 also when the server answers
# 501 for GetHLSStreamingSessionURL (the summary says the endpoints are not implemented).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
DURATION="${DURATION:-60}"
WARMUP="${WARMUP:-10}"
INTERVAL_MS="${INTERVAL_MS:-500}"
MODES="${MODES:-standard ll}"
WIDTH="${WIDTH:-640}"
HEIGHT="${HEIGHT:-360}"
FRAMERATE="${FRAMERATE:-30}"
BITRATE_KBPS="${BITRATE_KBPS:-1000}"
ENCODER="${ENCODER:-x264enc}"
FRAGMENT_DURATION="${FRAGMENT_DURATION:-1}"
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
export CHROMIUM_BIN

RESULTS_ROOT="$BENCH_DIR/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$RESULTS_ROOT/hls-latency-$STAMP"
SUMMARY="$RESULTS_ROOT/hls-latency-$STAMP.md"
mkdir -p "$OUT"
WORK_DIR="${WORK_DIR:-$(mktemp -d /tmp/hls-latency.XXXXXX)}"
mkdir -p "$WORK_DIR"


# --- prerequisites -------------------------------------------------------------------------
command -v node >/dev/null || { echo "node is needed (20 or later)" >&2; exit 1; }
[ -x "$CHROMIUM_BIN" ] || { echo "$CHROMIUM_BIN is missing: apt-get install chromium" >&2; exit 1; }
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] || {
  log "installing playwright-core (npm ci --prefix tests/browser)"
  npm ci --prefix "$ROOT/tests/browser" --no-audit --no-fund >&2
}
if [ -z "${NO_BUILD:-}" ]; then
  log "building ingest-server and edge-agent (release)"
  (cd "$ROOT" && cargo build --release ${CARGO_JOBS:+-j "$CARGO_JOBS"} -p ingest-server -p edge-agent)
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET_DIR/release/ingest-server"
AGENT="$TARGET_DIR/release/edge-agent"
if [ ! -x "$SERVER" ] || [ ! -x "$AGENT" ]; then echo "missing $SERVER or $AGENT" >&2; exit 1; fi

# --- helpers -------------------------------------------------------------------------------
SERVER_PID=""
AGENT_PID=""
cleanup() {
  stop_pid "$AGENT_PID" 15
  stop_pid "$SERVER_PID" 10
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

# --- server and agent ----------------------------------------------------------------------
DATA="$WORK_DIR/server"
SPOOL="$WORK_DIR/spool"
STREAM="bench-hls-latency"
mkdir -p "$DATA"
start_ingest_server "$DATA" "$OUT/server.log" || { stop_pid "$INGEST_PID" 5; exit 1; }
SERVER_PID=$INGEST_PID PORT=$INGEST_PORT
ENDPOINT="https://127.0.0.1:$PORT"
log "server: pid $SERVER_PID on $ENDPOINT, data $DATA"

with_server_credentials "$DATA" \
  "$AGENT" run --endpoint "$ENDPOINT" --ca "$DATA/tls/ca.pem" --stream "$STREAM" --create-stream \
  --spool-dir "$SPOOL" --source test --width "$WIDTH" --height "$HEIGHT" --framerate "$FRAMERATE" \
  --bitrate-kbps "$BITRATE_KBPS" --encoder "$ENCODER" --keyframe-interval "$FRAMERATE" \
  --fragment-duration "$FRAGMENT_DURATION" >"$OUT/agent.log" 2>&1 &
AGENT_PID=$!
log "agent: pid $AGENT_PID, stream $STREAM, ${WIDTH}x${HEIGHT}@${FRAMERATE}, ${FRAGMENT_DURATION} s fragments"

acked() {
  "$AGENT" status --spool-dir "$SPOOL" --json 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["fragments"]["acked"])' 2>/dev/null || echo 0
}
for _ in $(seq 1 60); do
  [ "$(acked)" -ge 5 ] && break
  kill -0 "$AGENT_PID" 2>/dev/null || { echo "edge-agent exited:" >&2; cat "$OUT/agent.log" >&2; exit 1; }
  sleep 1
done
[ "$(acked)" -ge 5 ] || { echo "the agent acknowledged no 5 fragments in 60 s:" >&2; tail -20 "$OUT/agent.log" >&2; exit 1; }

# --- measurements --------------------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo none) $(cd "$ROOT" && git status --porcelain 2>/dev/null | wc -l | tr -d ' ') uncommitted paths"
  echo "host: $(uname -sr), $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "browser: $("$CHROMIUM_BIN" --version 2>/dev/null | head -1), playwright-core $(node -p 'require(process.argv[1]).version' "$ROOT/tests/browser/node_modules/playwright-core/package.json")"
  echo "capture: ${WIDTH}x${HEIGHT}@${FRAMERATE} ${BITRATE_KBPS} kbit/s $ENCODER, fragments ${FRAGMENT_DURATION} s, key frame every $FRAMERATE frames"
  echo "sampling: every ${INTERVAL_MS} ms for ${DURATION} s after a ${WARMUP} s warm-up"
  echo "session (as the page asks): LIVE, FRAGMENTED_MP4, SERVER_TIMESTAMP, DiscontinuityMode $(grep -q "DiscontinuityMode: '" "$ROOT/ingest-server/web/app.js" && grep -o "DiscontinuityMode: '[A-Z_]*'" "$ROOT/ingest-server/web/app.js" | head -1 | cut -d"'" -f2 || echo 'AWS default (ALWAYS)')"
} >"$OUT/meta.txt"

NOT_IMPLEMENTED=""
for mode in $MODES; do
  log "mode $mode: ${WARMUP} s warm-up + ${DURATION} s of samples"
  rc=0
  node "$BENCH_DIR/hls-latency.mjs" --url "$ENDPOINT/" --credentials "$DATA/credentials" \
    --stream "$STREAM" --mode "$mode" --warmup "$WARMUP" --duration "$DURATION" \
    --interval "$INTERVAL_MS" >"$OUT/latency-$mode.json" 2>"$OUT/latency-$mode.stderr" || rc=$?
  if [ "$rc" -eq 3 ]; then
    NOT_IMPLEMENTED="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("notImplemented",""))' "$OUT/latency-$mode.json")"
    log "GetHLSStreamingSessionURL is not implemented by this server: $NOT_IMPLEMENTED"
    break
  elif [ "$rc" -ne 0 ]; then
    log "WARNING: mode $mode failed (exit $rc): $(head -c 600 "$OUT/latency-$mode.json") $(tail -5 "$OUT/latency-$mode.stderr")"
  fi
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.txt"

# --- summary -------------------------------------------------------------------------------
CMD="$(for v in DURATION WARMUP INTERVAL_MS WIDTH HEIGHT FRAMERATE FRAGMENT_DURATION; do printf '%s=%q ' "$v" "${!v}"; done)MODES=\"$MODES\" bench/hls-latency.sh"
# shellcheck disable=SC2086 # one argument per mode
python3 - "$OUT" "$SUMMARY" "$CMD" "$NOT_IMPLEMENTED" $MODES <<'PY'
import json, sys
from pathlib import Path

out, summary, cmd, not_impl, *modes = sys.argv[1:]
out = Path(out)
targets = {"standard": 4000, "ll": 1500}
lines = ["# HLS live latency (web page, hls.js, headless Chromium)", "", f"`{cmd}`", "", "```"]
lines += (out / "meta.txt").read_text().splitlines()
lines += ["```", ""]
if not_impl:
    lines += ["**Not measured**: the server answers 501 for GetHLSStreamingSessionURL", f"({not_impl}).", ""]
else:
    lines += [
        "| mode | hls.js lowLatencyMode | EXT-X-PART | samples | median | p90 | min | max | hls.js latency (median) | stalls | speed | start-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for mode in modes:
        p = out / f"latency-{mode}.json"
        try:
            r = json.loads(p.read_text())
        except (OSError, ValueError):
            lines.append(f"| {mode} | – | – | – | failed: no report | | | | | | | |")
            verdicts.append(f"FAIL {mode}: no measurement (see {p.name}, latency-{mode}.stderr)")
            continue
        lat = r.get("latencyMs")
        if not lat:
            lines.append(f"| {mode} | – | – | 0 | failed: {r.get('error', 'no samples')} | | | | | | | |")
            verdicts.append(f"FAIL {mode}: {r.get('error', 'no samples')}")
            continue
        s = lambda ms: f"{ms / 1000:.2f} s"
        est = r.get("hlsEstimateMs")
        parts = r.get("lowLatencyPlaylist")
        lines.append(
            f"| {mode} | {'on' if r.get('lowLatencyMode') else 'off'} | {'yes' if parts else 'no'} | {lat['n']} | {s(lat['median'])} | {s(lat['p90'])} "
            f"| {s(lat['min'])} | {s(lat['max'])} | {s(est['median']) if est else '–'} | {r.get('stalls')} "
            f"| {r.get('playbackSpeed', 0):.3f} | {r.get('startupSeconds', 0):.1f} s |"
        )
        errors = r.get("hlsErrors") or []
        if errors:
            verdicts.append(f"NOTE {mode}: {len(errors)} fatal hls.js error(s): {errors[:3]}")
        warnings = r.get("hlsWarnings") or []
        parsing = [w for w in warnings if w.get("details") == "levelParsingError"]
        if parsing:
            verdicts.append(f"NOTE {mode}: {len(parsing)} playlist reload(s) hls.js found inconsistent: {parsing[:2]}")
        elif warnings:
            verdicts.append(f"NOTE {mode}: {len(warnings)} non-fatal hls.js error(s): {sorted({w.get('details') for w in warnings})}")
        target = targets.get(mode)
        label = "standard HLS" if mode == "standard" else "LL-HLS"
        if mode == "ll" and not parts:
            verdicts.append(
                f"n/a  LL-HLS median < {target / 1000} s: the playlist has no EXT-X-PART (the server does not serve LL-HLS yet); "
                f"the ll figure ({s(lat['median'])}) is standard HLS played with lowLatencyMode on"
            )
        elif target:
            ok = lat["median"] < target
            verdicts.append(f"{'PASS' if ok else 'FAIL'} {label} median {s(lat['median'])} < {target / 1000} s")
    lines += ["", "```", *verdicts, "```"]
lines += [
    "",
    "Latency = Date.now() − hls.playingDate in the page, sampled in the page; hls.playingDate is the",
    "EXT-X-PROGRAM-DATE-TIME (producer timestamp) of the frame shown. \"hls.js latency\" is hls.js's own",
    "estimate (live edge − position). Speed = currentTime advance per wall-clock second. Stalls = `waiting` events.",
]
Path(summary).write_text("\n".join(lines) + "\n")
PY
cp "$SUMMARY" "$OUT/summary.md"
cat "$SUMMARY"
log "results in $OUT, summary $SUMMARY"
