"""Reading of Hugging Face model-directory metadata (tokenizer_config, generation_config)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Named special-token attributes that transformers exposes to chat templates.
SPECIAL_TOKEN_NAMES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)

# transformers' VERY_LARGE_INTEGER (int(1e30)) and the like mean "no limit".
_UNLIMITED = 2**53

# Sampling fields of generation_config.json that an OpenAI request may leave unset.
SAMPLING_DEFAULT_KEYS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "max_new_tokens",
)


@dataclass(frozen=True)
class AddedTokenInfo:
    """One entry of added_tokens_decoder."""

    id: int
    content: str
    special: bool


@dataclass
class TokenizerConfig:
    """Parsed tokenizer_config.json plus generation_config.json and template files."""

    special_tokens: dict[str, str] = field(default_factory=dict)
    added_tokens: list[AddedTokenInfo] = field(default_factory=list)
    chat_templates: dict[str, str] = field(default_factory=dict)
    clean_up_tokenization_spaces: bool = False
    add_bos_token: bool | None = None
    add_eos_token: bool | None = None
    model_max_length: int | None = None
    generation_eos_ids: list[int] = field(default_factory=list)
    generation_defaults: dict[str, float | int] = field(default_factory=dict)

    @classmethod
    def from_dicts(
        cls,
        tokenizer_config: Mapping[str, Any] | None,
        generation_config: Mapping[str, Any] | None = None,
    ) -> TokenizerConfig:
        """Build from already-parsed JSON objects."""
        tc = dict(tokenizer_config or {})
        gc = dict(generation_config or {})
        special: dict[str, str] = {}
        for name in SPECIAL_TOKEN_NAMES:
            text = token_content(tc.get(name))
            if text is not None:
                special[name] = text
        added = [
            AddedTokenInfo(int(k), str(v.get("content", "")), bool(v.get("special", False)))
            for k, v in (tc.get("added_tokens_decoder") or {}).items()
            if isinstance(v, Mapping)
        ]
        max_len = tc.get("model_max_length")
        cfg = cls(
            special_tokens=special,
            added_tokens=added,
            chat_templates=_templates_from_config(tc.get("chat_template")),
            clean_up_tokenization_spaces=bool(tc.get("clean_up_tokenization_spaces", False)),
            add_bos_token=_opt_bool(tc.get("add_bos_token")),
            add_eos_token=_opt_bool(tc.get("add_eos_token")),
            # Some configs store 1e30 (a float, or the int transformers writes back) as
            # "unlimited"; keep only sane integers.
            model_max_length=max_len if _sane_length(max_len) else None,
        )
        eos = gc.get("eos_token_id")
        if isinstance(eos, int):
            cfg.generation_eos_ids = [eos]
        elif isinstance(eos, list):
            cfg.generation_eos_ids = [int(x) for x in eos if isinstance(x, int)]
        for key in SAMPLING_DEFAULT_KEYS:
            val = gc.get(key)
            if isinstance(val, int | float) and not isinstance(val, bool):
                cfg.generation_defaults[key] = val
        return cfg

    @classmethod
    def from_dir(cls, path: str | Path) -> TokenizerConfig:
        """Load from a local model directory; missing files are treated as empty."""
        root = Path(path)
        cfg = cls.from_dicts(
            _read_json(root / "tokenizer_config.json"), _read_json(root / "generation_config.json")
        )
        # As in transformers, template files take precedence over tokenizer_config's field.
        files: dict[str, str] = {}
        main = root / "chat_template.jinja"
        if main.is_file():
            files["default"] = main.read_text(encoding="utf-8")
        extra_dir = root / "additional_chat_templates"
        if extra_dir.is_dir():
            for f in sorted(extra_dir.glob("*.jinja")):
                files[f.stem] = f.read_text(encoding="utf-8")
        if files:
            cfg.chat_templates = files
        return cfg


def token_content(value: Any) -> str | None:
    """Return the text of a special token given as a string or an AddedToken dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _templates_from_config(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        return {"default": value}
    if isinstance(value, list):
        return {
            str(item["name"]): str(item["template"])
            for item in value
            if isinstance(item, Mapping) and "name" in item and "template" in item
        }
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return {}


def _sane_length(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < _UNLIMITED


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
