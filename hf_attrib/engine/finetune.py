"""Fine-tuning on exemplars: a plain training loop over an adapter's per-example loss.

It trains the demo's tiny models here and customizes models on a handful of exemplars. Unlike
attribution, it changes the model: that is its purpose.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.data.rows import batched, materialize
from hf_attrib.engine.arguments import Arguments, resolve_arguments


@dataclass
class FinetuneArguments(Arguments):
    """Options of :func:`finetune`."""

    epochs: int = field(default=1, metadata={"help": "Passes over the rows."})
    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate."})
    batch_size: int = field(default=16, metadata={"help": "Rows per optimizer step."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    warmup_steps: int = field(default=0, metadata={"help": "Linear learning-rate warm-up steps."})
    decay: bool = field(default=True, metadata={"help": "Decay the learning rate linearly to 0 after warm-up."})
    seed: int = field(default=0, metadata={"help": "Seed for shuffling and dropout."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.warmup_steps < 0 or self.max_grad_norm < 0 or self.weight_decay < 0:
            raise ValueError("warmup_steps, max_grad_norm and weight_decay must be >= 0")


def finetune(adapter: ModelAdapter, rows: Any, args: FinetuneArguments | None = None, **options) -> list[float]:
    """Train ``adapter.model`` in place on `rows` with AdamW; returns the loss of every step.

    The model is left in eval mode. A non-finite loss stops training with a `ValueError` naming the
    rows of that step.
    """
    args = resolve_arguments(FinetuneArguments, args, options)
    data = materialize(rows, "training rows")
    for row in data:  # fail on a bad row before any weight moves
        adapter.row_id(row)
    model = adapter.model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter with requires_grad=True to train")
    order = random.Random(args.seed)
    steps_per_epoch = -(-len(data) // args.batch_size)
    total = steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _warmup_then_linear(step, args, total))
    history: list[float] = []
    torch.manual_seed(args.seed)
    model.train()
    try:
        with tqdm(total=total, desc="fine-tuning", disable=not args.progress) as bar:
            for _ in range(args.epochs):
                shuffled = list(data)
                order.shuffle(shuffled)
                for chunk in batched(shuffled, args.batch_size):
                    loss = adapter.training_loss(model, adapter.collate(chunk))
                    if not torch.isfinite(loss):
                        ids = [adapter.row_id(r) for r in chunk]
                        raise ValueError(f"fine-tuning diverged: loss {loss.item()} on rows {ids[:5]}...")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if args.max_grad_norm:
                        torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                    optimizer.step()
                    schedule.step()
                    history.append(loss.item())
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}")
    finally:
        model.eval()
        for p in params:
            p.grad = None
    return history


def _warmup_then_linear(step: int, args: FinetuneArguments, total: int) -> float:
    if step < args.warmup_steps:
        return (step + 1) / args.warmup_steps
    if not args.decay:
        return 1.0
    return max(0.0, (total - step) / max(1, total - args.warmup_steps))
