"""The demo's image part: trace an image a customized tiny Stable Diffusion generates back to the exemplar
it was customized on.

1. pretrain a tiny pipeline (VAE, then UNet) here on scikit-learn's handwritten digits, captioned
   "a handwritten digit N"; save it and load it back with `from_pretrained` (the Hub code path);
2. customize it on one held-out digit with "a photo of <v1> digit" (a new token), generate an image;
3. rank the exemplar among pretraining digits with Forward-INF (relative score) and nearest neighbour;
4. write each method's result and a PNG grid: the generated image, then the top-k with their scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hf_attrib.engine.arguments import Arguments

PROMPT = "a photo of <v1> digit"


@dataclass
class ImageDemoArguments(Arguments):
    """Options of the demo's image trace; the defaults are the embedded run of ``make demo``."""

    pretrain_images: int = field(default=300, metadata={"help": "Digits the tiny pipeline is pretrained on."})
    vae_steps: int = field(default=200, metadata={"help": "VAE training steps."})
    pretrain_epochs: int = field(default=8, metadata={"help": "UNet pretraining epochs."})
    customize_epochs: int = field(default=100, metadata={"help": "Customization steps on the exemplar."})
    candidates: int = field(default=100, metadata={"help": "Candidates ranked: the exemplar + pretraining digits."})
    timesteps: int = field(default=10, metadata={"help": "Fixed timesteps of the denoising loss."})
    top_k: int = field(default=8, metadata={"help": "Candidates shown in the grid."})
    seed: int = field(default=0, metadata={"help": "Seed of the data split, the model and training."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})

    def __post_init__(self) -> None:
        if not 2 <= self.candidates <= self.pretrain_images + 1:
            raise ValueError(f"candidates must be in [2, pretrain_images + 1], got {self.candidates}")


@dataclass
class ImageDemoReport:
    ranks: dict[str, int]
    candidates: int
    grids: dict[str, Path]
    seconds: dict[str, float]


def run_image_demo(run_dir: str | Path, args: ImageDemoArguments | None = None) -> ImageDemoReport:
    from hf_attrib.adapters import StableDiffusionAdapter
    from hf_attrib.customize import customize, generate
    from hf_attrib.methods import ForwardINF
    from hf_attrib.methods.nearest import NearestNeighbor
    from hf_attrib.report import image_grid
    from hf_attrib.runs import RunInfo, examples_by_id
    from hf_attrib.tiny.diffusion import digit_images, digit_rows, pretrain_on_digits

    args = args or ImageDemoArguments()
    run_dir = Path(run_dir)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        seconds[stage] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    images, labels = digit_images()
    order = np.random.default_rng(args.seed).permutation(len(images))
    pretrain = digit_rows(order[:args.pretrain_images], images, labels)
    exemplar_index = int(order[args.pretrain_images])
    pipeline = pretrain_on_digits(pretrain, extra_captions=[PROMPT.replace("<v1> ", "")], vae_steps=args.vae_steps,
                                  epochs=args.pretrain_epochs, batch_size=32, seed=args.seed, progress=args.progress)
    pipeline.save_pretrained(run_dir / "pipeline", safe_serialization=True)
    lap("pretrain")

    adapter = StableDiffusionAdapter.from_pretrained(str(run_dir / "pipeline"), timesteps=args.timesteps)
    customize(adapter.pipeline, [images[exemplar_index]], PROMPT, train="unet", epochs=args.customize_epochs,
              seed=args.seed, progress=args.progress)
    generated = generate(adapter.pipeline, [PROMPT], seeds=[args.seed], steps=100, guidance_scale=1.0)
    query = dict(generated[0], id="generated")
    generated.save_to_disk(str(run_dir / "generated"))
    lap("customize+generate")

    exemplar = {"id": f"exemplar-digit-{exemplar_index}", "image": images[exemplar_index], "caption": PROMPT}
    candidates = pretrain[:args.candidates - 1] + [exemplar]
    by_id = {row["id"]: row["image"] for row in candidates}
    methods = {
        "forward-inf": ForwardINF(adapter, optimizer="adam", learning_rate=1e-3, steps=3, parameters="unet",
                                  score="relative", progress=args.progress),
        "nearest": NearestNeighbor(adapter),
    }
    ranks, grids = {}, {}
    info = RunInfo.for_model(adapter.pipeline.unet, "tiny Stable Diffusion pretrained and customized here")
    info.add_dataset("candidates", candidates, source="scikit-learn digits")
    info.stages.update(seconds)
    examples = examples_by_id([query], candidates)
    for name, method in methods.items():
        with info.stage(name):
            result = method.attribute([query], candidates)
        result.save(run_dir / "images" / name, info=info, relevant={query["id"]: {exemplar["id"]}},
                    examples=examples, top_k=args.top_k)
        ranked = result.topk(len(candidates))[0]
        ranks[name] = [c for c, _ in ranked].index(exemplar["id"]) + 1
        grids[name] = image_grid(query["image"], PROMPT, [(c, s, by_id[c], c == exemplar["id"])
                                                          for c, s in ranked[:args.top_k]],
                                 run_dir / "images" / f"{name}.png", title=f"{name}: top {args.top_k}")
        lap(name)
    return ImageDemoReport(ranks, len(candidates), grids, seconds)
