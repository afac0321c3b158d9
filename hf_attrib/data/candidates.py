"""Candidate sets as FTRACE builds them: per query, BM25's top k + every proponent + m random abstracts
with the same target + r random abstracts, de-duplicated and seeded.

Each query is ranked only within its own set; methods score the union once (base losses shared).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from hf_attrib.data.ftrace import answer, row_id
from hf_attrib.engine.arguments import Arguments


@dataclass
class CandidateSetArguments(Arguments):
    bm25_k: int = field(default=20, metadata={"help": "BM25's top k abstracts per query."})
    same_target: int = field(default=5, metadata={"help": "Random abstracts with the query's target."})
    random: int = field(default=5, metadata={"help": "Random abstracts."})
    seed: int = field(default=0, metadata={"help": "Seed of the random picks."})

    def __post_init__(self) -> None:
        for name in ("bm25_k", "same_target", "random"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def build_candidate_sets(
    queries: list[dict], abstracts: list[dict], proponents: dict[str, set[str]],
    args: CandidateSetArguments | None = None,
) -> dict[str, list[str]]:
    """query id -> candidate abstract ids (BM25 order first, then proponents, same-target, random)."""
    from hf_attrib.methods.bm25 import BM25

    args = args or CandidateSetArguments()
    ids = [row_id(a) for a in abstracts]
    by_target: dict[str, list[str]] = {}
    for abstract, identifier in zip(abstracts, ids, strict=True):
        by_target.setdefault(answer(abstract), []).append(identifier)
    bm25 = BM25().attribute(queries, abstracts) if args.bm25_k else None
    sets: dict[str, list[str]] = {}
    for q, query in enumerate(queries):
        qid = row_id(query)
        rng = random.Random(f"{args.seed}:{qid}")  # per-query seed: a set does not depend on the others
        chosen: list[str] = []
        if bm25 is not None:
            chosen += [ids[i] for i in np.argsort(-bm25.scores[q], kind="stable")[: args.bm25_k]]
        chosen += sorted(proponents.get(qid, ()))
        same = by_target.get(answer(query), [])
        chosen += rng.sample(same, k=min(args.same_target, len(same)))
        chosen += rng.sample(ids, k=min(args.random, len(ids)))
        sets[qid] = list(dict.fromkeys(chosen))
    return sets


def union(sets: dict[str, list[str]]) -> list[str]:
    """Every candidate of any set, in first-seen order."""
    return list(dict.fromkeys(c for ids in sets.values() for c in ids))
