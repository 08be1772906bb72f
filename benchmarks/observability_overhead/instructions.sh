#!/usr/bin/env bash
# Observability cost in instructions per request: deterministic where CPU seconds are not.
#
# The gateway runs under valgrind (callgrind) in front of the shared nginx mock; after a
# warm-up the counters are zeroed, wrk sends non-streamed chat requests for DURATION
# seconds, the counters are dumped, and instructions (Ir, user space only: the kernel's
# share of a request is not counted) are divided by the requests wrk completed.
# Four set-ups side by side, for non-streamed and for streamed (SSE) chat requests:
#   bare       --disable-metrics --log-level warning
#   metrics    metrics on, no access lines (--log-level warning)
#   text-log   metrics on + text access line per request (--log-level info, the default)
#   json-log   metrics on + JSON access line per request (--log-level info --log-json)
# Repeat runs give the same figures within ~1%, where CPU-seconds ratios on this shared
# 2-core machine swing by tens of percent between rounds.
#
#   benchmarks/observability_overhead/instructions.sh [RESULTS_FILE]   (~12 min)
# Env: DURATION=15 CONNS=4 SMG_PY=... BENCH=... (see ../proxy_overhead/lib.sh)
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/../proxy_overhead/lib.sh"
OUT="${1:-$PO_HERE/../observability_overhead/instructions-$(date +%Y%m%d-%H%M%S).md}"
DURATION="${DURATION:-15}"; CONNS="${CONNS:-4}"; PORT=30100; ADMIN=29100
command -v valgrind >/dev/null 2>&1 || {
  log "apt-get install valgrind"; apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >&2; }
command -v wrk >/dev/null 2>&1 || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
find_our_smg
PY="$(head -1 "$SMG_PY" | sed 's/^#!//')"
TMP="$(mktemp -d)"; PG=""
cleanup() { [ -n "$PG" ] && kill -KILL -- "-$PG" 2>/dev/null; "$BENCH/mock_worker.sh" stop >/dev/null 2>&1; rm -rf "$TMP"; }
trap cleanup EXIT
"$BENCH/mock_worker.sh" start >/dev/null
for stream in false true; do
  cat > "$TMP/body-$stream.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"model":"mock-model","stream":$stream,"messages":[{"role":"user","content":"ping"}],"max_tokens":8}'
wrk.headers["Content-Type"] = "application/json"
EOF
done
URL="http://127.0.0.1:$PORT/v1/chat/completions"

measure() {  # $1 = stream (false|true), $2 = label, rest = gateway flags; prints "label ir_per_request requests"
  local stream=$1 label=$2 workers=$W; shift 2
  [ "$stream" = true ] && workers=$WS  # the canned SSE mock: one 4 kB answer of 30 events
  # shellcheck disable=SC2086
  setsid valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.%p" --dump-instr=no \
    "$PY" -m smg launch --worker-urls $workers --host 127.0.0.1 --port $PORT \
    --prometheus-port $ADMIN "$@" > "$TMP/$label.log" 2>&1 &
  PG=$!
  for _ in $(seq 600); do
    curl -s -o /dev/null -XPOST -H 'Content-Type: application/json' \
      -d '{"model":"mock-model","messages":[{"role":"user","content":"x"}]}' "$URL" && break
    sleep 0.5
  done
  taskset -c 0 wrk -t1 -c"$CONNS" -d5s -s "$TMP/body-$stream.lua" "$URL" > /dev/null
  callgrind_control -z "$PG" > /dev/null 2>&1 || callgrind_control -z > /dev/null
  local out n ir f
  out="$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$TMP/body-$stream.lua" "$URL")"
  callgrind_control -d "$PG" > /dev/null 2>&1 || callgrind_control -d > /dev/null
  n="$(echo "$out" | awk '/requests in/{print $1}')"
  sleep 1
  f="$(ls -t "$TMP"/cg.* | head -1)"
  ir="$(awk '/^(summary|totals):/{print $2; exit}' "$f")"
  kill -TERM -- "-$PG" 2>/dev/null; wait "$PG" 2>/dev/null || true; PG=""
  rm -f "$TMP"/cg.*
  echo "$label $((ir / n)) $n"
}

{
  echo "# Observability cost in instructions per request ($(date -u +%FT%TZ))"
  echo
  echo "smg/*.py sha256 $(tree_hash); wrk -c$CONNS for ${DURATION}s per set-up under callgrind; user-space instructions"
  echo
  echo "| requests | set-up | instructions / request | requests measured | vs bare |"
  echo "|---|---|---|---|---|"
} > "$OUT"
for stream in false true; do
  bare=""
  kind=non-streamed; [ "$stream" = true ] && kind=streamed
  for setup in "bare --disable-metrics --log-level warning" "metrics --log-level warning" \
               "text-log --log-level info" "json-log --log-level info --log-json"; do
    # shellcheck disable=SC2086
    read -r label ir n <<< "$(measure $stream $setup)"
    [ -z "$bare" ] && bare=$ir
    log "$kind $label: $ir instructions/request over $n requests"
    echo "| $kind | $label | $ir | $n | $(python3 -c "print(f'{$ir / $bare:.3f}')") |" >> "$OUT"
  done
done
cat "$OUT"
