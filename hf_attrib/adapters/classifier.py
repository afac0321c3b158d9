"""Classifiers: any `torch.nn.Module` that maps a batch of inputs to logits, or a transformers
image-classification model (``model(pixel_values=...).logits``). Rows are ``{"id", "input", "label"}``; the
loss of each example is its cross-entropy.

    >>> adapter = ClassifierAdapter(my_cnn)                         # rows: input = array/tensor, label = int
    >>> adapter = ClassifierAdapter(vit, image_processor=processor)  # rows: input = PIL image
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.data.rows import Row


class ClassifierAdapter(ModelAdapter):
    """Cross-entropy per example of a classifier.

    `input_column` holds a tensor, an array, a nested list of numbers, or (with an `image_processor`, e.g.
    transformers' `AutoImageProcessor`) a PIL image; `label_column` the class index, checked against
    `num_classes` (a transformers model's ``config.num_labels`` by default).
    """

    def __init__(self, model: nn.Module, *, input_column: str = "input", label_column: str = "label",
                 id_column: str = "id", image_processor: Any = None, num_classes: int | None = None) -> None:
        super().__init__(model, id_column=id_column)
        from transformers import PreTrainedModel

        self.input_column, self.label_column = input_column, label_column
        self.image_processor = image_processor
        self._transformers = isinstance(model, PreTrainedModel)
        self.num_classes = num_classes or (model.config.num_labels if self._transformers else None)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "input_column": self.input_column, "label_column": self.label_column,
                "num_classes": self.num_classes,
                "image_processor": type(self.image_processor).__name__ if self.image_processor else None}

    def _input(self, row: Row) -> torch.Tensor:
        identifier = row.get(self.id_column)
        if self.input_column not in row:
            raise ValueError(f"row {identifier!r} has no {self.input_column!r} column (columns: {sorted(row)})")
        value = row[self.input_column]
        if self.image_processor is not None:
            return self.image_processor(images=value, return_tensors="pt")["pixel_values"][0]
        try:
            tensor = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as error:
            raise ValueError(f"row {identifier!r}: column {self.input_column!r} is not numeric ({error})") from None
        if not tensor.is_floating_point() and tensor.dtype not in (torch.uint8, torch.int64, torch.int32):
            raise ValueError(f"row {identifier!r}: column {self.input_column!r} is not numeric ({tensor.dtype})")
        return tensor

    def _label(self, row: Row) -> int:
        identifier = row.get(self.id_column)
        value = row.get(self.label_column)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"row {identifier!r}: column {self.label_column!r} must be a class index, got {value!r}")
        if value < 0 or (self.num_classes is not None and value >= self.num_classes):
            raise ValueError(f"row {identifier!r}: column {self.label_column!r} is {value}, outside the "
                             f"{self.num_classes or 'non-negative'} classes")
        return int(value)

    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        inputs = [self._input(row) for row in rows]
        shapes = {tuple(t.shape) for t in inputs}
        if len(shapes) > 1:
            raise ValueError(f"inputs of rows {[row.get(self.id_column) for row in rows][:5]} differ in shape: "
                             f"{sorted(shapes)}")
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32)
        return {"inputs": torch.stack(inputs).to(self.device, dtype),
                "labels": torch.tensor([self._label(row) for row in rows], device=self.device)}

    def logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._transformers:
            return model(pixel_values=batch["inputs"]).logits
        output = model(batch["inputs"])
        return output.logits if hasattr(output, "logits") else output

    def per_example_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.logits(model, batch)
        labels = batch["labels"]
        if labels.numel() and labels.max() >= logits.shape[-1]:
            raise ValueError(f"column {self.label_column!r} holds class {labels.max().item()}, but the model has "
                             f"{logits.shape[-1]} classes (pass num_classes= to check each row)")
        return nn.functional.cross_entropy(logits.float() if logits.dtype in (torch.float16, torch.bfloat16)
                                           else logits, labels, reduction="none")

    def per_example_correct(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.logits(model, batch).argmax(dim=-1) == batch["labels"]
