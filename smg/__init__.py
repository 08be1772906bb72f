"""SMG: an Envoy-style, configuration-driven LLM inference gateway."""
