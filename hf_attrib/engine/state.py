"""Everything about a model that attribution touches besides weights, put back afterwards.

Train/eval flags, ``requires_grad`` and any ``.grad`` the user had are saved on entry and restored on
exit, even when an error stops the work; inside, the model is in eval mode (no dropout, frozen
normalization statistics) and holds no gradients of the user's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def preserved_model_state(model: nn.Module) -> Iterator[nn.Module]:
    training = [(module, module.training) for module in model.modules()]
    parameters = list(model.parameters())
    requires_grad = [p.requires_grad for p in parameters]
    grads = [p.grad for p in parameters]
    for p in parameters:
        p.grad = None
    model.eval()
    try:
        yield model
    finally:
        for module, flag in training:
            module.training = flag
        for p, flag, grad in zip(parameters, requires_grad, grads, strict=True):
            p.requires_grad_(flag)
            p.grad = grad


def set_trainable(model: nn.Module, trainable: list[nn.Parameter]) -> None:
    """Gradients only for `trainable` (saves the backward pass the rest of the model)."""
    chosen = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
