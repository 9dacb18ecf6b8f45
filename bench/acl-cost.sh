#!/usr/bin/env bash
# npm run build; SECS=8 bench/acl-cost.sh
# Lookup throughput with ACLs off vs on (token checked on every request), alternating rounds, wrk in its own process.
set -euo pipefail
cd "$(dirname "$0")/.." && npm run build >/dev/null
SECS=${SECS:-10}
dir=$(mktemp -d)
printf 'acl-bench-secret-0123456789abcdef' > "$dir/tok"
providers=$(node -e 'console.log(JSON.stringify(Array.from({length:100},(_,i)=>({id:"p"+i,service:"wrk",host:"10.0.0."+(i%250+1),port:8000+i,protocol:"http"}))))')
run() { # mode port
  local mode=$1 port=$2
  node dist/src/cli/main.js start --data-dir "$dir/$mode-$port" --http-port "$port" --bind tcp://127.0.0.1:$((port+10)) \
    --publish tcp://127.0.0.1:$((port+11)) --zmq-pub off --zmq-snapshot off --write-rate-limit 0 \
    --acl "$mode" --bootstrap-token-file "$dir/tok" --log-level error >/dev/null 2>&1 &
  local pid=$!
  for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  if [ "$mode" = on ]; then
    for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/v1/acl/token/self" -H "authorization: Bearer $(cat "$dir/tok")" >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  curl -sf -X PUT "http://127.0.0.1:$port/v1/providers" -H 'content-type: application/json' \
    -H "authorization: Bearer $(cat "$dir/tok")" -d "$providers" >/dev/null
  local out
  out=$(wrk -t2 -c64 -d${SECS}s --latency -H "authorization: Bearer $(cat "$dir/tok")" "http://127.0.0.1:$port/v1/services/wrk")
  local rps p99 non
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "acl=$mode rps=$rps p99=$p99 non2xx=${non:-0} load=$(cut -d' ' -f1 /proc/loadavg)"
  kill $pid; wait $pid 2>/dev/null || true
}
for round in 1 2 3; do run off $((17800+round*100)); run on $((17850+round*100)); done
rm -rf "$dir"
