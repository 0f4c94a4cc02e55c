#!/usr/bin/env bash
# The whole test suite: installs what it needs (idempotently), then runs formatting and
# lint checks, the Rust unit/integration tests and the end-to-end tests over the real
# binaries. Used by CI (.ci/run) and by developers alike.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-x
  ffmpeg mkvtoolnix python3-pip chromium
)

step() { printf '\n==> %s\n' "$*"; }

install_apt() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "Installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
  fi
}

install_python() {
  if ! python3 -c 'import pytest, boto3, botocore, cbor2, aws_kinesis_agg' 2>/dev/null || ! command -v aws >/dev/null; then
    step "Installing Python test tools"
    python3 -m pip install -q -r tests/e2e/requirements.txt
  fi
}

install_browser_test() {
  if [ ! -d tests/browser/node_modules ]; then
    step "Installing the browser test's playwright-core (npm ci)"
    npm ci --prefix tests/browser --no-audit --no-fund
  fi
}

install_kinesis_js_test() {
  if [ ! -d tests/kinesis-js/node_modules/@aws-sdk/client-kinesis ]; then
    step "Installing the Kinesis JS test's @aws-sdk/client-kinesis (npm ci)"
    npm ci --prefix tests/kinesis-js --no-audit --no-fund
  fi
}

install_apt
install_python
install_browser_test
install_kinesis_js_test
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "Rust tests"
cargo test --workspace

step "Building the server for the end-to-end tests"
cargo build -p ingest-server -p edge-agent
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export INGEST_SERVER_BIN="$TARGET_DIR/debug/ingest-server"
export EDGE_AGENT_BIN="$TARGET_DIR/debug/edge-agent"

step "End-to-end tests (real server, TLS, boto3, AWS CLI, GStreamer, ffprobe, headless Chromium)"
python3 -m pytest tests/e2e -v -x --durations=10

step "Firmware CI subset: aarch64 agent cross-built, .deb checked, image recipe, qemu + provisioning e2e (firmware/test.sh --ci; the rest: firmware/test.sh --all)"
bash firmware/test.sh --ci
