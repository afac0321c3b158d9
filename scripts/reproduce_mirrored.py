"""The mirrored-hypothesis study (the seed's appendix B and E.1) on scikit-learn's digits, by retraining.

Tables analogous to the seed's:
  Table 4: Pearson / Spearman of Inf→ and Inf← for validation sizes 50 / 100 / 500 (mislabel ratio 0.5);
  Table 5: the same for mislabel ratios 20 / 30 / 50% (validation size 500);
  Table 7: Pearson / Spearman of Forward-INF and Inf← for validation sizes 50 / 100 / 500 (ratio 0.5);
each for logistic regression (L-BFGS, near-noiseless) and a small CNN (SGD, noisy); then, for logistic
regression, Tables 4 and 7's Pearson over `--seeds` different splits (seed 0 is the tables'). See
`hf_attrib.evaluation.studies` for the definitions and signs.

    python scripts/reproduce_mirrored.py [--quick] [--seeds N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from hf_attrib.evaluation.studies import MirroredArguments, run_mirrored

PAIRS = {"table4": "inf_forward~inf_backward", "table5": "inf_forward~inf_backward",
         "table7": "forward_inf~inf_backward"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="logistic only with 600 training digits, the CNN "
                                                             "with 5 epochs (about a minute)")
    parser.add_argument("--seeds", type=int, default=0, help="splits for the logistic spread (default 5, "
                                                               "--quick 2)")
    args = parser.parse_args()
    seeds = args.seeds or (2 if args.quick else 5)
    torch.set_num_threads(2)
    sizes, ratios = (50, 100, 500), (0.2, 0.3, 0.5)
    base = {"train_size": 600, "epochs": 5} if args.quick else {"train_size": 1050, "epochs": 30}
    figures: dict = {"quick": args.quick, "settings": base}
    start = time.perf_counter()
    for kind in ("logistic", "cnn"):
        cache: dict = {}
        runs = {}
        for size in sizes:
            runs[("size", size)] = run_mirrored(MirroredArguments(model=kind, validation_size=size, mislabel_ratio=0.5,
                                                                  **base), cache)
        for ratio in ratios:
            runs[("ratio", ratio)] = runs[("size", 500)] if ratio == 0.5 else run_mirrored(
                MirroredArguments(model=kind, validation_size=500, mislabel_ratio=ratio, **base), cache)
        figures[kind] = {
            "table4": {str(size): runs[("size", size)].correlations()[PAIRS["table4"]] for size in sizes},
            "table5": {f"{ratio:.0%}": runs[("ratio", ratio)].correlations()[PAIRS["table5"]] for ratio in ratios},
            "table7": {str(size): runs[("size", size)].correlations()[PAIRS["table7"]] for size in sizes},
            "groups_at_500_ratio_0.5": {k: v.tolist() for k, v in (
                ("inf_forward", runs[("size", 500)].inf_forward), ("inf_backward", runs[("size", 500)].inf_backward),
                ("forward_inf", runs[("size", 500)].forward_inf), ("mislabeled", runs[("size", 500)].mislabeled))},
        }
    spread: dict = {pair: {str(size): [] for size in sizes} for pair in ("table4", "table7")}
    for seed in range(seeds):
        cache = {}
        for size in sizes:
            run = run_mirrored(MirroredArguments(model="logistic", validation_size=size, mislabel_ratio=0.5,
                                                 seed=seed, **base), cache).correlations()
            for table in spread:
                spread[table][str(size)].append(run[PAIRS[table]]["pearson"])
    figures["logistic_pearson_by_seed"] = spread
    figures["seconds"] = round(time.perf_counter() - start, 1)
    titles = {"table4": "Table 4 - Inf-> vs Inf<-, by validation size (mislabel ratio 0.5)",
              "table5": "Table 5 - Inf-> vs Inf<-, by mislabel ratio (validation size 500)",
              "table7": "Table 7 - Forward-INF vs Inf<-, by validation size (mislabel ratio 0.5)"}
    print(f"digits: {base['train_size']} training images in 10 groups; CNN {base['epochs']} epochs")
    for table, title in titles.items():
        print(f"\n{title}")
        columns = list(figures["logistic"][table])
        print(f"{'model':<10} {'':<9}" + "".join(f"{c:>9}" for c in columns))
        for kind in ("logistic", "cnn"):
            for stat in ("pearson", "spearman"):
                print(f"{kind:<10} {stat:<9}" + "".join(f"{figures[kind][table][c][stat]:9.4f}" for c in columns))
    print(f"\nlogistic regression, Pearson over {seeds} splits (seeds 0-{seeds - 1}): mean [min, max]")
    print(f"{'validation size':<22}" + "".join(f"{size:>26}" for size in sizes))
    for table, label in (("table4", "Inf-> vs Inf<-"), ("table7", "Forward-INF vs Inf<-")):
        cells = [f"{np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]" for v in spread[table].values()]
        print(f"{label:<22}" + "".join(f"{c:>26}" for c in cells))
    print(f"\ntargets (logistic): Pearson(Inf->, Inf<-) >= 0.9; Pearson(Forward-INF, Inf<-) >= 0.95; "
          f"{figures['seconds']:.0f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
