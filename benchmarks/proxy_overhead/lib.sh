# Sourced by run.sh, scaling.sh and profile.sh: paths, installs, snapshot of our code, env record.
# shellcheck shell=bash
PO_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$PO_HERE/../.." && pwd)"
# The shared harness (read-only): ../shared/bench next to the repo unless BENCH says otherwise.
BENCH="${BENCH:-$(cd "$REPO/.." && pwd)/shared/bench}"
VENVS="${VENVS:-/tmp/perf}"                 # venv-smg (Rust smg 1.13.0), venv-vllmr (vllm-router 0.1.17)
RUST_SMG_VERSION="${RUST_SMG_VERSION:-1.13.0}"
VLLM_ROUTER_VERSION="${VLLM_ROUTER_VERSION:-0.1.17}"
W="http://127.0.0.1:18001 http://127.0.0.1:18002 http://127.0.0.1:18003 http://127.0.0.1:18004"
WS="http://127.0.0.1:18101 http://127.0.0.1:18102 http://127.0.0.1:18103 http://127.0.0.1:18104"
WT="http://127.0.0.1:18201 http://127.0.0.1:18202 http://127.0.0.1:18203 http://127.0.0.1:18204"

log() { echo "[$(date +%T)] $*" >&2; }

# Our gateway: $SMG_PY, else the repo's .venv/bin/smg, else `smg` on PATH, else make .venv.
find_our_smg() {
  if [ -n "${SMG_PY:-}" ]; then :
  elif [ -x "$REPO/.venv/bin/smg" ]; then SMG_PY="$REPO/.venv/bin/smg"
  elif command -v smg >/dev/null 2>&1; then SMG_PY="$(command -v smg)"
  elif [ -z "${SKIP_INSTALL:-}" ]; then
    log "no smg found: creating $REPO/.venv (pip install -e $REPO)"
    python3 -m venv "$REPO/.venv" && "$REPO/.venv/bin/pip" install -q -e "$REPO" >&2
    SMG_PY="$REPO/.venv/bin/smg"
  fi
  [ -x "${SMG_PY:-}" ] || { echo "our smg not found (set SMG_PY=/path/to/smg)" >&2; exit 1; }
  if "$SMG_PY" --help 2>&1 | grep -q 'Shepherd Model Gateway - High-performance'; then
    echo "$SMG_PY is the Rust smg from PyPI, not this repo's gateway (set SMG_PY)" >&2; exit 1
  fi
  export SMG_PY
}

ensure_deps() {
  [ -n "${SKIP_INSTALL:-}" ] && return 0
  local need=()
  command -v nginx >/dev/null 2>&1 || need+=(nginx)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v taskset >/dev/null 2>&1 || need+=(util-linux)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
  fi
  if [ ! -x "$VENVS/venv-smg/bin/smg" ]; then
    log "installing smg==$RUST_SMG_VERSION (Rust) into $VENVS/venv-smg"
    python3 -m venv "$VENVS/venv-smg" && "$VENVS/venv-smg/bin/pip" install -q "smg==$RUST_SMG_VERSION" >&2
  fi
  if [ ! -x "$VENVS/venv-vllmr/bin/vllm-router" ]; then
    log "installing vllm-router==$VLLM_ROUTER_VERSION into $VENVS/venv-vllmr"
    python3 -m venv "$VENVS/venv-vllmr" && "$VENVS/venv-vllmr/bin/pip" install -q "vllm-router==$VLLM_ROUTER_VERSION" >&2
  fi
}

# Freeze the code under test: copy smg/ (and schemas/) into the results dir and put it first on PYTHONPATH
# (it wins over the editable install), so edits made to the repo during a 30-minute run do
# not change what is measured.  SMG_SNAPSHOT=0 runs whatever $SMG_PY imports.
tree_hash() { (cd "${1:-$REPO}" && find smg -name '*.py' -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16); }
# SMG_SRC=DIR reuses an earlier snapshot (DIR holds smg/ and schemas/), e.g. to re-measure
# exactly the code an earlier run measured.
snapshot_ours() {  # $1 = results dir; sets OURS_ENV
  OURS_ENV=""
  if [ -n "${SMG_SRC:-}" ]; then
    [ -f "$SMG_SRC/smg/__init__.py" ] || { echo "SMG_SRC=$SMG_SRC has no smg/" >&2; exit 1; }
    OURS_ENV="env PYTHONPATH=$(cd "$SMG_SRC" && pwd)"
  elif [ "${SMG_SNAPSHOT:-1}" != "0" ]; then
    mkdir -p "$1/smg-src"
    cp -r "$REPO/smg" "$1/smg-src/"
    [ -d "$REPO/schemas" ] && cp -r "$REPO/schemas" "$1/smg-src/"   # smg/config/schema.py reads ../schemas
    find "$1/smg-src" -name __pycache__ -prune -exec rm -rf {} +
    OURS_ENV="env PYTHONPATH=$1/smg-src"
    local got
    got="$(cd /tmp && PYTHONPATH="$1/smg-src" "$(head -1 "$SMG_PY" | sed 's/^#!//')" -c 'import smg; print(smg.__file__)' 2>/dev/null)"
    case "$got" in "$1/smg-src/"*) ;; *) log "snapshot not picked up ($got); measuring the live tree"; OURS_ENV="";; esac
  fi
}

write_env() {  # $1 = results dir
  { echo "date: $(date -u +%FT%TZ)"; uname -srm; grep -m1 'model name' /proc/cpuinfo; echo "cpus: $(nproc)"
    free -m | sed -n 2p; nginx -v 2>&1; wrk -v 2>&1 | head -1; python3 --version
    echo "our smg: $SMG_PY (python: $(head -1 "$SMG_PY" | sed 's/^#!//'))"
    "$(head -1 "$SMG_PY" | sed 's/^#!//')" -m pip list 2>/dev/null | grep -iE '^(aiohttp|uvloop|httptools|orjson|multidict) ' | tr -s ' ' | tr '\n' ' '; echo
    echo "our code: git HEAD $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null), live smg/*.py sha256 $(tree_hash), snapshot: ${OURS_ENV:-none}"
    case "$OURS_ENV" in *PYTHONPATH=*) echo "  measured snapshot ${OURS_ENV##*=}: smg/*.py sha256 $(tree_hash "${OURS_ENV##*=}")";; esac
    echo "uncommitted files under smg/: $(git -C "$REPO" status --porcelain -- smg 2>/dev/null | tr '\n' ' ')"
    "$VENVS/venv-smg/bin/pip" list 2>/dev/null | grep -iE '^smg '
    "$VENVS/venv-vllmr/bin/pip" list 2>/dev/null | grep -iE '^vllm-router '
    echo "loadavg at start: $(cat /proc/loadavg)"
    echo "busiest processes at start:"; ps -eo pid,pcpu,comm --sort=-pcpu | head -6
  } >> "$1/env.txt" 2>&1
}

MOCK_STARTED=""
start_mock() {
  if ! "$BENCH/mock_worker.sh" status | grep -q running; then
    LOAD_CORE=0 "$BENCH/mock_worker.sh" start >&2 && MOCK_STARTED=1
  fi
}
stop_mock() { [ -n "$MOCK_STARTED" ] && "$BENCH/mock_worker.sh" stop >&2; MOCK_STARTED=""; }

# Keep logs small: the Rust smg at info level writes a line per request.
trim_log() { [ -f "$1" ] && [ "$(stat -c %s "$1")" -gt 1000000 ] && { tail -n 100 "$1" > "$1.tail"; mv "$1.tail" "$1"; }; true; }
