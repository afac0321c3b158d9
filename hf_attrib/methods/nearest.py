"""Nearest neighbour: candidates ranked by closeness to the query in the adapter's feature space
(for Stable Diffusion, the VAE latents). A model-light baseline for duplicate-like attributions."""

from __future__ import annotations

from typing import Any

import torch

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.data.rows import materialize
from hf_attrib.engine.scoring import EncodedRows
from hf_attrib.results import AttributionResult


class NearestNeighbor:
    """Score = −(Euclidean distance) by default, or cosine similarity with ``metric="cosine"``."""

    name = "nearest-neighbor"

    def __init__(self, adapter: ModelAdapter, *, metric: str = "euclidean", batch_size: int = 64) -> None:
        if not hasattr(adapter, "features"):
            raise ValueError(f"{type(adapter).__name__} has no feature space for nearest neighbours")
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
        self.adapter, self.metric, self.batch_size = adapter, metric, batch_size

    def _features(self, rows: EncodedRows) -> torch.Tensor:
        return torch.cat([self.adapter.features(batch) for _, batch in rows.batches]).double()

    def attribute(self, queries: Any, candidates: Any) -> AttributionResult:
        queries = EncodedRows.build(self.adapter, materialize(queries, "queries"), self.batch_size, "queries")
        candidates = EncodedRows.build(self.adapter, candidates, self.batch_size, "candidates")
        q, c = self._features(queries), self._features(candidates)
        if self.metric == "cosine":
            scores = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(c, dim=1).T
        else:
            scores = -torch.cdist(q, c)
        return AttributionResult(scores.cpu().numpy(), queries.ids, candidates.ids, method=self.name,
                                 config={"metric": self.metric})
