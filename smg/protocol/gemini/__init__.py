"""Google Gemini's ``generateContent`` wire format and its translation from/to OpenAI chat.

``request`` (OpenAI chat → Gemini body), ``response`` (Gemini answer → chat.completion),
``stream`` (Gemini SSE → chat.completion.chunk SSE), ``schema`` (JSON Schema → Gemini's
OpenAPI subset), ``errors`` (Gemini error bodies → OpenAI error bodies).
"""
