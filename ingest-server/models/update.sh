#!/usr/bin/env bash
# Regenerates kinesis-2013-12-02.json from the botocore installed for python3:
# the service model with every `documentation` / `documentationUrl` field removed,
# pretty-printed (2-space indent, model order kept) so that updates diff well.
#   pip install --upgrade botocore && ingest-server/models/update.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python3 - "$here/kinesis-2013-12-02.json" <<'PY'
import gzip, json, os, sys
import botocore

src = os.path.join(os.path.dirname(botocore.__file__),
                   "data", "kinesis", "2013-12-02", "service-2.json.gz")
with gzip.open(src, "rt", encoding="utf-8") as f:
    model = json.load(f)

def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items()
                if k not in ("documentation", "documentationUrl")}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node

with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(strip(model), f, indent=2, ensure_ascii=False)
    f.write("\n")
print(f"wrote {sys.argv[1]} from botocore {botocore.__version__}")
PY
