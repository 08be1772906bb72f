"""Hugging Face `tokenizers`-backed tokenizer with an encode cache and chat templates."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken
from tokenizers import Tokenizer as HFTokenizer

from smg.tokenization.chat_template import ChatTemplate, select_template
from smg.tokenization.config import TokenizerConfig

# transformers' clean_up_tokenization replacements, applied in this order.
_CLEANUP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


@dataclass(frozen=True)
class CacheInfo:
    """Encode-cache counters."""

    hits: int
    misses: int
    size: int
    maxsize: int


class Tokenizer:
    """Text <-> token ids for one model, matching transformers' fast tokenizer."""

    def __init__(
        self,
        backend: HFTokenizer,
        config: TokenizerConfig | None = None,
        *,
        encode_cache_size: int = 4096,
    ) -> None:
        self.backend = backend
        self.config = config or TokenizerConfig()
        self._apply_added_tokens()
        self._cache: OrderedDict[tuple[str, bool], tuple[int, ...]] = OrderedDict()
        self._cache_max = max(0, encode_cache_size)
        self._hits = 0
        self._misses = 0
        self.special_tokens: dict[str, str] = dict(self.config.special_tokens)
        self.special_ids: frozenset[int] = self._collect_special_ids()
        # Cleanup is skipped for BPE models in transformers because it corrupts their output.
        model_kind = type(backend.model).__name__
        self._cleanup = self.config.clean_up_tokenization_spaces and model_kind != "BPE"
        self._templates: dict[str, ChatTemplate] = {}

    # ----- construction -----

    @classmethod
    def from_pretrained(cls, path: str | Path, *, encode_cache_size: int = 4096) -> Tokenizer:
        """Load `tokenizer.json` and configs from a local model directory."""
        root = Path(path)
        backend = HFTokenizer.from_file(str(root / "tokenizer.json"))
        return cls(backend, TokenizerConfig.from_dir(root), encode_cache_size=encode_cache_size)

    @classmethod
    def from_json_str(
        cls,
        tokenizer_json: str,
        tokenizer_config: Mapping[str, Any] | str | None = None,
        generation_config: Mapping[str, Any] | str | None = None,
        *,
        encode_cache_size: int = 4096,
    ) -> Tokenizer:
        """Build from in-memory JSON (e.g. delivered by an engine's GetTokenizer RPC)."""
        tc = _json_obj(tokenizer_config)
        gc = _json_obj(generation_config)
        return cls(
            HFTokenizer.from_str(tokenizer_json),
            TokenizerConfig.from_dicts(tc, gc),
            encode_cache_size=encode_cache_size,
        )

    def _apply_added_tokens(self) -> None:
        # tokenizer_config's added_tokens_decoder can mark tokens special that tokenizer.json
        # does not; transformers registers them with the backend, which changes decode().
        known = self.backend.get_added_tokens_decoder()
        missing: list[AddedToken] = []
        for info in self.config.added_tokens:
            have = known.get(info.id)
            if have is None or have.content != info.content or have.special != info.special:
                missing.append(AddedToken(info.content, special=info.special, normalized=False))
        special = [t for t in missing if t.special]
        plain = [t for t in missing if not t.special]
        if special:
            self.backend.add_special_tokens(special)
        if plain:
            self.backend.add_tokens(plain)

    def _collect_special_ids(self) -> frozenset[int]:
        ids = {i for i, t in self.backend.get_added_tokens_decoder().items() if t.special}
        for text in self.special_tokens.values():
            tid = self.backend.token_to_id(text)
            if tid is not None:
                ids.add(tid)
        return frozenset(ids)

    # ----- encode / decode -----

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of `text` (cached); `add_special_tokens` applies the post-processor."""
        if self._cache_max == 0:
            self._misses += 1
            return list(self.backend.encode(text, add_special_tokens=add_special_tokens).ids)
        key = (text, add_special_tokens)
        hit = self._cache.get(key)
        if hit is not None:
            self._hits += 1
            self._cache.move_to_end(key)
            return list(hit)
        self._misses += 1
        ids = tuple(self.backend.encode(text, add_special_tokens=add_special_tokens).ids)
        self._cache[key] = ids
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)
        return list(ids)

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = False
    ) -> list[list[int]]:
        """Encode several texts, uncached, in one backend call (parallel in Rust)."""
        encs = self.backend.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return [list(e.ids) for e in encs]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids`, identical to transformers' PreTrainedTokenizerFast.decode."""
        text = self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)
        if self._cleanup:
            text = clean_up_tokenization(text)
        return text

    def decode_raw(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Backend decode without transformers' cleanup (used for incremental windows)."""
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    @property
    def cleans_up_spaces(self) -> bool:
        """Whether decode() applies transformers' clean_up_tokenization."""
        return self._cleanup

    def cache_info(self) -> CacheInfo:
        """Encode-cache hit/miss counters."""
        return CacheInfo(self._hits, self._misses, len(self._cache), self._cache_max)

    def clear_cache(self) -> None:
        """Drop cached encodings and reset counters."""
        self._cache.clear()
        self._hits = self._misses = 0

    # ----- vocabulary -----

    @property
    def vocab_size(self) -> int:
        """Number of ids including added tokens (transformers' len(tokenizer))."""
        return int(self.backend.get_vocab_size(with_added_tokens=True))

    def id_to_token(self, token_id: int) -> str | None:
        """Token string of an id, or None if unknown."""
        return self.backend.id_to_token(token_id)

    def token_to_id(self, token: str) -> int | None:
        """Id of a token string, or None if unknown."""
        return self.backend.token_to_id(token)

    def _special(self, name: str) -> str | None:
        return self.special_tokens.get(name)

    @property
    def bos_token(self) -> str | None:
        """Beginning-of-sequence token text."""
        return self._special("bos_token")

    @property
    def eos_token(self) -> str | None:
        """End-of-sequence token text."""
        return self._special("eos_token")

    @property
    def pad_token(self) -> str | None:
        """Padding token text."""
        return self._special("pad_token")

    @property
    def bos_token_id(self) -> int | None:
        """Id of bos_token."""
        return None if self.bos_token is None else self.token_to_id(self.bos_token)

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """Ids that end generation: generation_config eos ids plus the tokenizer's eos."""
        ids = list(self.config.generation_eos_ids)
        if self.eos_token is not None:
            tid = self.token_to_id(self.eos_token)
            if tid is not None and tid not in ids:
                ids.append(tid)
        return tuple(ids)

    @property
    def generation_defaults(self) -> dict[str, float | int]:
        """Sampling defaults from generation_config.json."""
        return dict(self.config.generation_defaults)

    # ----- chat templates -----

    @property
    def chat_templates(self) -> dict[str, str]:
        """Named chat-template sources ("default", "tool_use", ...)."""
        return dict(self.config.chat_templates)

    def chat_template(self, name: str | None = None, *, has_tools: bool = False) -> ChatTemplate:
        """The compiled template selected by name (or inline source) and tool use."""
        source = select_template(self.config.chat_templates, name, has_tools=has_tools)
        tpl = self._templates.get(source)
        if tpl is None:
            tpl = ChatTemplate(source, self.special_tokens)
            self._templates[source] = tpl
        return tpl

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        documents: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = False,
        continue_final_message: bool = False,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Render messages to the prompt text (transformers' tokenize=False)."""
        tpl = self.chat_template(chat_template, has_tools=tools is not None)
        return tpl.render(
            messages,
            tools=tools,
            documents=documents,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=continue_final_message,
            **kwargs,
        )


def clean_up_tokenization(text: str) -> str:
    """transformers' clean_up_tokenization: drop spaces before punctuation and contractions."""
    for old, new in _CLEANUP:
        text = text.replace(old, new)
    return text


def _json_obj(value: Mapping[str, Any] | str | None) -> Mapping[str, Any] | None:
    if isinstance(value, str):
        data = json.loads(value)
        return data if isinstance(data, dict) else None
    return value
