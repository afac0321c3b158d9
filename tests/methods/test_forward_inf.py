import numpy as np
import pytest
import torch

from hf_attrib import AttributionResult, ForwardINF, ForwardINFArguments
from hf_attrib.adapters import CausalLMAdapter, MaskedLMAdapter

ETA = 1e-5


def flat_grad(adapter, model, row, params):
    loss = adapter.per_example_loss(model, adapter.collate([row]))[0]
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])


def check_first_order_identity(adapter, queries, candidates, eta=ETA):
    """One SGD ascent step of size η: score = η ∇ℓ(candidate)·∇ℓ(query), from autograd independently.

    The error is the second-order term, linear in η; T5 stops at 1e-5 because T5LayerNorm computes its
    variance in float32, whose rounding then dominates the tiny loss differences.
    """
    model = adapter.model
    params = [p for p in model.parameters()]
    result = ForwardINF(adapter, learning_rate=eta, steps=1, optimizer="sgd", progress=False).attribute(
        queries, candidates
    )
    for q, query in enumerate(queries):
        g_query = flat_grad(adapter, model, query, params)
        expected = np.array([eta * torch.dot(flat_grad(adapter, model, c, params), g_query).item()
                             for c in candidates])
        error = np.abs(result.scores[q] - expected).max() / np.abs(expected).max()
        print(f"{type(model).__name__} query {query['id']}: relative error {error:.2e} at eta={eta}")
        assert error < 1e-3, f"relative error {error:.2e} for query {query['id']}"
        assert np.abs(expected).max() > 0
    return result


def test_identity_causal_lm(gpt2, gpt2_tok, causal_rows):
    adapter = CausalLMAdapter(gpt2.double(), gpt2_tok)
    check_first_order_identity(adapter, causal_rows["queries"], causal_rows["candidates"], eta=1e-6)


@pytest.mark.parametrize("family", ["t5", "bert"])
def test_identity_masked_models(request, family, span_rows):
    model, tok = request.getfixturevalue(family).double(), request.getfixturevalue(f"{family}_tok")
    check_first_order_identity(MaskedLMAdapter(model, tok), span_rows[:2], span_rows,
                               eta=1e-5 if family == "t5" else 1e-6)


def test_joint_ascent_uses_the_mean_query_gradient(gpt2, gpt2_tok, causal_rows):
    adapter = CausalLMAdapter(gpt2.double(), gpt2_tok)
    queries, candidates = causal_rows["queries"], causal_rows["candidates"]
    result = ForwardINF(adapter, learning_rate=ETA, steps=1, joint=True, progress=False).attribute(
        queries, candidates
    )
    assert result.query_ids == ["all_queries"] and result.scores.shape == (1, len(candidates))
    params = list(gpt2.parameters())
    g_mean = sum(flat_grad(adapter, gpt2, q, params) for q in queries) / len(queries)
    expected = np.array([ETA * torch.dot(flat_grad(adapter, gpt2, c, params), g_mean).item() for c in candidates])
    assert np.abs(result.scores[0] - expected).max() / np.abs(expected).max() < 1e-3


def test_two_runs_give_identical_scores(gpt2, gpt2_tok, causal_rows):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    for options in ({"optimizer": "adam"}, {"parameters": "lora", "learning_rate": 0.1}):
        first = ForwardINF(adapter, progress=False, **options).attribute(**causal_rows)
        second = ForwardINF(adapter, progress=False, **options).attribute(**causal_rows)
        assert np.array_equal(first.scores, second.scores)
        assert np.abs(first.scores).max() > 0


def test_base_losses_computed_once_for_all_queries(gpt2, gpt2_tok, causal_rows):
    class CountingAdapter(CausalLMAdapter):
        rows_scored = 0

        def per_example_loss(self, model, batch):
            if not torch.is_grad_enabled():  # candidate scoring runs under inference_mode
                CountingAdapter.rows_scored += batch["input_ids"].shape[0]
            return super().per_example_loss(model, batch)

    adapter = CountingAdapter(gpt2, gpt2_tok)
    method = ForwardINF(adapter, progress=False)
    n_queries, n_candidates = len(causal_rows["queries"]), len(causal_rows["candidates"])
    result = method.attribute(**causal_rows)
    assert CountingAdapter.rows_scored == n_candidates * (1 + n_queries)
    expected = adapter.per_example_loss(gpt2, adapter.collate(causal_rows["candidates"])).detach().double()
    np.testing.assert_allclose(result.extras["base_losses"], expected.numpy(), atol=1e-6)
    method.attribute(**causal_rows)  # same weights: the cached base losses are reused
    assert CountingAdapter.rows_scored == n_candidates * (1 + 2 * n_queries)


def test_result_shape_ids_and_topk(gpt2, gpt2_tok, causal_rows):
    result = ForwardINF(CausalLMAdapter(gpt2, gpt2_tok), progress=False).attribute(**causal_rows)
    assert isinstance(result, AttributionResult)
    assert result.query_ids == ["q1", "q2"]
    assert result.candidate_ids == [c["id"] for c in causal_rows["candidates"]]
    best = result.topk(2)[0]
    assert best[0][1] == result.scores[0].max() and best[0][1] >= best[1][1]


def test_datasets_inputs(gpt2, gpt2_tok, causal_rows):
    from datasets import Dataset, IterableDataset

    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    from_lists = ForwardINF(adapter, progress=False).attribute(**causal_rows)
    candidates = Dataset.from_list(causal_rows["candidates"])
    streamed = IterableDataset.from_generator(lambda: iter(causal_rows["candidates"]))
    for source in (candidates, streamed):
        result = ForwardINF(adapter, progress=False).attribute(Dataset.from_list(causal_rows["queries"]), source)
        np.testing.assert_array_equal(result.scores, from_lists.scores)


def test_options_as_object_or_keywords(gpt2, gpt2_tok):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    args = ForwardINFArguments(learning_rate=0.5, parameters=["transformer.h.*"])
    assert ForwardINF(adapter, args).args == ForwardINF(adapter, learning_rate=0.5, parameters=["transformer.h.*"]).args
    assert ForwardINF(adapter, args, steps=7).args.steps == 7
    assert "learning_rate" in ForwardINFArguments.help() and ForwardINFArguments.help()["steps"]
    assert ForwardINF(adapter, args).args.to_dict()["parameters"] == ["transformer.h.*"]
    with pytest.raises(ValueError, match="unknown option.*'lr'"):
        ForwardINF(adapter, lr=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        ForwardINF(adapter, learning_rate=-1)
    with pytest.raises(ValueError, match="optimizer"):
        ForwardINF(adapter, optimizer="lbfgs")


def test_candidate_sets_score_only_each_querys_own_set(gpt2, gpt2_tok, causal_rows):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    full = ForwardINF(adapter, progress=False).attribute(**causal_rows)
    sets = {"q1": ["c0", "c3"], "q2": ["c5", "c1", "c2"]}
    partial = ForwardINF(adapter, progress=False).attribute(**causal_rows, candidate_sets=sets)
    for q, query_id in enumerate(partial.query_ids):
        inside = [partial.candidate_ids.index(c) for c in sets[query_id]]
        outside = [i for i in range(len(partial.candidate_ids)) if i not in inside]
        np.testing.assert_allclose(partial.scores[q, inside], full.scores[q, inside], atol=1e-6)
        assert np.isnan(partial.scores[q, outside]).all()
    with pytest.raises(ValueError, match="not among the candidates"):
        ForwardINF(adapter, progress=False).attribute(**causal_rows, candidate_sets={"q1": ["zz"], "q2": ["c0"]})
    with pytest.raises(ValueError, match="no entry"):
        ForwardINF(adapter, progress=False).attribute(**causal_rows, candidate_sets={"q1": ["c0"]})


def test_numbers_given_as_text_are_read_or_refused(gpt2, gpt2_tok):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    assert ForwardINF(adapter, learning_rate="1e-3", steps="2").args.learning_rate == 1e-3  # YAML reads 1e-3 as text
    with pytest.raises(ValueError, match=r"steps must be a number \(int\), got 'many'"):
        ForwardINF(adapter, steps="many")
