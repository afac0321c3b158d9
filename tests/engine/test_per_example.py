"""LinearGradients: per-example gradients from one backward pass equal the per-example loop."""

import warnings

import pytest
import torch
from torch import nn

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.engine.per_example import LinearGradients
from hf_attrib.methods.tracin import TracIn


def loop_gradients(losses_of, params):
    losses = losses_of()
    return torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[i], params, retain_graph=True)])
                        for i in range(len(losses))])


def test_one_backward_pass_equals_the_loop_for_rows_per_example_and_a_layer_used_twice():
    torch.manual_seed(0)
    first, second = nn.Linear(3, 4), nn.Linear(4, 4)
    x = torch.randn(5 * 3, 3)  # 5 examples, 3 rows each, example-major

    def losses_of():
        h = second(torch.tanh(second(torch.tanh(first(x)))))  # `second` is applied twice
        return h.view(5, 3, 4).pow(2).mean(dim=(1, 2))

    params = [first.weight, first.bias, second.weight]
    capture = LinearGradients.of(nn.ModuleList([first, second]), params)
    torch.testing.assert_close(capture.batch(losses_of, params), loop_gradients(losses_of, params))


def test_only_linear_selections_and_whole_rows_take_the_fast_path():
    conv = nn.Conv1d(2, 2, 1)
    assert LinearGradients.of(conv, list(conv.parameters())) is None
    layer = nn.Linear(2, 2)
    capture = LinearGradients.of(layer, [layer.weight])
    assert capture.batch(lambda: layer(torch.randn(5, 2)).sum(dim=1)[:2], [layer.weight]) is None  # 5 rows, 2 losses


class MixingAdapter(ModelAdapter):
    """Hidden states mixed across the batch: one backward pass cannot split the gradients per example."""

    def collate(self, rows):
        return {"x": torch.stack([torch.tensor(r["x"]) for r in rows])}

    def per_example_loss(self, model, batch):
        h = model[0](batch["x"])
        return model[1:](h - h.mean(dim=0, keepdim=True) * 0.5).pow(2).sum(dim=1)


def test_tracin_falls_back_to_the_loop_when_examples_mix():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    rows = [{"id": f"r{i}", "x": torch.randn(3).tolist()} for i in range(6)]
    adapter = MixingAdapter(model)
    with pytest.warns(UserWarning, match="disagree"):
        scores = TracIn(adapter, parameters="all", batch_size=3, progress=False).attribute(rows[:2], rows).scores
    params = list(model.parameters())

    def grad(chunk, i):  # the batch the row was scored in (batches of 3)
        loss = adapter.per_example_loss(model, adapter.collate(chunk))[i]
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])

    candidates = [grad(rows[b:b + 3], i) for b in (0, 3) for i in range(3)]
    queries = [grad(rows[:2], i) for i in range(2)]
    expected = torch.stack([torch.stack([q @ c for c in candidates]) for q in queries])
    torch.testing.assert_close(torch.tensor(scores, dtype=torch.float32), expected, rtol=1e-5, atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model that does not mix takes the fast path silently
        TracIn(ModelAdapterLike(model), parameters="all", batch_size=3, progress=False).attribute(rows[:2], rows)


class ModelAdapterLike(MixingAdapter):
    def per_example_loss(self, model, batch):
        return model(batch["x"]).pow(2).sum(dim=1)
