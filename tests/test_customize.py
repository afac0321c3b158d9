"""customize(): which weights move (UNet subsets, LoRA merged back, the new token's embedding) and which do not."""

import numpy as np
import pytest
import torch
from PIL import Image

from hf_attrib.customize import add_new_tokens, customize
from hf_attrib.tiny.diffusion import tiny_stable_diffusion

PROMPT = "a photo of <v1> digit"


def exemplar() -> Image.Image:
    return Image.fromarray((np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8))


@pytest.fixture
def pipeline():
    return tiny_stable_diffusion(["a handwritten digit 1", "a photo of digit"])


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return {k for k, v in module.state_dict().items() if k in before and not torch.equal(before[k], v)}


def test_train_embedding_moves_only_the_new_tokens_row_and_the_chosen_unet_weights(pipeline):
    vocabulary = len(pipeline.tokenizer)
    assert add_new_tokens(pipeline, PROMPT) == ["<v1>"]
    token = pipeline.tokenizer.convert_tokens_to_ids("<v1>")
    assert token == vocabulary  # the new token was added last
    rows_before = pipeline.text_encoder.get_input_embeddings().weight.detach().clone()
    unet_before = snapshot(pipeline.unet)
    flags = {n: p.requires_grad for n, p in pipeline.text_encoder.named_parameters()}
    history = customize(pipeline, [exemplar()], PROMPT, train="cross-attn-kv", train_embedding=True, epochs=3,
                        repeats=2, progress=False)
    assert len(history) == 3 and all(np.isfinite(history))
    weight = pipeline.text_encoder.get_input_embeddings().weight.detach()
    assert weight.shape == rows_before.shape  # the token already there is not added twice
    assert torch.equal(weight[:token], rows_before[:token])  # every other row exactly as it was
    assert not torch.equal(weight[token], rows_before[token])
    moved = changed(unet_before, pipeline.unet)
    assert moved and all("attn2.to_k" in k or "attn2.to_v" in k for k in moved)
    assert {n: p.requires_grad for n, p in pipeline.text_encoder.named_parameters()} == flags
    assert not pipeline.unet.training and not pipeline.text_encoder.training


def test_embedding_only_and_lora(pipeline):
    unet_before = snapshot(pipeline.unet)
    customize(pipeline, [exemplar()], PROMPT, train="none", train_embedding=True, epochs=2, repeats=1,
              progress=False)
    assert not changed(unet_before, pipeline.unet)
    customize(pipeline, [exemplar()], PROMPT, train="lora", epochs=2, repeats=1, progress=False)
    assert type(pipeline.unet).__name__ == "UNet2DConditionModel"  # LoRA merged and unloaded
    assert set(pipeline.unet.state_dict()) == set(unet_before)
    assert changed(unet_before, pipeline.unet)


def test_bad_options_are_refused_before_training(pipeline):
    before = snapshot(pipeline.unet)
    with pytest.raises(ValueError, match="train_embedding=True"):
        customize(pipeline, [exemplar()], PROMPT, train="none")
    with pytest.raises(ValueError, match="needs a <token>"):
        customize(pipeline, [exemplar()], "a photo of a digit", train_embedding=True)
    with pytest.raises(ValueError, match="train must be one of"):
        customize(pipeline, [exemplar()], PROMPT, train="everything")
    assert not changed(before, pipeline.unet)
