"""Real transformers tokenizers built here from a text corpus (nothing can be downloaded).

Each is the family's own tokenizer class (`GPT2Tokenizer`, `T5Tokenizer`, `BertTokenizer`), built from a
vocabulary learned on the given texts, so it saves and loads with `save_pretrained`/`from_pretrained`
like one from the Hub.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable

WORD = re.compile(r"\w+|[^\w\s]")


def gpt2_tokenizer(texts: Iterable[str], vocab_size: int = 2000):
    """A byte-level BPE `GPT2Tokenizer` trained on `texts`; like GPT-2 it has no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Tokenizer

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer)
    vocab, merges = _trained_bpe(backend, ["<|endoftext|>"])
    # a prefix space makes a word one token wherever it stands, as at the start of a text
    return GPT2Tokenizer(vocab=vocab, merges=merges, add_prefix_space=True)


def _trained_bpe(backend, specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges of a trained BPE, with ids made canonical (specials, then sorted tokens).

    The trainer breaks ties between equally frequent pairs in a per-process random order, so the same
    texts could give other ids in another run; sorted ids make the tokenizer, and so the seeded models
    built on it, the same every time. (Merges keep their order: it decides how words split.)
    """
    model = json.loads(backend.to_str())["model"]
    tokens = specials + sorted(t for t in model["vocab"] if t not in specials)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return {token: i for i, token in enumerate(tokens)}, merges


def _words(texts: Iterable[str], lowercase: bool) -> list[str]:
    counts = Counter(w for text in texts for w in WORD.findall(text.lower() if lowercase else text))
    return sorted(counts, key=lambda w: (-counts[w], w))


def bert_tokenizer(texts: Iterable[str]):
    """A WordPiece `BertTokenizer` (lower-cased) whose vocabulary holds every word of `texts`."""
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = _words(texts, lowercase=True)
    chars = sorted({c for w in words for c in w})
    vocab = specials + words + [c for c in chars if c not in words] + [f"##{c}" for c in chars]
    return BertTokenizer(vocab={token: i for i, token in enumerate(dict.fromkeys(vocab))})


def t5_tokenizer(texts: Iterable[str], extra_ids: int = 10):
    """A unigram `T5Tokenizer` with sentinels ``<extra_id_0>``...; whole words outscore their spelling."""
    from transformers import T5Tokenizer

    words = _words(texts, lowercase=False)
    chars = sorted({c for w in words for c in w})
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{w}", -1.0) for w in words]
    vocab += [(c, -10.0) for c in chars]
    return T5Tokenizer(vocab=vocab, extra_ids=extra_ids)


def clip_tokenizer(texts: Iterable[str], vocab_size: int = 600, max_length: int = 16):
    """A `CLIPTokenizer` (lower-cased BPE with ``</w>`` word ends) trained on `texts`, for tiny text encoders."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    backend = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, end_of_word_suffix="</w>",
                                  show_progress=False)
    backend.train_from_iterator([t.lower() for t in texts], trainer)
    vocab, merges = _trained_bpe(backend, specials)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)
