"""Methods by name, as recipes name them (in the spirit of TRAK's name → class registry)."""

from __future__ import annotations

from typing import Any

METHODS = ("forward-inf", "tracin", "bm25", "rerank", "nearest")


def build_method(spec: dict[str, Any], adapter: Any, *, progress: bool = True,
                 allowed: tuple[str, ...] = METHODS):
    """A method from a recipe entry ``{"name": ..., "label": ..., **options}``."""
    from hf_attrib.methods import BM25, BM25Rerank, ForwardINF, NearestNeighbor, TracIn

    name = spec.get("name")
    if name not in allowed:
        raise ValueError(f"unknown method {name!r}; choose from {list(allowed)}")
    options = {k: v for k, v in spec.items() if k not in ("name", "label")}
    if name == "forward-inf":
        return ForwardINF(adapter, progress=progress, **options)
    if name == "tracin":
        return TracIn(adapter, progress=progress, **options)
    if name == "bm25":
        return BM25(**options)
    if name == "nearest":
        return NearestNeighbor(adapter, **options)
    k = options.pop("k", 20)  # rerank
    return BM25Rerank(ForwardINF(adapter, progress=progress, **options), k=k)
