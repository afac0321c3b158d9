"""Fact-tracing benchmark: a tiny GPT-2 and a tiny T5 trained here on the offline FTRACE-schema corpus;
Forward-INF over a grid (learning rate × steps × parameter selection), TracIn, BM25 and the BM25 +
Forward-INF re-ranker, on the same model and candidate sets. Prints the quality table with queries/min
and the speed ratio against TracIn measured in the same run, then one JSON line.

    python scripts/bench_fact_tracing.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import torch

from hf_attrib.fact_tracing import load_recipe, run_fact_tracing

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "ftrace_tiny.yaml"


def methods(quick: bool) -> list[dict]:
    rates, steps, selections = ([1e-3], [3], ["all"]) if quick else ([1e-3, 3e-3], [1, 3], ["all", "last:1"])
    grid = [{"name": "forward-inf", "optimizer": "adam", "learning_rate": lr, "steps": n, "parameters": sel,
             "label": f"forward-inf lr={lr:g} steps={n} {sel}"}
            for lr, n, sel in itertools.product(rates, steps, selections)]
    return grid + [
        {"name": "tracin", "parameters": "all", "label": "tracin (single checkpoint)"},
        {"name": "bm25", "label": "bm25"},
        {"name": "rerank", "k": 10, "optimizer": "adam", "learning_rate": 1e-3, "steps": 3,
         "label": "bm25 top-10 + forward-inf"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one Forward-INF setting, fewer queries and epochs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    figures: dict[str, list[dict]] = {}
    for family in ("causal", "masked"):
        with tempfile.TemporaryDirectory() as folder:
            recipe = load_recipe(RECIPE, [f"model.family={family}", f"output_dir={folder}"])
            recipe["methods"] = methods(args.quick)
            if args.quick:
                recipe["model"]["train"]["epochs"] = 100
                recipe["max_queries"] = 10
            outcome = run_fact_tracing(recipe, progress=False)
        tracin = next(r for r in outcome["rows"] if r["method"].startswith("tracin"))
        name = "gpt2" if family == "causal" else "t5"
        print(f"\n{name}: {outcome['queries']} answered queries, {outcome['candidates']} candidates "
              "(each query ranked in its own set)")
        print(f"{'method':<40} | {'MRR':>6} | {'P@1':>6} | {'R@10':>6} | {'queries/min':>11} | {'vs TracIn':>9}")
        print("-" * 92)
        for r in outcome["rows"]:
            r["speed_vs_tracin"] = r["queries_per_min"] / tracin["queries_per_min"]
            print(f"{r['method']:<40} | {r['mrr']:6.3f} | {r['precision@1']:6.3f} | {r['recall@10']:6.3f} | "
                  f"{r['queries_per_min']:11.1f} | {r['speed_vs_tracin']:8.2f}x")
        figures[name] = [{k: r[k] for k in ("method", "mrr", "precision@1", "recall@10", "map", "queries_per_min",
                                            "speed_vs_tracin", "evaluated", "skipped")} for r in outcome["rows"]]
        figures[name + "_queries"] = outcome["queries"]
    print(json.dumps({"quick": args.quick, "results": figures}))


if __name__ == "__main__":
    main()
