"""Per-example gradients of `nn.Linear` weights from one backward pass per batch.

For ``y = x Wᵀ + b`` the gradient of example i's loss is ``Σ_r g_rᵀ x_r`` over the rows r of the layer's
input that belong to example i, with ``g_r = ∂(Σ_j ℓ_j)/∂y_r`` — exact as long as no computation mixes
examples (true of transformers and UNets in eval mode). Rows are assumed example-major: a layer whose input
has M = n·k leading rows gives rows i·k … i·k + k − 1 to example i (a diffusion adapter's (example, view,
timestep) rows, a language model's batch). Callers check the result against the per-example loop once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class LinearGradients:
    """Records each selected Linear layer's inputs and output gradients during one forward/backward."""

    def __init__(self, parts: list[tuple[nn.Linear, str]]) -> None:
        self.parts = parts  # (module, "weight" | "bias") in the order of the selected parameters
        self.records: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.verified = False

    @classmethod
    def of(cls, model: nn.Module, params: list[nn.Parameter]) -> LinearGradients | None:
        """None unless every parameter is the weight or bias of an `nn.Linear` of `model`."""
        owners = {}
        for module in model.modules():
            if type(module) is nn.Linear:
                for kind in ("weight", "bias"):
                    if getattr(module, kind) is not None:
                        owners[id(getattr(module, kind))] = (module, kind)
        parts = [owners.get(id(p)) for p in params]
        return None if not params or any(part is None for part in parts) else cls(parts)

    def batch(self, losses_of: Callable[[], torch.Tensor], params: list[nn.Parameter]) -> torch.Tensor | None:
        """Run `losses_of()` (per-example losses [n]) with the layers recorded, one backward pass; returns
        [n, sum of parameter sizes] in the order of `params`, or None where a layer's rows are not n·k."""
        self.records = {id(module): [] for module, _ in self.parts}
        handles = [module.register_forward_hook(self._record) for module in {id(m): m for m, _ in self.parts}.values()]
        try:
            losses = losses_of()
            torch.autograd.grad(losses.sum(), params)
        finally:
            for handle in handles:
                handle.remove()
        n = losses.shape[0]
        columns = []
        for module, kind in self.parts:
            total = None
            for x, g in self.records[id(module)]:
                if x.shape[0] % n:
                    return None
                x, g = x.reshape(n, -1, x.shape[-1]), g.reshape(n, -1, g.shape[-1])
                part = torch.bmm(g.transpose(1, 2), x) if kind == "weight" else g.sum(dim=1)
                total = part if total is None else total + part
            if total is None:  # the layer was not used: its gradient is zero
                total = torch.zeros(n, *getattr(module, kind).shape, dtype=losses.dtype, device=losses.device)
            columns.append(total.reshape(n, -1))
        self.records = {}
        return torch.cat(columns, dim=1).detach()

    def _record(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not output.requires_grad:
            return
        x = inputs[0].detach()
        records = self.records[id(module)]
        output.register_hook(lambda grad: records.append((x, grad.detach())))
