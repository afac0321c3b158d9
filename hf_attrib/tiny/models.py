"""Tiny transformers models built from configs, for the demo, tests and benchmarks.

No weights can be downloaded here, so models are built from configs and trained on data the project
generates. They are the real classes (`GPT2LMHeadModel`, `T5ForConditionalGeneration`,
`BertForMaskedLM`), only small.
"""

from __future__ import annotations

from typing import Any

import torch


def tiny_gpt2(tokenizer: Any, *, seed: int = 0, **config: Any):
    from transformers import GPT2Config, GPT2LMHeadModel

    options = dict(n_layer=2, n_head=4, n_embd=64, n_positions=128, resid_pdrop=0.0, embd_pdrop=0.0,
                   attn_pdrop=0.0)
    options.update(config)
    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), bos_token_id=eos, eos_token_id=eos, **options))
    return model.eval()


def tiny_t5(tokenizer: Any, *, seed: int = 0, **config: Any):
    from transformers import T5Config, T5ForConditionalGeneration

    options = dict(d_model=32, d_ff=64, d_kv=8, num_layers=2, num_decoder_layers=2, num_heads=4,
                   dropout_rate=0.0, relative_attention_num_buckets=8)
    options.update(config)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, **options,
    ))
    return model.eval()


def tiny_bert(tokenizer: Any, *, seed: int = 0, **config: Any):
    from transformers import BertConfig, BertForMaskedLM

    options = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                   max_position_embeddings=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    options.update(config)
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **options))
    return model.eval()
