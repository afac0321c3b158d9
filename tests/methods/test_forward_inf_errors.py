"""Bad input: a clear ValueError naming what is at fault, and the model untouched."""

import pytest
import torch

from hf_attrib import ForwardINF
from hf_attrib.adapters import CausalLMAdapter


@pytest.fixture
def method(gpt2, gpt2_tok):
    return ForwardINF(CausalLMAdapter(gpt2, gpt2_tok), progress=False)


@pytest.fixture
def frozen(gpt2):
    return {k: v.clone() for k, v in gpt2.state_dict().items()}


def assert_unchanged(model, frozen):
    state = model.state_dict()
    assert state.keys() == frozen.keys()
    assert all(torch.equal(state[k], frozen[k]) for k in frozen)


def test_empty_queries(method, causal_rows, gpt2, frozen):
    with pytest.raises(ValueError, match="queries is empty"):
        method.attribute([], causal_rows["candidates"])
    assert_unchanged(gpt2, frozen)


def test_empty_candidates(method, causal_rows, gpt2, frozen):
    from datasets import Dataset

    with pytest.raises(ValueError, match="candidates is empty"):
        method.attribute(causal_rows["queries"], Dataset.from_dict({"id": [], "text": []}))
    assert_unchanged(gpt2, frozen)


def test_missing_column(method, causal_rows, gpt2, frozen):
    candidates = causal_rows["candidates"] + [{"id": "broken", "body": "no text column"}]
    with pytest.raises(ValueError, match="candidates.*'broken'.*'text'"):
        method.attribute(causal_rows["queries"], candidates)
    assert_unchanged(gpt2, frozen)


def test_empty_target(method, causal_rows, gpt2, frozen):
    queries = [{"id": "q-empty", "prompt": "Varnok is in", "target": "  "}]
    with pytest.raises(ValueError, match="queries.*'q-empty'.*'target' is empty"):
        method.attribute(queries, causal_rows["candidates"])
    assert_unchanged(gpt2, frozen)


def test_duplicate_ids(method, causal_rows):
    with pytest.raises(ValueError, match="'c0' more than once"):
        method.attribute(causal_rows["queries"], causal_rows["candidates"] + [causal_rows["candidates"][0]])


def test_non_finite_loss_during_ascent(gpt2, gpt2_tok, causal_rows, frozen):
    diverging = ForwardINF(CausalLMAdapter(gpt2, gpt2_tok), learning_rate=1e30, steps=3, progress=False)
    with pytest.raises(ValueError, match="diverged.*'q1'.*ascent step"):
        diverging.attribute(causal_rows["queries"], causal_rows["candidates"])
    assert_unchanged(gpt2, frozen)  # restored even though the query failed
