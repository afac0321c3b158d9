"""The seed's evidence for the Mirrored Influence Hypothesis, rerun on real data (scikit-learn's digits, 8×8).

The training set is split into `groups` equal groups; group g has ``mislabel_ratio · g / (groups − 1)`` of its
labels flipped (from clean to the most corrupted), so the groups differ in how much they help. Then, by
retraining (the seed's appendix B, signs as there):

    Inf→(g) = L(A(trn), tst) − L(A(trn \\ D_g), tst)      train-to-test: what removing the group changes
    Inf←(g) = L(A(trn ∪ tst), D_g) − L(A(trn), D_g)      test-to-train: what learning the test set changes

and Forward-INF without retraining: ascend jointly on the test set (SGD, lr 0.01, weight decay 1e-3, 2 steps)
and take each group's mean loss change, negated — ascent *unlearns* the test set, the mirror of learning it
(Inf←). The hypothesis says Inf→ and Inf← correlate; Forward-INF should track Inf←.

Two settings: multinomial logistic regression trained with L-BFGS (float64, L2 1e-3, 1000 iterations;
near-noiseless) and a small CNN (two conv and two linear layers, SGD lr 0.01, momentum 0.9, weight decay 1e-3;
noisy). Every training run starts from the same seed, and every CNN gets the same number of SGD steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from hf_attrib.engine.arguments import Arguments

KINDS = ("logistic", "cnn")


@dataclass
class MirroredArguments(Arguments):
    """One setting of the mirrored-hypothesis study."""

    model: str = field(default="logistic", metadata={"help": "logistic (L-BFGS, near-noiseless) or cnn (SGD)."})
    train_size: int = field(default=1050, metadata={"help": "Training examples (the seed uses 1050 of MNIST)."})
    groups: int = field(default=10, metadata={"help": "Equal groups the training set is split into."})
    mislabel_ratio: float = field(default=0.5, metadata={"help": "Share of flipped labels in the most corrupted "
                                                                 "group (group g: ratio · g / (groups − 1))."})
    validation_size: int = field(default=500, metadata={"help": "Size of the test (validation) set."})
    epochs: int = field(default=30, metadata={"help": "CNN training epochs."})
    l2: float = field(default=1e-3, metadata={"help": "Logistic regression's L2 strength (mean cross-entropy + "
                                                      "l2/2 · ‖W‖²); the CNN's weight decay stays 1e-3."})
    seed: int = field(default=0, metadata={"help": "Seed of the split, the flips and every training run."})

    def __post_init__(self) -> None:
        if self.model not in KINDS:
            raise ValueError(f"model must be one of {KINDS}, got {self.model!r}")
        if not 0 <= self.mislabel_ratio < 1:
            raise ValueError(f"mislabel_ratio must be in [0, 1), got {self.mislabel_ratio}")
        if self.groups < 3 or self.train_size < self.groups:
            raise ValueError(f"groups must be >= 3 and <= train_size, got groups={self.groups}, "
                             f"train_size={self.train_size}")


@dataclass
class DigitsSplit:
    """Rows ``{"id", "input", "label"}`` (inputs scaled to [0, 1], shape [1, 8, 8]) and which labels flipped."""

    train: list[dict]
    test: list[dict]
    group_of: np.ndarray  # group index of each training row
    flipped: np.ndarray  # bool per training row


def load_digits_rows() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32)[:, None], digits.target.astype(int)


def digits_split(train_size: int, validation_size: int, groups: int, mislabel_ratio: float,
                 seed: int = 0) -> DigitsSplit:
    images, labels = load_digits_rows()
    if train_size + validation_size > len(images):
        raise ValueError(f"train_size + validation_size = {train_size + validation_size} exceeds the "
                         f"{len(images)} digits")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    train_index, test_index = order[:train_size], order[train_size:train_size + validation_size]
    group_of = np.arange(train_size) * groups // train_size
    noisy = labels[train_index].copy()
    flipped = np.zeros(train_size, dtype=bool)
    for g in range(groups):
        members = np.flatnonzero(group_of == g)
        count = round(mislabel_ratio * g / (groups - 1) * len(members))
        chosen = rng.choice(members, size=count, replace=False)
        noisy[chosen] = (noisy[chosen] + rng.integers(1, 10, size=count)) % 10  # always a different class
        flipped[chosen] = True
    train = [{"id": f"train-{i}", "input": images[j], "label": int(noisy[i])} for i, j in enumerate(train_index)]
    test = [{"id": f"test-{i}", "input": images[j], "label": int(labels[j])} for i, j in enumerate(test_index)]
    return DigitsSplit(train, test, group_of, flipped)


class SmallCNN(nn.Sequential):
    """Two convolutions and two linear layers for 1×8×8 digits."""

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


def logistic_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double()


def train_classifier(kind: str, rows: Sequence[dict], *, seed: int = 0, epochs: int = 30,
                     l2: float = 1e-3, steps: int | None = None) -> nn.Module:
    """A model trained from scratch on `rows`: logistic regression by L-BFGS on mean cross-entropy +
    ``l2 / 2 · ‖W‖²`` (zero start), or the CNN by SGD in batches of 32 (seeded init and order) for `epochs`
    passes — or exactly `steps` optimizer steps, so that models retrained on more or fewer rows get the same
    budget."""
    inputs = torch.as_tensor(np.stack([r["input"] for r in rows]))
    labels = torch.as_tensor([r["label"] for r in rows])
    if kind == "logistic":
        model = logistic_model()
        linear = model[1]
        nn.init.zeros_(linear.weight)
        nn.init.zeros_(linear.bias)
        x = inputs.double()
        optimizer = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=1000, tolerance_grad=1e-10,
                                      tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), labels) + l2 / 2 * linear.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return model.eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
    budget = steps if steps is not None else epochs * -(-len(rows) // 32)
    while budget > 0:
        for batch in torch.randperm(len(rows), generator=generator).split(32)[:budget]:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
            optimizer.step()
            budget -= 1
    return model.eval()


def mean_loss(model: nn.Module, rows: Sequence[dict]) -> float:
    with torch.no_grad():
        inputs = torch.as_tensor(np.stack([r["input"] for r in rows])).to(next(model.parameters()).dtype)
        labels = torch.as_tensor([r["label"] for r in rows])
        return float(nn.functional.cross_entropy(model(inputs), labels).double())


@dataclass
class MirroredResult:
    """Per group: Inf→, Inf←, Forward-INF (mirrored sign), and the group's flipped share."""

    arguments: MirroredArguments
    inf_forward: np.ndarray
    inf_backward: np.ndarray
    forward_inf: np.ndarray
    mislabeled: np.ndarray

    def correlations(self) -> dict[str, dict[str, float]]:
        pairs = {"inf_forward~inf_backward": (self.inf_forward, self.inf_backward),
                 "forward_inf~inf_backward": (self.forward_inf, self.inf_backward),
                 "forward_inf~inf_forward": (self.forward_inf, self.inf_forward)}
        return {name: {"pearson": pearson(a, b), "spearman": spearman(a, b)} for name, (a, b) in pairs.items()}


def retraining_influences(kind: str, split: DigitsSplit, *, seed: int = 0, epochs: int = 30, l2: float = 1e-3,
                          full: nn.Module | None = None, removed: dict[int, nn.Module] | None = None
                          ) -> tuple[np.ndarray, np.ndarray, nn.Module, dict[int, nn.Module]]:
    """Inf→ and Inf← of every group by retraining; the full and leave-group-out models can be passed in
    (they do not depend on the test set) and are returned for reuse. Every CNN gets the full training set's
    step budget (`epochs` passes over it), whatever its data: otherwise adding the test set would mean more
    steps, and lower losses for every group."""
    groups = int(split.group_of.max()) + 1
    members = [[r for r, g in zip(split.train, split.group_of, strict=True) if g == k] for k in range(groups)]
    budget = {"seed": seed, "steps": epochs * -(-len(split.train) // 32), "l2": l2}
    full = full or train_classifier(kind, split.train, **budget)
    removed = removed if removed is not None else {}
    for k in range(groups):
        if k not in removed:
            removed[k] = train_classifier(kind, [r for r, g in zip(split.train, split.group_of, strict=True)
                                                 if g != k], **budget)
    union = train_classifier(kind, split.train + split.test, **budget)
    test_loss = mean_loss(full, split.test)
    inf_forward = np.array([test_loss - mean_loss(removed[k], split.test) for k in range(groups)])
    inf_backward = np.array([mean_loss(union, members[k]) - mean_loss(full, members[k]) for k in range(groups)])
    return inf_forward, inf_backward, full, removed


def forward_inf_groups(model: nn.Module, split: DigitsSplit, *, learning_rate: float = 0.01,
                       weight_decay: float = 1e-3, steps: int = 2) -> np.ndarray:
    """Forward-INF per group: joint SGD ascent on the test set, each group's mean loss change, negated."""
    from hf_attrib.adapters.classifier import ClassifierAdapter
    from hf_attrib.methods import ForwardINF

    method = ForwardINF(ClassifierAdapter(model, num_classes=10), joint=True, optimizer="sgd",
                        learning_rate=learning_rate, weight_decay=weight_decay, steps=steps, batch_size=256,
                        query_batch_size=256, progress=False)
    scores = method.attribute(split.test, split.train).scores[0]
    groups = int(split.group_of.max()) + 1
    return np.array([-scores[split.group_of == k].mean() for k in range(groups)])


def run_mirrored(args: MirroredArguments, cache: dict | None = None) -> MirroredResult:
    """One setting; `cache` (a dict the caller keeps) reuses full and leave-group-out models across
    validation sizes of the same training set."""
    split = digits_split(args.train_size, args.validation_size, args.groups, args.mislabel_ratio, args.seed)
    key = (args.model, args.train_size, args.groups, args.mislabel_ratio, args.seed, args.epochs, args.l2)
    store = cache.setdefault(key, {}) if cache is not None else {}
    inf_forward, inf_backward, full, removed = retraining_influences(
        args.model, split, seed=args.seed, epochs=args.epochs, l2=args.l2, full=store.get("full"),
        removed=store.get("removed"))
    store.update(full=full, removed=removed)
    mislabeled = np.array([split.flipped[split.group_of == k].mean() for k in range(args.groups)])
    return MirroredResult(args, inf_forward, inf_backward, forward_inf_groups(full, split), mislabeled)


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    out = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        out[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    return pearson(ranks(a), ranks(b))
