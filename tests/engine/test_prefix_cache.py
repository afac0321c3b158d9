"""Frozen-prefix cache: scores equal full scoring (GPT-2, Llama), the frozen blocks really are skipped, and
selections that touch the prefix (or other stack layouts) fall back to the full model."""

import warnings

import numpy as np
import pytest
import torch

from hf_attrib import ForwardINF
from hf_attrib.adapters import CausalLMAdapter, MaskedLMAdapter
from hf_attrib.engine.prefix_cache import FrozenPrefix
from hf_attrib.tiny.models import tiny_bert, tiny_gpt2, tiny_t5

OPTIONS = {"learning_rate": 1e-2, "steps": 2, "optimizer": "adam", "batch_size": 2, "progress": False}


def tiny_llama(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         pad_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config).eval()


def count_calls(module):
    calls = []
    return calls, module.register_forward_hook(lambda *_: calls.append(1))


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_prefix_cache_equals_full_scoring_and_skips_the_frozen_blocks(family, gpt2_tok, causal_rows):
    model = tiny_gpt2(gpt2_tok, n_embd=32, n_layer=4) if family == "gpt2" else tiny_llama(gpt2_tok)
    adapter = CausalLMAdapter(model, gpt2_tok)
    queries, candidates = causal_rows["queries"], causal_rows["candidates"]
    blocks = adapter.block_lists(model)[0][1]
    results, calls = {}, {}
    for cached in (False, True):
        counter, handle = count_calls(blocks[0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback on these models
            results[cached] = ForwardINF(adapter, parameters="last:2", prefix_cache=cached, **OPTIONS).attribute(
                queries, candidates)
        handle.remove()
        calls[cached] = len(counter)
    np.testing.assert_allclose(results[True].scores, results[False].scores, rtol=1e-5, atol=1e-7)
    batches = -(-len(candidates) // OPTIONS["batch_size"])
    # without the cache block 0 runs on every candidate batch for every query and in every ascent step; with it
    # only in the base pass and once per query (capturing the query's own states)
    assert calls[False] - calls[True] == len(queries) * (batches + OPTIONS["steps"] - 1)
    assert all(type(b).__name__ != "_PassThrough" for b in blocks)  # the stack is put back


def test_what_disqualifies_the_cache(gpt2_tok, t5_tok):
    model = tiny_gpt2(gpt2_tok, n_embd=32, n_layer=4)
    adapter = CausalLMAdapter(model, gpt2_tok)
    named = dict(model.named_parameters())
    last_two = [p for n, p in named.items() if n.startswith(("transformer.h.2.", "transformer.h.3."))]
    assert FrozenPrefix.find(adapter, model, last_two).first == 2
    assert FrozenPrefix.find(adapter, model, list(model.parameters())) is None  # embeddings move
    assert FrozenPrefix.find(adapter, model, [*last_two, model.lm_head.weight]) is None  # tied to wte
    t5 = tiny_t5(t5_tok)
    t5_adapter = MaskedLMAdapter(t5, t5_tok)
    assert FrozenPrefix.find(t5_adapter, t5, list(t5.decoder.block[-1].parameters())) is None  # two stacks


def test_disk_states_and_base_pass_recording_replay_like_the_capture(gpt2_tok, causal_rows, tmp_path):
    from hf_attrib.engine.scoring import EncodedRows, example_losses

    model = tiny_gpt2(gpt2_tok, n_embd=32, n_layer=4)
    adapter = CausalLMAdapter(model, gpt2_tok)
    rows = EncodedRows.build(adapter, causal_rows["candidates"], 2, "candidates")
    frozen = FrozenPrefix(adapter.block_lists(model)[0][1], 3)
    batches = [b for _, b in rows.batches]
    on_disk = frozen.capture(adapter, model, batches, tmp_path / "states.safetensors")
    recorded: list = []
    with frozen.recording(recorded):
        full = example_losses(adapter, model, rows)
    captured = frozen.capture(adapter, model, batches)
    assert len(recorded) == len(batches) and all(torch.equal(a, b) for a, b in zip(recorded, captured, strict=True))
    for states in (captured, on_disk):
        np.testing.assert_allclose(example_losses(adapter, model, rows, prefix=(frozen, states)), full, rtol=1e-6)


def test_another_stack_layout_is_checked_and_scores_stay_right(bert_tok, span_rows):
    model = tiny_bert(bert_tok, num_hidden_layers=3)
    adapter = MaskedLMAdapter(model, bert_tok)
    rows = span_rows
    full = ForwardINF(adapter, parameters="last:1", prefix_cache=False, **OPTIONS).attribute(rows[:2], rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BERT's layers may or may not suit the cache: either way, right scores
        cached = ForwardINF(adapter, parameters="last:1", **OPTIONS).attribute(rows[:2], rows)
    np.testing.assert_allclose(cached.scores, full.scores, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("parameters", ["all", "last:2"])
def test_one_pass_over_the_candidates_equals_one_pass_per_query(parameters, gpt2_tok, causal_rows):
    """All queries' ascended weights applied batch by batch give the per-query passes' scores bit for bit."""
    model = tiny_gpt2(gpt2_tok, n_embd=32, n_layer=4)
    adapter = CausalLMAdapter(model, gpt2_tok)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    queries, candidates = causal_rows["queries"], causal_rows["candidates"]
    one = ForwardINF(adapter, parameters=parameters, one_pass_bytes=2**30, **OPTIONS).attribute(queries, candidates)
    per_query = ForwardINF(adapter, parameters=parameters, **OPTIONS).attribute(queries, candidates)
    assert np.array_equal(one.scores, per_query.scores)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="one_pass_bytes"):
        ForwardINF(adapter, one_pass_bytes=-1)
