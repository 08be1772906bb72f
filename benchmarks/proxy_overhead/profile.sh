#!/usr/bin/env bash
# CPU profile of our gateway under wrk load (py-spy, sampling, native frames included).
#
#   benchmarks/proxy_overhead/profile.sh [RESULTS_DIR]          (~2 min)
#
# For MODE in json (non-streaming, mock ports 18001-4) and sse (stream:true, 18101-4):
#   start `smg launch` pinned to core 1 (wrk, mock and py-spy on core 0), warm up 3 s;
#   1. wrk -c32 for PROFILE_SECS without the profiler: req/s and the gateway's user/system CPU
#      split from /proc/PID/stat (system time = the kernel's loopback TCP work for us);
#   2. wrk -c32 again with `py-spy record --native --format raw` attached for PROFILE_SECS
#      (py-spy pauses the process to sample: req/s drops while it runs; shares stay valid);
#   3. a second py-spy recording without --native as speedscope JSON (open in speedscope.app);
#   then profile_summary.py: top 25 functions by own and cumulative time, time by area.
# Writes MODE.raw, MODE.speedscope.json, MODE.md (tables), MODE.cpu.json, env.txt.
# Env: PROFILE_SECS=20 PYSPY_RATE=100 SMG_PY SMG_SNAPSHOT=1 PYSPY (default: next to $SMG_PY,
#      installed there with pip if missing) GW_CORE=1 LOAD_CORE=0 MODES="json sse"
set -uo pipefail
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

RES="${1:-$PO_HERE/results-profile-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RES/logs"; RES="$(cd "$RES" && pwd)"
SECS="${PROFILE_SECS:-20}"; RATE="${PYSPY_RATE:-100}"
GW_CORE="${GW_CORE:-1}"; LOAD_CORE="${LOAD_CORE:-0}"
ensure_deps
find_our_smg
PY="$(head -1 "$SMG_PY" | sed 's/^#!//')"
PYSPY="${PYSPY:-$(dirname "$SMG_PY")/py-spy}"
if [ ! -x "$PYSPY" ]; then
  if command -v py-spy >/dev/null 2>&1; then PYSPY="$(command -v py-spy)"
  else log "installing py-spy with $PY -m pip"; "$PY" -m pip install -q py-spy >&2; PYSPY="$(dirname "$SMG_PY")/py-spy"; fi
fi
snapshot_ours "$RES"
write_env "$RES"
"$PYSPY" --version >> "$RES/env.txt"

GP=""
cleanup() { [ -n "$GP" ] && kill -KILL -- "-$GP" 2>/dev/null; stop_mock; }
trap cleanup EXIT
trap 'exit 130' INT TERM
start_mock
URL=http://127.0.0.1:30000/v1/chat/completions
LUA="$BENCH/chat.lua"

ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }   # utime stime (clock ticks)
sysc() { awk '/^syscr|^syscw/ {printf "%s ", $2}' "/proc/$1/io"; }   # read-type, write-type syscalls

for mode in ${MODES:-json sse}; do
  if [ "$mode" = sse ]; then workers="$WS"; export WRK_STREAM=1; else workers="$W"; unset WRK_STREAM; fi
  cmd="$OURS_ENV $SMG_PY launch --worker-urls $workers --host 127.0.0.1 --port 30000 --prometheus-port 29000 --log-level warning ${OURS_EXTRA:-}"
  echo "cmd $mode: $cmd" >> "$RES/env.txt"
  setsid taskset -c "$GW_CORE" bash -c "exec $cmd" > "$RES/logs/$mode.log" 2>&1 &
  GP=$!
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -XPOST $URL -H 'Content-Type: application/json' \
         -d '{"model":"mock-model","messages":[{"role":"user","content":"x"}]}')" = 200 ] && break
    sleep 0.2
  done
  log "$mode: gateway pid $GP up; warmup"
  taskset -c "$LOAD_CORE" wrk -t1 -c32 -d3s -s "$LUA" "$URL" > /dev/null
  read -r u0 s0 < <(ticks "$GP"); read -r r0 w0 < <(sysc "$GP")
  taskset -c "$LOAD_CORE" wrk -t1 -c32 -d"${SECS}s" --latency -s "$LUA" "$URL" > "$RES/$mode.wrk.txt"
  read -r u1 s1 < <(ticks "$GP"); read -r r1 w1 < <(sysc "$GP")
  python3 - "$RES/$mode.wrk.txt" "$u0" "$s0" "$u1" "$s1" "$(getconf CLK_TCK)" "$r0" "$w0" "$r1" "$w1" > "$RES/$mode.cpu.json" <<'EOF'
import json, re, sys
txt = open(sys.argv[1]).read()
res = json.loads(re.search(r"^RESULT (\{.*\})$", txt, re.M).group(1))
u0, s0, u1, s1, hz, r0, w0, r1, w1 = map(int, sys.argv[2:11])
user, sys_ = (u1 - u0) / hz, (s1 - s0) / hz
n = res["requests"]
print(json.dumps({"rps": res["rps"], "requests": n, "cpu_user_s": user, "cpu_sys_s": sys_,
                  "cpu_us_per_req": round((user + sys_) / n * 1e6, 1),
                  "user_us_per_req": round(user / n * 1e6, 1), "sys_us_per_req": round(sys_ / n * 1e6, 1),
                  "sys_share": round(sys_ / max(user + sys_, 1e-9), 3),
                  "read_syscalls_per_req": round((r1 - r0) / n, 2),
                  "write_syscalls_per_req": round((w1 - w0) / n, 2)}))
EOF
  log "$mode: unprofiled $(cat "$RES/$mode.cpu.json")"
  taskset -c "$LOAD_CORE" wrk -t1 -c32 -d"$((SECS + 3))s" -s "$LUA" "$URL" > "$RES/$mode.wrk-profiled.txt" &
  WP=$!
  sleep 1
  taskset -c "$LOAD_CORE" "$PYSPY" record --pid "$GP" --duration "$SECS" --rate "$RATE" --native \
    --format raw -o "$RES/$mode.raw" > "$RES/logs/$mode.pyspy.log" 2>&1
  wait "$WP"
  taskset -c "$LOAD_CORE" wrk -t1 -c32 -d"$((SECS / 2 + 3))s" -s "$LUA" "$URL" > /dev/null &
  WP=$!
  sleep 1
  taskset -c "$LOAD_CORE" "$PYSPY" record --pid "$GP" --duration "$((SECS / 2))" --rate "$RATE" \
    --format speedscope -o "$RES/$mode.speedscope.json" >> "$RES/logs/$mode.pyspy.log" 2>&1
  wait "$WP"
  kill -TERM -- "-$GP" 2>/dev/null
  for _ in $(seq 40); do kill -0 "$GP" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$GP" 2>/dev/null; wait "$GP" 2>/dev/null; GP=""
  for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:30000/health || break; sleep 0.1; done
  python3 "$PO_HERE/profile_summary.py" "$RES/$mode.raw" 25 > "$RES/$mode.md"
  log "$mode: profile -> $RES/$mode.md"
done
unset WRK_STREAM
echo "loadavg at end: $(cat /proc/loadavg)" >> "$RES/env.txt"
