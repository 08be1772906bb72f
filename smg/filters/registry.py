"""The filter type registry: builtins by name, third-party ones by entry point or path."""

from __future__ import annotations

from smg.filters.base import Filter
from smg.registry import Registry

FILTERS: Registry[type[Filter]] = Registry("filter type", entry_point_group="smg.filters")
FILTERS.register_lazy("router", "smg.filters.router:RouterFilter")
FILTERS.register_lazy("request_id", "smg.filters.request_id:RequestIdFilter")
FILTERS.register_lazy("api_key", "smg.filters.api_key:ApiKeyFilter")
FILTERS.register_lazy("rate_limit", "smg.filters.rate_limit:RateLimitFilter")
FILTERS.register_lazy("admission", "smg.filters.admission:AdmissionFilter")
FILTERS.register_lazy("chat_template", "smg.filters.chat_template:ChatTemplateFilter")
FILTERS.register_lazy("tokenize", "smg.filters.tokenize:TokenizeFilter")


def known_filter_types() -> list[str]:
    """Names of every registered filter type (for config validation)."""
    return FILTERS.names()
