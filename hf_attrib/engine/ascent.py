"""Reversible gradient ascent: unlearn a query, let the caller measure, put the model back exactly.

The parameters that ascent moves are copied once; after each query they are copied back with
``Tensor.copy_``, which is exact, so the model is bit-for-bit what it was. With ``parameters="lora"`` a
PEFT LoRA is attached instead, only it moves, its initial weights are restored between queries, and it
is removed with ``unload()`` at the end.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.engine.arguments import AscentArguments
from hf_attrib.engine.state import set_trainable

QueryBatch = tuple[list[str], dict[str, torch.Tensor]]


class ReversibleAscent:
    """Ascend on queries and restore; use as ``with ReversibleAscent.attach(adapter, args) as ascent``.

    ``ascent.model`` is the model to score with (the PEFT-wrapped model for LoRA).
    """

    def __init__(self, adapter: ModelAdapter, model: nn.Module, args: AscentArguments,
                 moved: Sequence[tuple[str, nn.Parameter]]) -> None:
        self.adapter = adapter
        self.model = model
        self.args = args
        self.moved = list(moved)
        self._snapshot = [p.detach().clone() for _, p in self.moved]
        set_trainable(model, [p for _, p in self.moved])

    @classmethod
    @contextmanager
    def attach(cls, adapter: ModelAdapter, args: AscentArguments) -> Iterator[ReversibleAscent]:
        """Resolve the parameter selection (attaching a LoRA if asked) and detach on exit."""
        selection = adapter.resolve_selection(args.parameters)
        model = adapter.model
        if selection.kind != "lora":
            ascent = cls(adapter, model, args, adapter.parameters(model, selection))
            try:
                yield ascent
            finally:
                ascent.restore()
            return
        from peft import get_peft_model

        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # peft/transformers 5
            torch.manual_seed(args.seed)
            peft_model = get_peft_model(model, adapter.lora_config(args.lora_rank, args.lora_alpha))
        try:
            lora = [(n, p) for n, p in peft_model.named_parameters() if "lora_" in n]
            ascent = cls(adapter, peft_model, args, lora)
            yield ascent
        finally:
            peft_model.unload()  # replaces every LoRA layer by the user's original module

    def restore(self) -> None:
        with torch.no_grad():
            for (_, p), saved in zip(self.moved, self._snapshot, strict=True):
                p.copy_(saved)
                p.grad = None

    def ascend(self, batches: Sequence[QueryBatch],
               prefix: tuple[Any, Sequence[torch.Tensor]] | None = None) -> None:
        """`steps` optimizer steps maximizing the mean loss over all rows of `batches`. `prefix`: a
        `FrozenPrefix` and each batch's states entering its first block, to run only the moved blocks."""
        params = [p for _, p in self.moved]
        args = self.args
        if args.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=args.learning_rate, momentum=args.momentum,
                                        weight_decay=args.weight_decay, maximize=True)
        else:
            optimizer = torch.optim.Adam(params, lr=args.learning_rate, weight_decay=args.weight_decay,
                                         maximize=True)
        count = sum(len(ids) for ids, _ in batches)
        for step in range(args.steps):
            optimizer.zero_grad(set_to_none=True)
            for index, (ids, batch) in enumerate(batches):
                with prefix[0].replay(prefix[1][index]) if prefix else nullcontext():
                    losses = self.adapter.per_example_loss(self.model, batch)
                _check_finite(losses, ids, step)
                (losses.sum() / count).backward()
            optimizer.step()
        for name, p in self.moved:
            if not torch.isfinite(p).all():
                raise ValueError(
                    f"ascent diverged: parameter {name!r} is not finite after {args.steps} steps at "
                    f"learning_rate={args.learning_rate}; lower the learning rate or the number of steps"
                )


def _check_finite(losses: torch.Tensor, ids: list[str], step: int) -> None:
    bad = (~torch.isfinite(losses)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"ascent diverged: the loss of query {ids[bad[0]]!r} is {losses[bad[0]].item()} at ascent step "
            f"{step}; lower learning_rate or steps (divergence is an error, not a score)"
        )
