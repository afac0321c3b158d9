"""Customizing a Stable Diffusion pipeline on exemplar images, and generating from it.

`customize` trains the pipeline's UNet in place on the exemplars with a prompt that may hold a new
token (``"a photo of <v1> dog"``: the token is added to the tokenizer and the text encoder's embeddings);
`generate` samples images and returns them as a `datasets.Dataset` (id, image, prompt, caption, seed, steps).
"""

from __future__ import annotations

from typing import Any

import torch

from hf_attrib.adapters.diffusion import StableDiffusionAdapter, load_image
from hf_attrib.engine.finetune import finetune

TRAINABLE = ("cross-attn-kv", "attn", "unet", "lora")


def add_new_tokens(pipeline: Any, prompt: str) -> list[str]:
    """Add the prompt's ``<...>`` words the tokenizer lacks as whole tokens; returns them."""
    words = [w for w in prompt.split() if w.startswith("<") and w.endswith(">") and len(w) > 2]
    new = [w for w in words if w not in pipeline.tokenizer.get_vocab()]
    if new:
        pipeline.tokenizer.add_tokens(new)
        pipeline.text_encoder.resize_token_embeddings(len(pipeline.tokenizer))
    return new


def customize(pipeline: Any, exemplars: list[Any], prompt: str, *, train: str = "cross-attn-kv",
              epochs: int = 50, learning_rate: float = 1e-3, repeats: int = 8, seed: int = 0,
              lora_rank: int = 4, progress: bool = True) -> list[float]:
    """Fine-tune ``pipeline.unet`` on `exemplars` (images or paths) captioned with `prompt`."""
    if train not in TRAINABLE:
        raise ValueError(f"train must be one of {TRAINABLE}, got {train!r}")
    if not exemplars:
        raise ValueError("no exemplar image to customize on")
    add_new_tokens(pipeline, prompt)
    rows = [{"id": f"exemplar-{i}", "image": load_image(image, f"exemplar-{i}", "image"), "caption": prompt}
            for i, image in enumerate(exemplars)]
    adapter = StableDiffusionAdapter(pipeline, seed=seed)
    unet = pipeline.unet
    flags = {name: p.requires_grad for name, p in unet.named_parameters()}
    options = dict(epochs=epochs, learning_rate=learning_rate, batch_size=min(8, len(rows) * repeats), seed=seed,
                   progress=progress)
    if train == "lora":
        from peft import get_peft_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            adapter.model = get_peft_model(unet, adapter.lora_config(lora_rank, 2.0 * lora_rank))
        history = finetune(adapter, rows * repeats, **options)
        pipeline.unet = adapter.model.merge_and_unload()
    else:
        chosen = {id(p) for _, p in adapter.parameters(unet, train)}
        for p in unet.parameters():
            p.requires_grad_(id(p) in chosen)
        history = finetune(adapter, rows * repeats, **options)
    for name, p in pipeline.unet.named_parameters():
        p.requires_grad_(flags.get(name, True))
    pipeline.unet.eval()
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
