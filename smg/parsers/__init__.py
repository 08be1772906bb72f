"""Model-output parsing for gRPC mode: reasoning and tool calls, streaming and not.

Pure Python, no I/O. Every parser is chunking-invariant: feeding the output in any
split gives, concatenated, exactly what ``parse`` gives for the whole text. See
``smg/parsers/README.md`` for the families and the model-name table.
"""

from smg.parsers.pipeline import ChatDelta, ChatResult, OutputParser, create_output_parser

__all__ = ["ChatDelta", "ChatResult", "OutputParser", "create_output_parser"]
