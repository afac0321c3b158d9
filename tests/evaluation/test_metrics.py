"""Each metric against hand-computed cases, including ties and queries without proponents."""

import numpy as np
import pytest

from hf_attrib import AttributionResult, metrics

CANDIDATES = ["a", "b", "c", "d", "e"]


def result(*rows):
    return AttributionResult(np.array(rows, dtype=float), [f"q{i}" for i in range(len(rows))], CANDIDATES)


def test_hand_computed_ranks():
    r = result([5, 4, 3, 2, 1], [1, 2, 3, 4, 5])
    relevant = {"q0": {"b", "d"}, "q1": {"a"}}
    # q0: proponents at ranks 2 and 4; q1: proponent at rank 5
    assert metrics.mrr(r, relevant) == pytest.approx((1 / 2 + 1 / 5) / 2)
    assert metrics.precision_at_k(r, relevant, 3) == pytest.approx((1 / 3 + 0) / 2)
    assert metrics.recall_at_k(r, relevant, 3) == pytest.approx((1 / 2 + 0) / 2)
    assert metrics.topk_accuracy(r, relevant, 1) == 0.0
    assert metrics.topk_accuracy(r, relevant, 5) == 1.0
    ap_q0 = (1 / 2 + 2 / 4) / 2
    assert metrics.average_precision(r, relevant) == pytest.approx((ap_q0 + 1 / 5) / 2)


def test_ties_are_pessimistic():
    r = result([1, 1, 1, 1, 0])
    assert metrics.mrr(r, {"q0": {"a"}}) == pytest.approx(1 / 4)  # after the three tied non-proponents
    assert metrics.topk_accuracy(r, {"q0": {"a"}}, 3) == 0.0
    assert metrics.mrr(r, {"q0": {"a", "b"}}) == pytest.approx(1 / 3)


def test_queries_without_proponents_are_skipped_and_counted():
    r = result([5, 4, 3, 2, 1], [1, 2, 3, 4, 5])
    relevant = {"q0": {"a"}, "q1": {"not-a-candidate"}}
    assert metrics.mrr(r, relevant) == 1.0
    report = metrics.evaluate(r, relevant)
    assert (report["evaluated"], report["skipped"]) == (1, 1)
    assert np.isnan(metrics.mrr(r, {}))


def test_candidate_sets_rank_each_query_within_its_own_set():
    r = result([5, 4, 3, 2, 1])
    relevant = {"q0": {"c"}}
    assert metrics.mrr(r, relevant) == pytest.approx(1 / 3)
    assert metrics.mrr(r, relevant, candidate_sets={"q0": ["c", "d", "e"]}) == 1.0
    assert metrics.evaluate(r, relevant, candidate_sets={"q0": ["a", "b"]})["skipped"] == 1
    with pytest.raises(ValueError, match="'q0'"):
        metrics.mrr(r, relevant, candidate_sets={})


def test_evaluate_matches_the_single_metrics():
    rng = np.random.default_rng(0)
    r = result(*rng.normal(size=(4, 5)))
    relevant = {"q0": {"a"}, "q1": {"b", "c"}, "q2": {"e"}, "q3": {"a", "d", "e"}}
    report = metrics.evaluate(r, relevant, ks=(1, 3))
    assert report["mrr"] == metrics.mrr(r, relevant)
    assert report["map"] == metrics.average_precision(r, relevant)
    assert report["precision@3"] == metrics.precision_at_k(r, relevant, 3)
    assert report["recall@1"] == metrics.recall_at_k(r, relevant, 1)
    assert report["top3_accuracy"] == metrics.topk_accuracy(r, relevant, 3)


def test_nan_scores_rank_last():
    r = result([np.nan, 0, -1, -2, -3])
    assert metrics.mrr(r, {"q0": {"a"}}) == pytest.approx(1 / 5)
