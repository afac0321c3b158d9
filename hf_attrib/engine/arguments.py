"""Options as dataclasses, in the style of `transformers.TrainingArguments` and kronfluence's arguments:
every field has a ``help``, values are validated in ``__post_init__`` (errors name the field), and
``to_dict()`` gives what is saved beside results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hf_attrib.adapters.selection import Selection, parse_selection

T = TypeVar("T")


class Arguments:
    """Shared behaviour of the option dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


def resolve_arguments(cls: type[T], args: T | None, overrides: dict[str, Any]) -> T:
    """An options object from an object, keywords, or both (keywords win); unknown names are errors."""
    if args is not None and not isinstance(args, cls):
        raise ValueError(f"args must be a {cls.__name__}, got {type(args).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {cls.__name__}; valid options: {sorted(names)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    overrides = {k: _coerce(k, v, fields[k].default) for k, v in overrides.items()}
    if args is None:
        return cls(**overrides)
    return dataclasses.replace(args, **overrides)  # type: ignore[type-var]


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Numbers given as text (YAML reads ``1e-3`` as a string) become numbers; other mismatches are errors."""
    if isinstance(default, bool) or not isinstance(default, int | float) or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value) if isinstance(default, float) else value
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number ({type(default).__name__}), got {value!r}") from None


@dataclass
class AscentArguments(Arguments):
    """How the test sample is unlearned: gradient *ascent* on its loss, then undone exactly."""

    learning_rate: float = field(default=1e-2, metadata={"help": "Step size of gradient ascent."})
    steps: int = field(default=3, metadata={"help": "Number of ascent steps per query (or per group)."})
    optimizer: str = field(default="sgd", metadata={"help": "'sgd' or 'adam' (both maximize the loss)."})
    score: str = field(
        default="difference",
        metadata={"help": "'difference' (after - before, the seed), 'relative' (after / before per term, "
                          "averaged) or 'normalized' ((after - before) / (after + before) per term, averaged)."},
    )
    weight_decay: float = field(default=0.0, metadata={"help": "Weight decay applied during ascent."})
    momentum: float = field(default=0.0, metadata={"help": "SGD momentum (ignored by Adam)."})
    parameters: Selection = field(
        default="auto",
        metadata={"help": "Which parameters move: 'auto' (the adapter's default), 'all', 'last:K' blocks, "
                          "'lora', name glob patterns, or an adapter's preset (e.g. 'cross-attn-kv')."},
    )
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank when parameters='lora'."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA alpha when parameters='lora'."})
    joint: bool = field(
        default=False,
        metadata={"help": "Unlearn all queries at once (one score row for the group) instead of one by one."},
    )
    query_batch_size: int = field(
        default=16, metadata={"help": "Queries per forward pass when several are ascended together."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for anything random in ascent (LoRA initialization)."})

    def __post_init__(self) -> None:
        if not self.learning_rate >= 0:  # 0 is a no-op ascent: a control whose scores must all be 0
            raise ValueError(f"learning_rate must be >= 0, got {self.learning_rate}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.score not in ("difference", "relative", "normalized"):
            raise ValueError(f"score must be 'difference', 'relative' or 'normalized', got {self.score!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if isinstance(self.parameters, list):
            self.parameters = tuple(self.parameters)
        parse_selection(self.parameters)
        if self.lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {self.lora_rank}")
        if self.query_batch_size < 1:
            raise ValueError(f"query_batch_size must be >= 1, got {self.query_batch_size}")
