"""Detection tasks: the leaked-copy split, detection rates and AUC by hand, and the leakage pipeline finding
planted duplicates on a small CNN."""

import numpy as np
import pytest

from hf_attrib import AttributionResult, ForwardINF, TracIn
from hf_attrib.adapters import ClassifierAdapter
from hf_attrib.evaluation.detection import (
    auc,
    detection_rates,
    divided_by_gradient_norm,
    forward_inf_self_influence,
    leaked_digits,
    memorization_pairs,
    tracin_self_influence,
)
from hf_attrib.evaluation.studies import train_classifier


def test_leaked_copies_are_exact_and_labelled_truly():
    split = leaked_digits(train_size=300, leak_share=0.05, mislabel_share=0.1, seed=2)
    by_id = {r["id"]: r for r in split.train + split.test}
    assert len(by_id) == len(split.train) + len(split.test)
    assert len(split.duplicate_of) == round(0.05 * len(split.test))
    for test_id, copy_id in split.duplicate_of.items():
        assert np.array_equal(by_id[test_id]["input"], by_id[copy_id]["input"])
        assert by_id[test_id]["label"] == by_id[copy_id]["label"]
    assert split.flipped.sum() == 30 and not any(split.flipped[i] for i, r in enumerate(split.train)
                                                 if r["id"].startswith("train-copy"))


def test_detection_rates_and_auc_by_hand():
    result = AttributionResult(np.array([[0.9, 0.5, 0.1], [0.2, 0.7, 0.7], [0.1, 0.2, 0.3]]), ["t1", "t2", "t3"],
                               ["a", "b", "c"])
    rates = detection_rates(result, {"t1": "a", "t2": "b", "t3": "a"}, ks=(1, 2))
    assert rates["ranks"] == {"t1": 1, "t2": 2, "t3": 3}  # a tie counts against the copy
    assert rates["top1"] == pytest.approx(1 / 3) and rates["top2"] == pytest.approx(2 / 3)
    # 2 positives, 2 negatives: pairs ranked right = (0.9 > 0.3, 0.9 > 0.1, 0.4 > 0.3, 0.4 > 0.1) = 4 of 4
    assert auc(np.array([0.9, 0.3, 0.4, 0.1]), np.array([True, False, True, False])) == 1.0
    assert auc(np.array([0.9, 0.3, 0.2, 0.1]), np.array([True, False, True, False])) == 0.75
    assert memorization_pairs(result, k=2) == [("t1", "a", 0.9), ("t2", "b", 0.7)]


def test_pair_grid_draws_one_column_per_pair(tmp_path):
    from PIL import Image

    from hf_attrib.report import GRID_PANEL_WIDTH, pair_grid

    images = {i: np.random.default_rng(n).random((8, 8)) for n, i in enumerate(["t1", "t2", "a", "b"])}
    path = pair_grid([("t1", "a", 0.9), ("t2", "b", 0.7)], images, tmp_path / "pairs.png", marked={("t1", "a")})
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width == round(GRID_PANEL_WIDTH * 2 * 110)


def test_the_leakage_pipeline_finds_planted_duplicates():
    """A planted copy has exactly the query's gradient: cosine TracIn must rank it first, every time. (Forward-INF
    in the seed's setting does not, here: see scripts/reproduce_leakage.py.)"""
    split = leaked_digits(train_size=300, leak_share=0.01, mislabel_share=0.1, seed=0)
    model = train_classifier("cnn", split.train, epochs=15).double()
    adapter = ClassifierAdapter(model, num_classes=10)
    leaked = [r for r in split.test if r["id"] in split.duplicate_of]
    result = TracIn(adapter, parameters="all", normalize=True, progress=False).attribute(leaked, split.train)
    assert len(leaked) == 15 and detection_rates(result, split.duplicate_of)["top1"] == 1.0
    forward_inf = ForwardINF(adapter, optimizer="adam", learning_rate=5e-3, steps=1, parameters="all",
                             batch_size=256, progress=False).attribute(leaked, split.train)
    assert forward_inf.scores.shape == result.scores.shape and np.isfinite(forward_inf.scores).all()
    # divided by each candidate's gradient length, a small-step Forward-INF finds every copy (the diagnostic)
    small = ForwardINF(adapter, optimizer="sgd", learning_rate=1e-4, steps=1, parameters="all", batch_size=256,
                       progress=False).attribute(leaked, split.train)
    assert detection_rates(divided_by_gradient_norm(small, adapter, split.train, parameters="all"),
                           split.duplicate_of)["top1"] == 1.0
    tracin = tracin_self_influence(adapter, split.train[:20], parameters="all")
    fi = forward_inf_self_influence(adapter, split.train[:20], optimizer="sgd", learning_rate=1e-2, steps=1)
    assert tracin.shape == fi.shape == (20,) and (tracin >= 0).all() and np.isfinite(fi).all()


def test_gradient_norm_division_matches_autograd_per_row():
    import torch

    split = leaked_digits(train_size=60, leak_share=0.0, seed=3)
    model = train_classifier("cnn", split.train, epochs=2).double()
    adapter = ClassifierAdapter(model, num_classes=10)
    rows, queries = split.train[:12], split.test[:3]
    result = ForwardINF(adapter, optimizer="sgd", learning_rate=1e-2, steps=1, progress=False).attribute(queries, rows)
    lengths = []
    for row in rows:  # independent: one backward pass per row through plain torch
        model.zero_grad()
        x = torch.as_tensor(row["input"], dtype=torch.float64)[None]
        torch.nn.functional.cross_entropy(model(x), torch.tensor([row["label"]])).backward()
        lengths.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))))
    divided = divided_by_gradient_norm(result, adapter, rows, parameters="all")
    np.testing.assert_allclose(divided.scores, result.scores / np.array(lengths)[None], rtol=1e-8)
    assert divided.query_ids == result.query_ids and divided.method == "forward-inf/gradient-norm"
    with pytest.raises(ValueError, match="same order"):
        divided_by_gradient_norm(result, adapter, rows[::-1])
