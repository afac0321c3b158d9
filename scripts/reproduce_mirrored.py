"""The mirrored-hypothesis study (the seed's appendix B and E.1) on scikit-learn's digits, by retraining.

Tables analogous to the seed's:
  Table 4: Pearson / Spearman of Inf→ and Inf← for validation sizes 50 / 100 / 500 (mislabel ratio 0.5);
  Table 5: the same for mislabel ratios 20 / 30 / 50% (validation size 500);
  Table 7: Pearson / Spearman of Forward-INF and Inf← for validation sizes 50 / 100 / 500 (ratio 0.5);
each for logistic regression (L-BFGS, near-noiseless) and a small CNN (SGD, noisy); then, for logistic
regression, Tables 4 and 7's Pearson over `--seeds` different splits (seed 0 is the tables'), and at
validation size 500 for stronger L2 (a retraining weighs directions by the inverse curvature, a short ascent
does not; strong L2 flattens the curvature). See
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


L2_STRENGTHS = (1e-2, 1e-1, 1.0)


def logistic_pearsons(seeds, sizes, l2: float, base: dict) -> dict:
    """Per table (4: Inf→ vs Inf←, 7: Forward-INF vs Inf←) and validation size, each split's Pearson."""
    out: dict = {table: {str(size): [] for size in sizes} for table in ("table4", "table7")}
    for seed in seeds:
        cache: dict = {}
        for size in sizes:
            run = run_mirrored(MirroredArguments(model="logistic", validation_size=size, mislabel_ratio=0.5,
                                                 seed=seed, l2=l2, **base), cache).correlations()
            for table in out:
                out[table][str(size)].append(run[PAIRS[table]]["pearson"])
    return out


def spread_text(values: list[float]) -> str:
    return f"{np.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="logistic only with 600 training digits, the CNN "
                                                             "with 5 epochs (about a minute)")
    parser.add_argument("--seeds", type=int, default=0, help="splits for the logistic spread (default 5, "
                                                               "--quick 1)")
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 5)
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
    spread = logistic_pearsons(range(seeds), sizes, 1e-3, base)
    by_l2 = {str(l2): {table: v["500"] for table, v in logistic_pearsons(range(seeds), (500,), l2, base).items()}
             for l2 in L2_STRENGTHS}
    by_l2 = {"0.001": {table: v["500"] for table, v in spread.items()}, **by_l2}
    figures["logistic_pearson_by_seed"] = spread
    figures["logistic_pearson_by_l2_at_500"] = by_l2
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
    print(f"\nlogistic regression, Pearson over split seeds 0-{seeds - 1}: mean [min, max]")
    print(f"{'validation size':<22}" + "".join(f"{size:>26}" for size in sizes))
    for table, label in (("table4", "Inf-> vs Inf<-"), ("table7", "Forward-INF vs Inf<-")):
        print(f"{label:<22}" + "".join(f"{spread_text(v):>26}" for v in spread[table].values()))
    print(f"\nlogistic regression, validation size 500, by L2 strength (the study's is 1e-3), split(s): {seeds}")
    print(f"{'L2':<8}{'Inf-> vs Inf<-':>26}{'Forward-INF vs Inf<-':>26}")
    for l2, values in by_l2.items():
        print(f"{l2:<8}{spread_text(values['table4']):>26}{spread_text(values['table7']):>26}")
    print(f"\ntargets (logistic): Pearson(Inf->, Inf<-) >= 0.9; Pearson(Forward-INF, Inf<-) >= 0.95; "
          f"{figures['seconds']:.0f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
