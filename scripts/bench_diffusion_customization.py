"""Diffusion customization benchmark (a Table-8 analog on real handwriting).

A tiny Stable Diffusion pipeline (VAE, then UNet) is pretrained here on scikit-learn's digits (upscaled,
captioned "a handwritten digit N"; cached under runs/cache/ so reruns skip it). For each held-out exemplar: a
copy is customized on it with "a photo of <v1> digit" (whole UNet, 100 steps), generates an image, and the
image is traced against candidate sets of N training digits plus the exemplar. Prints top-1 and recall@10 of
Forward-INF (whole-UNet ascent; difference and relative scores), TracIn and nearest neighbour, every stage's
time, then one JSON line.

    python scripts/bench_diffusion_customization.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

PROMPT = "a photo of <v1> digit"
CACHE = Path(__file__).resolve().parent.parent / "runs" / "cache"


def pretrained(rows, epochs: int, timings: dict) -> Path:
    from hf_attrib.tiny.diffusion import pretrain_on_digits

    folder = CACHE / f"tiny-sd-digits-vae-{len(rows)}-{epochs}"
    if (folder / "model_index.json").is_file():
        timings["pretrain_s"] = 0.0
        return folder
    start = time.perf_counter()
    pipeline = pretrain_on_digits(rows, extra_captions=[PROMPT.replace("<v1> ", "")], vae_steps=300, epochs=epochs)
    pipeline.save_pretrained(folder, safe_serialization=True)
    timings["pretrain_s"] = time.perf_counter() - start
    return folder


def rank_of(result, target: str) -> int:
    return [c for c, _ in result.topk(len(result.candidate_ids))[0]].index(target) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 exemplars, N = 20 and 50 (1-2 minutes once the pretrained pipeline is cached)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    from diffusers import StableDiffusionPipeline

    from hf_attrib import ForwardINF
    from hf_attrib.adapters import StableDiffusionAdapter
    from hf_attrib.customize import customize, generate
    from hf_attrib.methods.nearest import NearestNeighbor
    from hf_attrib.methods.tracin import TracIn
    from hf_attrib.tiny.diffusion import digit_images, digit_rows

    images, targets = digit_images()
    train_rows = digit_rows(range(1500), images, targets)
    exemplars = list(range(1500, 1500 + (2 if args.quick else 10)))
    sizes = (20, 50) if args.quick else (100, 1000)
    timesteps = 10
    timings: dict[str, float] = {}
    base = pretrained(train_rows, 3, timings)  # shared by --quick and the full run
    rng = np.random.default_rng(0)
    ranks: dict[str, dict[int, list[int]]] = {}
    stage = {"customize_s": 0.0, "generate_s": 0.0}
    for index in exemplars:
        pipeline = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False)
        pipeline.set_progress_bar_config(disable=True)
        start = time.perf_counter()
        customize(pipeline, [images[index]], PROMPT, train="unet", epochs=100, learning_rate=1e-3, progress=False)
        stage["customize_s"] += time.perf_counter() - start
        start = time.perf_counter()
        query = dict(generate(pipeline, [PROMPT], steps=100, guidance_scale=1.0)[0], id="generated")
        stage["generate_s"] += time.perf_counter() - start
        exemplar = {"id": "exemplar", "image": images[index], "caption": PROMPT}
        adapter = StableDiffusionAdapter(pipeline, timesteps=timesteps)
        for n in sizes:
            picks = rng.choice(len(train_rows), size=n - 1, replace=False)
            candidates = [train_rows[i] for i in picks] + [exemplar]
            methods = {
                "forward-inf difference": (ForwardINF, {"optimizer": "adam", "learning_rate": 1e-3, "steps": 3,
                                                        "parameters": "unet", "progress": False}),
                "forward-inf relative": (ForwardINF, {"optimizer": "adam", "learning_rate": 1e-3, "steps": 3,
                                                      "parameters": "unet", "score": "relative", "progress": False}),
                "tracin": (TracIn, {"progress": False}),
                "nearest": (NearestNeighbor, {}),
            }
            for name, (method, options) in methods.items():
                start = time.perf_counter()
                result = method(adapter, **options).attribute([query], candidates)
                key = f"{name.replace(' ', '_').replace('-', '_')}_N{n}_s"
                stage[key] = stage.get(key, 0.0) + time.perf_counter() - start
                ranks.setdefault(name, {}).setdefault(n, []).append(rank_of(result, "exemplar"))
        print(f"exemplar digit-{index}: ranks " + "; ".join(f"{m} {by_n}" for m, by_n in ranks.items()),
              file=sys.stderr, flush=True)
    print(f"{len(exemplars)} exemplars; candidate sets of N (the exemplar + N-1 pretraining digits)")
    print(f"{'method':<24} | " + " | ".join(f"top-1 N={n:<5} | R@10 N={n:<5}" for n in sizes))
    print("-" * (27 + 34 * len(sizes)))
    figures = {}
    for name, by_size in ranks.items():
        cells = []
        for n in sizes:
            r = np.array(by_size[n])
            figures[f"{name} N={n}"] = {"top1": float(np.mean(r == 1)), "recall@10": float(np.mean(r <= 10)),
                                        "ranks": r.tolist()}
            cells.append(f"{np.mean(r == 1):11.2f} | {np.mean(r <= 10):10.2f}")
        print(f"{name:<24} | " + " | ".join(cells))
    timings.update({k: round(v, 1) for k, v in stage.items()})
    print(f"\nstage times, summed over the {len(exemplars)} exemplars (s):")
    for key, value in timings.items():
        print(f"  {key:<36} {value:9.1f}")
    print(json.dumps({"quick": args.quick, "exemplars": len(exemplars), "results": figures, "seconds": timings}))


if __name__ == "__main__":
    main()
