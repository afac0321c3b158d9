"""Shared fixtures: tiny real transformers models and tokenizers built here (nothing is downloaded)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from hf_attrib.tiny.models import tiny_bert, tiny_gpt2, tiny_t5  # noqa: E402
from hf_attrib.tiny.tokenizers import bert_tokenizer, gpt2_tokenizer, t5_tokenizer  # noqa: E402

torch.set_num_threads(2)

TEXTS = [
    "Varnok is a city in Belmora .",
    "Quell was born in Tesh , a town of Belmora .",
    "Tesh lies in the south of Belmora .",
    "Ardu works as a painter in Varnok .",
    "The river Sel flows through Tesh and Varnok .",
    "Belmora is a country whose language is Belmoran .",
]


@pytest.fixture(scope="session")
def gpt2_tok():
    return gpt2_tokenizer(TEXTS, vocab_size=400)


@pytest.fixture(scope="session")
def t5_tok():
    return t5_tokenizer(TEXTS)


@pytest.fixture(scope="session")
def bert_tok():
    return bert_tokenizer(TEXTS)


@pytest.fixture
def gpt2(gpt2_tok):
    return tiny_gpt2(gpt2_tok, n_embd=32, n_layer=2)


@pytest.fixture
def t5(t5_tok):
    return tiny_t5(t5_tok)


@pytest.fixture
def bert(bert_tok):
    return tiny_bert(bert_tok)


@pytest.fixture
def causal_rows():
    return {
        "queries": [
            {"id": "q1", "prompt": "Varnok is a city in", "target": "Belmora"},
            {"id": "q2", "prompt": "Quell was born in", "target": "Tesh"},
        ],
        "candidates": [{"id": f"c{i}", "text": text} for i, text in enumerate(TEXTS)],
    }


@pytest.fixture
def span_rows():
    return [
        {"id": "s1", "input": "Varnok is a city in <extra_id_0> .", "target": "<extra_id_0> Belmora"},
        {"id": "s2", "input": "Quell was born in <extra_id_0> , a town of Belmora .", "target": "<extra_id_0> Tesh"},
        {"id": "s3", "input": "<extra_id_0> works as a painter in Varnok .", "target": "<extra_id_0> Ardu"},
        {"id": "s4", "input": "The river Sel flows through <extra_id_0> and Varnok .", "target": "Tesh"},
    ]
