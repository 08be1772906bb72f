"""gRPC mode's OpenAI server side: per-model resources, output choices and the renderer.

``resources`` (tokenizer, template and parser choice per model, cached by path),
``choice`` (one sequence: detokenize, stops, reasoning and tool-call parsing),
``render`` (``chat.completion`` / ``text_completion`` JSON and SSE) and ``tool_choice``
(forced tool calls as constraints). The ``chat_template`` and ``tokenize`` filters
(``smg/filters/``) put these on the request for the gRPC adapter.
"""
