#!/usr/bin/env bash
# Does observability cost more than 15% CPU per request?  Same harness as the proxy-overhead
# benchmark, two builds of the same tree side by side in every round:
#   ours-obs   metrics on (all smg_* families) + one JSON access-log line per request (info)
#   ours-bare  --disable-metrics (every metric update a no-op) + --log-level warning
# then compare.py prints the same-round ratios (median and range over rounds).
# Its windows alternate, so machine drift between them swings the ratios (0.79-1.59 per
# round): side_by_side.py (the gateways measured concurrently) is the steady measure.
#
#   benchmarks/observability_overhead/run.sh [RESULTS_DIR]     (~15 min with the defaults)
# Env: ROUNDS=4 SSE_ROUNDS=4 and every knob of ../proxy_overhead/run.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
RES="${1:-$HERE/results-$(date +%Y%m%d-%H%M%S)}"
TARGETS="${TARGETS:-ours-obs ours-bare}" SKIP_FLUSH=1 ROUNDS="${ROUNDS:-4}" SSE_ROUNDS="${SSE_ROUNDS:-4}" \
  SMG_SNAPSHOT=1 "$HERE/../proxy_overhead/run.sh" "$RES" > "$RES.log" 2>&1 || true
python3 "$HERE/compare.py" "$RES" | tee "$RES/observability.md"
