"""Texts that stress byte-level BPE: whitespace, code, CJK, emoji, combining marks."""

from __future__ import annotations

SAMPLES = [
    "Hello, world! How are you doing today?",
    "  leading spaces and\ttabs\n\nnewlines\r\n",
    "Numbers: 1234567 3.14159 -42 1e10",
    "def f(x):\n    return x**2  # square\n",
    "Unicode: café naïve 日本語のテキスト 中文测试 Привет мир 🤖🚀 مرحبا",
    "Combining: e\u0301 vs \u00e9; \ufb01 ligature; \uff21\uff42\uff43 fullwidth",
    "'s 't 're 've 'm 'll 'd  It's don't I'LL",
    '{"name": "get_weather", "arguments": {"city": "Paris"}}',
    "a" * 300 + " " + "ab" * 100,
    "👨‍👩‍👧‍👦 family, 🇫🇷 flag, \U0001d518\U0001d52b\U0001d526 \U0001f9d1\u200d\U0001f4bb",
    "<|im_start|>user\nhi<|im_end|>\n<tool_call>\n{}\n</tool_call>",
    "",
]
