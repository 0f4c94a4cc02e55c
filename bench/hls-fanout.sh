#!/usr/bin/env bash
# Live HLS fan-out: N concurrent players of one live stream, against a real ingest-server
# (release build), compared in the same run with the same bytes served as static files by
# nginx:
#
#  1. A fresh server; the real camera agent (`edge-agent run --source test`, 1280x720 30 fps,
#     x264enc, 1 s fragments) streams into it for the whole run.
#  2. boto3 GetHLSStreamingSessionURL (LIVE, FRAGMENTED_MP4) on the server's main endpoint.
#  3. `loadgen hls-fanout`: CLIENTS players in one process, one keep-alive HTTP/1.1 TLS
#     connection each. Each loads the master playlist once, then loops: the media playlist,
#     the init segment once, every listed segment it has not fetched yet, INTERVAL_MS pause.
#     DURATION s. Requests/s, bytes/s, errors, latency p50/p99 per request type; server CPU
#     (utime+stime from /proc/PID/stat over the run) and RSS (every second). Client 0's
#     fetches (playlist, init, segments) are saved as a static site.
#  4. nginx (Debian's nginx-light, installed when missing) serves that directory over TLS with
#     the server's own certificate and key, keep-alive, on another port; the same loop runs
#     against it with a simulated live window (as many segments as the live playlist listed,
#     advancing one segment per segment duration, cycling through the saved files): the same
#     requests per client and second, the same body sizes. nginx CPU = master + workers.
#     ingest-server keeps ingesting the agent's stream meanwhile, and its CPU over that
#     window is the ingest-only baseline subtracted in the "HLS share" line.
#
# Usage (from anywhere):
#   bench/hls-fanout.sh                       # 100 clients, 60 s live + 60 s static
#   CLIENTS=200 DURATION=30 bench/hls-fanout.sh
#   NO_BUILD=1 bench/hls-fanout.sh
#
# Environment:
#   CLIENTS         concurrent players (default 100)
#   DURATION        seconds per run, live and static (default 60)
#   INTERVAL_MS     pause between a player's playlist loads (default 500)
#   WARMUP_FRAGMENTS  fragments the agent must have acknowledged before the live run (default 6)
#   WIDTH HEIGHT FRAMERATE BITRATE_KBPS ENCODER   capture (default 1280 720 30 2000 x264enc)
#   FRAGMENT_DURATION   the agent's --fragment-duration in s (default 1)
#   NGINX_WORKERS   nginx worker_processes (default auto = one per core)
#   CARGO_JOBS      cargo -j for the build (default 1: the machine is shared; built with nice 19)
#   WORK_DIR        server data, spool, static site, nginx config (default: a new dir under /tmp)
#   KEEP_DATA=1     keep WORK_DIR
#   NO_BUILD=1      skip cargo build
#
# Output: bench/results/hls-fanout-<timestamp>/ (live.json, static.json, ingest-baseline.json,
# the saved site's manifest.json, server/agent/nginx logs) and the summary
# bench/results/hls-fanout-<timestamp>.md, also printed.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
CLIENTS="${CLIENTS:-100}"
DURATION="${DURATION:-60}"
INTERVAL_MS="${INTERVAL_MS:-500}"
WARMUP_FRAGMENTS="${WARMUP_FRAGMENTS:-6}"
WIDTH="${WIDTH:-1280}"
HEIGHT="${HEIGHT:-720}"
FRAMERATE="${FRAMERATE:-30}"
BITRATE_KBPS="${BITRATE_KBPS:-2000}"
ENCODER="${ENCODER:-x264enc}"
FRAGMENT_DURATION="${FRAGMENT_DURATION:-1}"
NGINX_WORKERS="${NGINX_WORKERS:-auto}"
CARGO_JOBS="${CARGO_JOBS:-1}"

RESULTS_ROOT="$BENCH_DIR/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$RESULTS_ROOT/hls-fanout-$STAMP"
SUMMARY="$RESULTS_ROOT/hls-fanout-$STAMP.md"
mkdir -p "$OUT"
WORK_DIR="${WORK_DIR:-$(mktemp -d /tmp/hls-fanout.XXXXXX)}"
mkdir -p "$WORK_DIR"


# --- prerequisites -------------------------------------------------------------------------
if [ -z "${NO_BUILD:-}" ]; then
  log "building ingest-server, edge-agent and loadgen (release, nice 19, -j $CARGO_JOBS)"
  (cd "$ROOT" && nice -n 19 cargo build --release -p ingest-server -p edge-agent -p loadgen -j "$CARGO_JOBS")
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET_DIR/release/ingest-server"
AGENT="$TARGET_DIR/release/edge-agent"
LOADGEN="$TARGET_DIR/release/loadgen"
for b in "$SERVER" "$AGENT" "$LOADGEN"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }; done
command -v gst-launch-1.0 >/dev/null || { echo "GStreamer is needed by the agent (apt-get install gstreamer1.0-tools)" >&2; exit 1; }
python3 -c 'import boto3' 2>/dev/null || { echo "python3 with boto3 is needed (apt-get install python3-boto3)" >&2; exit 1; }
NGINX="$(command -v nginx || true)"
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } || true
if [ -z "$NGINX" ]; then
  log "installing nginx-light (apt-get; it is run here as a foreground process on its own config)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light >&2 \
    || { $SUDO apt-get update >&2 && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light >&2; }
  NGINX=/usr/sbin/nginx
fi
[ -x "$NGINX" ] || { echo "nginx is needed (apt-get install nginx-light)" >&2; exit 1; }

# --- helpers -------------------------------------------------------------------------------
SERVER_PID=""
AGENT_PID=""
NGINX_PID=""
BASE_PID=""
cleanup() {
  stop_pid "$BASE_PID" 5
  stop_pid "$NGINX_PID" 10
  stop_pid "$AGENT_PID" 15
  stop_pid "$SERVER_PID" 10
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

# --- 1. server and agent -------------------------------------------------------------------
DATA="$WORK_DIR/server"
SPOOL="$WORK_DIR/spool"
STATIC="$WORK_DIR/static"
STREAM="bench-hls-fanout"
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
for _ in $(seq 1 90); do
  [ "$(acked)" -ge "$WARMUP_FRAGMENTS" ] && break
  kill -0 "$AGENT_PID" 2>/dev/null || { echo "edge-agent exited:" >&2; cat "$OUT/agent.log" >&2; exit 1; }
  sleep 1
done
[ "$(acked)" -ge "$WARMUP_FRAGMENTS" ] || { echo "the agent acknowledged no $WARMUP_FRAGMENTS fragments in 90 s:" >&2; tail -20 "$OUT/agent.log" >&2; exit 1; }

# --- 2. session URL ------------------------------------------------------------------------
SESSION_URL="$(python3 - "$ENDPOINT" "$DATA/tls/ca.pem" "$DATA/credentials" "$STREAM" <<'PY'
import configparser, sys
import boto3
from botocore.config import Config

endpoint, ca, creds, stream = sys.argv[1:]
cp = configparser.ConfigParser()
cp.read(creds)
sec = cp["default"] if "default" in cp else cp[cp.sections()[0]]
arch = boto3.session.Session().client(
    "kinesis-video-archived-media", endpoint_url=endpoint, region_name="us-west-2", verify=ca,
    aws_access_key_id=sec["aws_access_key_id"].strip(), aws_secret_access_key=sec["aws_secret_access_key"].strip(),
    config=Config(retries={"total_max_attempts": 1}),
)
print(arch.get_hls_streaming_session_url(
    StreamName=stream, PlaybackMode="LIVE", ContainerFormat="FRAGMENTED_MP4", Expires=3600,
)["HLSStreamingSessionURL"])
PY
)"
log "session: ${SESSION_URL%%\?*}"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo none) $(cd "$ROOT" && git status --porcelain 2>/dev/null | wc -l | tr -d ' ') uncommitted paths"
  echo "host: $(uname -sr), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), worker_processes $NGINX_WORKERS"
  echo "stream: ${WIDTH}x${HEIGHT}@${FRAMERATE} ${BITRATE_KBPS} kbit/s $ENCODER, ${FRAGMENT_DURATION} s fragments, key frame every $FRAMERATE frames"
  echo "players: $CLIENTS, playlist every ${INTERVAL_MS} ms (after the new segments), ${DURATION} s per run"
} >"$OUT/meta.txt"

# --- 3. live: ingest-server ----------------------------------------------------------------
log "live: $CLIENTS players for ${DURATION}s against ingest-server"
"$LOADGEN" hls-fanout --url "$SESSION_URL" --ca "$DATA/tls/ca.pem" --clients "$CLIENTS" \
  --duration "$DURATION" --interval-ms "$INTERVAL_MS" --server-pid "$SERVER_PID" \
  --label ingest-server --save-dir "$STATIC" --out "$OUT/live.json" >/dev/null 2>"$OUT/live.stderr" \
  || { echo "loadgen (live) failed:" >&2; cat "$OUT/live.stderr" >&2; exit 1; }
cp "$STATIC/manifest.json" "$OUT/static-manifest.json"
cp "$STATIC/playlist.m3u8" "$OUT/live-playlist.m3u8"

# --- 4. static: nginx ----------------------------------------------------------------------
NGX="$WORK_DIR/nginx"
mkdir -p "$NGX"
NPORT=$(free_port)
USER_LINE=""
if [ "$(id -u)" -eq 0 ]; then
  # Workers run as nobody: they must reach the site (mktemp -d makes WORK_DIR 0700).
  chmod 755 "$WORK_DIR"; chmod -R a+rX "$STATIC"
  USER_LINE="user nobody nogroup;"
fi
cat >"$NGX/nginx.conf" <<EOF
$USER_LINE
worker_processes $NGINX_WORKERS;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 4096; }
http {
  types { application/vnd.apple.mpegurl m3u8; video/mp4 mp4; application/json json; }
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  client_body_temp_path $NGX/tmp-body;
  proxy_temp_path $NGX/tmp-proxy;
  fastcgi_temp_path $NGX/tmp-fastcgi;
  uwsgi_temp_path $NGX/tmp-uwsgi;
  scgi_temp_path $NGX/tmp-scgi;
  server {
    listen 127.0.0.1:$NPORT ssl;
    ssl_certificate $DATA/tls/server.pem;
    ssl_certificate_key $DATA/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $STATIC;
    location / { add_header cache-control no-cache; add_header access-control-allow-origin *; }
  }
}
EOF
"$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$OUT/nginx.log" 2>&1 &
NGINX_PID=$!
for _ in $(seq 1 100); do
  ss -Htln "sport = :$NPORT" | grep -q . && break
  kill -0 "$NGINX_PID" 2>/dev/null || { echo "nginx exited:" >&2; cat "$OUT/nginx.log" "$NGX/error.log" >&2; exit 1; }
  sleep 0.1
done
sleep 0.5
log "nginx: pid $NGINX_PID (workers $(pgrep -P "$NGINX_PID" | paste -sd, -)) on 127.0.0.1:$NPORT, root $STATIC"

log "static: $CLIENTS players for ${DURATION}s against nginx (ingest-server CPU sampled alongside)"
"$LOADGEN" hls-fanout --url "https://127.0.0.1:$NPORT/" --ca "$DATA/tls/ca.pem" --clients 0 \
  --duration "$DURATION" --server-pid "$SERVER_PID" --label ingest-only \
  --out "$OUT/ingest-baseline.json" >/dev/null 2>&1 &
BASE_PID=$!
"$LOADGEN" hls-fanout --url "https://127.0.0.1:$NPORT/" --ca "$DATA/tls/ca.pem" --clients "$CLIENTS" \
  --duration "$DURATION" --interval-ms "$INTERVAL_MS" --server-pid "$NGINX_PID" --children \
  --label nginx --static-dir "$STATIC" --out "$OUT/static.json" >/dev/null 2>"$OUT/static.stderr" \
  || { echo "loadgen (static) failed:" >&2; cat "$OUT/static.stderr" >&2; exit 1; }
wait "$BASE_PID" || log "WARNING: the ingest-only CPU sampler failed"
BASE_PID=""
cp "$NGX/nginx.conf" "$OUT/nginx.conf"
cp "$NGX/error.log" "$OUT/nginx-error.log" 2>/dev/null || true
stop_pid "$NGINX_PID" 10; NGINX_PID=""
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.txt"

# --- summary -------------------------------------------------------------------------------
CMD="$(for v in CLIENTS DURATION INTERVAL_MS WIDTH HEIGHT FRAMERATE BITRATE_KBPS FRAGMENT_DURATION; do printf '%s=%q ' "$v" "${!v}"; done)bench/hls-fanout.sh"
python3 - "$OUT" "$SUMMARY" "$CMD" <<'PY'
import json, sys
from pathlib import Path

out, summary, cmd = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
live = json.loads((out / "live.json").read_text())
stat = json.loads((out / "static.json").read_text())
try:
    base = json.loads((out / "ingest-baseline.json").read_text())
except (OSError, ValueError):
    base = None
man = json.loads((out / "static-manifest.json").read_text())


def f(x, nd=1):
    return "–" if x is None else f"{x:,.{nd}f}"


def ratio(a, b):
    return f"{a / b:.1f}x" if a and b else "–"


L, S = live["server"], stat["server"]
lines = ["# HLS fan-out: ingest-server (live session) vs nginx (the same bytes as static files)", "", f"`{cmd}`", "", "```"]
lines += (out / "meta.txt").read_text().splitlines()
lines += [
    f"live session: {live['tls']}; nginx: {stat['tls']}",
    f"saved site: {len(man['segments'])} segments, mean {sum(s['bytes'] for s in man['segments']) / max(1, len(man['segments'])) / 1e3:.0f} kB, "
    f"init {man['init_bytes']} B, media playlist {man['playlist_bytes']} B, live window {man['window']} segments",
    "```",
    "",
    "| | ingest-server (live) | nginx (static) | ratio |",
    "|---|---|---|---|",
    f"| requests/s | {f(live['requests_per_s'])} | {f(stat['requests_per_s'])} | |",
    f"| MB/s served | {f(live['MBps'], 2)} | {f(stat['MBps'], 2)} | |",
    f"| errors | {live['errors']} | {stat['errors']} | |",
    f"| server CPU, % of one core | {f(L['cpu_pct_of_one_core'])} | {f(S['cpu_pct_of_one_core'])} | {ratio(L['cpu_pct_of_one_core'], S['cpu_pct_of_one_core'])} |",
    f"| server CPU ms per 1000 requests | {f(L['cpu_ms_per_1000_requests'])} | {f(S['cpu_ms_per_1000_requests'])} | {ratio(L['cpu_ms_per_1000_requests'], S['cpu_ms_per_1000_requests'])} |",
    f"| server CPU s per GB served | {f(L['cpu_s_per_GB'], 2)} | {f(S['cpu_s_per_GB'], 2)} | {ratio(L['cpu_s_per_GB'], S['cpu_s_per_GB'])} |",
]
hls_line = None
if base:
    ingest_rate = base["server"]["cpu_s"] / base["window_s"]
    hls_cpu = L["cpu_s"] - ingest_rate * live["window_s"]
    req, gb = live["requests"], live["bytes"] / 1e9
    lines += [
        f"| ingest-server minus ingest-only CPU ({f(ingest_rate * 100)} % of a core during the nginx run): ms per 1000 requests | "
        f"{f(hls_cpu * 1e6 / req if req else None)} | | {ratio(hls_cpu * 1e6 / req if req else 0, S['cpu_ms_per_1000_requests'])} |",
        f"| same, s per GB | {f(hls_cpu / gb if gb else None, 2)} | | {ratio(hls_cpu / gb if gb else 0, S['cpu_s_per_GB'])} |",
    ]
lines += [
    f"| server RSS max (MiB) | {f((L['rss_kib_max'] or 0) / 1024)} (start {f((L['rss_kib_start'] or 0) / 1024)}) | {f((S['rss_kib_max'] or 0) / 1024)} | |",
    f"| loadgen CPU, % of one core | {f(live['loadgen_cpu_s'] / live['window_s'] * 100)} | {f(stat['loadgen_cpu_s'] / stat['window_s'] * 100)} | |",
    f"| machine busy, % of {live['ncpu']} cores | {f(live['machine_busy_pct_of_one_core'] / live['ncpu'])} | {f(stat['machine_busy_pct_of_one_core'] / stat['ncpu'])} | |",
    "",
    "| request type | live: per s | mean kB | p50 ms | p99 ms | errors | static: per s | mean kB | p50 ms | p99 ms | errors |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]
for k in ["master", "playlist", "init", "segment"]:
    row = [k]
    for r in (live, stat):
        t = r["per_type"][k]
        lat = t["latency_ms"]
        row += [f(t["per_s"]), f(t["mean_bytes"] / 1e3, 1), f(lat.get("p50"), 2), f(lat.get("p99"), 2), str(t["errors"])]
    lines.append("| " + " | ".join(row) + " |")
samples = live.get("error_samples", []) + stat.get("error_samples", [])
if samples:
    lines += ["", "Errors (first):", "```", *samples[:10], "```"]
lines += [
    "",
    "Each player: master playlist once, then loops media playlist → init once → each listed segment not yet fetched →",
    f"{live['interval_ms']} ms pause; one keep-alive HTTP/1.1 TLS connection per player, all in one loadgen process on the same",
    "machine. Static: nginx serves client 0's saved playlist/init/segments with the same certificate; the live window",
    "is simulated (same length, one new segment per segment duration), so both runs make the same requests with the same",
    "body sizes. CPU = utime+stime from /proc (nginx: master + workers) over the run; the request rate is set by the",
    "players, not by the servers, so the comparable figures are CPU per 1000 requests and per GB. \"Minus ingest-only\"",
    "subtracts ingest-server's CPU rate while it only ingested the agent's stream (measured during the nginx run).",
]
summary.write_text("\n".join(lines) + "\n")
PY
cp "$SUMMARY" "$OUT/summary.md"
cat "$SUMMARY"
log "results in $OUT, summary $SUMMARY"
