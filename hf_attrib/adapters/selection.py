"""Which parameters ascent may move: a named selection resolved against a model.

Accepted selections (the ``parameters`` option of Forward-INF and TracIn):

* ``"all"``: every floating-point parameter;
* ``"last:K"`` or an int ``K``: the parameters of the last K blocks of each stack of transformer blocks
  (a T5 model has two stacks, encoder and decoder, so K blocks of each);
* a list of glob patterns (``fnmatch``) over parameter names, e.g. ``["transformer.h.*.mlp.*"]``;
  a single string that is none of the above is one pattern;
* ``"lora"``: a PEFT LoRA is attached for the duration of the ascent and only it moves;
* ``"auto"``: the adapter's own default (``"all"`` for language models, the cross-attention keys and
  values for Stable Diffusion). Adapters may add named presets of their own.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

Selection = str | int | Sequence[str]


@dataclass(frozen=True)
class ParsedSelection:
    kind: str  # "all" | "last" | "patterns" | "lora" | "auto"
    last_blocks: int = 0
    patterns: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "last":
            return f"last:{self.last_blocks}"
        if self.kind == "patterns":
            return ",".join(self.patterns)
        return self.kind


def parse_selection(selection: Selection) -> ParsedSelection:
    """Validate a selection; errors name the parameter ``parameters``."""
    if isinstance(selection, bool):
        raise ValueError(f"parameters={selection!r} is not a selection; use 'all', 'last:K', 'lora' or patterns")
    if isinstance(selection, int):
        return _last(selection)
    if isinstance(selection, str):
        if selection in ("all", "lora", "auto"):
            return ParsedSelection(selection)
        if selection.startswith("last:"):
            count = selection.split(":", 1)[1]
            if not count.isdigit():
                raise ValueError(f"parameters={selection!r}: expected 'last:K' with an integer K")
            return _last(int(count))
        if not selection.strip():
            raise ValueError("parameters='' selects nothing; use 'all', 'last:K', 'lora' or name patterns")
        return ParsedSelection("patterns", patterns=(selection,))
    patterns = tuple(selection)
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ValueError(f"parameters={selection!r}: a list of selections must be non-empty name patterns")
    return ParsedSelection("patterns", patterns=patterns)


def _last(count: int) -> ParsedSelection:
    if count < 1:
        raise ValueError(f"parameters=last:{count}: the number of blocks must be >= 1")
    return ParsedSelection("last", last_blocks=count)


def find_block_lists(model: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """Stacks of repeated blocks: ``nn.ModuleList``s whose children share one class and hold parameters.

    Lists nested inside another such list (e.g. sub-layers of a block) are not stacks of their own.
    """
    found: list[tuple[str, nn.ModuleList]] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(child) for child in module}) != 1:
            continue
        if not any(True for _ in module.parameters()):
            continue
        if any(name.startswith(outer + ".") for outer, _ in found):
            continue
        found.append((name, module))
    return found


def select_parameters(
    model: nn.Module, selection: ParsedSelection, block_lists: list[tuple[str, nn.ModuleList]]
) -> list[tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs that `selection` names; an empty result is a ValueError."""
    named = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]
    if selection.kind == "all":
        chosen = named
    elif selection.kind == "last":
        if not block_lists:
            raise ValueError(
                f"parameters=last:{selection.last_blocks}: found no stack of transformer blocks in "
                f"{type(model).__name__}; select parameters by name patterns instead"
            )
        prefixes = []
        for list_name, blocks in block_lists:
            start = max(0, len(blocks) - selection.last_blocks)
            prefixes += [f"{list_name}.{i}." for i in range(start, len(blocks))]
        chosen = [(n, p) for n, p in named if any(n.startswith(prefix) for prefix in prefixes)]
    elif selection.kind == "patterns":
        chosen = [(n, p) for n, p in named if any(fnmatch.fnmatchcase(n, pat) for pat in selection.patterns)]
        for pattern in selection.patterns:
            if not any(fnmatch.fnmatchcase(n, pattern) for n, _ in named):
                raise ValueError(
                    f"parameters: the pattern {pattern!r} matches no parameter of {type(model).__name__} "
                    f"(names look like {named[0][0]!r})"
                )
    else:
        raise ValueError(f"selection {selection.kind!r} is not resolved to model parameters")
    if not chosen:
        raise ValueError(f"parameters={selection.describe()!r} selects no parameter of {type(model).__name__}")
    return chosen
