"""BM25 shortlist, Forward-INF re-ranking: score only BM25's top k per query with Forward-INF.

BM25 is the bar on FTRACE; Forward-INF explains the model. The re-ranker keeps BM25's recall and lets the
model order the shortlist. Scores: a shortlisted candidate gets its Forward-INF score; the others follow
below every shortlisted one, in BM25's order (only the ranking of these is meaningful).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hf_attrib.data.rows import materialize
from hf_attrib.methods.bm25 import BM25
from hf_attrib.methods.forward_inf import ForwardINF
from hf_attrib.results import AttributionResult


class BM25Rerank:
    name = "bm25+forward-inf"

    def __init__(self, forward_inf: ForwardINF, *, k: int = 20, bm25: BM25 | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.forward_inf = forward_inf
        self.bm25 = bm25 or BM25()
        self.k = k

    def attribute(self, queries: Any, candidates: Any,
                  candidate_sets: dict[str, list[str]] | None = None) -> AttributionResult:
        query_rows = materialize(queries, "queries")
        candidate_rows = materialize(candidates, "candidates")
        lexical = self.bm25.attribute(query_rows, candidate_rows)
        column = {c: i for i, c in enumerate(lexical.candidate_ids)}
        orders: dict[str, list[str]] = {}
        for q, query_id in enumerate(lexical.query_ids):
            allowed = candidate_sets[query_id] if candidate_sets is not None else lexical.candidate_ids
            ranked = sorted(allowed, key=lambda c, q=q: -lexical.scores[q, column[c]])  # stable: ties keep set order
            orders[query_id] = ranked
        shortlists = {q: ids[: self.k] for q, ids in orders.items()}
        model = self.forward_inf.attribute(query_rows, candidate_rows, candidate_sets=shortlists)
        scores = np.full(model.scores.shape, np.nan)
        for q, query_id in enumerate(model.query_ids):
            short = [column[c] for c in shortlists[query_id]]
            scores[q, short] = model.scores[q, short]
            floor = np.nanmin(scores[q, short]) - 1.0
            rest = [column[c] for c in orders[query_id][self.k :]]
            scores[q, rest] = floor - np.arange(1, len(rest) + 1)
        return AttributionResult(scores, model.query_ids, model.candidate_ids, method=self.name,
                                 config={"k": self.k, "bm25": self.bm25.args.to_dict(),
                                         "forward_inf": model.config}, extras=model.extras)
