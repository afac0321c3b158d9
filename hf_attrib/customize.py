"""Customizing a Stable Diffusion pipeline on exemplar images, and generating from it.

`customize` trains the pipeline's UNet in place on the exemplars with a prompt that may hold a new
token (``"a photo of <v1> dog"``: the token is added to the tokenizer and the text encoder's embeddings),
optionally with that token's embedding (textual inversion); `generate` samples images and returns them as
a `datasets.Dataset` (id, image, prompt, caption, seed, steps).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hf_attrib.adapters.diffusion import StableDiffusionAdapter, load_image
from hf_attrib.engine.finetune import finetune

TRAINABLE = ("cross-attn-kv", "attn", "unet", "lora", "none")


def add_new_tokens(pipeline: Any, prompt: str) -> list[str]:
    """Add the prompt's ``<...>`` words the tokenizer lacks as whole tokens; returns them."""
    new = [w for w in placeholder_words(prompt) if w not in pipeline.tokenizer.get_vocab()]
    if new:
        pipeline.tokenizer.add_tokens(new)
        pipeline.text_encoder.resize_token_embeddings(len(pipeline.tokenizer))
    return new


def placeholder_words(prompt: str) -> list[str]:
    return [w for w in prompt.split() if w.startswith("<") and w.endswith(">") and len(w) > 2]


class _UNetAndText(nn.Module):
    """The UNet and the text encoder as one trainable module (for training the new token's embedding)."""

    def __init__(self, unet: nn.Module, text_encoder: nn.Module) -> None:
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder


class _EmbeddingTrainingAdapter(StableDiffusionAdapter):
    """Training recomputes the caption embedding with gradients, so the new token's row can learn."""

    def collate(self, rows: list) -> dict[str, torch.Tensor]:
        tokenizer = self.pipeline.tokenizer
        ids = tokenizer([row[self.caption_column] for row in rows], padding="max_length", truncation=True,
                        max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
        return {**super().collate(rows), "input_ids": ids}

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        embeddings = model.text_encoder(batch["input_ids"].to(model.text_encoder.device))[0]
        return super().training_loss(model.unet, {**batch, "embeddings": embeddings})


def customize(pipeline: Any, exemplars: list[Any], prompt: str, *, train: str = "cross-attn-kv",
              train_embedding: bool = False, epochs: int = 50, learning_rate: float = 1e-3, repeats: int = 8,
              seed: int = 0, lora_rank: int = 4, progress: bool = True) -> list[float]:
    """Fine-tune ``pipeline.unet`` on `exemplars` (images or paths) captioned with `prompt`.

    `train` picks the UNet parameters that move (``"none"``: only the new token's embedding, which then
    needs ``train_embedding=True``). ``train_embedding=True`` also trains the embedding rows of the prompt's
    ``<...>`` tokens, as textual inversion does; every other row of the embedding matrix is left exactly as
    it was. Returns the loss of every step.
    """
    if train not in TRAINABLE:
        raise ValueError(f"train must be one of {TRAINABLE}, got {train!r}")
    if train == "none" and not train_embedding:
        raise ValueError("train='none' trains nothing; pass train_embedding=True to train the new token's embedding")
    if not exemplars:
        raise ValueError("no exemplar image to customize on")
    add_new_tokens(pipeline, prompt)
    token_ids = pipeline.tokenizer.convert_tokens_to_ids(placeholder_words(prompt))
    if train_embedding and not token_ids:
        raise ValueError(f"train_embedding needs a <token> in the prompt, e.g. 'a photo of <v1> dog'; got {prompt!r}")
    rows = [{"id": f"exemplar-{i}", "image": load_image(image, f"exemplar-{i}", "image"), "caption": prompt}
            for i, image in enumerate(exemplars)]
    kind = _EmbeddingTrainingAdapter if train_embedding else StableDiffusionAdapter
    adapter = kind(pipeline, seed=seed)
    modules = (pipeline.unet, pipeline.text_encoder)
    flags = [{name: p.requires_grad for name, p in m.named_parameters()} for m in modules]
    options = dict(epochs=epochs, learning_rate=learning_rate, batch_size=min(8, len(rows) * repeats), seed=seed,
                   progress=progress)
    pipeline.text_encoder.requires_grad_(False)
    if train == "lora":
        from peft import get_peft_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet = get_peft_model(pipeline.unet, adapter.lora_config(lora_rank, 2.0 * lora_rank))
    else:
        unet = pipeline.unet
        chosen = set() if train == "none" else {id(p) for _, p in adapter.parameters(unet, train)}
        for p in unet.parameters():
            p.requires_grad_(id(p) in chosen)
    adapter.model = unet
    if train_embedding:
        adapter.model = _UNetAndText(unet, pipeline.text_encoder)
        embedding = pipeline.text_encoder.get_input_embeddings().weight
        embedding.requires_grad_(True)
        frozen_rows = torch.ones(embedding.shape[0], 1, dtype=torch.bool)
        frozen_rows[token_ids] = False
        hook = embedding.register_hook(lambda grad: grad.masked_fill(frozen_rows.to(grad.device), 0.0))
    try:
        history = finetune(adapter, rows * repeats, **options)
    finally:
        if train_embedding:
            hook.remove()
    if train == "lora":
        pipeline.unet = unet.merge_and_unload()
    for module, before in zip((pipeline.unet, pipeline.text_encoder), flags, strict=True):
        for name, p in module.named_parameters():
            p.requires_grad_(before.get(name, True))
        module.eval()
    return history


def generate(pipeline: Any, prompts: list[str], *, seeds: list[int] | None = None, steps: int = 25,
             guidance_scale: float = 7.5, size: int | None = None):
    """One image per (prompt, seed); a `datasets.Dataset` with an Image column."""
    from datasets import Dataset, Features, Image, Value

    if not prompts:
        raise ValueError("no prompt to generate from")
    seeds = seeds if seeds is not None else [0]
    size = size or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    rows = []
    for prompt in prompts:
        for seed in seeds:
            image = pipeline(prompt, num_inference_steps=steps, guidance_scale=guidance_scale, height=size,
                             width=size, generator=torch.Generator().manual_seed(seed)).images[0]
            rows.append({"id": f"generated-{len(rows):04d}", "image": image, "prompt": prompt, "caption": prompt,
                         "seed": seed, "steps": steps})
    features = Features({"id": Value("string"), "image": Image(), "prompt": Value("string"),
                         "caption": Value("string"), "seed": Value("int64"), "steps": Value("int64")})
    return Dataset.from_list(rows, features=features)
