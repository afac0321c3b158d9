"""Fact-tracing experiments from a YAML recipe: several methods, one model, one candidate set.

A recipe names the data (FTRACE-TREX from the Hub or a folder, or the offline generator), the candidate
sets, the model (a Hub id / folder, or a tiny one trained here) and the methods; see ``recipes/``.
Every method is evaluated with the same metrics, each query within its own candidate set.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import yaml

from hf_attrib.data.candidates import CandidateSetArguments, build_candidate_sets, union
from hf_attrib.data.fact_corpus import generate_fact_corpus
from hf_attrib.data.ftrace import FTrace, causal_query, causal_rows, fill_blank, load_ftrace, row_id, span_rows
from hf_attrib.evaluation import metrics
from hf_attrib.methods.registry import build_method
from hf_attrib.runs import RunInfo, examples_by_id


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The recipe as a dict, with ``key.sub=value`` overrides (values parsed as YAML)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"recipe {file} does not exist")
    recipe = yaml.safe_load(file.read_text()) or {}
    for override in overrides or []:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise ValueError(f"override {override!r} is not key=value")
        node = recipe
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {override!r}: {part!r} is not a mapping in the recipe")
        node[leaf] = yaml.safe_load(value)
    return recipe


def load_data(spec: dict[str, Any]) -> FTrace:
    if spec.get("source", "generate") == "generate":
        corpus = generate_fact_corpus(**spec.get("generate", {}))
        return FTrace(corpus.abstracts, corpus.queries)
    return load_ftrace(spec["source"], on_malformed=spec.get("on_malformed", "skip"))


def build_adapter(spec: dict[str, Any], data: FTrace, progress: bool):
    """The adapter for the recipe's model: loaded from `name_or_path`, or a tiny model trained here."""
    from hf_attrib.adapters import CausalLMAdapter, MaskedLMAdapter

    family = spec.get("family", "causal")
    if family not in ("causal", "masked"):
        raise ValueError(f"model.family must be 'causal' or 'masked', got {family!r}")
    cls = CausalLMAdapter if family == "causal" else MaskedLMAdapter
    if spec.get("name_or_path"):
        return cls.from_pretrained(spec["name_or_path"])
    from hf_attrib.engine import finetune
    from hf_attrib.tiny import models, tokenizers

    train = dict(spec.get("train", {}))
    hidden = train.pop("hidden_size", 64)
    texts = [fill_blank(r) for r in data.abstracts + data.queries]
    if family == "causal":
        tokenizer = tokenizers.gpt2_tokenizer(texts, vocab_size=1000)
        adapter = cls(models.tiny_gpt2(tokenizer, n_embd=hidden), tokenizer)
        rows = causal_rows(data.abstracts, "text")
    else:
        tokenizer = tokenizers.t5_tokenizer([t for r in data.abstracts + data.queries
                                             for t in (r["inputs_pretokenized"], r["targets_pretokenized"])])
        adapter = cls(models.tiny_t5(tokenizer, d_model=hidden, d_ff=2 * hidden, d_kv=hidden // 4), tokenizer)
        rows = span_rows(data.abstracts)
    finetune(adapter, rows, progress=progress, **train)
    return adapter


def views(family: str, data: FTrace, loss_on: str) -> tuple[list[dict], list[dict]]:
    if family == "causal":
        return [causal_query(q) for q in data.queries], causal_rows(data.abstracts, loss_on)
    return span_rows(data.queries), span_rows(data.abstracts)


def run_fact_tracing(recipe: dict[str, Any], *, progress: bool = True) -> dict[str, Any]:
    """Run every method of the recipe; returns {"rows": [...], "run_dir": ...} and writes the run folder."""
    seed = int(recipe.get("seed", 0))
    data = load_data(recipe.get("data", {}))
    model_spec = recipe.get("model", {})
    family = model_spec.get("family", "causal")
    adapter = build_adapter(model_spec, data, progress)
    queries, candidates = views(family, data, model_spec.get("loss_on", "text"))
    proponents = data.proponents()
    if recipe.get("only_answered", False):
        from hf_attrib.engine.scoring import answered_correctly

        answered = answered_correctly(adapter, queries)
        data = FTrace(data.abstracts, [q for q, ok in zip(data.queries, answered, strict=True) if ok], data.skipped)
        queries = [q for q, ok in zip(queries, answered, strict=True) if ok]
    limit = recipe.get("max_queries")
    if limit and len(queries) > limit:
        keep = sorted(random.Random(seed).sample(range(len(queries)), k=limit))
        data = FTrace(data.abstracts, [data.queries[i] for i in keep], data.skipped)
        queries = [queries[i] for i in keep]
    if not queries:
        raise ValueError("no query to trace (the model answers none, or the data has none)")
    sets = build_candidate_sets(data.queries, data.abstracts, proponents,
                                CandidateSetArguments(**recipe.get("candidates", {})))
    pool = set(union(sets))
    candidate_rows = [row for row in candidates if row["id"] in pool]
    run_dir = Path(recipe.get("output_dir") or f"runs/trace-facts-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    relevant = {row_id(q): proponents[row_id(q)] for q in data.queries}
    examples = examples_by_id(queries, candidate_rows)
    info = RunInfo.for_model(adapter.model, model_spec.get("name_or_path") or f"tiny {family} model trained here")
    source = str(recipe.get("data", {}).get("source", "generate"))
    info.add_dataset("queries", queries, source=source)
    info.add_dataset("candidates", candidate_rows, source=source)
    rows = []
    for spec in recipe.get("methods", []):
        method = build_method(spec, adapter, progress=progress, allowed=("forward-inf", "tracin", "bm25", "rerank"))
        label = spec.get("label") or spec.get("name")
        start = time.perf_counter()
        with info.stage(label):
            if spec.get("name") in ("forward-inf", "rerank"):
                result = method.attribute(queries, candidate_rows, candidate_sets=sets)
            else:
                result = method.attribute(queries, candidate_rows)
        seconds = time.perf_counter() - start
        report = metrics.evaluate(result, relevant, sets)
        report.update(method=label, seconds=seconds, queries_per_min=60 * len(queries) / seconds)
        rows.append(report)
        result.save(run_dir / _folder(label), info=info, relevant=relevant, examples=examples)
    summary = {"recipe": recipe, "queries": len(queries), "candidates": len(candidate_rows),
               "skipped_rows": data.skipped, "results": rows}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1, default=str))
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    (run_dir / "table.txt").write_text(format_table(rows) + "\n")
    return {"rows": rows, "run_dir": run_dir, "queries": len(queries), "candidates": len(candidate_rows)}


def format_table(rows: list[dict]) -> str:
    lines = [f"{'method':<28} | {'MRR':>6} | {'P@1':>6} | {'R@10':>6} | {'queries/min':>11} | skipped",
             "-" * 78]
    for r in rows:
        lines.append(f"{r['method']:<28} | {r['mrr']:6.3f} | {r['precision@1']:6.3f} | {r['recall@10']:6.3f} | "
                     f"{r['queries_per_min']:11.1f} | {r['skipped']}")
    return "\n".join(lines)


def _folder(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
