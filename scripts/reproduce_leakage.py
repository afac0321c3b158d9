"""Leakage detection, mislabel detection and memorization pairs (the seed's §4.2–4.3) on scikit-learn's digits.

1. Leakage: a small CNN trained on digits with 10% of the held-out test images copied into its training set;
   each leaked test image ranks the whole training set with Forward-INF (the seed's code: one Adam step,
   lr 5e-3, all parameters; and a small-step variant with the relative score) and with TracIn (all
   parameters; dot products and cosine); top-1 / top-5 detection of the copy. The seed duplicates the query
   to a batch of 2; with no batch-dependent layer that is the same mean loss, so it is not done here.
   A diagnostic row divides a small-step Forward-INF's scores by each candidate's gradient length (not the
   seed's method: it needs a backward pass per candidate).
2. Mislabels: the CNN trained with 10% of its labels flipped; training points ranked by self-influence
   (Forward-INF: ascend on the point, its own loss change; TracIn: squared gradient norm); AUC.
3. Memorization pairs: every test image's top Forward-INF training image under the leakage model; the
   highest-scoring pairs drawn as a PNG grid, exact duplicates titled in red.

    python scripts/reproduce_leakage.py [--quick] [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hf_attrib import ForwardINF, TracIn
from hf_attrib.adapters import ClassifierAdapter
from hf_attrib.evaluation.detection import (
    auc,
    detection_rates,
    divided_by_gradient_norm,
    forward_inf_self_influence,
    leaked_digits,
    memorization_pairs,
    tracin_self_influence,
)
from hf_attrib.evaluation.studies import train_classifier
from hf_attrib.report import pair_grid

SEED_LEAKAGE = {"optimizer": "adam", "learning_rate": 5e-3, "steps": 1, "parameters": "all"}
SMALL_STEP = {"optimizer": "sgd", "learning_rate": 1e-3, "steps": 1, "parameters": "all"}
DIAGNOSTIC = "forward-inf (sgd 1e-3, 1 step) / gradient length"


def timed(function):
    start = time.perf_counter()
    return function(), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 training digits, 10 epochs, memorization "
                                                             "pairs of 300 test images (about a minute)")
    parser.add_argument("--output-dir", default="", help="folder of the memorization grid (runs/leakage-<time>)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train_size, epochs = (600, 10) if args.quick else (1200, 30)
    out = Path(args.output_dir or f"runs/leakage-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    figures: dict = {"quick": args.quick, "train_size": train_size, "epochs": epochs}

    split = leaked_digits(train_size=train_size, leak_share=0.1, seed=0)
    model, figures["train_leakage_s"] = timed(lambda: train_classifier("cnn", split.train, epochs=epochs))
    model.double()  # memorized copies have losses near 1e-7: float32 cannot tell their changes apart
    adapter = ClassifierAdapter(model, num_classes=10)
    leaked = [row for row in split.test if row["id"] in split.duplicate_of]
    methods = {
        "forward-inf (seed: adam 5e-3, 1 step)": ForwardINF(adapter, progress=False, batch_size=256, **SEED_LEAKAGE),
        "forward-inf (adam 1e-4, 1 step, relative)": ForwardINF(
            adapter, optimizer="adam", learning_rate=1e-4, steps=1, score="relative", parameters="all",
            batch_size=256, progress=False),
        "tracin (dot product)": TracIn(adapter, parameters="all", batch_size=256, progress=False),
        "tracin (cosine)": TracIn(adapter, parameters="all", normalize=True, batch_size=256, progress=False),
    }
    figures["leakage"] = {}
    for name, method in methods.items():
        result, seconds = timed(lambda m=method: m.attribute(leaked, split.train))
        figures["leakage"][name] = {**detection_rates(result, split.duplicate_of), "seconds": seconds}
    divided, seconds = timed(lambda: divided_by_gradient_norm(
        ForwardINF(adapter, progress=False, batch_size=256, **SMALL_STEP).attribute(leaked, split.train),
        adapter, split.train, parameters="all"))
    figures["leakage"][DIAGNOSTIC] = {**detection_rates(divided, split.duplicate_of), "seconds": seconds}
    figures["leakage_rows"] = {"leaked": len(leaked), "training_rows": len(split.train)}

    noisy = leaked_digits(train_size=train_size, leak_share=0.0, mislabel_share=0.1, seed=1)
    noisy_model, _ = timed(lambda: train_classifier("cnn", noisy.train, epochs=epochs))
    noisy_adapter = ClassifierAdapter(noisy_model, num_classes=10)
    self_influence = {
        "forward-inf (adam 5e-3, 1 step)": forward_inf_self_influence(noisy_adapter, noisy.train, **SEED_LEAKAGE),
        "forward-inf (sgd 1e-2, 1 step)": forward_inf_self_influence(
            noisy_adapter, noisy.train, optimizer="sgd", learning_rate=1e-2, steps=1, parameters="all"),
        "tracin": tracin_self_influence(noisy_adapter, noisy.train, parameters="all"),
    }
    figures["mislabel_auc"] = {name: auc(scores, noisy.flipped) for name, scores in self_influence.items()}
    figures["mislabel_auc"]["flipped"] = int(noisy.flipped.sum())

    every, pairs_s = timed(lambda: ForwardINF(adapter, progress=False, batch_size=256, **SEED_LEAKAGE)
                           .attribute(split.test[:300] if args.quick else split.test, split.train))
    pairs = memorization_pairs(every, k=10)
    images = {row["id"]: row["input"][0] for row in split.train + split.test}
    exact = {(q, c) for q, c, _ in pairs if np.array_equal(images[q], images[c])}
    grid = pair_grid(pairs, images, out / "memorization-pairs.png", marked=exact,
                     title="test image (top) and its top Forward-INF training image; exact duplicates in red")
    figures["memorization"] = {"pairs": [list(p) for p in pairs], "exact_duplicates_in_top_10": len(exact),
                               "grid": str(grid), "seconds": pairs_s}

    leak = figures["leakage"]
    print(f"digits, small CNN ({epochs} epochs): {len(split.train)} training images incl. "
          f"{figures['leakage_rows']['leaked']} copies of test images")
    print(f"{'leakage detection':<50} | {'top-1':>6} | {'top-5':>6} | seconds")
    for name, row in leak.items():
        print(f"{name:<50} | {row['top1']:6.3f} | {row['top5']:6.3f} | {row['seconds']:.1f}")
    print(f"\nmislabel detection by self-influence ({figures['mislabel_auc']['flipped']} of {len(noisy.train)} "
          "flipped): AUC")
    for name, value in figures["mislabel_auc"].items():
        if name != "flipped":
            print(f"  {name:<34} | {value:.3f}")
    print(f"\nmemorization pairs: {len(exact)} of the top 10 are exact duplicates; grid: {grid}")
    print("target: Forward-INF leakage top-1 >= 0.95 (the diagnostic row is not the seed's method)")
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
