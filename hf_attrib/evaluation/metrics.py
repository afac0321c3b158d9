"""Retrieval metrics of attribution results: MRR, precision@k, recall@k, average precision, top-k accuracy.

``relevant`` maps a query id to the set of its true proponents' candidate ids. ``candidate_sets``
(optional) maps a query id to the candidate ids it is ranked among (FTRACE ranks each query within its
own set); without it every query is ranked among all candidates.

* A query with no proponent among its candidates cannot be scored: it is **skipped**, and
  :func:`evaluate` reports how many were.
* **Ties are ranked pessimistically**: a proponent tied with non-proponents is ranked after all of them,
  so a method that gives every candidate the same score earns the worst ranks, not the average.
* Candidates with a NaN score rank last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from hf_attrib.results import AttributionResult

KS = (1, 3, 5, 10, 25)
Relevant = Mapping[str, Iterable[str]]


def ranked_relevance(
    result: AttributionResult, relevant: Relevant, candidate_sets: Mapping[str, Iterable[str]] | None = None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per scorable query, a bool array: is the candidate at each rank (best first) a proponent?

    Returns the arrays and the ids of the skipped queries (no proponent among their candidates).
    """
    index = {cid: i for i, cid in enumerate(result.candidate_ids)}
    out: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    for q, query_id in enumerate(result.query_ids):
        if candidate_sets is not None:
            if query_id not in candidate_sets:
                raise ValueError(f"candidate_sets has no entry for query {query_id!r}")
            columns = [index[c] for c in candidate_sets[query_id] if c in index]
        else:
            columns = list(range(len(result.candidate_ids)))
        proponents = set(relevant.get(query_id, ()))
        is_relevant = np.array([result.candidate_ids[c] in proponents for c in columns], dtype=bool)
        if not is_relevant.any():
            skipped.append(query_id)
            continue
        scores = result.scores[q, columns]
        scores = np.where(np.isnan(scores), -np.inf, scores)
        # sort by score descending; among equal scores non-proponents first (pessimistic ties)
        order = np.lexsort((is_relevant, -scores))
        out[query_id] = is_relevant[order]
    return out, skipped


def _per_query(hits: np.ndarray, metric: str, k: int | None = None) -> float:
    if metric == "rr":
        return 1.0 / (int(np.argmax(hits)) + 1)
    if metric == "precision":
        return float(hits[:k].sum()) / k
    if metric == "recall":
        return float(hits[:k].sum()) / float(hits.sum())
    if metric == "topk":
        return float(hits[:k].any())
    if metric == "ap":
        ranks = np.flatnonzero(hits) + 1
        return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    raise ValueError(metric)


def _mean(result, relevant, candidate_sets, metric, k=None) -> float:
    ranked, _ = ranked_relevance(result, relevant, candidate_sets)
    if not ranked:
        return float("nan")
    return float(np.mean([_per_query(hits, metric, k) for hits in ranked.values()]))


def mrr(result: AttributionResult, relevant: Relevant, candidate_sets=None) -> float:
    """Mean reciprocal rank of the first proponent."""
    return _mean(result, relevant, candidate_sets, "rr")


def precision_at_k(result: AttributionResult, relevant: Relevant, k: int, candidate_sets=None) -> float:
    """Mean fraction of the top k that are proponents (k counts even past a short candidate list)."""
    return _mean(result, relevant, candidate_sets, "precision", k)


def recall_at_k(result: AttributionResult, relevant: Relevant, k: int, candidate_sets=None) -> float:
    """Mean fraction of a query's proponents found in its top k."""
    return _mean(result, relevant, candidate_sets, "recall", k)


def topk_accuracy(result: AttributionResult, relevant: Relevant, k: int = 1, candidate_sets=None) -> float:
    """Fraction of queries with at least one proponent in the top k."""
    return _mean(result, relevant, candidate_sets, "topk", k)


def average_precision(result: AttributionResult, relevant: Relevant, candidate_sets=None) -> float:
    """Mean average precision over queries (mAP)."""
    return _mean(result, relevant, candidate_sets, "ap")


def evaluate(
    result: AttributionResult, relevant: Relevant, candidate_sets=None, ks: Iterable[int] = KS
) -> dict[str, float]:
    """All metrics at once, plus ``evaluated`` and ``skipped`` query counts."""
    ranked, skipped = ranked_relevance(result, relevant, candidate_sets)
    report: dict[str, float] = {"evaluated": len(ranked), "skipped": len(skipped)}

    def mean(metric, k=None):
        values = [_per_query(hits, metric, k) for hits in ranked.values()]
        return float(np.mean(values)) if values else float("nan")

    report["mrr"] = mean("rr")
    report["map"] = mean("ap")
    for k in ks:
        report[f"precision@{k}"] = mean("precision", k)
        report[f"recall@{k}"] = mean("recall", k)
        report[f"top{k}_accuracy"] = mean("topk", k)
    return report
