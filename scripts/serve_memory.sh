#!/usr/bin/env bash
# Start-up time and memory of `tastebud serve --workers 2` with and without --preload (docs/SERVING.md).
# usage: scripts/serve_memory.sh ARTIFACTS [PORT]     (BIN defaults to .venv/bin)
set -euo pipefail
artifacts=${1:?usage: scripts/serve_memory.sh ARTIFACTS [PORT]}
port=${2:-3931}
BIN=${BIN:-.venv/bin}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for mode in --preload --no-preload; do
  start=$(date +%s.%N)
  "$BIN/tastebud" serve --artifacts "$artifacts" --port "$port" --workers 2 $mode --no-access-log > /dev/null 2> "$log" &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/health" > /dev/null 2>&1 \
      && [ "$(grep -c 'Application startup complete' "$log")" -ge 2 ]; do
    kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  ready=$(echo "$(date +%s.%N) - $start" | bc)
  total=0
  for p in $pid $(cat /proc/$pid/task/$pid/children); do
    total=$((total + $(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup)))
  done
  printf '%-13s ready after %.1f s, total PSS (master + 2 workers) %d MB\n' "$mode" "$ready" $((total / 1024))
  kill -TERM $pid
  wait $pid || true
done
