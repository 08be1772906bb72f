#!/usr/bin/env bash
# Set up a fresh clone and run the whole test suite (lint, types, unit, end-to-end, chaos).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING' || true
.venv/bin/ruff check smg tests benchmarks examples
.venv/bin/mypy
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit "$code"
