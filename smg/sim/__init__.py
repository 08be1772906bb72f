"""Simulated inference engine: a real HTTP server that behaves like vLLM/SGLang under load."""
