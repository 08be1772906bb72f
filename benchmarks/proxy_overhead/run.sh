#!/usr/bin/env bash
# Proxy overhead of our gateway next to the Rust gateways, one run, interleaved rounds.
#
#   benchmarks/proxy_overhead/run.sh [RESULTS_DIR]        (~25 min with the defaults)
#
# Targets (each started, measured and stopped by ../shared/bench/gateway_overhead.sh, gateway
# pinned to core 1, wrk + nginx mock on core 0):
#   direct         wrk straight at the nginx mock (the baseline every "added" figure subtracts)
#   ours           $SMG_PY launch ... --prometheus-port 29000 --log-level warning (round robin)
#   ours-head      (optional) the same, from a copy of the live tree, when ours runs SMG_SRC
#   smg-rust       smg==1.13.0 (PyPI, Rust) launch ... --policy round_robin --log-level warn
#   smg-rust-info  the same at its default log level (a line per request, as in shared/bench)
#   vllm-router    vllm-router==0.1.17 ... --policy round_robin (its defaults log no request)
# Phases: ROUNDS non-streaming rounds (order rotated every round), SSE_ROUNDS streaming rounds
# (stream:true against the canned SSE mock: added time to first `data:` byte), then a flush
# check against a trickling SSE worker (flush_check.py).  Writes RESULTS_DIR/{results.jsonl,
# results_sse.jsonl, results_flush.jsonl, env.txt, logs/, summary.md}; summary.md =
# ../shared/bench/summarize.py + compare.py (same-round ratios, goals).
#
# Env: SMG_PY (our smg; default $REPO/.venv/bin/smg, else `smg` on PATH, else a new .venv)
#      SMG_SNAPSHOT=1 (copy smg/ into RESULTS_DIR and run that copy: the repo may change mid-run)
#      SMG_SRC=DIR (run the smg/ snapshot in DIR instead, e.g. an earlier RESULTS_DIR/smg-src)
#      TARGETS="direct ours smg-rust smg-rust-info vllm-router" (add nginx-proxy for the nginx reference;
#        ours-obs / ours-bare: metrics + JSON access log on / metrics off, warnings only)
#      ROUNDS=5 SSE_ROUNDS=5 SSE_DURATION=5 SKIP_SSE= SKIP_FLUSH= SKIP_INSTALL= OURS_EXTRA= (more flags)
#      VENVS=/tmp/perf BENCH=<repo>/../shared/bench, plus every knob of gateway_overhead.sh
#      (DURATION=10 WARMUP=3 CONNS_TPUT=32 CONNS_LAT="1 8" GW_CORE=1 LOAD_CORE=0).
set -uo pipefail
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

RES="${1:-$PO_HERE/results-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RES/logs"; RES="$(cd "$RES" && pwd)"
ROUNDS="${ROUNDS:-5}"; SSE_ROUNDS="${SSE_ROUNDS:-5}"
read -r -a NAMES <<< "${TARGETS:-direct ours smg-rust smg-rust-info vllm-router}"

ensure_deps
find_our_smg
snapshot_ours "$RES"
write_env "$RES"

RUST_BIN="$VENVS/venv-smg/bin/smg"; VR_BIN="$VENVS/venv-vllmr/bin/vllm-router"
declare -A CMD SSECMD TCMD
ours() { echo "${2-$OURS_ENV} $SMG_PY launch --worker-urls $1 --host 127.0.0.1 --port 30000 --prometheus-port 29000 --log-level warning ${OURS_EXTRA:-}"; }
rust() { echo "$RUST_BIN launch --worker-urls $1 --host 127.0.0.1 --port 30000 --policy round_robin --prometheus-host 127.0.0.1 --prometheus-port 29000"; }
vr() { echo "$VR_BIN --worker-urls $1 --host 127.0.0.1 --port 30000 --policy round_robin --prometheus-host 127.0.0.1 --prometheus-port 29000"; }
CMD[direct]=direct;                            SSECMD[direct]=direct
CMD[ours]="$(ours "$W")";                      SSECMD[ours]="$(ours "$WS")";                      TCMD[ours]="$(ours "$WT")"
CMD[smg-rust]="$(rust "$W") --log-level warn"; SSECMD[smg-rust]="$(rust "$WS") --log-level warn"; TCMD[smg-rust]="$(rust "$WT") --log-level warn"
CMD[smg-rust-info]="$(rust "$W")";             SSECMD[smg-rust-info]="$(rust "$WS")"
CMD[vllm-router]="$(vr "$W")";                 SSECMD[vllm-router]="$(vr "$WS")";                 TCMD[vllm-router]="$(vr "$WT")"
if [[ " ${NAMES[*]} " == *" ours-head "* ]]; then   # the live tree as well, next to an SMG_SRC snapshot
  mkdir -p "$RES/smg-src-head"; cp -r "$REPO/smg" "$REPO/schemas" "$RES/smg-src-head/"
  find "$RES/smg-src-head" -name __pycache__ -prune -exec rm -rf {} +
  echo "ours-head: live tree copied at start, smg/*.py sha256 $(tree_hash "$RES/smg-src-head")" >> "$RES/env.txt"
  H="env PYTHONPATH=$RES/smg-src-head"
  CMD[ours-head]="$(ours "$W" "$H")"; SSECMD[ours-head]="$(ours "$WS" "$H")"; TCMD[ours-head]="$(ours "$WT" "$H")"
fi
# Observability on vs off (benchmarks/observability_overhead): metrics and a JSON access-log
# line per request, against metrics disabled and warnings only.
OBS="--log-level info --log-json"; BARE="--disable-metrics --log-level warning"
CMD[ours-obs]="$(ours "$W") $OBS"; SSECMD[ours-obs]="$(ours "$WS") $OBS"
CMD[ours-bare]="$(ours "$W") $BARE"; SSECMD[ours-bare]="$(ours "$WS") $BARE"
CMD[nginx-proxy]="$BENCH/nginx_proxy.sh 18001 18002 18003 18004"; SSECMD[nginx-proxy]="$BENCH/nginx_proxy.sh 18101 18102 18103 18104"
for n in "${NAMES[@]}"; do [ -n "${CMD[$n]:-}" ] || { echo "unknown target $n" >&2; exit 2; }; done
for n in "${NAMES[@]}"; do echo "cmd $n: ${CMD[$n]}"; done >> "$RES/env.txt"

TRICKLE_PID=""
cleanup() {
  [ -n "$TRICKLE_PID" ] && kill "$TRICKLE_PID" 2>/dev/null
  [ -n "${GW_PGID:-}" ] && kill -KILL -- "-$GW_PGID" 2>/dev/null
  stop_mock
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_mock
log "results: $RES   load: $(cat /proc/loadavg)   our code: ${OURS_ENV:-live tree} ($SMG_PY)"

brief() {  # one line about the last record of $1
  tail -n 1 "$1" | python3 -c 'import json,sys
d=json.loads(sys.stdin.read()); c=d.get("cpu_s_per_10k")
s=d.get("sse") or {}
print("   ", d.get("error") or "rps@c32=%s cpu_us/req=%s p50@c1=%s%s" % (d["c32"]["rps"], round(c*100) if c else "-", d["c1"]["p50_us"],
      " ttfb_p50=%s" % s.get("first_p50_us") if s else ""))' >&2
}

cd "$RES" || exit 1
n=${#NAMES[@]}
for r in $(seq 1 "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    name=${NAMES[$(( (i + r - 1) % n ))]}
    log "round $r/$ROUNDS  $name  load=$(cut -d' ' -f1 /proc/loadavg)"
    ROUND=$r OUT="$RES/results.jsonl" GW_LOG="$RES/logs/$name-r$r.log" \
      "$BENCH/gateway_overhead.sh" "${CMD[$name]}" "$name" > /dev/null
    brief "$RES/results.jsonl"; trim_log "$RES/logs/$name-r$r.log"
  done
done

if [ -z "${SKIP_SSE:-}" ]; then
  for r in $(seq 1 "$SSE_ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
      name=${NAMES[$(( (i + r - 1) % n ))]}
      [ -n "${SSECMD[$name]:-}" ] || continue
      log "SSE round $r/$SSE_ROUNDS  $name  load=$(cut -d' ' -f1 /proc/loadavg)"
      DURATION="${SSE_DURATION:-5}" CONNS_LAT="1" ROUND=$r OUT="$RES/results_sse.jsonl" \
        GW_LOG="$RES/logs/$name-sse-r$r.log" "$BENCH/gateway_overhead.sh" "${SSECMD[$name]}" "$name" --sse > /dev/null
      brief "$RES/results_sse.jsonl"; trim_log "$RES/logs/$name-sse-r$r.log"
    done
  done
fi

# Flush check: is each SSE event relayed when it arrives, or held back?
flush_one() {  # label cmd
  local label=$1 cmd=$2 url=http://127.0.0.1:30000/v1/chat/completions out
  if [ "$cmd" = direct ]; then url=http://127.0.0.1:18201/v1/chat/completions; else
    setsid taskset -c "${GW_CORE:-1}" bash -c "exec $cmd" > "$RES/logs/$label-flush.log" 2>&1 &
    GW_PGID=$!
    for _ in $(seq 300); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$url" -H 'Content-Type: application/json' \
           -d '{"model":"mock-model","messages":[{"role":"user","content":"x"}]}')" = 200 ] && break
      sleep 0.2
    done
  fi
  out="$(taskset -c "${LOAD_CORE:-0}" python3 "$PO_HERE/flush_check.py" probe "$url" "${FLUSH_N:-5}" 2>&1 | tail -n 1)"
  python3 -c 'import json,sys
label, out = sys.argv[1], sys.argv[2]
try: d = json.loads(out)
except ValueError: d = {"error": out[-300:]}
d = {"label": label, **d}; print(json.dumps(d))' "$label" "$out" >> "$RES/results_flush.jsonl"
  if [ -n "${GW_PGID:-}" ]; then
    kill -TERM -- "-$GW_PGID" 2>/dev/null
    for _ in $(seq 40); do kill -0 "$GW_PGID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$GW_PGID" 2>/dev/null; wait "$GW_PGID" 2>/dev/null; GW_PGID=""
    for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:30000/health || break; sleep 0.1; done
  fi
  log "flush $label: $(tail -n 1 "$RES/results_flush.jsonl" | cut -c1-160)"
}
if [ -z "${SKIP_FLUSH:-}" ]; then
  taskset -c "${LOAD_CORE:-0}" python3 "$PO_HERE/flush_check.py" serve 18201 18202 18203 18204 2> "$RES/logs/trickle.log" &
  TRICKLE_PID=$!
  for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18201/health && break; sleep 0.1; done
  flush_one direct direct
  for name in "${NAMES[@]}"; do [ -n "${TCMD[$name]:-}" ] && flush_one "$name" "${TCMD[$name]}"; done
  kill "$TRICKLE_PID" 2>/dev/null; wait "$TRICKLE_PID" 2>/dev/null; TRICKLE_PID=""
fi

echo "loadavg at end: $(cat /proc/loadavg); smg/*.py sha256 at end $(tree_hash)" >> "$RES/env.txt"
{ python3 "$BENCH/summarize.py" "$RES"; echo; python3 "$PO_HERE/compare.py" "$RES"; } > "$RES/summary.md"
cat "$RES/summary.md"
