#!/usr/bin/env bash
# `smg launch --workers N` scaling: req/s at 32 connections, our gateway with 1 and 2 worker
# processes, NOT pinned to one core: gateway, wrk and (the nginx worker of) the mock all share
# cores 0-1 (taskset -c 0,1), so the load generator and mock compete with the gateway.  On this
# 2-core machine the ceiling for --workers 2 is therefore well under 2x; the figure shows
# whether the second process buys throughput at all and how much.  Interleaved rounds.
#
#   benchmarks/proxy_overhead/scaling.sh [RESULTS_DIR]          (~2 min per round)
#
# Targets: direct-2c (wrk at the mock, both cores), ours-w1, ours-w2 (add ours-w4 if you like),
# smg-rust-2c (the Rust smg, multi-threaded, also unpinned, --log-level warn) for reference.
# Env: ROUNDS=3 TARGETS="direct-2c ours-w1 ours-w2 smg-rust-2c" SMG_PY SMG_SNAPSHOT=1 VENVS BENCH
#      DURATION=10 WARMUP=3 CORES=0,1.  Writes results.jsonl, env.txt, logs/, summary.md.
set -uo pipefail
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

RES="${1:-$PO_HERE/results-scaling-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RES/logs"; RES="$(cd "$RES" && pwd)"
ROUNDS="${ROUNDS:-3}"; CORES="${CORES:-0,1}"
read -r -a NAMES <<< "${TARGETS:-direct-2c ours-w1 ours-w2 smg-rust-2c}"

ensure_deps
find_our_smg
snapshot_ours "$RES"
write_env "$RES"

ours() { echo "$OURS_ENV $SMG_PY launch --worker-urls $W --host 127.0.0.1 --port 30000 --prometheus-port 29000 --log-level warning --workers $1 ${OURS_EXTRA:-}"; }
declare -A CMD
CMD[direct-2c]=direct
CMD[ours-w1]="$(ours 1)"; CMD[ours-w2]="$(ours 2)"; CMD[ours-w3]="$(ours 3)"; CMD[ours-w4]="$(ours 4)"
CMD[smg-rust-2c]="$VENVS/venv-smg/bin/smg launch --worker-urls $W --host 127.0.0.1 --port 30000 --policy round_robin --prometheus-host 127.0.0.1 --prometheus-port 29000 --log-level warn"
CMD[vllm-router-2c]="$VENVS/venv-vllmr/bin/vllm-router --worker-urls $W --host 127.0.0.1 --port 30000 --policy round_robin --prometheus-host 127.0.0.1 --prometheus-port 29000"
for n in "${NAMES[@]}"; do [ -n "${CMD[$n]:-}" ] || { echo "unknown target $n" >&2; exit 2; }; done
for n in "${NAMES[@]}"; do echo "cmd $n: ${CMD[$n]}"; done >> "$RES/env.txt"
echo "gateway and wrk: taskset -c $CORES; nginx mock worker: core 0 (its config pins it)" >> "$RES/env.txt"

trap stop_mock EXIT
trap 'exit 130' INT TERM
start_mock
cd "$RES" || exit 1
n=${#NAMES[@]}
for r in $(seq 1 "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    name=${NAMES[$(( (i + r - 1) % n ))]}
    log "scaling round $r/$ROUNDS  $name  load=$(cut -d' ' -f1 /proc/loadavg)"
    GW_CORE="$CORES" LOAD_CORE="$CORES" CONNS_LAT="" ROUND=$r OUT="$RES/results.jsonl" \
      GW_LOG="$RES/logs/$name-r$r.log" "$BENCH/gateway_overhead.sh" "${CMD[$name]}" "$name" > /dev/null
    tail -n 1 "$RES/results.jsonl" | python3 -c 'import json,sys
d=json.loads(sys.stdin.read()); c=d.get("cpu_s_per_10k")
print("   ", d.get("error") or "rps@c32=%s cpu_us/req=%s cores_busy=%s procs=%s" % (d["c32"]["rps"], round(c*100) if c else "-", d.get("cpu_util"), d.get("nprocs")))' >&2
    trim_log "$RES/logs/$name-r$r.log"
  done
done
echo "loadavg at end: $(cat /proc/loadavg)" >> "$RES/env.txt"
python3 "$PO_HERE/compare.py" --scaling "$RES" > "$RES/summary.md"
cat "$RES/summary.md"
