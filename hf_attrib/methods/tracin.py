"""TracIn (Pruthi et al., 2020): the sum over checkpoints of η_k ∇ℓ(z_candidate)·∇ℓ(z_query).

Per-example gradients come from one forward pass per batch and one backward pass per batch when the
selected weights are all `nn.Linear` (checked once against one backward pass per example, the fallback);
the candidates' gradients are computed once per checkpoint and reused for every query. Gradients are kept
for the selected parameters only (``parameters``, as in Forward-INF; name patterns such as
``"transformer.h.*.mlp.c_fc.*"`` select GPT-2's `Conv1D` layers) — choose a subset for large models,
since every candidate's gradient is held in memory.

Checkpoints are state dicts, local folders or ``.safetensors`` files, or Hub ids; each is loaded into the
adapter's model in turn and the model's own weights are put back afterwards.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.adapters.selection import Selection, parse_selection
from hf_attrib.data.rows import materialize
from hf_attrib.engine.arguments import Arguments, resolve_arguments
from hf_attrib.engine.per_example import LinearGradients
from hf_attrib.engine.scoring import EncodedRows
from hf_attrib.engine.state import preserved_model_state, set_trainable
from hf_attrib.results import AttributionResult

Checkpoint = str | Path | dict[str, torch.Tensor]


@dataclass
class TracInArguments(Arguments):
    parameters: Selection = field(
        default="auto", metadata={"help": "'auto' (the adapter's default), 'all', 'last:K' or name glob patterns."}
    )
    normalize: bool = field(default=False, metadata={"help": "Cosine similarity instead of dot products."})
    batch_size: int = field(default=16, metadata={"help": "Examples per forward pass."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})

    def __post_init__(self) -> None:
        if isinstance(self.parameters, list):
            self.parameters = tuple(self.parameters)
        if parse_selection(self.parameters).kind == "lora":
            raise ValueError("parameters='lora' is for Forward-INF's ascent; TracIn needs the model's own weights")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


class TracIn:
    """``TracIn(adapter, checkpoints=[...], learning_rates=[...]).attribute(queries, candidates)``.

    Without checkpoints, the adapter's model as it is (one checkpoint, weight 1: TracIn-CP "single").
    """

    name = "tracin"

    def __init__(self, adapter: ModelAdapter, args: TracInArguments | None = None, *,
                 checkpoints: list[Checkpoint] | None = None, learning_rates: list[float] | None = None,
                 **options: Any) -> None:
        if not isinstance(adapter, ModelAdapter):
            raise ValueError(f"adapter must be a hf_attrib ModelAdapter, got {type(adapter).__name__}")
        self.adapter = adapter
        self.args = resolve_arguments(TracInArguments, args, options)
        self.checkpoints = list(checkpoints or [])
        count = max(1, len(self.checkpoints))
        if learning_rates is not None and len(learning_rates) != count:
            raise ValueError(f"learning_rates has {len(learning_rates)} values for {count} checkpoint(s)")
        self.learning_rates = list(learning_rates) if learning_rates is not None else [1.0] * count

    def gradients(self, rows: EncodedRows, params: list[torch.nn.Parameter], desc: str) -> torch.Tensor:
        """[n_rows, n_selected_weights] per-example gradients at the current weights.

        When every selected weight belongs to an `nn.Linear`, one backward pass per batch gives them all
        (`LinearGradients`); the first batch is checked against the per-example loop, which is used instead
        if they disagree (a model that mixes examples) and for any other selection.
        """
        fast = LinearGradients.of(self.adapter.model, params)
        out: list[torch.Tensor] = []
        for _, batch in tqdm(rows.batches, desc=desc, disable=not self.args.progress, leave=False):
            losses_of = partial(self._losses, batch, rows, sum(len(g) for g in out), desc)
            grads = fast.batch(losses_of, params) if fast else None
            if grads is not None and not fast.verified:
                exact = self._loop(losses_of(), params)
                scale = exact.abs().max().clamp_min(1e-30)
                if not torch.allclose(grads, exact, rtol=1e-3, atol=1e-5 * scale.item()):
                    warnings.warn("per-example gradients from one backward pass disagree with the per-example "
                                  "loop on this model; using the loop", stacklevel=2)
                    grads, fast = exact, None
                else:
                    fast.verified = True
            out.append(grads if grads is not None else self._loop(losses_of(), params))
        return torch.cat(out)

    def _losses(self, batch: dict, rows: EncodedRows, first: int, desc: str) -> torch.Tensor:
        losses = self.adapter.per_example_loss(self.adapter.model, batch)
        bad = (~torch.isfinite(losses)).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"the loss of {rows.ids[first + bad[0]]!r} is {losses[bad[0]].item()} ({desc})")
        return losses

    @staticmethod
    def _loop(losses: torch.Tensor, params: list[torch.nn.Parameter]) -> torch.Tensor:
        grads = []
        for i in range(losses.shape[0]):
            parts = torch.autograd.grad(losses[i], params, retain_graph=i < losses.shape[0] - 1)
            grads.append(torch.cat([g.reshape(-1) for g in parts]).detach())
        return torch.stack(grads)

    def attribute(self, queries: Any, candidates: Any) -> AttributionResult:
        size = self.args.batch_size
        query_rows = EncodedRows.build(self.adapter, materialize(queries, "queries"), size, "queries")
        candidate_rows = EncodedRows.build(self.adapter, candidates, self.args.batch_size, "candidates")
        model = self.adapter.model
        named = self.adapter.parameters(model, self.args.parameters)
        params = [p for _, p in named]
        scores = torch.zeros(len(query_rows), len(candidate_rows), dtype=torch.float64)
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()} if self.checkpoints else None
        with preserved_model_state(model):
            set_trainable(model, params)
            try:
                for checkpoint, weight in zip(self.checkpoints or [None], self.learning_rates, strict=True):
                    if checkpoint is not None:
                        _load_checkpoint(model, checkpoint, [n for n, _ in named])
                    g_candidates = self.gradients(candidate_rows, params, "candidate gradients")
                    g_queries = self.gradients(query_rows, params, "query gradients")
                    if self.args.normalize:
                        g_candidates = torch.nn.functional.normalize(g_candidates, dim=1)
                        g_queries = torch.nn.functional.normalize(g_queries, dim=1)
                    scores += weight * (g_queries.double() @ g_candidates.double().T)
            finally:
                if saved is not None:
                    with torch.no_grad():
                        for key, value in model.state_dict().items():
                            value.copy_(saved[key])
        config = {"arguments": self.args.to_dict(), "learning_rates": self.learning_rates,
                  "checkpoints": [c if isinstance(c, str | Path) else "<state dict>" for c in self.checkpoints],
                  "adapter_fingerprint": self.adapter.fingerprint()}
        return AttributionResult(scores.numpy(), query_rows.ids, candidate_rows.ids, method=self.name,
                                 config={k: (str(v) if isinstance(v, Path) else v) for k, v in config.items()})


def _load_checkpoint(model: torch.nn.Module, checkpoint: Checkpoint, needed: list[str]) -> None:
    state = checkpoint if isinstance(checkpoint, dict) else _read_checkpoint(checkpoint)
    missing = [name for name in needed if name not in state]
    if missing:
        raise ValueError(f"checkpoint {_describe(checkpoint)} lacks selected parameters {missing[:5]}")
    own = model.state_dict()
    with torch.no_grad():
        for name, value in state.items():
            if name in own:
                if own[name].shape != value.shape:
                    raise ValueError(f"checkpoint {_describe(checkpoint)}: {name!r} has shape {tuple(value.shape)}, "
                                     f"the model {tuple(own[name].shape)}")
                own[name].copy_(value)


def _read_checkpoint(source: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(source)
    if path.is_file():
        return load_file(str(path))
    if not path.exists():  # a Hub id
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(str(source), allow_patterns=["*.safetensors", "*.json"]))
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ValueError(f"checkpoint {source}: no .safetensors file (pickled checkpoints are not loaded)")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state


def _describe(checkpoint: Checkpoint) -> str:
    return "<state dict>" if isinstance(checkpoint, dict) else repr(str(checkpoint))
