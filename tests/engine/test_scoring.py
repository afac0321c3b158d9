"""Score forms from loss terms, by hand: per view the terms' mean, then the best view; a zero base loss (a
perfectly fitted example) gives a finite ratio."""

import warnings

import numpy as np
import pytest

from hf_attrib.engine.scoring import LOSS_FLOOR, compare_losses


def test_score_forms_by_hand():
    before = np.array([[[1.0, 2.0], [4.0, 4.0]]])  # one row, two views, two terms
    after = np.array([[[2.0, 2.0], [4.0, 8.0]]])
    assert compare_losses(after, before, "difference") == pytest.approx([2.0])  # views: 0.5, 2.0
    assert compare_losses(after, before, "relative") == pytest.approx([1.5])  # views: (2 + 1)/2, (1 + 2)/2
    assert compare_losses(after, before, "normalized") == pytest.approx([1 / 6])  # views: 1/6, 1/6
    with pytest.raises(ValueError, match="score must be"):
        compare_losses(after, before, "ratio")


def test_a_zero_base_loss_gives_a_finite_ratio():
    before, after = np.zeros((2, 1, 1)), np.array([[[0.0]], [[3e-6]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero
        relative = compare_losses(after, before, "relative")
        normalized = compare_losses(after, before, "normalized")
    assert np.isfinite(relative).all() and relative[1] == pytest.approx(3e-6 / LOSS_FLOOR)
    assert normalized.tolist() == [0.0, pytest.approx(1.0)]
