"""Stable Diffusion (`diffusers.StableDiffusionPipeline`): the denoising loss of each image-caption pair.

Ascent moves only UNet parameters, so an example's VAE latents and caption embeddings never change:
they are computed once and cached. The loss uses **common random numbers**: T fixed timesteps spread
over the schedule and D noise draws seeded by the example's id, identical before and after ascent —
without them a score would be the difference of two noisy estimates.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hf_attrib.adapters.base import ModelAdapter, require_text
from hf_attrib.adapters.selection import ParsedSelection, Selection, parse_selection
from hf_attrib.data.rows import Row

PRESETS = {
    "cross-attn-kv": ("*attn2.to_k.weight", "*attn2.to_v.weight"),
    "attn": ("*attn1.*", "*attn2.*"),
    "unet": None,  # every UNet parameter
}


def load_image(value: Any, identifier: str, column: str):
    """A PIL image in RGB from a PIL image, a path, or a datasets image dict; errors name row and file."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, dict) and ("bytes" in value or "path" in value):  # datasets' Image feature, undecoded
        import io

        value = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
    if isinstance(value, str | Path | type(None)) or hasattr(value, "read"):
        if value is None:
            raise ValueError(f"row {identifier!r}: column {column!r} is empty")
        try:
            with Image.open(value) as opened:
                image = opened.copy()
        except (OSError, UnidentifiedImageError) as error:
            raise ValueError(f"row {identifier!r}: cannot read image {str(value)!r} ({error})") from None
    elif isinstance(value, Image.Image):
        image = value
    else:
        raise ValueError(f"row {identifier!r}: column {column!r} holds a {type(value).__name__}, not an image")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def to_pixels(image, resolution: int) -> torch.Tensor:
    """Resize the short side to `resolution`, center-crop, scale to [-1, 1]; shape [3, r, r]."""
    from PIL import Image

    image = image if image.mode == "RGB" else image.convert("RGB")
    width, height = image.size
    scale = resolution / min(width, height)
    resized = image.resize((max(resolution, round(width * scale)), max(resolution, round(height * scale))),
                           Image.BICUBIC)
    left, top = (resized.width - resolution) // 2, (resized.height - resolution) // 2
    cropped = resized.crop((left, top, left + resolution, top + resolution))
    array = np.asarray(cropped, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


def id_seed(identifier: str, salt: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{identifier}".encode()).digest()[:8], "little") & (2**63 - 1)


class StableDiffusionAdapter(ModelAdapter):
    """Per-example denoising loss of a Stable Diffusion pipeline; rows ``{"id", "image", "caption"}``.

    `timesteps` fixed timesteps spread evenly over the training schedule, `noise_draws` Gaussian draws
    per timestep seeded by the row id and `seed`; the loss is the MSE of the UNet's prediction (epsilon
    or v, following the scheduler) averaged over both. ``flip=True`` adds the mirror image as a second
    view: scores take the better of the two. ``parameters`` presets: ``"cross-attn-kv"`` (default),
    ``"attn"``, ``"unet"``, plus the generic selections and ``"lora"``.
    """

    default_selection: Selection = "cross-attn-kv"

    def __init__(self, pipeline: Any, *, id_column: str = "id", image_column: str = "image",
                 caption_column: str = "caption", timesteps: int = 10, noise_draws: int = 1, flip: bool = False,
                 resolution: int | None = None, seed: int = 0) -> None:
        for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            if getattr(pipeline, part, None) is None:
                raise ValueError(f"pipeline has no {part!r}; pass a diffusers StableDiffusionPipeline")
        super().__init__(pipeline.unet, id_column=id_column)
        if timesteps < 1 or noise_draws < 1:
            raise ValueError(f"timesteps and noise_draws must be >= 1, got {timesteps}, {noise_draws}")
        self.pipeline = pipeline
        self.image_column, self.caption_column = image_column, caption_column
        self.timesteps, self.noise_draws, self.flip, self.seed = timesteps, noise_draws, flip, seed
        self.resolution = resolution or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
        total = pipeline.scheduler.config.num_train_timesteps
        self.schedule = torch.tensor([int((i + 0.5) * total / timesteps) for i in range(timesteps)])
        self._cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, revision: str | None = None, **options):
        """Load a pipeline from a Hub id or a local folder (safetensors only, no remote code)."""
        from diffusers import StableDiffusionPipeline

        pipeline = StableDiffusionPipeline.from_pretrained(
            name_or_path, revision=revision, use_safetensors=True, safety_checker=None, requires_safety_checker=False
        )
        pipeline.set_progress_bar_config(disable=True)
        return cls(pipeline, **options)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "image_column": self.image_column, "caption_column": self.caption_column,
                "timesteps": self.timesteps, "noise_draws": self.noise_draws, "flip": self.flip,
                "resolution": self.resolution, "seed": self.seed,
                "prediction_type": self.pipeline.scheduler.config.prediction_type}

    def resolve_selection(self, selection: Selection | ParsedSelection) -> ParsedSelection:
        if isinstance(selection, str) and selection in PRESETS:
            patterns = PRESETS[selection]
            return parse_selection("all" if patterns is None else list(patterns))
        return super().resolve_selection(selection)

    def lora_config(self, rank: int, alpha: float, dropout: float = 0.0):
        from peft import LoraConfig

        return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, init_lora_weights=True,
                          target_modules=["to_q", "to_k", "to_v", "to_out.0"])

    # ---- rows -> cached latents and embeddings --------------------------------------------------------
    @torch.no_grad()
    def encode(self, row: Row) -> tuple[torch.Tensor, torch.Tensor]:
        """(latents [views, 4, h, w] times the VAE scaling factor, caption embedding [tokens, dim])."""
        identifier = self.row_id(row)
        caption = require_text(row, self.caption_column, identifier)
        if self.image_column not in row:
            raise ValueError(f"row {identifier!r} has no {self.image_column!r} column (columns: {sorted(row)})")
        image = load_image(row[self.image_column], identifier, self.image_column)
        key = (identifier, hashlib.sha256(image.tobytes() + caption.encode()).hexdigest())
        if key not in self._cache:
            pixels = to_pixels(image, self.resolution)
            views = torch.stack([pixels, pixels.flip(-1)] if self.flip else [pixels])
            vae = self.pipeline.vae
            posterior = vae.encode(views.to(vae.device, vae.dtype)).latent_dist
            latents = posterior.mean * vae.config.scaling_factor  # the mean: deterministic
            tokens = self.pipeline.tokenizer(caption, padding="max_length", truncation=True, return_tensors="pt",
                                             max_length=self.pipeline.tokenizer.model_max_length).input_ids
            embedding = self.pipeline.text_encoder(tokens.to(self.pipeline.text_encoder.device))[0][0]
            self._cache[key] = (latents, embedding)
        return self._cache[key]

    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        encoded = [self.encode(row) for row in rows]
        latents = torch.stack([lat for lat, _ in encoded])  # [B, V, 4, h, w]
        noise = torch.stack([self._noise(self.row_id(row), latents.shape[2:]) for row in rows])
        return {"latents": latents, "embeddings": torch.stack([emb for _, emb in encoded]),
                "noise": noise.to(latents.device, latents.dtype)}

    def _noise(self, identifier: str, shape: torch.Size) -> torch.Tensor:
        generator = torch.Generator().manual_seed(id_seed(identifier, self.seed))
        return torch.randn((self.noise_draws, self.timesteps, *shape), generator=generator)  # [D, T, 4, h, w]

    # ---- losses ---------------------------------------------------------------------------------------
    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Training draws fresh timesteps and noise (torch's global generator), as diffusion training does;
        the fixed draws are for scoring only."""
        latents = batch["latents"][:, 0]
        steps = torch.randint(0, self.pipeline.scheduler.config.num_train_timesteps, (latents.shape[0],))
        noise = torch.randn_like(latents)
        return self._mse(model, latents, noise, steps.to(latents.device), batch["embeddings"]).mean()

    def _mse(self, model, clean, eps, steps, context) -> torch.Tensor:
        scheduler = self.pipeline.scheduler
        prediction = model(scheduler.add_noise(clean, eps, steps), steps, encoder_hidden_states=context).sample
        v_prediction = scheduler.config.prediction_type == "v_prediction"
        target = scheduler.get_velocity(clean, eps, steps) if v_prediction else eps
        return (prediction.float() - target.float()).pow(2).mean(dim=(1, 2, 3))

    def per_example_loss_terms(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        latents, noise, embeddings = batch["latents"], batch["noise"], batch["embeddings"]
        b, v = latents.shape[:2]
        d, t = noise.shape[1:3]
        shape = latents.shape[2:]
        # every (example, view, draw, timestep) as one row of a UNet batch
        clean = latents[:, :, None, None].expand(b, v, d, t, *shape).reshape(-1, *shape)
        eps = noise[:, None].expand(b, v, d, t, *shape).reshape(-1, *shape)
        steps = self.schedule.to(latents.device).view(1, 1, 1, t).expand(b, v, d, t).reshape(-1)
        context = embeddings[:, None, None, None].expand(b, v, d, t, *embeddings.shape[1:])
        mse = self._mse(model, clean, eps, steps, context.reshape(-1, *embeddings.shape[1:]))
        return mse.view(b, v, d, t).mean(dim=2)  # [B, V, T]

    def per_example_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.per_example_loss_terms(model, batch).mean(dim=(1, 2))

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The first view's latents, flattened: the space of the nearest-neighbour baseline."""
        return batch["latents"][:, 0].flatten(1)
