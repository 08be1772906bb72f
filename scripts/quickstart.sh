#!/usr/bin/env bash
# Set up a fresh clone and run the gateway in front of two simulated engines on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v '^WARNING' || true

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

.venv/bin/smg sim --ports 31001-31002 --model sim-model --seed 1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:31001/health >/dev/null 2>&1 && curl -fsS http://127.0.0.1:31002/health >/dev/null 2>&1 && break
  sleep 0.1
done
.venv/bin/smg run -c examples/configs/quickstart.yaml &
pids+=($!)
for _ in $(seq 100); do curl -fsS http://127.0.0.1:30000/health >/dev/null 2>&1 && break; sleep 0.1; done

cat <<'MSG'

SMG is serving OpenAI's API on http://127.0.0.1:30000 (admin and metrics on http://127.0.0.1:9901).

  curl http://127.0.0.1:30000/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model": "sim-model", "messages": [{"role": "user", "content": "Hello"}]}'

  .venv/bin/python -c 'from openai import OpenAI
c = OpenAI(base_url="http://127.0.0.1:30000/v1", api_key="none")
print(c.chat.completions.create(model="sim-model", messages=[{"role": "user", "content": "Hi"}]).choices[0].message.content)'
  (the openai SDK: .venv/bin/pip install openai)

Edit examples/configs/quickstart.yaml and save: the gateway reloads it. Ctrl-C stops everything.
MSG
wait
