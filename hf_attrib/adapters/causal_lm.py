"""Decoder-only language models (GPT-2, Llama, ...): `transformers.AutoModelForCausalLM`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hf_attrib.adapters.base import (
    ModelAdapter,
    all_tokens_argmax,
    load_pretrained,
    mean_token_nll,
    padded_batch,
    require_text,
    tokenizer_config,
)
from hf_attrib.data.rows import Row


class CausalLMAdapter(ModelAdapter):
    """Per-example next-token loss of a causal language model.

    Rows are either ``{"id", "prompt", "target"}``: the mean negative log-likelihood of the target
    tokens given the prompt (prompt tokens carry no loss), or ``{"id", "text"}``: the mean over all
    predicted tokens. Column names are options.

    The target is appended to the prompt with a single space when neither side has one at the boundary
    (``separator="auto"``); target tokens are found from the tokenizer's character offsets, so BPE
    merges at the boundary are handled. Batches are right-padded with an attention mask, so an example's
    loss does not depend on its batch; a tokenizer without a pad token works (its EOS id, or 0, fills
    the padding, which is masked and never scored). Sequences longer than `max_length` lose tokens
    from the left for prompt/target rows (the target is kept) and from the right for text rows.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        id_column: str = "id",
        prompt_column: str = "prompt",
        target_column: str = "target",
        text_column: str = "text",
        separator: str = "auto",
        max_length: int | None = None,
    ) -> None:
        super().__init__(model, id_column=id_column)
        if tokenizer is None or not callable(tokenizer):
            raise ValueError("tokenizer must be a transformers tokenizer (got None or a non-callable)")
        self.tokenizer = tokenizer
        self.prompt_column = prompt_column
        self.target_column = target_column
        self.text_column = text_column
        self.separator = separator
        self.max_length = max_length or _default_max_length(model, tokenizer)
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length={self.max_length}: need at least 2 tokens for a next-token loss")

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, revision: str | None = None, dtype: Any = None, **options):
        """Load a model and tokenizer from a Hub id or a local folder (safetensors, no remote code)."""
        from transformers import AutoModelForCausalLM

        return cls(*load_pretrained(AutoModelForCausalLM, name_or_path, revision, dtype), **options)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "prompt_column": self.prompt_column,
            "target_column": self.target_column,
            "text_column": self.text_column,
            "separator": self.separator,
            "max_length": self.max_length,
            **tokenizer_config(self.tokenizer),
        }

    @property
    def pad_id(self) -> int:
        for candidate in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if candidate is not None:
                return int(candidate)
        return 0

    def encode(self, row: Row) -> tuple[list[int], list[int]]:
        """Token ids and labels (-100 where no loss) for one row."""
        identifier = self.row_id(row)
        if self.prompt_column in row or self.target_column in row:
            prompt = row.get(self.prompt_column)
            prompt = "" if prompt is None else prompt
            if not isinstance(prompt, str):
                raise ValueError(f"row {identifier!r}: column {self.prompt_column!r} must be a string")
            target = require_text(row, self.target_column, identifier)
            return self._encode_prompt_target(identifier, prompt, target)
        if self.text_column in row:
            return self._encode_text(identifier, require_text(row, self.text_column, identifier))
        raise ValueError(
            f"row {identifier!r} has neither {self.prompt_column!r}+{self.target_column!r} nor "
            f"{self.text_column!r} columns (columns: {sorted(row)})"
        )

    def _encode_prompt_target(self, identifier: str, prompt: str, target: str) -> tuple[list[int], list[int]]:
        separator = self.separator
        if separator == "auto":
            separator = " " if prompt and not prompt[-1].isspace() and not target[0].isspace() else ""
        head = prompt + separator
        encoding = self.tokenizer(head + target, return_offsets_mapping=True)
        ids = list(encoding["input_ids"])
        offsets = encoding["offset_mapping"]
        # a token belongs to the target when it ends inside the target's characters
        labels = [tid if end > len(head) else -100 for tid, (_, end) in zip(ids, offsets, strict=True)]
        if self.max_length is not None and len(ids) > self.max_length:
            ids, labels = ids[-self.max_length :], labels[-self.max_length :]
        if all(label == -100 for label in labels[1:]):
            raise ValueError(f"row {identifier!r}: the target {target!r} has no token to score")
        return ids, labels

    def _encode_text(self, identifier: str, text: str) -> tuple[list[int], list[int]]:
        ids = list(self.tokenizer(text)["input_ids"])
        if self.max_length is not None:
            ids = ids[: self.max_length]
        if len(ids) < 2:
            raise ValueError(f"row {identifier!r}: column {self.text_column!r} has fewer than 2 tokens")
        return ids, list(ids)

    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        return padded_batch([self.encode(row) for row in rows], self.pad_id, self.device)

    def per_example_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        # position t predicts token t + 1: shift the labels left (pad -100) rather than slicing the logits,
        # which would copy the [batch, length, vocabulary] tensor
        next_tokens = nn.functional.pad(batch["labels"][:, 1:], (0, 1), value=-100)
        return mean_token_nll(logits, next_tokens)

    def per_example_correct(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return all_tokens_argmax(logits[:, :-1], batch["labels"][:, 1:])

    def lora_config(self, rank: int, alpha: float, dropout: float = 0.0):
        config = super().lora_config(rank, alpha, dropout)
        # GPT-2 style Conv1D stores weights transposed; PEFT must know
        from transformers.pytorch_utils import Conv1D

        config.fan_in_fan_out = any(isinstance(m, Conv1D) for m in self.model.modules())
        return config


def _default_max_length(model: nn.Module, tokenizer: Any) -> int | None:
    limits = []
    config = getattr(model, "config", None)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limits.append(model_max)
    return min(limits) if limits else None
