import numpy as np
import pytest
import torch

from hf_attrib.adapters import CausalLMAdapter, MaskedLMAdapter
from hf_attrib.methods.tracin import TracIn


def brute_force(adapter, queries, candidates, patterns, checkpoints, weights, cosine=False):
    """One example at a time, plain autograd, the model's own load_state_dict."""
    model = adapter.model
    original = {k: v.clone() for k, v in model.state_dict().items()}
    scores = np.zeros((len(queries), len(candidates)))
    for state, weight in zip(checkpoints, weights, strict=True):
        model.load_state_dict(state, strict=False)
        params = [p for _, p in adapter.parameters(model, patterns)]

        def grad(row, params=params):
            loss = adapter.per_example_loss(model, adapter.collate([row]))[0]
            g = torch.cat([x.flatten() for x in torch.autograd.grad(loss, params)])
            return g / g.norm() if cosine else g

        for q, query in enumerate(queries):
            for c, candidate in enumerate(candidates):
                scores[q, c] += weight * torch.dot(grad(query), grad(candidate)).item()
    model.load_state_dict(original)
    return scores


def perturbed(model, seed):
    generator = torch.Generator().manual_seed(seed)
    return {k: v + 0.05 * torch.randn(v.shape, generator=generator, dtype=v.dtype) if v.is_floating_point() else v
            for k, v in model.state_dict().items()}


@pytest.mark.parametrize("cosine", [False, True])
def test_tracin_equals_brute_force_over_checkpoints(gpt2, gpt2_tok, causal_rows, cosine):
    adapter = CausalLMAdapter(gpt2.double(), gpt2_tok)
    patterns = ["transformer.h.*.mlp.c_fc.*", "transformer.ln_f.*"]  # GPT-2 Conv1D weights included
    checkpoints = [perturbed(gpt2, 1), perturbed(gpt2, 2)]
    weights = [0.1, 0.05]
    before = {k: v.clone() for k, v in gpt2.state_dict().items()}
    result = TracIn(adapter, checkpoints=checkpoints, learning_rates=weights, parameters=patterns,
                    normalize=cosine, batch_size=3, progress=False).attribute(**causal_rows)
    expected = brute_force(adapter, causal_rows["queries"], causal_rows["candidates"], patterns, checkpoints,
                           weights, cosine)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5, atol=1e-8)
    assert all(torch.equal(v, before[k]) for k, v in gpt2.state_dict().items())  # own weights put back


def test_tracin_single_checkpoint_t5(t5, t5_tok, span_rows):
    adapter = MaskedLMAdapter(t5.double(), t5_tok)
    result = TracIn(adapter, parameters="last:1", progress=False).attribute(span_rows[:2], span_rows)
    expected = brute_force(adapter, span_rows[:2], span_rows, "last:1", [t5.state_dict()], [1.0])
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5)


def test_checkpoint_from_a_local_folder(tmp_path, gpt2, gpt2_tok, causal_rows):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    other = perturbed(gpt2, 3)
    from_dict = TracIn(adapter, checkpoints=[other], progress=False).attribute(**causal_rows)
    original = {k: v.clone() for k, v in gpt2.state_dict().items()}
    gpt2.load_state_dict(other)
    gpt2.save_pretrained(tmp_path)
    gpt2.load_state_dict(original)
    from_folder = TracIn(adapter, checkpoints=[str(tmp_path)], progress=False).attribute(**causal_rows)
    np.testing.assert_allclose(from_folder.scores, from_dict.scores, rtol=1e-5)


def test_bad_options(gpt2, gpt2_tok):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    with pytest.raises(ValueError, match="lora"):
        TracIn(adapter, parameters="lora")
    with pytest.raises(ValueError, match="learning_rates"):
        TracIn(adapter, checkpoints=["a", "b"], learning_rates=[1.0])
    with pytest.raises(ValueError, match="lacks selected parameters"):
        TracIn(adapter, checkpoints=[{"nothing": torch.zeros(1)}], progress=False).attribute(
            [{"id": "q", "text": "Varnok is"}], [{"id": "c", "text": "Tesh is"}])
