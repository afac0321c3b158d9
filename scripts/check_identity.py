"""Forward-INF's first-order identity, measured: with one SGD ascent step of size η,
score(z_i) = ℓ(θ̂ + η∇ℓ(z_q), z_i) − ℓ(θ̂, z_i) ≈ η ∇ℓ(z_i)·∇ℓ(z_q).

For a tiny GPT-2, T5 and BERT in float64, compares Forward-INF's scores with the gradient dot products
computed independently with autograd, for several η. Prints a table, then one JSON line.

    python scripts/check_identity.py [--quick]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from hf_attrib import ForwardINF
from hf_attrib.adapters import CausalLMAdapter, MaskedLMAdapter
from hf_attrib.tiny.models import tiny_bert, tiny_gpt2, tiny_t5
from hf_attrib.tiny.tokenizers import bert_tokenizer, gpt2_tokenizer, t5_tokenizer

TEXTS = ["Varnok is a city in Belmora .", "Quell was born in Tesh , a town of Belmora .",
         "Tesh lies in the south of Belmora .", "Ardu works as a painter in Varnok ."]
SPANS = [{"id": f"s{i}", "input": t.replace(w, "<extra_id_0>", 1), "target": f"<extra_id_0> {w}"}
         for i, (t, w) in enumerate(zip(TEXTS, ["Belmora", "Tesh", "Tesh", "Ardu"], strict=True))]


def flat_grad(adapter, row):
    params = list(adapter.model.parameters())
    loss = adapter.per_example_loss(adapter.model, adapter.collate([row]))[0]
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])


def relative_error(adapter, queries, candidates, eta):
    result = ForwardINF(adapter, learning_rate=eta, steps=1, progress=False).attribute(queries, candidates)
    errors = []
    for q, query in enumerate(queries):
        g = flat_grad(adapter, query)
        expected = np.array([eta * torch.dot(flat_grad(adapter, c), g).item() for c in candidates])
        errors.append(np.abs(result.scores[q] - expected).max() / np.abs(expected).max())
    return float(max(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer learning rates")
    args = parser.parse_args()
    torch.set_num_threads(2)
    etas = [1e-3, 1e-5] if args.quick else [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
    causal_rows = [{"id": f"c{i}", "text": t} for i, t in enumerate(TEXTS)]
    queries = [{"id": "q1", "prompt": "Varnok is a city in", "target": "Belmora"},
               {"id": "q2", "prompt": "Quell was born in", "target": "Tesh"}]
    gpt2_tok, t5_tok, bert_tok = gpt2_tokenizer(TEXTS, 300), t5_tokenizer(TEXTS), bert_tokenizer(TEXTS)
    cases = {
        "gpt2": (CausalLMAdapter(tiny_gpt2(gpt2_tok, n_embd=32).double(), gpt2_tok), queries, causal_rows),
        "t5": (MaskedLMAdapter(tiny_t5(t5_tok).double(), t5_tok), SPANS[:2], SPANS),
        "bert": (MaskedLMAdapter(tiny_bert(bert_tok).double(), bert_tok), SPANS[:2], SPANS),
    }
    figures: dict[str, dict[str, float]] = {}
    print(f"{'model':<6} " + " ".join(f"{'eta=' + format(e, '.0e'):>12}" for e in etas))
    for name, (adapter, q, c) in cases.items():
        figures[name] = {f"{eta:.0e}": relative_error(adapter, q, c, eta) for eta in etas}
        print(f"{name:<6} " + " ".join(f"{figures[name][f'{e:.0e}']:>12.2e}" for e in etas))
    print("(max over queries of max|score - η g_c·g_q| / max|η g_c·g_q|; float64 models)")
    print(json.dumps({"relative_error": figures}))


if __name__ == "__main__":
    main()
