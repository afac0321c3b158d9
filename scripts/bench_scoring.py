"""Scoring speed and memory at scale, every figure a ratio against a baseline measured in the same run.

On one tiny GPT-2 (6 blocks) and the offline fact corpus's abstracts:

1. Forward-INF candidate throughput ÷ a bare ``model(**batch)`` forward loop over the same batches;
2. Forward-INF queries/min ÷ TracIn that recomputes the candidates' gradients for every query (as captum's
   TracInCP does), and our TracIn with its cached gradient matrix (queries/min, the cache's N × P floats);
3. the frozen-prefix cache: each query's time (ascent + scoring pass) with ascent on the last 2 of 6 blocks
   without ÷ with it, and the same for a whole run including the base pass that fills the cache (on the
   bench model and on one 256 wide, where the blocks outweigh the head and loss); and
   one pass per query (the default) ÷ one pass for all queries (each batch under every query's weights);
4. peak memory of a sharded run at 10× the candidates ÷ at 1× (each in a fresh process);
5. wall time of the same sharded run on 2 processes (`accelerate launch --multi_gpu --num_processes 2`,
   CPU, gloo) ÷ 1 process, and whether their scores are equal bit for bit.

Timed figures are the fastest of a few interleaved rounds (the machine is shared and noisy).

    python scripts/bench_scoring.py [--quick] [--device cuda] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

QUERIES = 8


def corpus_rows(n: int) -> tuple[list[dict], list[dict]]:
    from hf_attrib.data.fact_corpus import generate_fact_corpus
    from hf_attrib.data.ftrace import causal_query, causal_text

    corpus = generate_fact_corpus(queries=QUERIES, seed=0)
    texts = [causal_text(row)["text"] for row in corpus.abstracts]
    rows = [{"id": f"c{i:07d}", "text": texts[i % len(texts)]} for i in range(n)]
    return [causal_query(row) for row in corpus.queries], rows


def build_model(folder: Path, width: int = 64) -> None:
    from hf_attrib.data.fact_corpus import generate_fact_corpus
    from hf_attrib.data.ftrace import fill_blank
    from hf_attrib.tiny.models import tiny_gpt2
    from hf_attrib.tiny.tokenizers import gpt2_tokenizer

    corpus = generate_fact_corpus(queries=QUERIES, seed=0)
    tokenizer = gpt2_tokenizer([fill_blank(r) for r in corpus.abstracts + corpus.queries], vocab_size=1000)
    tiny_gpt2(tokenizer, seed=0, n_embd=width, n_layer=6).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def write_shards(folder: Path, rows: list[dict], per_file: int) -> Path:
    from datasets import Dataset

    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(rows), per_file):
        part = folder / f"part-{start // per_file:05d}.parquet"
        Dataset.from_list(rows[start:start + per_file]).to_parquet(str(part))
    return folder


def synchronize(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device: torch.device | None = None):
    synchronize(device)
    start = time.perf_counter()
    value = function()
    synchronize(device)
    return value, time.perf_counter() - start


def fastest(functions: dict, rounds: int, device: torch.device) -> tuple[dict, dict]:
    """Each function's last value and its fastest time over `rounds` interleaved rounds (the minimum is
    the least noisy estimate on a shared machine; interleaving spreads slow spells over all of them)."""
    values, seconds = {}, {name: float("inf") for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            values[name], took = timed(function, device)
            seconds[name] = min(seconds[name], took)
    return values, seconds


def prefix_speedup(adapter, groups: list, encoded, rounds: int, device: torch.device) -> dict:
    """The frozen-prefix cache with ascent on the last 2 of 6 blocks: each query's time (its ascent and its
    scoring pass, from `ForwardINF.stage_seconds`), and the whole run including the base pass that fills the
    cache; fastest of interleaved rounds."""
    from hf_attrib import ForwardINF

    methods = {cached: ForwardINF(adapter, optimizer="adam", learning_rate=1e-3, steps=3, batch_size=64,
                                  parameters="last:2", prefix_cache=cached, progress=False) for cached in (False, True)}
    per_query = {cached: float("inf") for cached in methods}
    whole = dict(per_query)
    scores = {}
    for _ in range(rounds):
        for cached, method in methods.items():
            scores[cached], seconds = timed(lambda m=method: m.score(groups, encoded), device)
            whole[cached] = min(whole[cached], seconds)
            stages = method.stage_seconds
            per_query[cached] = min(per_query[cached], (stages["ascent"] + stages["scoring"]) / len(groups))
    full = scores[False]
    return {"candidates": len(encoded), "queries": len(groups),
            "off_per_query_s": per_query[False], "on_per_query_s": per_query[True],
            "speedup": per_query[False] / per_query[True],
            "off_s": whole[False], "on_s": whole[True], "speedup_with_base_pass": whole[False] / whole[True],
            "max_relative_gap": float(np.max(np.abs(scores[True] - full)) / np.max(np.abs(full)))}


def wide_prefix(model_dir: Path, n: int, queries: int, rounds: int, device: torch.device, dtype: str) -> dict:
    """The prefix figure again on a 6-block model 256 wide, where the blocks outweigh the head and loss."""
    from hf_attrib import ForwardINF

    query_rows, rows = corpus_rows(n)
    adapter = load_adapter(model_dir, device, dtype)
    method = ForwardINF(adapter, batch_size=64, progress=False)
    groups, _ = method.query_groups(query_rows[:queries])
    figures = prefix_speedup(adapter, groups, method.encode_candidates(rows), rounds, device)
    return {"parameters": sum(p.numel() for p in adapter.model.parameters()), **figures}


def load_adapter(model_dir: Path, device: torch.device, dtype: str):
    from hf_attrib.adapters import CausalLMAdapter

    adapter = CausalLMAdapter.from_pretrained(str(model_dir), dtype=getattr(torch, dtype))
    adapter.model.to(device)
    return adapter


def speed(model_dir: Path, n: int, tracin_queries: int, rounds: int, device: torch.device, dtype: str) -> dict:
    from hf_attrib import ForwardINF, TracIn
    from hf_attrib.engine.scoring import example_losses

    queries, rows = corpus_rows(n)
    queries = queries[:QUERIES]
    adapter = load_adapter(model_dir, device, dtype)
    model = adapter.model
    options = {"optimizer": "adam", "learning_rate": 1e-3, "steps": 3, "batch_size": 64, "progress": False}
    method = ForwardINF(adapter, **options)
    encoded = method.encode_candidates(rows)
    groups, _ = method.query_groups(queries)

    def bare():
        with torch.inference_mode():
            for _, batch in encoded.batches:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    def forward_inf():  # base losses once, then ascent + one pass per query
        return method.score(groups, encoded, example_losses(adapter, model, encoded))

    bare()  # warm-up
    _, seconds = fastest({"bare": bare, "forward_inf": forward_inf}, rounds, device)
    throughput_ratio = (len(groups) + 1) * seconds["bare"] / seconds["forward_inf"]
    base = example_losses(adapter, model, encoded)
    _, end_to_end_s = timed(lambda: method.attribute(queries, rows), device)

    prefix = prefix_speedup(adapter, groups, encoded, rounds, device)

    one_pass_method = ForwardINF(adapter, **options, one_pass_bytes=2**30)
    passes, passes_s = fastest({"one": lambda: one_pass_method.score(groups, encoded, base),
                                "per_query": lambda: method.score(groups, encoded, base)}, rounds, device)

    tracin = TracIn(adapter, parameters="all", batch_size=64, progress=False)
    _, per_query_s = timed(lambda: [tracin.attribute([q], rows) for q in queries[:tracin_queries]], device)
    cached, cached_s = timed(lambda: TracIn(adapter, parameters="all", batch_size=64, progress=False)
                             .attribute(queries, rows), device)
    parameters = sum(p.numel() for p in model.parameters())
    fi_qpm = 60 * len(queries) / end_to_end_s
    return {
        "candidates": n, "queries": len(queries), "rounds": rounds, "device": str(device), "dtype": dtype,
        "bare_forward_s": seconds["bare"], "forward_inf_base_and_scoring_s": seconds["forward_inf"],
        "throughput_ratio": throughput_ratio,
        "forward_inf_queries_per_min": fi_qpm,
        "tracin_per_query_queries_per_min": 60 * tracin_queries / per_query_s,
        "forward_inf_vs_tracin_per_query": fi_qpm / (60 * tracin_queries / per_query_s),
        "tracin_cached_queries_per_min": 60 * len(queries) / cached_s,
        "tracin_cache_bytes": n * parameters * 4, "parameters": parameters,
        "tracin_scores_finite": bool(np.isfinite(cached.scores).all()),
        "prefix": prefix,
        "one_pass_s": passes_s["one"], "per_query_passes_s": passes_s["per_query"],
        "one_pass_speedup": passes_s["per_query"] / passes_s["one"],
        "one_pass_equal": bool(np.array_equal(passes["one"], passes["per_query"])),
    }


def child_run(model_dir: str, candidates: str, output: str, device: str, dtype: str) -> None:
    """One sharded Forward-INF run in this process; prints its peak memory (host; and the GPU's) as JSON."""
    from hf_attrib import ForwardINF

    queries, _ = corpus_rows(1)
    adapter = load_adapter(Path(model_dir), torch.device(device), dtype)
    _, seconds = timed(lambda: ForwardINF(adapter, optimizer="adam", learning_rate=1e-3, steps=3, batch_size=64,
                                          progress=False).attribute_sharded(queries[:2], candidates, output),
                       torch.device(device))
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.device(device).type == "cuda" else None
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": gpu, "seconds": seconds}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; `ru_maxrss` would carry the parent's over fork/exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def processes(model_dir: Path, candidates: Path, work: Path) -> dict:
    from hf_attrib import AttributionResult

    queries, _ = corpus_rows(1)
    (work / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries[:2]))
    command = ["-m", "hf_attrib.cli", "attribute", str(model_dir), str(work / "queries.jsonl"), str(candidates),
               "optimizer=adam", "learning_rate=1e-3", "steps=3", "batch_size=64", "--cpu", "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times = {}
    for label, launcher in {"one": [sys.executable], "two": [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]}.items():
        start = time.perf_counter()
        done = subprocess.run([*launcher, *command, "--output-dir", str(work / label)], env=env, capture_output=True,
                              text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{label}: {done.stderr[-3000:]}")
        times[label] = time.perf_counter() - start
    one, two = (AttributionResult.load(work / label / "result") for label in ("one", "two"))
    equal = np.array_equal(one.scores, two.scores) and one.candidate_ids == two.candidate_ids
    gap = float(np.max(np.abs(one.scores - two.scores)) / np.max(np.abs(one.scores)))
    return {"one_process_s": times["one"], "two_processes_s": times["two"],
            "two_vs_one_time_ratio": times["two"] / times["one"], "equal_bit_for_bit": bool(equal),
            "max_relative_gap": gap}


def prefix_rows(figures: dict, model: str) -> list[tuple[str, str, str]]:
    return [(f"prefix-cache speed-up per query (6 blocks, last 2 moved; {model})", f"{figures['speedup']:.2f}",
             ">= 2.5"),
            (f"  same, whole run of {figures['queries']} queries incl. the base pass",
             f"{figures['speedup_with_base_pass']:.2f}", ""),
            ("  max |cached - full| / max |full| score", f"{figures['max_relative_gap']:.1e}", "<= 1e-5")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer candidates (about a minute)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where the speed and memory figures run (the process figure is always CPU)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="the model's weights (losses are computed in float32 either way)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (3; quick: 2)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_run(*args.child)
        return
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    device = torch.device(args.device)
    n, tracin_queries, small, shard = (1000, 1, 2000, 1000) if args.quick else (2000, 2, 10_000, 10_000)
    rounds = args.rounds or (2 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_model(work / "model")
        build_model(work / "wide", width=256)
        figures = {"speed": speed(work / "model", n, tracin_queries, rounds, device, args.dtype),
                   "wide_prefix": wide_prefix(work / "wide", n // 2, 4, rounds, device, args.dtype)}
        _, rows = corpus_rows(10 * small)
        write_shards(work / "small", rows[:small], shard)
        write_shards(work / "large", rows, shard)
        runs = [run_child(str(work / "model"), str(work / name), str(work / f"run-{name}"), str(device), args.dtype)
                for name in ("small", "large")]
        figures["memory"] = {"candidates_small": small, "candidates_large": 10 * small,
                             "peak_rss_mb_small": runs[0]["peak_rss_mb"], "peak_rss_mb_large": runs[1]["peak_rss_mb"],
                             "ratio": runs[1]["peak_rss_mb"] / runs[0]["peak_rss_mb"],
                             "peak_gpu_mb_small": runs[0]["peak_gpu_mb"], "peak_gpu_mb_large": runs[1]["peak_gpu_mb"],
                             "seconds_small": runs[0]["seconds"], "seconds_large": runs[1]["seconds"]}
        figures["processes"] = processes(work / "model", work / "small", work)
    s, w, m, p = figures["speed"], figures["wide_prefix"], figures["memory"], figures["processes"]
    table = [
        ("Forward-INF candidate throughput / bare forward loop", f"{s['throughput_ratio']:.2f}", ">= 0.9"),
        ("Forward-INF queries/min / TracIn recomputing gradients per query",
         f"{s['forward_inf_vs_tracin_per_query']:.1f}", ">= 3"),
        ("  Forward-INF queries/min", f"{s['forward_inf_queries_per_min']:.0f}", ""),
        ("  TracIn per-query queries/min", f"{s['tracin_per_query_queries_per_min']:.1f}", ""),
        ("  TracIn cached-gradient queries/min", f"{s['tracin_cached_queries_per_min']:.0f}", ""),
        ("  TracIn gradient cache (N x P floats), MB", f"{s['tracin_cache_bytes'] / 2**20:.0f}", ""),
        *prefix_rows(s["prefix"], "64 wide"),
        *prefix_rows(w, f"256 wide ({w['parameters']} parameters), {w['candidates']} candidates"),
        ("all queries in one pass over the candidates: speed-up (scores equal: "
         f"{s['one_pass_equal']})", f"{s['one_pass_speedup']:.2f}", "keep if > 1"),
        (f"peak memory at {m['candidates_large']} / at {m['candidates_small']} candidates", f"{m['ratio']:.2f}",
         "<= 1.2"),
        *([("  peak GPU memory (max allocated) large / small", f"{m['peak_gpu_mb_large'] / m['peak_gpu_mb_small']:.2f}",
            "")] if m["peak_gpu_mb_small"] else []),
        ("2 processes / 1 process wall time", f"{p['two_vs_one_time_ratio']:.2f}", ""),
        ("2 processes (1 thread each) equal 1 process (2 threads) bit for bit", str(p["equal_bit_for_bit"]), ""),
        ("  max relative gap between them", f"{p['max_relative_gap']:.1e}", ""),
    ]
    print(f"tiny GPT-2 (6 blocks, {s['parameters']} parameters, {s['dtype']}, {s['device']}), {s['candidates']} "
          f"candidates, {s['queries']} queries, fastest of {s['rounds']} interleaved rounds")
    print(f"{'figure':<84} | {'value':>8} | goal")
    print("-" * 103)
    for name, value, goal in table:
        print(f"{name:<84} | {value:>8} | {goal}")
    print(json.dumps({"quick": args.quick, **figures}))


if __name__ == "__main__":
    main()
