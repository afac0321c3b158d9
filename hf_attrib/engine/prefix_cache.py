"""Frozen-prefix cache: when ascent moves only the last blocks of a decoder stack, the hidden states that
enter the first moved block never change, so each candidate's (and each query's) are computed once and every
query's ascent and scoring run only the moved blocks and the head.

Replaying swaps the frozen blocks for pass-throughs and feeds the cached states to the first moved block
(transformers' decoder stacks — GPT-2, Llama, Mistral, ... — call ``hidden_states = block(hidden_states,
...)``). The embeddings and attention masks are still computed (cheap). The states are recorded during the
base-loss pass, which runs the full model anyway, so the cache costs no extra forward pass. The first batch
is checked against the full model once; where they differ (another stack layout), the cache is not used.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from hf_attrib.adapters.base import ModelAdapter


class _Captured(Exception):
    """Stops a forward pass once the first moved block's input is recorded."""


def _hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


class _PassThrough(nn.Module):
    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


class FrozenPrefix:
    """The first moved block `first` of the stack `blocks`; see the module docstring."""

    def __init__(self, blocks: nn.ModuleList, first: int) -> None:
        self.blocks, self.first = blocks, first

    @classmethod
    def find(cls, adapter: ModelAdapter, model: nn.Module, moved: list[nn.Parameter]) -> FrozenPrefix | None:
        """The prefix to cache, or None unless every moved parameter lives only in blocks after the first one
        of the model's single stack (a parameter tied to anything outside the moved blocks disqualifies)."""
        stacks = adapter.block_lists(model)
        if len(stacks) != 1 or not moved:
            return None
        stack_name, blocks = stacks[0]
        names: dict[int, list[str]] = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            names.setdefault(id(p), []).append(name)
        first = len(blocks)
        for p in moved:
            for name in names.get(id(p), [""]):
                head, _, rest = name.partition(f"{stack_name}.")
                index = rest.split(".", 1)[0]
                if head or not rest or not index.isdigit():
                    return None  # used outside the stack (e.g. tied to an embedding)
                first = min(first, int(index))
        return cls(blocks, first) if 0 < first < len(blocks) else None

    def capture(self, adapter: ModelAdapter, model: nn.Module, batches: list[dict], path: Path | None = None):
        """Each batch's hidden states entering block `first`, computing only blocks ``[0, first)`` (a list, or
        a view of a safetensors file at `path` read batch by batch)."""
        states: list[torch.Tensor] = []

        def record(module, args, kwargs):
            states.append(_hidden(args, kwargs).detach().clone())
            raise _Captured

        handle = self.blocks[self.first].register_forward_pre_hook(record, with_kwargs=True)
        try:
            with torch.inference_mode():
                for batch in batches:
                    try:
                        adapter.per_example_loss(model, batch)
                    except _Captured:
                        pass
        finally:
            handle.remove()
        return self.store(states, path)

    @contextmanager
    def recording(self, states: list[torch.Tensor]):
        """Within the block, every full forward pass appends the states entering block `first` to `states`:
        the base-loss pass fills the cache at no extra cost."""
        handle = self.blocks[self.first].register_forward_pre_hook(
            lambda module, args, kwargs: states.append(_hidden(args, kwargs).detach().clone()), with_kwargs=True)
        try:
            yield states
        finally:
            handle.remove()

    @staticmethod
    def store(states: list[torch.Tensor], path: Path | None = None):
        """`states` as they are, or written to a safetensors file at `path` and read back batch by batch."""
        if path is None:
            return states
        from safetensors.torch import save_file

        save_file({f"batch-{i}": s.contiguous() for i, s in enumerate(states)}, str(path))
        return _DiskStates(path, len(states))

    @contextmanager
    def replay(self, state: torch.Tensor):
        """Within the block, a forward pass skips blocks ``[0, first)`` and starts from `state`."""
        originals = [self.blocks[i] for i in range(self.first)]

        def feed(module, args, kwargs):
            if args:
                return (state.to(args[0].device), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": state.to(kwargs["hidden_states"].device)}

        handle = self.blocks[self.first].register_forward_pre_hook(feed, with_kwargs=True)
        for i in range(self.first):
            self.blocks[i] = _PassThrough()
        try:
            yield
        finally:
            handle.remove()
            for i, block in enumerate(originals):
                self.blocks[i] = block


class _DiskStates:
    def __init__(self, path: Path, count: int) -> None:
        self.path, self.count = path, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as handle:
            return handle.get_tensor(f"batch-{index}")
