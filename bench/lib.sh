# shellcheck shell=bash
# Shared helpers of the bench scripts (sourced, not run): logging, free ports, starting a
# process and waiting for it to listen, stopping it, /proc figures, run metadata.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Processes are started in the calling shell (so `wait` works) and tracked by pid only: stop
# them with stop_pid (never by name). Every bench script sources it.

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

die() { log "ERROR: $*"; exit 1; }

# free_port: a TCP port with it and the next one free on this host (ingest-server's video
# data-plane listener defaults to the main port + 1).
free_port() {
  local p
  while :; do
    p=$((30000 + RANDOM % 20000))
    if ! ss -Htln "sport = :$p" | grep -q . && ! ss -Htln "sport = :$((p + 1))" | grep -q .; then
      echo "$p"; return
    fi
  done
}

# stop_pid PID [timeout s]: SIGTERM, SIGKILL after the timeout, reap.
stop_pid() {
  local pid="$1" t="${2:-20}"
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((t * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "WARNING: pid $pid did not exit $t s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# wait_log PID LOG PATTERN [timeout s]: until LOG matches PATTERN (grep -Ei); fails when the
# process exits first or the time runs out, showing the log.
wait_log() {
  local pid="$1" logf="$2" pattern="$3" t="${4:-30}"
  for _ in $(seq 1 $((t * 10))); do
    grep -Eqi "$pattern" "$logf" 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      log "pid $pid exited before '$pattern':"; tail -30 "$logf" >&2; return 1
    fi
    sleep 0.1
  done
  log "no '$pattern' from pid $pid in $t s:"; tail -30 "$logf" >&2
  return 1
}

# wait_port PID PORT [timeout s]: until 127.0.0.1:PORT accepts connections.
wait_port() {
  local pid="$1" port="$2" t="${3:-30}"
  for _ in $(seq 1 $((t * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { log "pid $pid exited before listening on $port"; return 1; }
    sleep 0.1
  done
  log "nothing listening on $port after $t s (pid $pid)"
  return 1
}

# start_bg LOG CMD...: starts CMD in the background (stdout+stderr to LOG); sets BG_PID and
# BG_CMD (the command, for the record).
start_bg() {
  local logf="$1"; shift
  # shellcheck disable=SC2034  # read by the caller
  BG_CMD=("$@")
  "$@" >"$logf" 2>&1 &
  BG_PID=$!
}

# start_ingest_server DATA LOG [extra flags...]: a fresh ingest-server ($SERVER) on
# 127.0.0.1:free port (data plane on port + 1), waits for "listening". Sets INGEST_PID,
# INGEST_PORT. Credentials: DATA/credentials; CA (unless --plain-http): DATA/tls/ca.pem.
start_ingest_server() {
  local data="$1" logf="$2"; shift 2
  [ -x "${SERVER:-}" ] || die "SERVER (the ingest-server binary) is not set or not executable"
  mkdir -p "$data"
  INGEST_PORT=$(free_port)
  start_bg "$logf" env NO_COLOR=1 RUST_LOG="${RUST_LOG:-warn,ingest_server=info}" \
    "$SERVER" --data-dir "$data" --listen "127.0.0.1:$INGEST_PORT" \
    --data-listen "127.0.0.1:$((INGEST_PORT + 1))" "$@"
  INGEST_PID=$BG_PID
  wait_log "$INGEST_PID" "$logf" listening 30 || return 1
}

# with_server_credentials DATA CMD...: runs CMD as an AWS client of the server whose data dir
# is DATA (its credentials file, region us-west-2), ignoring the caller's AWS settings.
with_server_credentials() {
  local data="$1"; shift
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_DEFAULT_REGION \
    AWS_SHARED_CREDENTIALS_FILE="$data/credentials" AWS_PROFILE=default AWS_REGION=us-west-2 \
    AWS_CONFIG_FILE=/dev/null NO_COLOR=1 "$@"
}

# rss_kib PID: VmRSS of a live process in KiB (empty when gone).
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# hwm_kib PID: VmHWM (peak RSS) in KiB.
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# run_meta ROOT WORK_DIR: lines describing the run (date, git, host, filesystem, load).
run_meta() {
  local root="$1" work="$2"
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo none) $(cd "$root" && git status --porcelain 2>/dev/null | wc -l | tr -d ' ') uncommitted paths"
  echo "host: $(uname -sr), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "filesystem of the data dir: $(df -hT "$work" | awk 'NR==2 {print $1, $2}')"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# quote_cmd CMD...: the command as a shell-quoted line.
quote_cmd() { local out="" a; for a in "$@"; do out+="$(printf '%q' "$a") "; done; echo "${out% }"; }
