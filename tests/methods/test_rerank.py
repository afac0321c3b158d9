import numpy as np

from hf_attrib import ForwardINF
from hf_attrib.adapters import CausalLMAdapter
from hf_attrib.methods.bm25 import BM25
from hf_attrib.methods.rerank import BM25Rerank


def test_rerank_orders_the_shortlist_by_forward_inf_and_the_rest_by_bm25(gpt2, gpt2_tok, causal_rows):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    queries, candidates = causal_rows["queries"], causal_rows["candidates"]
    k = 3
    result = BM25Rerank(ForwardINF(adapter, progress=False), k=k).attribute(queries, candidates)
    lexical = BM25().attribute(queries, candidates)
    model = ForwardINF(adapter, progress=False).attribute(queries, candidates)
    for q in range(len(queries)):
        bm25_order = list(np.argsort(-lexical.scores[q], kind="stable"))
        shortlist, rest = bm25_order[:k], bm25_order[k:]
        expected = sorted(shortlist, key=lambda c, q=q: -model.scores[q, c]) + rest
        assert list(result.ranking(q)) == expected
        np.testing.assert_allclose(result.scores[q, shortlist], model.scores[q, shortlist], atol=1e-6)
