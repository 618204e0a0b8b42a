#!/usr/bin/env bash
# Sets everything up and runs the gateway on its embedded default: the local Turbopuffer-
# compatible origin, with all state under ./layer-data. Extra arguments go to `layer serve`
# (for example --upstream https://gcp-us-central1.turbopuffer.com to front real Turbopuffer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

LISTEN="${LAYER_LISTEN:-127.0.0.1:8080}"
cat <<MSG

Layer is starting on http://${LISTEN}. Try, from another terminal:

  curl -X POST http://${LISTEN}/v2/namespaces/demo \\
    -H 'Authorization: Bearer demo' -H 'Content-Type: application/json' \\
    -d '{"upsert_rows":[{"id":1,"title":"hello layer"},{"id":2,"title":"warm cache"}]}'
  curl -X POST http://${LISTEN}/v2/namespaces/demo/query \\
    -H 'Authorization: Bearer demo' -H 'Content-Type: application/json' \\
    -d '{"rank_by":["id","asc"],"top_k":10,"include_attributes":true}'

MSG
exec build/layer serve --listen "$LISTEN" "$@"
