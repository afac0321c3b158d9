"""After attribute() the model is bit-for-bit what it was: every selection, SGD, Adam and LoRA."""

import pytest
import torch

from hf_attrib import ForwardINF
from hf_attrib.adapters import CausalLMAdapter, MaskedLMAdapter


def snapshot(model):
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "training": {n: m.training for n, m in model.named_modules()},
        "modules": {n: type(m) for n, m in model.named_modules()},
        "grads": {n: p.grad for n, p in model.named_parameters()},
    }


def assert_same(model, before):
    after = snapshot(model)
    assert after["state"].keys() == before["state"].keys()
    for key, tensor in before["state"].items():
        assert after["state"][key].dtype == tensor.dtype
        assert torch.equal(after["state"][key], tensor), key
    assert after["requires_grad"] == before["requires_grad"]
    assert after["training"] == before["training"]
    assert after["modules"] == before["modules"]
    assert all(after["grads"][n] is g for n, g in before["grads"].items())  # the very same tensors


SELECTIONS = ["all", "last:1", ["transformer.h.0.mlp.*", "transformer.wte.*"], "lora"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("selection", SELECTIONS, ids=str)
def test_causal_model_restored_bit_for_bit(gpt2, gpt2_tok, causal_rows, selection, optimizer):
    gpt2.train()  # the user's mode must survive too
    gpt2.transformer.h[0].mlp.c_fc.weight.grad = torch.ones_like(gpt2.transformer.h[0].mlp.c_fc.weight)
    gpt2.transformer.wpe.weight.requires_grad_(False)
    before = snapshot(gpt2)
    result = ForwardINF(CausalLMAdapter(gpt2, gpt2_tok), parameters=selection, optimizer=optimizer,
                        learning_rate=0.05, steps=2, weight_decay=0.01, progress=False).attribute(**causal_rows)
    assert abs(result.scores).max() > 0  # ascent really moved the model
    assert_same(gpt2, before)


@pytest.mark.parametrize("selection", ["all", "last:1", "lora"], ids=str)
@pytest.mark.parametrize("family", ["t5", "bert"])
def test_masked_models_restored_bit_for_bit(request, family, span_rows, selection):
    model, tok = request.getfixturevalue(family), request.getfixturevalue(f"{family}_tok")
    before = snapshot(model)
    ForwardINF(MaskedLMAdapter(model, tok), parameters=selection, optimizer="adam", joint=True,
               progress=False).attribute(span_rows[:2], span_rows)
    assert_same(model, before)


def test_restored_after_an_error_mid_run(gpt2, gpt2_tok, causal_rows):
    before = snapshot(gpt2)
    queries = causal_rows["queries"] + [{"id": "bad", "prompt": "x", "target": "Belmora"}]
    for selection in ("all", "lora"):
        with pytest.raises(ValueError, match="diverged"):
            ForwardINF(CausalLMAdapter(gpt2, gpt2_tok), parameters=selection, learning_rate=1e30,
                       progress=False).attribute(queries, causal_rows["candidates"])
        assert_same(gpt2, before)
