"""A tiny Stable Diffusion pipeline built from configs: the real diffusers classes, only small.

`UNet2DConditionModel` + `AutoencoderKL` + `CLIPTextModel` with a `CLIPTokenizer` trained here and a
`DDPMScheduler` (``steps_offset=1, clip_sample=False``), assembled into a `StableDiffusionPipeline`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def tiny_stable_diffusion(captions: Iterable[str], *, image_size: int = 32, seed: int = 0):
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from hf_attrib.tiny.tokenizers import clip_tokenizer

    tokenizer = clip_tokenizer(captions)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=8, sample_size=image_size,
    )
    unet = UNet2DConditionModel(
        sample_size=image_size // 2, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=8,
        norm_num_groups=8,
    )
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012, steps_offset=1, clip_sample=False)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    for module in (vae, text_encoder, unet):
        module.eval()
    return pipeline


def train_vae(vae, images, *, steps: int = 300, batch_size: int = 64, learning_rate: float = 2e-3,
              kl_weight: float = 1e-6, seed: int = 0) -> float:
    """Teach a tiny `AutoencoderKL` to reconstruct `images` (PIL), so that generated latents decode to
    images and re-encode close to where they came from; returns the last reconstruction loss."""
    from hf_attrib.adapters.diffusion import to_pixels

    size = vae.config.sample_size
    pixels = torch.stack([to_pixels(image, size) for image in images])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=learning_rate)
    vae.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        batch = pixels[torch.randint(0, len(pixels), (batch_size,), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        loss = (reconstruction - batch).pow(2).mean() + kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    vae.eval()
    for p in vae.parameters():
        p.grad = None
    return loss.item()


def digit_images(size: int = 32):
    """scikit-learn's 1,797 handwritten digits (real 8×8 scans), upscaled to `size`: (PIL images, labels)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    images = [Image.fromarray((im / 16 * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
              for im in data.images]
    return images, data.target


def digit_rows(indices, images, labels) -> list[dict]:
    """Rows ``{"id": "digit-i", "image", "caption": "a handwritten digit N"}``."""
    return [{"id": f"digit-{i}", "image": images[i], "caption": f"a handwritten digit {labels[i]}"} for i in indices]


def pretrain_on_digits(rows: list[dict], *, extra_captions: Iterable[str] = (), vae_steps: int = 300, epochs: int = 3,
                       batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0, progress: bool = False):
    """A tiny pipeline whose VAE, then UNet, are trained here on captioned `rows` (e.g. `digit_rows`);
    `extra_captions` join the tokenizer's training text (e.g. a customization prompt's words)."""
    from hf_attrib.adapters.diffusion import StableDiffusionAdapter
    from hf_attrib.engine.finetune import finetune

    pipeline = tiny_stable_diffusion([r["caption"] for r in rows] + list(extra_captions), seed=seed)
    train_vae(pipeline.vae, [r["image"] for r in rows], steps=vae_steps, seed=seed)
    finetune(StableDiffusionAdapter(pipeline, seed=seed), rows, epochs=epochs, learning_rate=learning_rate,
             batch_size=batch_size, seed=seed, progress=progress)
    return pipeline
