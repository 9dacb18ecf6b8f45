#!/usr/bin/env bash
# A/B of lookup cost between two builds, in alternating rounds (wrk in its own process):
#   OLD=/path/to/other/checkout ROUNDS=4 bench/lookup-ab.sh [seconds]
# Each build (`npm ci && npm run build` done in OLD) runs `switchboard start`, gets 100 providers of one service by
# single PUTs, then `wrk -t1 -c64` GETs that service. Prints req/s, p50/p99 and the server's CPU µs per request
# (utime+stime from /proc around the wrk window; steadier than throughput on a shared machine).
set -euo pipefail
SECS=${1:-6}
OLD=${OLD:?set OLD to the other checkout (built)}
NEW=${NEW:-$(cd "$(dirname "$0")/.." && pwd)}
run() { # label dir port extra...
  local label=$1 dir=$2 port=$3
  shift 3
  local d
  d=$(mktemp -d)
  (cd "$dir" && exec node dist/src/cli/main.js start --data-dir "$d/data" --http-port "$port" --bind "tcp://127.0.0.1:$((port + 10))" \
    --publish "tcp://127.0.0.1:$((port + 11))" --zmq-pub off --zmq-snapshot off --log-level error "$@" >"$d/log" 2>&1) &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  for i in $(seq 0 99); do
    curl -sf -X PUT "http://127.0.0.1:$port/v1/providers/p$i" -H 'content-type: application/json' \
      -d "{\"service\":\"wrk\",\"host\":\"10.0.0.$((i + 1))\",\"port\":$((8000 + i)),\"protocol\":\"http\"}" >/dev/null
  done
  local t0 t1 out n
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(wrk -t1 -c64 -d"${SECS}s" --latency "http://127.0.0.1:$port/v1/services/wrk")
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$label rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}') p50=$(echo "$out" | awk '$1=="50%" {print $2}')" \
    "p99=$(echo "$out" | awk '$1=="99%" {print $2}') cpu_us_per_req=$(((t1 - t0) * 10000 / n)) load=$(cut -d' ' -f1 /proc/loadavg)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$d"
}
for _ in $(seq 1 "${ROUNDS:-3}"); do
  run old "$OLD" 18600
  run new "$NEW" 18700 --write-rate-limit 0
done
