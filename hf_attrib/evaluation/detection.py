"""Detection tasks from the seed (§4.2–4.3): leaked test images, mislabeled training points, memorized pairs.

* **Leakage**: some test images are duplicated into the training set; for each leaked test image, rank the
  whole training set — a good attribution ranks its duplicate first (top-1 / top-5 detection rates).
* **Mislabels**: rank training points by self-influence (Forward-INF: ascend on the point, its own loss
  change; TracIn: its gradient's squared norm); AUC against the flipped labels.
* **Memorization pairs**: each test image's top Forward-INF training image; the highest-scoring pairs.

`divided_by_gradient_norm` is a diagnostic, not the seed's method: it divides each candidate's score by the length
of its own loss gradient (one backward pass per candidate, as TracIn needs). With a small step Forward-INF's score
is close to a gradient dot product, which a memorized copy (near-zero gradient) loses to larger gradients pointing
a similar way; divided by the length, the copy's exact alignment wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hf_attrib.evaluation.studies import load_digits_rows
from hf_attrib.results import AttributionResult


@dataclass
class LeakedSplit:
    train: list[dict]  # clean training rows and the duplicates of the leaked test rows
    test: list[dict]
    duplicate_of: dict[str, str]  # leaked test id -> id of its copy in the training set
    flipped: np.ndarray  # bool per training row: label flipped


def leaked_digits(train_size: int = 1200, leak_share: float = 0.1, mislabel_share: float = 0.0,
                  seed: int = 0) -> LeakedSplit:
    """scikit-learn's digits: `train_size` training images (a `mislabel_share` of them with flipped labels), the
    rest as test images, a `leak_share` of which are copied (image and true label) into the training set."""
    images, labels = load_digits_rows()
    if not 0 < train_size < len(images):
        raise ValueError(f"train_size must be in (0, {len(images)}), got {train_size}")
    if not 0 <= leak_share <= 1 or not 0 <= mislabel_share < 1:
        raise ValueError(f"leak_share must be in [0, 1] and mislabel_share in [0, 1), got {leak_share}, "
                         f"{mislabel_share}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    train_index, test_index = order[:train_size], order[train_size:]
    noisy = labels[train_index].copy()
    flip = rng.choice(train_size, size=round(mislabel_share * train_size), replace=False)
    noisy[flip] = (noisy[flip] + rng.integers(1, 10, size=len(flip))) % 10
    train = [{"id": f"train-{i}", "input": images[j], "label": int(noisy[i])} for i, j in enumerate(train_index)]
    test = [{"id": f"test-{i}", "input": images[j], "label": int(labels[j])} for i, j in enumerate(test_index)]
    leaked = rng.choice(len(test), size=round(leak_share * len(test)), replace=False)
    duplicate_of = {}
    for k in sorted(leaked):
        copy = {**test[k], "id": f"train-copy-of-{test[k]['id']}"}
        train.insert(int(rng.integers(0, len(train) + 1)), copy)
        duplicate_of[test[k]["id"]] = copy["id"]
    flipped = np.array([r["id"] in {f"train-{i}" for i in flip} for r in train])
    return LeakedSplit(train, test, duplicate_of, flipped)


def detection_rates(result: AttributionResult, duplicate_of: dict[str, str], ks: tuple[int, ...] = (1, 5)
                    ) -> dict[str, Any]:
    """Per leaked query the rank of its duplicate (1 = first; ties counted against it), and top-k rates."""
    ranks = {}
    for row, query_id in enumerate(result.query_ids):
        column = result.candidate_ids.index(duplicate_of[query_id])
        ranks[query_id] = 1 + int(np.sum(result.scores[row] >= result.scores[row, column]) - 1)
    values = np.array(list(ranks.values()))
    return {**{f"top{k}": float(np.mean(values <= k)) for k in ks}, "ranks": ranks}


def forward_inf_self_influence(adapter, rows: list[dict], **options: Any) -> np.ndarray:
    """Each row's own loss change after ascent on it alone (one ascent and one forward pass per row)."""
    from hf_attrib.methods import ForwardINF

    method = ForwardINF(adapter, **{"progress": False, **options})
    return np.array([method.attribute([row], [row]).scores[0, 0] for row in rows])


def tracin_self_influence(adapter, rows: list[dict], **options: Any) -> np.ndarray:
    """Each row's squared gradient norm (TracIn of a row with itself)."""
    from hf_attrib.engine.scoring import EncodedRows
    from hf_attrib.engine.state import preserved_model_state, set_trainable
    from hf_attrib.methods import TracIn

    method = TracIn(adapter, **{"progress": False, **options})
    encoded = EncodedRows.build(adapter, rows, method.args.batch_size, "rows")
    with preserved_model_state(adapter.model) as model:
        params = [p for _, p in adapter.parameters(model, method.args.parameters)]
        set_trainable(model, params)
        gradients = method.gradients(encoded, params, "self-influence")
    return (gradients.double() ** 2).sum(dim=1).cpu().numpy()


def divided_by_gradient_norm(result: AttributionResult, adapter, candidates: list[dict],
                             **options: Any) -> AttributionResult:
    """`result` with each candidate's column divided by the length of that candidate's loss gradient (the
    parameters TracIn's `options` select)."""
    if [adapter.row_id(row) for row in candidates] != list(result.candidate_ids):
        raise ValueError("candidates must be the rows `result` was computed on, in the same order")
    lengths = np.sqrt(tracin_self_influence(adapter, candidates, **options))
    scores = result.scores / np.maximum(lengths, np.finfo(np.float64).tiny)[None]
    return AttributionResult(scores, list(result.query_ids), list(result.candidate_ids),
                             method=f"{result.method}/gradient-norm",
                             config={**result.config, "divided_by_gradient_norm": True})


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive.astype(int), scores))


def memorization_pairs(result: AttributionResult, k: int = 8) -> list[tuple[str, str, float]]:
    """Each query's top candidate, the `k` highest-scoring (query, candidate, score) pairs first."""
    best = [(q, *ranked[0]) for q, ranked in zip(result.query_ids, result.topk(1), strict=True)]
    return sorted(best, key=lambda pair: -pair[2])[:k]
