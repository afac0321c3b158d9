"""Candidate losses: tokenized once, scored in batches in eval mode under `torch.inference_mode()`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.data.rows import batched, check_unique, iter_rows


@dataclass
class EncodedRows:
    """Rows of one source, validated and collated into batches once, reused for every pass."""

    ids: list[str]
    batches: list[tuple[list[str], dict[str, torch.Tensor]]] = field(repr=False)
    rows: list[dict] = field(default_factory=list, repr=False)
    batch_size: int = 32

    @classmethod
    def build(cls, adapter: ModelAdapter, source: Any, batch_size: int, what: str) -> EncodedRows:
        ids: list[str] = []
        batches = []
        kept: list[dict] = []
        for rows in batched(iter_rows(source, what), batch_size):
            batch_ids = []
            for index, row in enumerate(rows, start=len(ids)):
                try:
                    batch_ids.append(adapter.row_id(row))
                except ValueError as error:
                    raise ValueError(f"{what}[{index}]: {error}") from None
            try:
                batch = adapter.collate(rows)
            except ValueError as error:
                raise ValueError(f"{what}: {error}") from None
            ids += batch_ids
            kept += rows
            batches.append((batch_ids, batch))
        if not ids:
            raise ValueError(f"{what} is empty: nothing to attribute")
        check_unique(ids, what)
        return cls(ids, batches, kept, batch_size)

    def subset(self, adapter: ModelAdapter, ids: Sequence[str]) -> tuple[EncodedRows, np.ndarray]:
        """The rows with the given ids (re-collated) and their positions in this set."""
        position = {identifier: i for i, identifier in enumerate(self.ids)}
        unknown = [i for i in ids if i not in position]
        if unknown:
            raise ValueError(f"candidate_sets names candidates that are not among the candidates: {unknown[:5]}")
        index = np.array([position[i] for i in ids], dtype=int)
        chosen = [self.rows[i] for i in index]
        batches = [([self.ids[i] for i in chunk], adapter.collate([self.rows[i] for i in chunk]))
                   for chunk in batched(list(index), self.batch_size)]
        return EncodedRows(list(ids), batches, chosen, self.batch_size), index

    def __len__(self) -> int:
        return len(self.ids)

    def key(self) -> str:
        return hashlib.sha256("\x1f".join(self.ids).encode()).hexdigest()[:16]


def example_losses(
    adapter: ModelAdapter,
    model: nn.Module,
    rows: EncodedRows,
    *,
    progress: bool = False,
    desc: str = "candidate losses",
    prefix: tuple[Any, Sequence[torch.Tensor]] | None = None,
) -> np.ndarray:
    """Each row's loss terms ``[rows, views, terms]`` as float64 (see `per_example_loss_terms`); a
    non-finite loss is a `ValueError` naming the row. `prefix`: a `FrozenPrefix` and each batch's cached
    states, to run only the blocks after it."""
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for index, (ids, batch) in enumerate(tqdm(rows.batches, desc=desc, disable=not progress, leave=False)):
            with prefix[0].replay(prefix[1][index]) if prefix else nullcontext():
                out.append(_finite_terms(adapter, model, batch, ids, desc))
    return np.concatenate(out)


def example_losses_under_each(
    adapter: ModelAdapter,
    model: nn.Module,
    rows: EncodedRows,
    moved: Sequence[nn.Parameter],
    weights: Sequence[Sequence[torch.Tensor]],
    *,
    progress: bool = False,
    prefix: tuple[Any, Sequence[torch.Tensor]] | None = None,
) -> np.ndarray:
    """``[len(weights), rows, views, terms]``: every row's loss terms with `moved` set to each entry of
    `weights` in turn — one pass over the rows, each batch scored under every set of weights (the caller
    restores `moved`)."""
    losses: list[list[np.ndarray]] = [[] for _ in weights]
    with torch.inference_mode():
        for index, (ids, batch) in enumerate(tqdm(rows.batches, desc="losses after ascent", disable=not progress,
                                                  leave=False)):
            with prefix[0].replay(prefix[1][index]) if prefix else nullcontext():
                for q, values in enumerate(weights):
                    for p, value in zip(moved, values, strict=True):
                        p.copy_(value)
                    losses[q].append(_finite_terms(adapter, model, batch, ids, f"after ascent on query group {q}"))
    return np.stack([np.concatenate(parts) for parts in losses])


def _finite_terms(adapter: ModelAdapter, model: nn.Module, batch: dict, ids: list[str], desc: str) -> np.ndarray:
    terms = adapter.per_example_loss_terms(model, batch).double().cpu().numpy()
    bad = np.flatnonzero(~np.isfinite(terms.reshape(len(terms), -1)).all(axis=1))
    if bad.size:
        raise ValueError(
            f"the loss of candidate {ids[bad[0]]!r} is not finite ({desc}); "
            "divergence is an error, not a score: lower the learning rate or the number of steps"
        )
    return terms


LOSS_FLOOR = 1e-12  # a loss that rounds to 0 (a perfectly fitted example) divides as this, not as 0


def compare_losses(after: np.ndarray, before: np.ndarray, score: str = "difference") -> np.ndarray:
    """Scores from loss terms ``[rows, views, terms]``: per view, the terms' mean of the comparison;
    then the best view (e.g. an image or its mirror image). Ratios divide by at least `LOSS_FLOOR`."""
    if score == "difference":
        per_term = after - before
    elif score == "relative":
        per_term = after / np.maximum(before, LOSS_FLOOR)
    elif score == "normalized":
        per_term = (after - before) / np.maximum(after + before, LOSS_FLOOR)
    else:
        raise ValueError(f"score must be 'difference', 'relative' or 'normalized', got {score!r}")
    return per_term.mean(axis=-1).max(axis=-1)


def answered_correctly(adapter: ModelAdapter, rows: Any, batch_size: int = 64) -> list[bool]:
    """Whether greedy decoding reproduces each row's target (the outputs the model actually produces)."""
    encoded = EncodedRows.build(adapter, rows, batch_size, "queries")
    with torch.inference_mode():
        flags = [adapter.per_example_correct(adapter.model, batch) for _, batch in encoded.batches]
    return torch.cat(flags).tolist()


def weights_digest(parameters: Sequence[torch.Tensor]) -> str:
    """A cheap fingerprint of the current weights: changes when training changes them."""
    with torch.no_grad():
        sums = [torch.stack([p.double().sum(), p.double().abs().sum()]) for p in parameters]
        data = torch.cat(sums).cpu().numpy().tobytes() if sums else b""
    return hashlib.sha256(data).hexdigest()[:16]


class BaseLossCache:
    """ℓ(θ̂, z_i) does not depend on the query: computed once per (weights, adapter, candidate set)."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, str, str], np.ndarray] = {}

    @staticmethod
    def _key(adapter: ModelAdapter, model: nn.Module, rows: EncodedRows) -> tuple[str, str, str]:
        return weights_digest(list(model.parameters())), adapter.fingerprint(), rows.key()

    def get(self, adapter: ModelAdapter, model: nn.Module, rows: EncodedRows, *, progress: bool) -> np.ndarray:
        found = self.lookup(adapter, model, rows)
        if found is None:
            found = example_losses(adapter, model, rows, progress=progress, desc="base losses")
            self.store(adapter, model, rows, found)
        return found

    def lookup(self, adapter: ModelAdapter, model: nn.Module, rows: EncodedRows) -> np.ndarray | None:
        return self._store.get(self._key(adapter, model, rows))

    def store(self, adapter: ModelAdapter, model: nn.Module, rows: EncodedRows, losses: np.ndarray) -> None:
        self._store[self._key(adapter, model, rows)] = losses
