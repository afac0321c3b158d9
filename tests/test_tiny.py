"""Tokenizers trained here are the same every time (the BPE trainer breaks ties in a random order)."""

from hf_attrib.tiny.tokenizers import clip_tokenizer, gpt2_tokenizer

TEXTS = ["a handwritten digit 3", "a photo of sks digit", "the digit 7 is odd", "an even digit 8"] * 3


def test_bpe_tokenizers_are_deterministic():
    for build in (gpt2_tokenizer, clip_tokenizer):
        first, second = build(TEXTS), build(TEXTS)
        assert first.get_vocab() == second.get_vocab()
        assert first(TEXTS[1])["input_ids"] == second(TEXTS[1])["input_ids"]
