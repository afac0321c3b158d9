"""Forward-INF (Ko et al., CVPR 2024): attribution by unlearning the output.

For each query: ascend a few gradient steps on its loss (θ̂ → θ̂′), score every candidate by
ℓ(θ̂′, z_i) − ℓ(θ̂, z_i), and restore θ̂ exactly. Candidates only see forward passes, and their base
losses ℓ(θ̂, z_i) are computed once for all queries. With one SGD step of size η the score is
η·∇ℓ(z_i)·∇ℓ(z_query) to first order: TracIn at one checkpoint.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.data.rows import materialize
from hf_attrib.engine.arguments import AscentArguments, resolve_arguments
from hf_attrib.engine.ascent import ReversibleAscent
from hf_attrib.engine.prefix_cache import FrozenPrefix
from hf_attrib.engine.scoring import (
    BaseLossCache,
    EncodedRows,
    compare_losses,
    example_losses,
    example_losses_under_each,
)
from hf_attrib.engine.state import preserved_model_state
from hf_attrib.engine.timing import timed_into
from hf_attrib.results import AttributionResult


@dataclass
class ForwardINFArguments(AscentArguments):
    """Options of :class:`ForwardINF`: the ascent (see `AscentArguments`) and the scoring."""

    batch_size: int = field(default=32, metadata={"help": "Candidates per forward pass."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
    group_id: str = field(default="all_queries", metadata={"help": "Query id of the score row when joint."})
    one_pass_bytes: int = field(default=0, metadata={
        "help": "Score all queries in one pass over the candidates (each batch under every query's ascended "
                "weights) when those weights fit in this many bytes; 0 (default): one pass per query. Same "
                "scores; not faster on CPU here (scripts/bench_scoring.py)."})
    prefix_cache: bool = field(default=True, metadata={
        "help": "When ascent moves only the last blocks of a decoder stack (parameters='last:K'), compute the "
                "hidden states entering them once per candidate and run only the moved blocks per query."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if self.one_pass_bytes < 0:
            raise ValueError(f"one_pass_bytes must be >= 0, got {self.one_pass_bytes}")


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
        #: wall seconds of the last scoring call: base losses (and frozen-prefix states), ascent, scoring passes
        self.stage_seconds: dict[str, float] = {}

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
        groups, query_ids = self.query_groups(queries)
        encoded = self.encode_candidates(candidates)
        if candidate_sets is not None:
            if args.joint:
                raise ValueError("candidate_sets cannot be combined with joint=True (one group, one set)")
            missing = [q for q in query_ids if q not in candidate_sets]
            if missing:
                raise ValueError(f"candidate_sets has no entry for queries {missing[:5]}")
            subsets = {q: encoded.subset(self.adapter, candidate_sets[q]) for q in query_ids}
        base = self._base_cache.lookup(self.adapter, self.adapter.model, encoded)
        scores, base = self.scores_and_base(groups, encoded, base,
                                            [subsets[q] for q in query_ids] if candidate_sets else None)
        self._base_cache.store(self.adapter, self.adapter.model, encoded, base)
        return AttributionResult(
            scores,
            query_ids,
            encoded.ids,
            method=self.name,
            config={"arguments": args.to_dict(), "adapter": type(self.adapter).__name__,
                    "adapter_config": self.adapter.config(), "adapter_fingerprint": self.adapter.fingerprint(),
                    "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()}},
            extras={"base_losses": base.mean(axis=(1, 2))},
        )

    def query_groups(self, queries: Any) -> tuple[list[list], list[str]]:
        """The queries' batches, one group per score row: each query alone, or all of them when joint."""
        per_batch = self.args.query_batch_size if self.args.joint else 1
        encoded = EncodedRows.build(self.adapter, materialize(queries, "queries"), per_batch, "queries")
        if self.args.joint:
            return [encoded.batches], [self.args.group_id]
        return [[batch] for batch in encoded.batches], encoded.ids

    def score(self, groups: list[list], encoded: EncodedRows, base: np.ndarray | None = None,
              subsets: list[tuple[EncodedRows, np.ndarray]] | None = None,
              cache_path: Path | None = None) -> np.ndarray:
        """[groups, candidates] scores; see `scores_and_base`."""
        return self.scores_and_base(groups, encoded, base, subsets, cache_path)[0]

    def scores_and_base(self, groups: list[list], encoded: EncodedRows, base: np.ndarray | None = None,
                        subsets: list[tuple[EncodedRows, np.ndarray]] | None = None,
                        cache_path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        """[groups, candidates] scores and the candidates' base loss terms: per group, ascend, score the
        candidates (or the group's subset, others NaN) against their base loss terms, restore.

        `base`: the base loss terms if known; otherwise they are computed here, in the same pass that fills
        the frozen-prefix cache. `cache_path`: where the frozen-prefix states go (default: memory)."""
        args = self.args
        scores = np.full((len(groups), len(encoded)), np.nan, dtype=np.float64)
        self.stage_seconds = {"base": 0.0, "ascent": 0.0, "scoring": 0.0}
        with preserved_model_state(self.adapter.model) as model:
            frozen = self._find_prefix(model) if args.prefix_cache and not subsets else None
            states: list = []
            with self._stage("base"):  # base losses and, when the cache applies, the frozen-prefix states
                if base is None:
                    with frozen.recording(states) if frozen else nullcontext():
                        base = example_losses(self.adapter, model, encoded, progress=args.progress,
                                              desc="base losses")
                    states = FrozenPrefix.store(states, cache_path) if frozen else states
                elif frozen:
                    states = frozen.capture(self.adapter, model, [b for _, b in encoded.batches], cache_path)
                prefix = self._checked_prefix(model, frozen, states, encoded, base) if frozen else None
            with ReversibleAscent.attach(self.adapter, args) as ascent:
                moved = [p for _, p in ascent.moved]
                if not subsets and len(groups) * sum(p.numel() * p.element_size() for p in moved) <= \
                        args.one_pass_bytes:
                    return self._score_in_one_pass(ascent, groups, encoded, base, prefix), base
                for row, group in enumerate(tqdm(groups, desc="Forward-INF queries", disable=not args.progress,
                                                 leave=False)):
                    try:
                        with self._stage("ascent"):
                            ascent.ascend(group, self._query_prefix(prefix, group))
                        rows, columns = subsets[row] if subsets else (encoded, slice(None))
                        with self._stage("scoring"):
                            after = example_losses(self.adapter, ascent.model, rows, desc="losses after ascent",
                                                   prefix=prefix)
                    finally:
                        ascent.restore()
                    scores[row, columns] = compare_losses(after, base[columns], args.score)
        return scores, base

    def _score_in_one_pass(self, ascent: ReversibleAscent, groups: list[list], encoded: EncodedRows,
                           base: np.ndarray, prefix) -> np.ndarray:
        """Ascend every group first, keeping each one's moved weights, then score each candidate batch under
        all of them in one pass over the candidates."""
        weights = []
        for group in tqdm(groups, desc="Forward-INF ascent", disable=not self.args.progress, leave=False):
            try:
                with self._stage("ascent"):
                    ascent.ascend(group, self._query_prefix(prefix, group))
                weights.append([p.detach().clone() for _, p in ascent.moved])
            finally:
                ascent.restore()
        try:
            with self._stage("scoring"):
                after = example_losses_under_each(self.adapter, ascent.model, encoded, [p for _, p in ascent.moved],
                                                  weights, progress=self.args.progress, prefix=prefix)
        finally:
            ascent.restore()
        return np.stack([compare_losses(terms, base, self.args.score) for terms in after])

    def _query_prefix(self, prefix, group: list):
        """The queries' own frozen-prefix states, so ascent too runs only the moved blocks (cloned out of
        inference mode: autograd keeps them for the backward pass)."""
        if prefix is None:
            return None
        frozen = prefix[0]
        return frozen, [s.clone() for s in frozen.capture(self.adapter, self.adapter.model, [b for _, b in group])]

    def _stage(self, name: str):
        return timed_into(self.stage_seconds, name)

    def _find_prefix(self, model) -> FrozenPrefix | None:
        selection = self.adapter.resolve_selection(self.args.parameters)
        if selection.kind == "lora":
            return None
        return FrozenPrefix.find(self.adapter, model, [p for _, p in self.adapter.parameters(model, selection)])

    def _checked_prefix(self, model, frozen: FrozenPrefix, states, encoded: EncodedRows, base: np.ndarray):
        """The cache, if replaying the first batch reproduces its base losses; else None (with a warning)."""
        first = EncodedRows(encoded.batches[0][0], encoded.batches[:1])
        replayed = example_losses(self.adapter, model, first, prefix=(frozen, states))
        if not np.allclose(replayed, base[:len(first)], rtol=1e-5, atol=1e-7):
            warnings.warn("the frozen-prefix cache does not reproduce this model's losses; scoring with the full "
                          "model instead", stacklevel=4)
            return None
        return frozen, states

    def attribute_sharded(self, queries: Any, candidates: Any, output_dir: str, **options: Any) -> AttributionResult:
        """Score candidate shards one at a time into `output_dir`, resumably and across processes; see
        `hf_attrib.engine.sharded.attribute_sharded` for the options."""
        from hf_attrib.engine.sharded import attribute_sharded

        return attribute_sharded(self, queries, candidates, output_dir, **options)
