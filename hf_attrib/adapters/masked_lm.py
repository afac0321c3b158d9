"""Fill-in-the-blank models: T5-style span corruption (encoder-decoder) and BERT-style `[MASK]` filling.

Both read the same rows, FTRACE-TREX's format: an input with a blank and a target naming what fills it::

    {"id": "q1", "input": "Paris is the capital of <extra_id_0> .", "target": "<extra_id_0> France"}

* encoder-decoder models (``model.config.is_encoder_decoder``, e.g. `T5ForConditionalGeneration`): the
  loss is the mean NLL of the target's tokens, sentinel and EOS included, as T5 was trained;
  a target without the sentinel gets it prepended.
* encoder models (e.g. `BertForMaskedLM`): the blank is replaced by as many ``[MASK]`` tokens as the
  answer has tokens, and the loss is the mean NLL of the answer tokens at those positions.
"""

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


class MaskedLMAdapter(ModelAdapter):
    """Per-example loss of filling a blank, for T5-style and BERT-style models."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        id_column: str = "id",
        input_column: str = "input",
        target_column: str = "target",
        blank: str = "<extra_id_0>",
        max_length: int | None = 512,
    ) -> None:
        super().__init__(model, id_column=id_column)
        if tokenizer is None or not callable(tokenizer):
            raise ValueError("tokenizer must be a transformers tokenizer (got None or a non-callable)")
        self.tokenizer = tokenizer
        self.input_column = input_column
        self.target_column = target_column
        self.blank = blank
        self.max_length = max_length
        self.encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
        if not self.encoder_decoder and tokenizer.mask_token_id is None:
            raise ValueError(
                f"{type(model).__name__} is an encoder model but the tokenizer has no mask token; "
                "BERT-style filling needs one"
            )

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, revision: str | None = None, dtype: Any = None, **options):
        """Load a seq2seq or masked-LM model and its tokenizer from a Hub id or a local folder."""
        from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSeq2SeqLM

        config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=False)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForMaskedLM
        return cls(*load_pretrained(auto, name_or_path, revision, dtype), **options)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "input_column": self.input_column,
            "target_column": self.target_column,
            "blank": self.blank,
            "max_length": self.max_length,
            "encoder_decoder": self.encoder_decoder,
            **tokenizer_config(self.tokenizer),
        }

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0

    def _fields(self, row: Row) -> tuple[str, str, str]:
        identifier = self.row_id(row)
        text = require_text(row, self.input_column, identifier)
        target = require_text(row, self.target_column, identifier)
        if self.blank not in text:
            raise ValueError(f"row {identifier!r}: column {self.input_column!r} has no blank {self.blank!r}")
        return identifier, text, target

    def encode(self, row: Row) -> tuple[list[int], list[int]]:
        """Encoder input ids and labels: decoder labels (encoder-decoder) or per-position labels."""
        identifier, text, target = self._fields(row)
        answer = target.strip()
        if answer.startswith(self.blank):
            answer = answer[len(self.blank) :].strip()
        if not answer:
            raise ValueError(f"row {identifier!r}: column {self.target_column!r} has no answer after the blank")
        if self.encoder_decoder:
            ids = self.tokenizer(text)["input_ids"]
            labels = self.tokenizer(f"{self.blank} {answer}")["input_ids"]
            return self._truncate(ids), list(labels)
        answer_ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        if not answer_ids:
            raise ValueError(f"row {identifier!r}: the answer {answer!r} has no token")
        mask = self.tokenizer.mask_token
        before, after = text.split(self.blank, 1)
        filled = before + " ".join([mask] * len(answer_ids)) + after
        ids = list(self.tokenizer(filled)["input_ids"])
        positions = [i for i, tid in enumerate(ids) if tid == self.tokenizer.mask_token_id]
        if len(positions) != len(answer_ids):
            raise ValueError(
                f"row {identifier!r}: expected {len(answer_ids)} mask tokens after filling the blank, found "
                f"{len(positions)} (does {self.input_column!r} contain the mask token itself?)"
            )
        labels = [-100] * len(ids)
        for position, tid in zip(positions, answer_ids, strict=True):
            labels[position] = tid
        if self.max_length is not None and len(ids) > self.max_length:
            raise ValueError(f"row {identifier!r}: {len(ids)} tokens exceed max_length={self.max_length}")
        return ids, labels

    def _truncate(self, ids: list[int]) -> list[int]:
        if self.max_length is not None and len(ids) > self.max_length:
            return ids[: self.max_length - 1] + ids[-1:]  # keep the final EOS
        return list(ids)

    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        return padded_batch([self.encode(row) for row in rows], self.pad_id, self.device)

    def per_example_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return mean_token_nll(self._logits(model, batch), batch["labels"])

    def per_example_correct(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return all_tokens_argmax(self._logits(model, batch), batch["labels"])

    def _logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        labels = batch["labels"]
        if self.encoder_decoder:
            decoder_input_ids = _base(model).prepare_decoder_input_ids_from_labels(labels=labels)
            return model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                decoder_input_ids=decoder_input_ids,
            ).logits
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def _base(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper, which does not forward every helper method."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
