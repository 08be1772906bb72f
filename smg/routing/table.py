"""The route table: match a request on model (glob), path and headers → weighted clusters."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import translate

from smg.config.model import RouteConfig


@dataclass(frozen=True, slots=True)
class Route:
    """A compiled route: matchers precomputed so matching allocates nothing."""

    name: str
    model_exact: str | None
    model_pattern: re.Pattern[str] | None
    path_exact: str | None
    path_prefix: str | None
    headers: tuple[tuple[str, str], ...]
    clusters: tuple[str, ...]
    cumulative_weights: tuple[int, ...]
    fallback: tuple[str, ...]

    @classmethod
    def compile(cls, cfg: RouteConfig) -> Route:
        """Precompile a configured route."""
        m = cfg.match
        model_exact: str | None = None
        model_pattern: re.Pattern[str] | None = None
        if m.model is not None and m.model != "*":
            if any(c in m.model for c in "*?["):
                model_pattern = re.compile(translate(m.model))
            else:
                model_exact = m.model
        path_exact = path_prefix = None
        if m.path is not None:
            if m.path.endswith("*"):
                path_prefix = m.path[:-1]
            else:
                path_exact = m.path
        total = 0
        cumulative = []
        for wc in cfg.clusters:
            total += wc.weight
            cumulative.append(total)
        return cls(
            name=cfg.name,
            model_exact=model_exact,
            model_pattern=model_pattern,
            path_exact=path_exact,
            path_prefix=path_prefix,
            headers=tuple((k.lower(), v) for k, v in m.headers),
            clusters=tuple(wc.name for wc in cfg.clusters),
            cumulative_weights=tuple(cumulative),
            fallback=cfg.fallback,
        )

    @property
    def matches_any_model(self) -> bool:
        """True for a catch-all route (no model condition)."""
        return self.model_exact is None and self.model_pattern is None

    def matches(self, model: str | None, path: str, headers: Mapping[str, str]) -> bool:
        """Does a request with this model, path and headers take this route."""
        if self.model_exact is not None and model != self.model_exact:
            return False
        if self.model_pattern is not None and (
            model is None or self.model_pattern.fullmatch(model) is None
        ):
            return False
        if self.path_exact is not None and path != self.path_exact:
            return False
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        return all(headers.get(k) == v for k, v in self.headers)

    def pick_cluster(self, rng: random.Random | None = None) -> str:
        """Choose one of the route's clusters by weight."""
        if len(self.clusters) == 1:
            return self.clusters[0]
        r = (rng or random).random() * self.cumulative_weights[-1]
        for name, bound in zip(self.clusters, self.cumulative_weights, strict=True):
            if r < bound:
                return name
        return self.clusters[-1]


class RouteTable:
    """Routes of one listener, first match wins."""

    __slots__ = ("routes",)

    def __init__(self, routes: Sequence[RouteConfig]) -> None:
        self.routes = tuple(Route.compile(r) for r in routes)

    def match(self, model: str | None, path: str, headers: Mapping[str, str]) -> Route | None:
        """The first route the request matches, or None."""
        for r in self.routes:
            if r.matches(model, path, headers):
                return r
        return None
