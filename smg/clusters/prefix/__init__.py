"""Prefix-aware routing state: the radix tree of routed prompts and the text it is keyed on."""
