"""Scoring speed and memory at scale, every figure a ratio against a baseline measured in the same run.

On one tiny GPT-2 (6 blocks) and the offline fact corpus's abstracts:

1. Forward-INF candidate throughput ÷ a bare ``model(**batch)`` forward loop over the same batches;
2. Forward-INF queries/min ÷ TracIn that recomputes the candidates' gradients for every query (as captum's
   TracInCP does), and our TracIn with its cached gradient matrix (queries/min, the cache's N × P floats);
3. the frozen-prefix cache: scoring time of ascent on the last 2 of 6 blocks without ÷ with it; and
   one pass per query (the default) ÷ one pass for all queries (each batch under every query's weights);
4. peak memory of a sharded run at 10× the candidates ÷ at 1× (each in a fresh process);
5. wall time of the same sharded run on 2 processes (`accelerate launch --multi_gpu --num_processes 2`,
   CPU, gloo) ÷ 1 process, and whether their scores are equal bit for bit.

    python scripts/bench_scoring.py [--quick]
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


def build_model(folder: Path) -> None:
    from hf_attrib.data.fact_corpus import generate_fact_corpus
    from hf_attrib.data.ftrace import fill_blank
    from hf_attrib.tiny.models import tiny_gpt2
    from hf_attrib.tiny.tokenizers import gpt2_tokenizer

    corpus = generate_fact_corpus(queries=QUERIES, seed=0)
    tokenizer = gpt2_tokenizer([fill_blank(r) for r in corpus.abstracts + corpus.queries], vocab_size=1000)
    tiny_gpt2(tokenizer, seed=0, n_embd=64, n_layer=6).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def write_shards(folder: Path, rows: list[dict], per_file: int) -> Path:
    from datasets import Dataset

    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(rows), per_file):
        part = folder / f"part-{start // per_file:05d}.parquet"
        Dataset.from_list(rows[start:start + per_file]).to_parquet(str(part))
    return folder


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def speed(model_dir: Path, n: int, tracin_queries: int) -> dict:
    from hf_attrib import ForwardINF, TracIn
    from hf_attrib.adapters import CausalLMAdapter
    from hf_attrib.engine.scoring import example_losses

    queries, rows = corpus_rows(n)
    queries = queries[:QUERIES]
    adapter = CausalLMAdapter.from_pretrained(str(model_dir))
    model = adapter.model
    method = ForwardINF(adapter, optimizer="adam", learning_rate=1e-3, steps=3, batch_size=64, progress=False)
    encoded = method.encode_candidates(rows)

    def bare():
        with torch.inference_mode():
            for _, batch in encoded.batches:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    bare()  # warm-up
    _, bare_s = timed(bare)
    groups, _ = method.query_groups(queries)
    base, base_s = timed(lambda: example_losses(adapter, model, encoded))
    _, score_s = timed(lambda: method.score(groups, encoded, base))
    _, end_to_end_s = timed(lambda: method.attribute(queries, rows))
    throughput_ratio = (len(groups) + 1) * bare_s / (base_s + score_s)

    prefix = {}
    for cached in (False, True):
        last_two = ForwardINF(adapter, optimizer="adam", learning_rate=1e-3, steps=3, batch_size=64,
                              parameters="last:2", prefix_cache=cached, progress=False)
        prefix[cached], prefix[f"{cached}_s"] = timed(lambda m=last_two: m.score(groups, encoded, base))
    prefix_gap = float(np.max(np.abs(prefix[True] - prefix[False])) / np.max(np.abs(prefix[False])))

    one_pass_method = ForwardINF(adapter, optimizer="adam", learning_rate=1e-3, steps=3, batch_size=64,
                                 one_pass_bytes=2**30, progress=False)
    single, single_s = timed(lambda: one_pass_method.score(groups, encoded, base))
    per_query_scores, per_query_pass_s = timed(lambda: method.score(groups, encoded, base))  # the default

    per_query = TracIn(adapter, parameters="all", batch_size=64, progress=False)
    _, per_query_s = timed(lambda: [per_query.attribute([q], rows) for q in queries[:tracin_queries]])
    cached, cached_s = timed(lambda: TracIn(adapter, parameters="all", batch_size=64, progress=False)
                             .attribute(queries, rows))
    parameters = sum(p.numel() for p in model.parameters())
    fi_qpm = 60 * len(queries) / end_to_end_s
    return {
        "candidates": n, "queries": len(queries), "bare_forward_s": bare_s, "forward_inf_base_s": base_s,
        "forward_inf_scoring_s": score_s, "throughput_ratio": throughput_ratio,
        "forward_inf_queries_per_min": fi_qpm,
        "tracin_per_query_queries_per_min": 60 * tracin_queries / per_query_s,
        "forward_inf_vs_tracin_per_query": fi_qpm / (60 * tracin_queries / per_query_s),
        "tracin_cached_queries_per_min": 60 * len(queries) / cached_s,
        "tracin_cache_bytes": n * parameters * 4, "parameters": parameters,
        "tracin_scores_finite": bool(np.isfinite(cached.scores).all()),
        "prefix_off_s": prefix["False_s"], "prefix_on_s": prefix["True_s"],
        "prefix_speedup": prefix["False_s"] / prefix["True_s"], "prefix_max_relative_gap": prefix_gap,
        "one_pass_s": single_s, "per_query_passes_s": per_query_pass_s,
        "one_pass_speedup": per_query_pass_s / single_s,
        "one_pass_equal": bool(np.array_equal(single, per_query_scores)),
    }


def child_run(model_dir: str, candidates: str, output: str) -> None:
    """One sharded Forward-INF run in this process; prints its peak memory as JSON."""
    from hf_attrib import ForwardINF
    from hf_attrib.adapters import CausalLMAdapter

    queries, _ = corpus_rows(1)
    adapter = CausalLMAdapter.from_pretrained(model_dir)
    _, seconds = timed(lambda: ForwardINF(adapter, optimizer="adam", learning_rate=1e-3, steps=3, batch_size=64,
                                          progress=False).attribute_sharded(queries[:2], candidates, output))
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "seconds": seconds}))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer candidates (about a minute)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_run(*args.child)
        return
    torch.set_num_threads(2)
    n, tracin_queries, small, shard = (1000, 1, 2000, 1000) if args.quick else (2000, 2, 10_000, 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_model(work / "model")
        figures = {"speed": speed(work / "model", n, tracin_queries)}
        _, rows = corpus_rows(10 * small)
        write_shards(work / "small", rows[:small], shard)
        write_shards(work / "large", rows, shard)
        small_run = run_child(str(work / "model"), str(work / "small"), str(work / "run-small"))
        large_run = run_child(str(work / "model"), str(work / "large"), str(work / "run-large"))
        figures["memory"] = {"candidates_small": small, "candidates_large": 10 * small,
                             "peak_rss_mb_small": small_run["peak_rss_mb"],
                             "peak_rss_mb_large": large_run["peak_rss_mb"],
                             "ratio": large_run["peak_rss_mb"] / small_run["peak_rss_mb"],
                             "seconds_small": small_run["seconds"], "seconds_large": large_run["seconds"]}
        figures["processes"] = processes(work / "model", work / "small", work)
    s, m, p = figures["speed"], figures["memory"], figures["processes"]
    table = [
        ("Forward-INF candidate throughput / bare forward loop", f"{s['throughput_ratio']:.2f}", ">= 0.9"),
        ("Forward-INF queries/min / TracIn recomputing gradients per query",
         f"{s['forward_inf_vs_tracin_per_query']:.1f}", ">= 3"),
        ("  Forward-INF queries/min", f"{s['forward_inf_queries_per_min']:.0f}", ""),
        ("  TracIn per-query queries/min", f"{s['tracin_per_query_queries_per_min']:.1f}", ""),
        ("  TracIn cached-gradient queries/min", f"{s['tracin_cached_queries_per_min']:.0f}", ""),
        ("  TracIn gradient cache (N x P floats), MB", f"{s['tracin_cache_bytes'] / 2**20:.0f}", ""),
        ("prefix-cache speed-up (6 blocks, last 2 moved; scoring time)", f"{s['prefix_speedup']:.2f}", ">= 2.5"),
        ("  max |cached - full| / max |full| score", f"{s['prefix_max_relative_gap']:.1e}", "<= 1e-5"),
        ("all queries in one pass over the candidates: speed-up (scores equal: "
         f"{s['one_pass_equal']})", f"{s['one_pass_speedup']:.2f}", "keep if > 1"),
        (f"peak memory at {m['candidates_large']} / at {m['candidates_small']} candidates", f"{m['ratio']:.2f}",
         "<= 1.2"),
        ("2 processes / 1 process wall time", f"{p['two_vs_one_time_ratio']:.2f}", ""),
        ("2 processes (1 thread each) equal 1 process (2 threads) bit for bit", str(p["equal_bit_for_bit"]), ""),
        ("  max relative gap between them", f"{p['max_relative_gap']:.1e}", ""),
    ]
    print(f"tiny GPT-2 (6 blocks, {s['parameters']} parameters), {s['candidates']} candidates, {s['queries']} queries")
    print(f"{'figure':<66} | {'value':>15} | goal")
    print("-" * 92)
    for name, value, goal in table:
        print(f"{name:<66} | {value:>15} | {goal}")
    print(json.dumps({"quick": args.quick, **figures}))


if __name__ == "__main__":
    main()
