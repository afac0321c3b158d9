import re

import numpy as np
import pytest
from rank_bm25 import BM25Okapi, BM25Plus

from hf_attrib.data.fact_corpus import generate_fact_corpus
from hf_attrib.data.ftrace import fill_blank
from hf_attrib.methods.bm25 import BM25


@pytest.mark.parametrize("variant, cls", [("okapi", BM25Okapi), ("plus", BM25Plus)])
def test_bm25_equals_rank_bm25_called_directly(variant, cls):
    corpus = generate_fact_corpus(people=8, cities=6, countries=4, queries=6, seed=1)
    result = BM25(variant=variant).attribute(corpus.queries, corpus.abstracts)
    def words(text):  # the documented tokenization: lower-cased \w+ runs
        return re.findall(r"\w+", text.lower())

    index = cls([words(fill_blank(a)) for a in corpus.abstracts])
    expected = np.stack([index.get_scores(words(fill_blank(q))) for q in corpus.queries])
    np.testing.assert_allclose(result.scores, expected, rtol=1e-12)
    assert result.query_ids == [q["uuid"] for q in corpus.queries]
    assert result.candidate_ids == [a["id"] for a in corpus.abstracts]


def test_query_is_prompt_with_target_filled():
    candidates = [{"id": "a", "text": "Varnok lies in Belmora"}, {"id": "b", "text": "Varnok lies in Tesh"},
                  {"id": "c", "text": "a painter"}, {"id": "d", "text": "the river"}, {"id": "e", "text": "a town"}]
    result = BM25().attribute([{"id": "q", "prompt": "Varnok lies in", "target": "Tesh"}], candidates)
    assert result.topk(1)[0][0][0] == "b"


def test_rows_without_text_are_named():
    with pytest.raises(ValueError, match="'x'"):
        BM25().attribute([{"id": "x", "body": "?"}], [{"id": "a", "text": "t"}])
    with pytest.raises(ValueError, match="variant"):
        BM25(variant="bm11")
