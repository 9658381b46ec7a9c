#!/usr/bin/env bash
# Start the local API, wait until it is healthy, show one real request and its answer, keep serving.
set -euo pipefail
: "${PORT:?}" "${BIN:?}" "${ARTIFACTS:?}" "${DATA:?}"

"$BIN/tastebud" serve --artifacts "$ARTIFACTS" --port "$PORT" --workers "${WORKERS:-1}" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/health" > /dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "server exited" >&2; exit 1; }
  sleep 0.5
done

user=$("$BIN/python" -c "import pandas as pd; print(pd.read_parquet('$DATA/interactions.parquet', columns=['user_id'])['user_id'].value_counts().index[10])")
body="{\"user_id\": \"$user\", \"k\": 5, \"explain\": true}"
echo
echo "Sample request (explain: true adds titles, merchants, stage scores and what each stage did):"
echo "  curl -s -X POST http://127.0.0.1:$PORT/v1/recommendations -H 'content-type: application/json' -d '$body'"
echo
curl -fsS -X POST "http://127.0.0.1:$PORT/v1/recommendations" -H 'content-type: application/json' -d "$body" \
  | "$BIN/python" scripts/show_sample.py
echo
echo "Dashboard (live latency graph, trace a request):  http://127.0.0.1:$PORT/dashboard"
echo "Prometheus metrics:                               http://127.0.0.1:$PORT/metrics"
echo "Mark an item out of stock:  curl -X PUT http://127.0.0.1:$PORT/v1/stock/ITEM_ID -d '{\"in_stock\": false}'"
echo "Serving on http://127.0.0.1:$PORT (Ctrl-C stops)."
wait $server
