import numpy as np

from hf_attrib.data.candidates import CandidateSetArguments, build_candidate_sets, union
from hf_attrib.data.fact_corpus import generate_fact_corpus
from hf_attrib.data.ftrace import answer
from hf_attrib.methods.bm25 import BM25


def test_candidate_sets_follow_ftrace():
    corpus = generate_fact_corpus(people=12, cities=8, countries=6, queries=10, seed=4)
    proponents = corpus.proponents()
    args = CandidateSetArguments(bm25_k=5, same_target=3, random=4, seed=7)
    sets = build_candidate_sets(corpus.queries, corpus.abstracts, proponents, args)
    bm25 = BM25().attribute(corpus.queries, corpus.abstracts)
    targets = {a["id"]: answer(a) for a in corpus.abstracts}
    for q, query in enumerate(corpus.queries):
        chosen = sets[query["uuid"]]
        assert len(chosen) == len(set(chosen))  # de-duplicated
        top = [bm25.candidate_ids[i] for i in np.argsort(-bm25.scores[q], kind="stable")[:5]]
        assert chosen[:5] == top
        assert proponents[query["uuid"]] <= set(chosen)
        same = [c for c in chosen if targets[c] == answer(query)]
        assert len(same) >= min(3, sum(t == answer(query) for t in targets.values()))
        assert len(chosen) <= 5 + len(proponents[query["uuid"]]) + 3 + 4
    assert sets == build_candidate_sets(corpus.queries, corpus.abstracts, proponents, args)  # seeded
    other = build_candidate_sets(corpus.queries, corpus.abstracts, proponents, CandidateSetArguments(seed=8))
    assert other != sets
    assert set(union(sets)) == {c for ids in sets.values() for c in ids}
