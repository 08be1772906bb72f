"""Cheap, deterministic stand-ins for a tokenizer, a chat template and sampling."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import orjson

# Four UTF-8 bytes per token is roughly what BPE tokenizers average on English,
# and fixed-width chunks make a shared text prefix a shared token prefix.
BYTES_PER_TOKEN = 4

_WORD_LIST = (
    "the of and to in is it you that he was for on are with as his they be at one have "
    "this from or had by not word but what some we can out other were all there when up "
    "use your how said an each she which do their time if will way about many then them "
    "write would like so these her long make thing see him two has look more day could go "
    "come did number sound no most people my over know water than call first who may down "
    "side been now find any new work part take get place made live where after back little "
    "only round man year came show every good me give our under name very through just form "
    "sentence great think say help low line differ turn cause much mean before move right "
    "boy old too same tell does set three want air well also play small end put home read "
    "hand port large spell add even land here must big high such follow act why ask men "
    "change went light kind off need house picture try us again animal point mother world "
    "near build self earth father head stand own page should country found answer school "
    "grow study still learn plant cover food sun four between state keep eye never last let "
    "thought city tree cross farm hard start might story saw far sea draw left late run "
    "while press close night real life few north open seem together next white children "
    "begin got walk example ease paper group always music those both mark often letter "
    "until mile river car feet care second book carry took science eat room friend began "
    "idea fish mountain stop once base hear horse cut sure watch color face wood main"
)
_WORDS = _WORD_LIST.split()

# Exactly 256 tokens so that one random byte picks one token.
VOCAB: tuple[str, ...] = (*(" " + w for w in list(dict.fromkeys(_WORDS))[:255]), ".")
VOCAB_JSON: tuple[bytes, ...] = tuple(orjson.dumps(t) for t in VOCAB)
EOS_TOKEN_ID = 2
if len(VOCAB) != 256:  # pragma: no cover - guards the word list above
    raise RuntimeError(f"vocabulary must hold 256 tokens, has {len(VOCAB)}")


def count_tokens(prompt: bytes) -> int:
    """Number of tokens of an encoded prompt."""
    return (len(prompt) + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN


def ids_to_prompt(ids: list[int]) -> bytes:
    """Encode token ids as a prompt of exactly ``len(ids)`` tokens."""
    return b"".join((i & 0xFFFFFFFF).to_bytes(4, "little") for i in ids)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Multi-part content: only text parts take part in the prompt.
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def render_chat(messages: list[Any]) -> str:
    """Render a conversation the way a chat template would, ready for the assistant turn.

    Raises ValueError for a message that is not an object with a string role.
    """
    parts = []
    for m in messages:
        role = m.get("role") if isinstance(m, dict) else None
        if not isinstance(role, str):
            raise ValueError("every message must be an object with a string 'role'")
        content = m.get("content")
        parts.append(f"<|{role}|>\n{content if isinstance(content, str) else _text_of(content)}\n")
    parts.append("<|assistant|>\n")
    return "".join(parts)


def prompt_digest(prompt: bytes) -> int:
    """Stable (cross-process) fingerprint of a prompt, to seed sampling."""
    return zlib.crc32(prompt) ^ (len(prompt) << 32)


def sample(seed: int, digest: int, index: int, count: int) -> bytes:
    """``count`` token ids (one byte each) for choice ``index`` of a prompt.

    An extendable-output hash gives a stream, so a shorter answer is a prefix of a
    longer one for the same request.
    """
    if count <= 0:
        return b""
    material = b"%d:%d:%d" % (seed, digest, index)
    return hashlib.shake_128(material).digest(count)


def detokenize(ids: bytes) -> str:
    """Text of sampled token ids."""
    return "".join(map(VOCAB.__getitem__, ids))


def embedding(seed: int, prompt: bytes, dim: int) -> list[float]:
    """A deterministic unit vector for a prompt."""
    raw = hashlib.shake_128(b"%d:emb:" % seed + prompt).digest(2 * dim)
    vec = [(int.from_bytes(raw[i : i + 2], "little") - 32767.5) for i in range(0, 2 * dim, 2)]
    norm = sum(x * x for x in vec) ** 0.5 or 1.0
    return [x / norm for x in vec]
