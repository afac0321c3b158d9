"""The model-family part of attribution: a small abstract class, in the spirit of kronfluence's `Task`.

An adapter knows one model family: how rows become batches and the loss of *each* example. It knows
nothing of attribution methods; the engine and the methods only call the methods below.
"""

from __future__ import annotations

import abc
import hashlib
import json
from typing import Any

import torch
from torch import nn

from hf_attrib.adapters.selection import (
    ParsedSelection,
    Selection,
    find_block_lists,
    parse_selection,
    select_parameters,
)
from hf_attrib.data.rows import Row


class ModelAdapter(abc.ABC):
    """Bridges one model family to the engine.

    Subclasses implement two methods, :meth:`collate` and :meth:`per_example_loss`; the other hooks have
    safe defaults. `model` is the user's model; the engine may pass a wrapped view of it (a PEFT model)
    to :meth:`per_example_loss`, so the loss must use the `model` argument, not ``self.model``.
    """

    #: name of the column holding each row's unique id
    id_column: str = "id"

    def __init__(self, model: nn.Module, *, id_column: str = "id") -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.id_column = id_column

    # ---- the two abstract methods -------------------------------------------------------------------
    @abc.abstractmethod
    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        """Turn rows into one batch of tensors on the model's device.

        Must raise a `ValueError` naming the row id and column for a row it cannot use (missing column,
        empty target). Each example's loss must not depend on the other rows of the batch (padding).
        """

    @abc.abstractmethod
    def per_example_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One loss per example of `batch`, shape ``[batch_size]``, differentiable w.r.t. `model`."""

    # ---- optional hooks -----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The options that change losses; part of the fingerprint and of saved results."""
        return {"id_column": self.id_column}

    def per_example_correct(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Whether greedy decoding reproduces each example's target exactly (bool ``[batch_size]``).

        Optional: used to tell which outputs a model actually produces.
        """
        raise NotImplementedError(f"{type(self).__name__} does not say whether a target is predicted")

    def block_lists(self, model: nn.Module) -> list[tuple[str, nn.ModuleList]]:
        """The stacks of blocks that ``"last:K"`` counts from; auto-detected by default."""
        return find_block_lists(model)

    def lora_config(self, rank: int, alpha: float, dropout: float = 0.0):
        """The `peft.LoraConfig` used by ``parameters="lora"``; PEFT's default targets for the family."""
        from peft import LoraConfig

        return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, init_lora_weights=True)

    #: what ``parameters="auto"`` means for this family
    default_selection: Selection = "all"

    def resolve_selection(self, selection: Selection | ParsedSelection) -> ParsedSelection:
        """A selection with ``"auto"`` and the family's named presets resolved."""
        parsed = selection if isinstance(selection, ParsedSelection) else parse_selection(selection)
        if parsed.kind == "auto":
            return self.resolve_selection(self.default_selection)
        return parsed

    def parameters(self, model: nn.Module, selection: Selection | ParsedSelection) -> list[tuple[str, nn.Parameter]]:
        """The named parameters that ascent may move for `selection` (not ``"lora"``, which the engine
        attaches itself)."""
        return select_parameters(model, self.resolve_selection(selection), self.block_lists(model))

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The scalar loss fine-tuning minimizes; by default the mean per-example loss."""
        return self.per_example_loss(model, batch).mean()

    def per_example_loss_terms(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The terms each example's loss averages, shape ``[batch, views, terms]``.

        Scores compare these term by term (e.g. per diffusion timestep, per flipped view); by default
        one view and one term: the loss itself.
        """
        return self.per_example_loss(model, batch)[:, None, None]

    @property
    def device(self) -> torch.device:
        for tensor in self.model.parameters():
            return tensor.device
        return torch.device("cpu")

    def row_id(self, row: Row) -> str:
        value = row.get(self.id_column)
        if value is None or str(value) == "":
            raise ValueError(f"a row has no {self.id_column!r} column (columns: {sorted(row)})")
        return str(value)

    def fingerprint(self) -> str:
        """A short hash of everything that decides an example's loss apart from the weights."""
        description = {
            "adapter": type(self).__name__,
            "config": self.config(),
            "model": type(self.model).__name__,
            "model_config": _model_config(self.model),
        }
        text = json.dumps(description, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_pretrained(auto_class: Any, name_or_path: str, revision: str | None, dtype: Any) -> tuple[Any, Any]:
    """Model (eval mode) and tokenizer from a Hub id or a local folder: safetensors only, no remote code."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision, trust_remote_code=False)
    model = auto_class.from_pretrained(
        name_or_path, revision=revision, trust_remote_code=False, use_safetensors=True, dtype=dtype
    )
    return model.eval(), tokenizer


def tokenizer_config(tokenizer: Any) -> dict[str, Any]:
    """What identifies a tokenizer in an adapter's fingerprint."""
    return {"tokenizer": getattr(tokenizer, "name_or_path", type(tokenizer).__name__), "vocab_size": len(tokenizer)}


def _model_config(model: nn.Module) -> Any:
    config = getattr(model, "config", None)
    if config is None:
        return None
    to_dict = getattr(config, "to_dict", None)
    return to_dict() if callable(to_dict) else str(config)


def require_text(row: Row, column: str, row_id: str, what: str = "row") -> str:
    """The non-empty string in `column`; errors name the id and the column."""
    if column not in row:
        raise ValueError(f"{what} {row_id!r} has no {column!r} column (columns: {sorted(row)})")
    value = row[column]
    if not isinstance(value, str):
        raise ValueError(f"{what} {row_id!r}: column {column!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} {row_id!r}: column {column!r} is empty")
    return value


def pad_sequences(sequences: list[list[int]], pad_value: int) -> torch.Tensor:
    """Right-pad integer lists into a [batch, longest] tensor."""
    longest = max(len(s) for s in sequences)
    return torch.tensor([s + [pad_value] * (longest - len(s)) for s in sequences], dtype=torch.long)


def padded_batch(encoded: list[tuple[list[int], list[int]]], pad_id: int, device: torch.device) -> dict:
    """(ids, labels) pairs -> right-padded input_ids, attention_mask and labels (-100 on padding)."""
    return {
        "input_ids": pad_sequences([ids for ids, _ in encoded], pad_id).to(device),
        "attention_mask": pad_sequences([[1] * len(ids) for ids, _ in encoded], 0).to(device),
        "labels": pad_sequences([labels for _, labels in encoded], -100).to(device),
    }


def mean_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over the labelled tokens of each row (labels -100 are ignored).

    Computed in float32 at least, so a half-precision model's per-example losses are still exact enough
    for differences.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    # flattened rows: several times faster than cross_entropy over a transposed [B, V, T] view
    token_nll = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(labels.shape)
    counts = (labels != -100).sum(dim=1)
    return token_nll.sum(dim=1) / counts.clamp(min=1)


def all_tokens_argmax(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """True where every labelled token is the argmax: greedy decoding would produce the target."""
    hit = (logits.argmax(dim=-1) == labels) | (labels == -100)
    return hit.all(dim=1)
