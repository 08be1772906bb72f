"""Tokenization, detokenization, stop handling and chat templates for token-id engines."""

from smg.tokenization.chat_template import ChatTemplate, ChatTemplateError, select_template
from smg.tokenization.config import TokenizerConfig
from smg.tokenization.detokenizer import IncrementalDetokenizer
from smg.tokenization.messages import detect_content_format, openai_to_template_messages
from smg.tokenization.stops import (
    StopHit,
    StopStringMatcher,
    StopTokenChecker,
    find_stop,
    truncate_at_stop,
)
from smg.tokenization.streaming import OutputStream, StreamStep
from smg.tokenization.tokenizer import CacheInfo, Tokenizer

__all__ = [
    "CacheInfo",
    "ChatTemplate",
    "ChatTemplateError",
    "IncrementalDetokenizer",
    "OutputStream",
    "StopHit",
    "StopStringMatcher",
    "StopTokenChecker",
    "StreamStep",
    "Tokenizer",
    "TokenizerConfig",
    "detect_content_format",
    "find_stop",
    "openai_to_template_messages",
    "select_template",
    "truncate_at_stop",
]
