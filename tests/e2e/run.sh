#!/usr/bin/env bash
# Build the server and run the end-to-end suite.
#   tests/e2e/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p ingest-server
python3 -m pip install -q -r tests/e2e/requirements.txt
exec python3 -m pytest tests/e2e -v "$@"
