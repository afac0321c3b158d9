"""Forward-INF (Ko et al., CVPR 2024): attribution by unlearning the output.

For each query: ascend a few gradient steps on its loss (θ̂ → θ̂′), score every candidate by
ℓ(θ̂′, z_i) − ℓ(θ̂, z_i), and restore θ̂ exactly. Candidates only see forward passes, and their base
losses ℓ(θ̂, z_i) are computed once for all queries. With one SGD step of size η the score is
η·∇ℓ(z_i)·∇ℓ(z_query) to first order: TracIn at one checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.data.rows import materialize
from hf_attrib.engine.arguments import AscentArguments, resolve_arguments
from hf_attrib.engine.ascent import ReversibleAscent
from hf_attrib.engine.scoring import BaseLossCache, EncodedRows, compare_losses, example_losses
from hf_attrib.engine.state import preserved_model_state
from hf_attrib.results import AttributionResult


@dataclass
class ForwardINFArguments(AscentArguments):
    """Options of :class:`ForwardINF`: the ascent (see `AscentArguments`) and the scoring."""

    batch_size: int = field(default=32, metadata={"help": "Candidates per forward pass."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
    group_id: str = field(default="all_queries", metadata={"help": "Query id of the score row when joint."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")


class ForwardINF:
    """Forward-INF attribution over one adapter's model.

    >>> method = ForwardINF(adapter, learning_rate=1e-2, steps=3)          # keywords, or
    >>> method = ForwardINF(adapter, ForwardINFArguments(parameters="last:2"))
    >>> result = method.attribute(queries, candidates)                   # AttributionResult
    """

    name = "forward-inf"

    def __init__(self, adapter: ModelAdapter, args: ForwardINFArguments | None = None, **options: Any) -> None:
        if not isinstance(adapter, ModelAdapter):
            raise ValueError(f"adapter must be a hf_attrib ModelAdapter, got {type(adapter).__name__}")
        self.adapter = adapter
        self.args = resolve_arguments(ForwardINFArguments, args, options)
        self._base_cache = BaseLossCache()

    def encode_candidates(self, candidates: Any) -> EncodedRows:
        return EncodedRows.build(self.adapter, candidates, self.args.batch_size, "candidates")

    def base_losses(self, candidates: Any) -> np.ndarray:
        """ℓ(θ̂, z_i) for every candidate (cached across calls while the weights are unchanged)."""
        rows = candidates if isinstance(candidates, EncodedRows) else self.encode_candidates(candidates)
        with preserved_model_state(self.adapter.model) as model:
            return self._base_cache.get(self.adapter, model, rows, progress=self.args.progress).mean(axis=(1, 2))

    def attribute(
        self, queries: Any, candidates: Any, candidate_sets: dict[str, list[str]] | None = None
    ) -> AttributionResult:
        """Score every candidate for every query (one row for the group when ``joint=True``).

        With `candidate_sets` (query id -> candidate ids), each query scores only its own set after
        ascent; the others are NaN (not scored) and base losses are still computed once for the union.
        """
        args = self.args
        # one batch per query, or the whole group in batches of query_batch_size when joint
        per_batch = args.query_batch_size if args.joint else 1
        encoded_queries = EncodedRows.build(self.adapter, materialize(queries, "queries"), per_batch, "queries")
        encoded = self.encode_candidates(candidates)
        if args.joint:
            groups, query_ids = [encoded_queries.batches], [args.group_id]
        else:
            groups, query_ids = [[batch] for batch in encoded_queries.batches], encoded_queries.ids
        if candidate_sets is not None:
            if args.joint:
                raise ValueError("candidate_sets cannot be combined with joint=True (one group, one set)")
            missing = [q for q in query_ids if q not in candidate_sets]
            if missing:
                raise ValueError(f"candidate_sets has no entry for queries {missing[:5]}")
            subsets = {q: encoded.subset(self.adapter, candidate_sets[q]) for q in query_ids}
        scores = np.full((len(groups), len(encoded)), np.nan, dtype=np.float64)
        with preserved_model_state(self.adapter.model) as model:
            base = self._base_cache.get(self.adapter, model, encoded, progress=args.progress)
            with ReversibleAscent.attach(self.adapter, args) as ascent:
                for row, group in enumerate(tqdm(groups, desc="Forward-INF queries", disable=not args.progress)):
                    try:
                        ascent.ascend(group)
                        rows, columns = subsets[query_ids[row]] if candidate_sets else (encoded, slice(None))
                        after = example_losses(self.adapter, ascent.model, rows, desc="losses after ascent")
                    finally:
                        ascent.restore()
                    scores[row, columns] = compare_losses(after, base[columns], args.score)
        return AttributionResult(
            scores,
            query_ids,
            encoded.ids,
            method=self.name,
            config={"arguments": args.to_dict(), "adapter": type(self.adapter).__name__,
                    "adapter_config": self.adapter.config(), "adapter_fingerprint": self.adapter.fingerprint()},
            extras={"base_losses": base.mean(axis=(1, 2))},
        )

