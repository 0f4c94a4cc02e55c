#!/usr/bin/env bash
# Kinesis Data Streams benchmark of ingest-server against kinesalite (npm) and moto's server
# (PyPI), the same load from the same generator in the same run, on loopback:
#
#  1. Idle RSS of each server a few seconds after start-up.
#  2. `loadgen kinesis put`: PutRecords throughput, records of RECORD_BYTES in batches of BATCH,
#     for each count in PRODUCERS (one keep-alive connection per producer, each re-sending a
#     batch built and hashed once, distinct partition keys), into one stream of SHARDS shards.
#  3. `loadgen kinesis get`: GetRecords from TRIM_HORIZON of everything step 2 wrote (one
#     reader per shard), checked against the records acknowledged; then put-to-get latency:
#     LAT_RATE records/s stamped with their send time, readers polling every shard every
#     POLL_MS (AWS allows 5 GetRecords/s per shard).
#  4. `loadgen kinesis put-latency`: paced PutRecords at half the server's best records/s from
#     step 2 (or PUT_LAT_RATE), plus PutRecord probes at PROBE_RATE calls/s: p50/p99/p999, open
#     loop (a call held up by the previous one on its connection counts from its slot).
#  5. bench/kinesis-subscribe.mjs (@aws-sdk/client-kinesis, HTTP/2): RegisterStreamConsumer,
#     SubscribeToShard on every shard, SUB_RATE records/s, delivery latency p50/p99. kinesalite
#     and moto have no SubscribeToShard: the script is run against them over HTTP/1.1 and the
#     summary shows where they stop.
#
# Servers (SERVERS): ours-http (ingest-server --plain-http), ours-https (its TLS listener with
# the generated CA), kinesalite (in memory, its default), moto (moto_server, in memory). Ratios
# compare ours-http with the other two (all plain HTTP). ingest-server writes records durably
# (fsync group commit, acknowledged after the fsync); kinesalite and moto keep them in memory.
#
# Usage (from anywhere):
#   bench/kinesis.sh                            # all four servers, ~10 minutes
#   SERVERS="kinesalite moto" bench/kinesis.sh  # only the comparison servers
#   DURATION=10 SUB_DURATION=10 NO_BUILD=1 bench/kinesis.sh
#
# Environment:
#   SERVERS        servers in order (default "ours-http ours-https kinesalite moto")
#   DURATION       seconds per put and put-latency run (default 20)
#   PRODUCERS      producer counts of the put runs (default "1 8")
#   SHARDS         shards per stream (default 4)
#   BATCH          records per PutRecords (default 500)
#   RECORD_BYTES   bytes per record (default 1024)
#   LAT_SECS       seconds of the put-to-get latency phase (default 20)
#   LAT_RATE       records/s of the put-to-get phase (default 1000, batches of 10)
#   POLL_MS        GetRecords period per shard in that phase (default 200)
#   PROBE_RATE     PutRecord probe calls/s during put-latency (default 200)
#   PUT_LAT_RATE   records/s of the put-latency load (default: half the server's best put run;
#                  e.g. 50000 = half the 100,000 records/s target, for every server)
#   SUB_DURATION   seconds of the SubscribeToShard run (default 30)
#   SUB_RATE       records/s of the SubscribeToShard run (default 200, batches of 10)
#   IDLE_SECS      seconds after start-up before the idle RSS is read (default 3)
#   CARGO_JOBS     cargo -j (default 1: the machine is shared; built with nice 19)
#   WORK_DIR       server data dirs (default: a new dir under /tmp); KEEP_DATA=1 keeps it
#   NO_BUILD=1     skip cargo build;  NO_INSTALL=1  skip the npm/pip installs (must exist)
#
# Tools installed on first use (idempotent): kinesalite, @aws-sdk/client-kinesis and
# @smithy/node-http-handler from bench/package-lock.json into target/bench-node/ (npm ci),
# moto[server] into the venv target/bench-venv/ (pip).
#
# Output: bench/results/kinesis-<timestamp>/ (JSON per server and step, logs, commands.txt) and
# the summary bench/results/kinesis-<timestamp>.md, also printed.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"

SERVERS="${SERVERS:-ours-http ours-https kinesalite moto}"
DURATION="${DURATION:-20}"
PRODUCERS="${PRODUCERS:-1 8}"
SHARDS="${SHARDS:-4}"
BATCH="${BATCH:-500}"
RECORD_BYTES="${RECORD_BYTES:-1024}"
LAT_SECS="${LAT_SECS:-20}"
LAT_RATE="${LAT_RATE:-1000}"
POLL_MS="${POLL_MS:-200}"
PROBE_RATE="${PROBE_RATE:-200}"
PUT_LAT_RATE="${PUT_LAT_RATE:-}"
SUB_DURATION="${SUB_DURATION:-30}"
SUB_RATE="${SUB_RATE:-200}"
IDLE_SECS="${IDLE_SECS:-3}"
CARGO_JOBS="${CARGO_JOBS:-1}"

RESULTS_ROOT="$BENCH_DIR/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$RESULTS_ROOT/kinesis-$STAMP"
SUMMARY="$RESULTS_ROOT/kinesis-$STAMP.md"
mkdir -p "$OUT"
WORK_DIR="${WORK_DIR:-$(mktemp -d /tmp/kinesis-bench.XXXXXX)}"
mkdir -p "$WORK_DIR"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET_DIR/release/ingest-server"
LOADGEN="$TARGET_DIR/release/loadgen"
NODE_DIR="$TARGET_DIR/bench-node"
VENV="$TARGET_DIR/bench-venv"

# --- prerequisites -------------------------------------------------------------------------
needs_ours=""; case " $SERVERS " in *" ours-"*) needs_ours=1 ;; esac
if [ -z "${NO_BUILD:-}" ]; then
  pkgs=(-p loadgen); [ -n "$needs_ours" ] && pkgs+=(-p ingest-server)
  log "building ${pkgs[*]} (release, nice 19, -j $CARGO_JOBS)"
  (cd "$ROOT" && nice -n 19 cargo build --release "${pkgs[@]}" -j "$CARGO_JOBS")
fi
[ -x "$LOADGEN" ] || die "missing $LOADGEN"
[ -z "$needs_ours" ] || [ -x "$SERVER" ] || die "missing $SERVER"
command -v node >/dev/null || die "node (20 or later) is needed"

if [ -z "${NO_INSTALL:-}" ]; then
  mkdir -p "$NODE_DIR"
  if ! cmp -s "$BENCH_DIR/package-lock.json" "$NODE_DIR/package-lock.json" \
     || [ ! -d "$NODE_DIR/node_modules/kinesalite" ]; then
    log "installing kinesalite and @aws-sdk/client-kinesis (npm ci in $NODE_DIR)"
    cp "$BENCH_DIR/package.json" "$BENCH_DIR/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund >&2)
  fi
  if ! "$VENV/bin/python" -c 'import moto.server' 2>/dev/null; then
    log "installing moto[server] (pip, venv $VENV)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'moto[server]' >&2
  fi
fi
# The script runs from the install dir, where its imports resolve.
cp "$BENCH_DIR/kinesis-subscribe.mjs" "$NODE_DIR/"
KINESALITE="$NODE_DIR/node_modules/kinesalite/cli.js"
[ -f "$KINESALITE" ] || die "missing $KINESALITE (run without NO_INSTALL)"
[ -x "$VENV/bin/moto_server" ] || die "missing $VENV/bin/moto_server (run without NO_INSTALL)"

PID=""
cleanup() {
  stop_pid "$PID" 20
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

# run NAME CMD...: logs the command to commands.txt, runs it, stdout to NAME.stdout.
run() {
  local name="$1"; shift
  quote_cmd "$@" >>"$OUT/commands.txt"
  "$@" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr"
}

jq_get() { # jq_get FILE PYTHON-EXPR-ON-v: a number (or empty) from a JSON result
  python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))
except Exception:
    print("")' "$1" "$2"
}

{
  run_meta "$ROOT" "$WORK_DIR"
  echo "kinesalite: $(node -p "require('$NODE_DIR/node_modules/kinesalite/package.json').version") (node $(node --version), in memory)"
  echo "moto: $("$VENV/bin/python" -c 'import moto; print(moto.__version__)') (python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'), moto_server, in memory)"
  echo "@aws-sdk/client-kinesis: $(node -p "require('$NODE_DIR/node_modules/@aws-sdk/client-kinesis/package.json').version")"
  echo "load: $SHARDS shards, records of $RECORD_BYTES B, PutRecords of $BATCH, producers $PRODUCERS, ${DURATION}s per run"
} >"$OUT/meta.txt"

# --- one server ----------------------------------------------------------------------------
bench_server() {
  local name="$1" data endpoint conn=() sub_env=() sub_args=()
  data="$WORK_DIR/$name"
  case "$name" in
    ours-http|ours-https)
      local flags=(); [ "$name" = ours-http ] && flags=(--plain-http)
      start_ingest_server "$data" "$OUT/$name/server.log" "${flags[@]}" || die "$name did not start"
      PID=$INGEST_PID
      conn=(--credentials "$data/credentials")
      sub_args=(--credentials "$data/credentials")
      if [ "$name" = ours-http ]; then
        endpoint="http://127.0.0.1:$INGEST_PORT"
      else
        endpoint="https://127.0.0.1:$INGEST_PORT"
        conn+=(--ca "$data/tls/ca.pem")
        sub_env=(NODE_EXTRA_CA_CERTS="$data/tls/ca.pem")
      fi
      ;;
    kinesalite)
      local port; port=$(free_port)
      start_bg "$OUT/$name/server.log" node "$KINESALITE" --port "$port" --shardLimit 1000
      PID=$BG_PID
      wait_port "$PID" "$port" 30 || die "kinesalite did not start"
      endpoint="http://127.0.0.1:$port"
      sub_args=(--http1)
      ;;
    moto)
      local port; port=$(free_port)
      start_bg "$OUT/$name/server.log" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
      PID=$BG_PID
      wait_port "$PID" "$port" 60 || die "moto_server did not start"
      endpoint="http://127.0.0.1:$port"
      sub_args=(--http1)
      ;;
    *) die "unknown server $name" ;;
  esac
  conn=(--endpoint "$endpoint" "${conn[@]}" --server-pid "$PID" --label "$name")
  echo "$name: $(quote_cmd "${BG_CMD[@]}") (pid $PID)" >>"$OUT/meta.txt"
  log "$name: pid $PID at $endpoint"

  sleep "$IDLE_SECS"
  printf '{"rss_kib": %s, "after_s": %s}\n' "$(rss_kib "$PID")" "$IDLE_SECS" >"$OUT/$name/idle.json"

  local total=0 best=0 n f
  for n in $PRODUCERS; do
    log "$name: put, $n producers, ${DURATION}s"
    run "$name/put-$n" "$LOADGEN" kinesis put "${conn[@]}" --stream put --shards "$SHARDS" \
      --producers "$n" --batch "$BATCH" --record-bytes "$RECORD_BYTES" --duration "$DURATION" \
      --out "$OUT/$name/put-$n.json" || log "WARNING: $name put-$n failed (see $OUT/$name/put-$n.stderr)"
    f="$OUT/$name/put-$n.json"
    n=$(jq_get "$f" 'v["records"]'); total=$((total + ${n:-0}))
    best=$(python3 -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2] or 0)))' "$best" "$(jq_get "$f" 'v["records_per_s"]')")
  done

  log "$name: get ($total records from TRIM_HORIZON), then put-to-get latency ${LAT_SECS}s"
  run "$name/get" "$LOADGEN" kinesis get "${conn[@]}" --stream put --shards "$SHARDS" \
    --expect-records "$total" --latency-seconds "$LAT_SECS" --latency-rate "$LAT_RATE" \
    --poll-ms "$POLL_MS" --record-bytes "$RECORD_BYTES" --out "$OUT/$name/get.json" \
    || log "WARNING: $name get failed (see $OUT/$name/get.stderr)"

  local half; half=$(python3 -c 'import sys; print(round(float(sys.argv[1]) / 2))' "$best")
  local why="half of $best"
  if [ -n "$PUT_LAT_RATE" ]; then half=$PUT_LAT_RATE; why="PUT_LAT_RATE"; fi
  local maxp=1; for n in $PRODUCERS; do [ "$n" -gt "$maxp" ] && maxp=$n; done
  log "$name: put-latency at $half records/s ($why) + $PROBE_RATE PutRecord/s, ${DURATION}s"
  run "$name/put-latency" "$LOADGEN" kinesis put-latency "${conn[@]}" --stream put-latency \
    --shards "$SHARDS" --producers "$maxp" --batch "$BATCH" --record-bytes "$RECORD_BYTES" \
    --rate "$half" --probe-rate "$PROBE_RATE" --duration "$DURATION" \
    --out "$OUT/$name/put-latency.json" || log "WARNING: $name put-latency failed"

  log "$name: SubscribeToShard, $SUB_RATE records/s for ${SUB_DURATION}s"
  echo "(cd $(printf '%q' "$NODE_DIR") && $(quote_cmd env "${sub_env[@]}" node kinesis-subscribe.mjs --endpoint "$endpoint" "${sub_args[@]}" --shards "$SHARDS" --rate "$SUB_RATE" --duration "$SUB_DURATION" --record-bytes "$RECORD_BYTES" --label "$name" --out "$OUT/$name/subscribe.json"))" >>"$OUT/commands.txt"
  (cd "$NODE_DIR" && env "${sub_env[@]}" NODE_NO_WARNINGS=1 timeout $((SUB_DURATION + 120)) node kinesis-subscribe.mjs \
    --endpoint "$endpoint" "${sub_args[@]}" --shards "$SHARDS" --rate "$SUB_RATE" \
    --duration "$SUB_DURATION" --record-bytes "$RECORD_BYTES" --label "$name" \
    --out "$OUT/$name/subscribe.json" >"$OUT/$name/subscribe.stdout" 2>"$OUT/$name/subscribe.stderr") \
    || log "$name: SubscribeToShard not measured ($(jq_get "$OUT/$name/subscribe.json" 'v.get("stage","?") + ": " + v.get("error","?")'))"

  printf '{"rss_kib_end": %s, "hwm_kib": %s, "data_dir_kib": %s}\n' "$(rss_kib "$PID")" "$(hwm_kib "$PID")" \
    "$( [ -d "$data" ] && du -sk "$data" | cut -f1 || echo null)" >"$OUT/$name/end.json"
  kill -0 "$PID" 2>/dev/null || log "WARNING: $name (pid $PID) exited during the run"
  stop_pid "$PID" 20
  PID=""
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$data"; fi
  echo "load average after $name: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.txt"
}

for s in $SERVERS; do
  mkdir -p "$OUT/$s"
  bench_server "$s"
done

# --- summary -------------------------------------------------------------------------------
CMD="$(for v in SERVERS DURATION PRODUCERS SHARDS BATCH RECORD_BYTES LAT_SECS LAT_RATE POLL_MS PROBE_RATE PUT_LAT_RATE SUB_DURATION SUB_RATE; do printf '%s=%q ' "$v" "${!v}"; done)bench/kinesis.sh"
python3 - "$OUT" "$SUMMARY" "$CMD" "$SERVERS" "$PRODUCERS" <<'PY'
import json, sys
from pathlib import Path

out, summary, cmd = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
servers, producers = sys.argv[4].split(), [int(p) for p in sys.argv[5].split()]


def load(server, name):
    try:
        return json.loads((out / server / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def dig(v, *path):
    for p in path:
        if v is None:
            return None
        v = v.get(p) if isinstance(v, dict) else None
    return v


def f(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, str):
        return " ".join(x.split()).replace("|", "\\|")
    return f"{x:,.{nd}f}"


R = {s: {n: load(s, n) for n in ["idle", "end", "get", "put-latency", "subscribe"] + [f"put-{p}" for p in producers]} for s in servers}

rows = []  # (label, {server: value}, digits, ratio kind: "higher"/"lower"/None)


def row(label, fn, nd=1, better=None):
    rows.append((label, {s: fn(R[s]) for s in servers}, nd, better))


mib = lambda kib: kib / 1024 if kib is not None else None
row("idle RSS (MiB)", lambda r: mib(dig(r["idle"], "rss_kib")), 1, "lower")
for p in producers:
    k = f"put-{p}"
    row(f"PutRecords, {p} producer(s): records/s", lambda r, k=k: dig(r[k], "records_per_s"), 0, "higher")
    row(f"PutRecords, {p} producer(s): MiB/s of records", lambda r, k=k: dig(r[k], "MiB_per_s"), 1, "higher")
    row(f"PutRecords, {p} producer(s): request p50 / p99 ms", lambda r, k=k: (
        f"{f(dig(r[k], 'request_latency_ms', 'p50'), 2)} / {f(dig(r[k], 'request_latency_ms', 'p99'), 2)}" if r[k] else None), 2, None)
    row(f"PutRecords, {p} producer(s): server CPU % of a core", lambda r, k=k: dig(r[k], "server", "cpu_pct_of_one_core"), 0, None)
    row(f"PutRecords, {p} producer(s): failed records / errors", lambda r, k=k: (
        f"{dig(r[k], 'failed_records')} / {dig(r[k], 'errors')}" if r[k] else None), 0, None)
pmax = max(producers)
row(f"PutRecords, {pmax} producer(s): loadgen CPU % of a core", lambda r: dig(r[f"put-{pmax}"], "loadgen_cpu_pct_of_one_core"), 1, None)
row(f"PutRecords, {pmax} producer(s): machine busy % of all cores", lambda r: (
    dig(r[f"put-{pmax}"], "machine_busy_pct_of_one_core") / dig(r[f"put-{pmax}"], "ncpu") if r[f"put-{pmax}"] else None), 0, None)
row("PutRecords server RSS max (MiB)", lambda r: max([mib(dig(r[f"put-{p}"], "server", "rss_kib_max")) or 0 for p in producers]) or None, 1, "lower")
row("put-latency: paced load (records/s)", lambda r: dig(r["put-latency"], "load", "records_per_s"), 0, None)
row("put-latency: PutRecords p50 / p99 ms (from schedule)", lambda r: (
    f"{f(dig(r['put-latency'], 'load', 'latency_from_schedule_ms', 'p50'), 2)} / {f(dig(r['put-latency'], 'load', 'latency_from_schedule_ms', 'p99'), 2)}"
    if dig(r["put-latency"], "load") else None), 2, None)
row("put-latency: PutRecord p50 ms", lambda r: dig(r["put-latency"], "put_record", "latency_from_schedule_ms", "p50"), 2, "lower")
row("put-latency: PutRecord p99 ms", lambda r: dig(r["put-latency"], "put_record", "latency_from_schedule_ms", "p99"), 2, "lower")
row("put-latency: PutRecord p999 ms", lambda r: dig(r["put-latency"], "put_record", "latency_from_schedule_ms", "p999"), 2, "lower")
row("GetRecords from TRIM_HORIZON: records/s", lambda r: dig(r["get"], "read", "records_per_s"), 0, "higher")
row("GetRecords from TRIM_HORIZON: MiB/s of records", lambda r: dig(r["get"], "read", "MiB_per_s"), 1, "higher")
row("GetRecords: all acknowledged records read back", lambda r: (
    f"{dig(r['get'], 'read', 'records')} of {dig(r['get'], 'read', 'expected_records')}" if r["get"] else None), 0, None)
row("put-to-get (GetRecords polling) p50 ms", lambda r: dig(r["get"], "latency", "put_to_get_ms", "p50"), 1, "lower")
row("put-to-get (GetRecords polling) p99 ms", lambda r: dig(r["get"], "latency", "put_to_get_ms", "p99"), 1, "lower")


def sub(r, q):
    s = r["subscribe"]
    if s is None:
        return None
    if not s.get("supported", False):
        # kinesalite and moto lack the API; on ingest-server it is a failure.
        what = "FAILED" if str(s.get("label", "")).startswith("ours") else "not supported"
        return f"{what} ({s.get('stage')}: {s.get('error', '')[:90]})"
    return dig(s, "delivery_ms", q)


row("SubscribeToShard delivery p50 ms", lambda r: sub(r, "p50"), 1, "lower")
row("SubscribeToShard delivery p99 ms", lambda r: sub(r, "p99"), 1, "lower")
row("SubscribeToShard records received / put", lambda r: (
    f"{r['subscribe'].get('records_received')} / {r['subscribe'].get('records_put')}" if r["subscribe"] and r["subscribe"].get("supported") else None), 0, None)
row("data dir after the run (MiB)", lambda r: mib(dig(r["end"], "data_dir_kib")), 0, None)

ours = "ours-http" if "ours-http" in servers else ("ours-https" if "ours-https" in servers else None)
others = [s for s in ("kinesalite", "moto") if s in servers]


def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
        r = a / b
        return f"{r:.1f}x" if r >= 10 else (f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x")
    return ""


head = ["", *servers] + ([f"{ours} / {o}" for o in others] if ours else [])
lines = [
    "# Kinesis Data Streams: ingest-server vs kinesalite vs moto",
    "",
    f"`{cmd}`",
    "",
    "```",
    *(out / "meta.txt").read_text().splitlines(),
    "```",
    "",
    "| " + " | ".join(head) + " |",
    "|" + "---|" * len(head),
]
for label, vals, nd, better in rows:
    cells = [label] + [f(vals[s], nd) for s in servers]
    if ours:
        # Ratios only where a direction is meaningful (not for CPU at different loads).
        cells += [(ratio(vals[ours], vals[o]) + (" (lower is better)" if better == "lower" and ratio(vals[ours], vals[o]) else ""))
                  if better else "" for o in others]
    lines.append("| " + " | ".join(cells) + " |")

# Targets (the issue's), judged on ingest-server over plain HTTP.
def target_lines():
    if not ours:
        return []
    r = R[ours]
    best = max([dig(r[f"put-{p}"], "records_per_s") or 0 for p in producers])
    out_l = ["", f"Targets (judged on {ours}):", ""]
    def judge(name, ok, detail):
        out_l.append(f"- {'PASS' if ok else 'FAIL'} {name}: {detail}")
    judge(">= 100,000 records/s written durably", best >= 100_000, f"{best:,.0f} records/s")
    if "kinesalite" in servers:
        k = max([dig(R["kinesalite"][f"put-{p}"], "records_per_s") or 0 for p in producers])
        judge(">= 10x kinesalite (records/s, same run)", k > 0 and best >= 10 * k, f"{best / k:.1f}x" if k else "kinesalite not measured")
    p99 = dig(r["put-latency"], "put_record", "latency_from_schedule_ms", "p99")
    judge("PutRecord p99 < 5 ms at half the load", p99 is not None and p99 < 5, f"{f(p99, 2)} ms at {f(dig(r['put-latency'], 'load', 'records_per_s'), 0)} records/s")
    s99 = dig(r["subscribe"], "delivery_ms", "p99")
    judge("SubscribeToShard delivery p99 < 50 ms", s99 is not None and s99 < 50, f"{f(s99, 1)} ms")
    idle = mib(dig(r["idle"], "rss_kib"))
    judge("idle RSS < 30 MiB", idle is not None and idle < 30, f"{f(idle, 1)} MiB")
    return out_l


lines += target_lines()
lines += [
    "",
    "One load generator for all servers: `loadgen kinesis` (bench/loadgen/src/kinesis/), JSON 1.1 over keep-alive",
    "HTTP/1.1, SigV4 service `kinesis`; each producer re-sends one batch body built and hashed once (distinct",
    "partition keys), so the generator costs little CPU (the loadgen CPU row). put-latency is open loop: a call",
    "that had to wait for the previous one on its connection counts from its scheduled time. Put-to-get latency",
    "includes the polling period (readers call GetRecords once per POLL_MS per shard, as AWS's 5 calls/s/shard",
    "limit implies). SubscribeToShard is measured with @aws-sdk/client-kinesis over HTTP/2; kinesalite and moto",
    "do not implement enhanced fan-out (the row shows the call where they stop). ingest-server acknowledges records",
    "after an fsync of its shard logs; kinesalite and moto keep records in memory. Ratios: ours over the other",
    "server, plain HTTP on both sides.",
    "",
    "Commands:",
    "",
    "```",
    *(out / "commands.txt").read_text().splitlines(),
    "```",
]
summary.write_text("\n".join(lines) + "\n")
PY
cp "$SUMMARY" "$OUT/summary.md"
cat "$SUMMARY"
log "results in $OUT, summary $SUMMARY"
