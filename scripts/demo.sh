#!/usr/bin/env bash
# The main job: the server on its embedded default storage plus a demo camera (edge-agent
# with the test source) streaming into it over TLS. Ctrl-C stops both; data stays in
# DATA_DIR (default ./kvs-data) and the agent's spool in SPOOL_DIR (./edge-agent-spool).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${DATA_DIR:-$PWD/kvs-data}
SPOOL_DIR=${SPOOL_DIR:-$PWD/edge-agent-spool}
PORT=${PORT:-8443}
STREAM=${STREAM:-demo-camera}

# Build dependencies (GStreamer headers) on a fresh Debian machine, idempotently.
need=()
for pkg in pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base \
           gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-x; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
fi

cargo build --release -p ingest-server -p edge-agent
mkdir -p "$DATA_DIR"
./target/release/ingest-server --data-dir "$DATA_DIR" --listen "0.0.0.0:$PORT" &
server=$!
trap 'kill $agent $server 2>/dev/null; wait' EXIT INT TERM
for _ in $(seq 100); do [ -s "$DATA_DIR/credentials" ] && [ -s "$DATA_DIR/tls/ca.pem" ] && break; sleep 0.1; done

export AWS_SHARED_CREDENTIALS_FILE="$DATA_DIR/credentials" AWS_REGION=us-west-2
./target/release/edge-agent run --endpoint "https://127.0.0.1:$PORT" --ca "$DATA_DIR/tls/ca.pem" \
  --stream "$STREAM" --create-stream --source test --spool-dir "$SPOOL_DIR" &
agent=$!

cat <<MSG

Server: https://127.0.0.1:$PORT (video data plane on :$((PORT + 1))), demo camera streaming to "$STREAM".
Watch it in a browser: https://127.0.0.1:$PORT/?stream=$STREAM (trust or accept $DATA_DIR/tls/ca.pem; sign in
with the key pair in $DATA_DIR/credentials), or with GetMedia:
  export AWS_CA_BUNDLE=$DATA_DIR/tls/ca.pem AWS_SHARED_CREDENTIALS_FILE=$DATA_DIR/credentials AWS_DEFAULT_REGION=us-west-2
  aws kinesis-video-media get-media --endpoint-url https://127.0.0.1:$((PORT + 1)) --stream-name $STREAM \\
      --start-selector StartSelectorType=NOW /dev/stdout | ffplay -
Agent status: ./target/release/edge-agent status --spool-dir $SPOOL_DIR
Ctrl-C stops both.
MSG
wait $agent $server
