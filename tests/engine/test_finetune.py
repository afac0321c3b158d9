import pytest
import torch

from hf_attrib.adapters import CausalLMAdapter
from hf_attrib.engine import FinetuneArguments, finetune


def test_finetune_lowers_the_loss_and_leaves_eval_mode(gpt2, gpt2_tok, causal_rows):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    rows = causal_rows["candidates"]
    before = adapter.per_example_loss(gpt2, adapter.collate(rows)).mean().item()
    history = finetune(adapter, rows, epochs=30, learning_rate=3e-3, batch_size=4, progress=False)
    after = adapter.per_example_loss(gpt2, adapter.collate(rows)).mean().item()
    assert len(history) == 30 * 2
    assert after < 0.5 * before
    assert not gpt2.training
    assert all(p.grad is None for p in gpt2.parameters())


def test_finetune_is_seeded(gpt2_tok, causal_rows):
    from hf_attrib.tiny.models import tiny_gpt2

    runs = []
    for _ in range(2):
        model = tiny_gpt2(gpt2_tok, n_embd=32)
        finetune(CausalLMAdapter(model, gpt2_tok), causal_rows["candidates"], epochs=2, batch_size=2,
                 progress=False)
        runs.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])


def test_bad_row_fails_before_any_weight_moves(gpt2, gpt2_tok, causal_rows):
    frozen = [p.clone() for p in gpt2.parameters()]
    rows = causal_rows["candidates"] + [{"text": "no id"}]
    with pytest.raises(ValueError, match="'id'"):
        finetune(CausalLMAdapter(gpt2, gpt2_tok), rows, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(frozen, gpt2.parameters(), strict=True))


def test_arguments_validate():
    with pytest.raises(ValueError, match="epochs"):
        FinetuneArguments(epochs=0)
    with pytest.raises(ValueError, match="learning_rate"):
        FinetuneArguments(learning_rate=0)
