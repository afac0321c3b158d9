"""The run folder: one layout for every method's result, to read, keep and share.

    RUN/
      scores.safetensors  the full [queries, candidates] score matrix (and per-candidate extras)
      result.json         ids, method and options: what `AttributionResult.load` reads
      topk.parquet        query_id, candidate_id, rank, score (and relevant, when labels are known)
      run.json            method and options, adapter configuration, model id + revision + weights
                          fingerprint, dataset ids + fingerprints, package versions, seconds per stage
      metrics.json        MRR, mAP, precision/recall/top-k accuracy and each query's relevant ids (with labels)
      examples.parquet    the queries' and top-k candidates' text or image (what the report shows)
      plots/              score histogram; each query's candidates with the proponents marked (with labels)
      README.md           dataset card: YAML metadata, a summary table, how to load it back

`AttributionResult.save(path, info=..., relevant=..., examples=...)` writes it (all or nothing).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hf_attrib.results import AttributionResult

TOPK_FILE = "topk.parquet"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
EXAMPLES_FILE = "examples.parquet"
CARD_FILE = "README.md"
PACKAGES = ("hf-attrib", "torch", "transformers", "diffusers", "peft", "datasets", "accelerate", "huggingface_hub",
            "safetensors", "numpy")


@dataclass
class RunInfo:
    """Where a result came from; ``run.json`` holds it with the package versions.

    >>> info = RunInfo.for_model(adapter.model, "gpt2", revision="main")
    >>> with info.stage("attribute"):
    ...     result = method.attribute(queries, candidates)
    >>> info.add_dataset("candidates", candidates, source="my/abstracts")
    """

    model_id: str = ""
    model_revision: str | None = None
    model_fingerprint: str | None = None
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: Any, model_id: str = "", revision: str | None = None) -> RunInfo:
        """Record `model`'s id, revision and the SHA-256 of its weights (`model_sha256`)."""
        from hf_attrib.engine.sharded import model_sha256

        return cls(model_id=str(model_id), model_revision=revision, model_fingerprint=model_sha256(model))

    def stage(self, name: str):
        """Time a stage (a context manager); repeated stages add up."""
        from hf_attrib.engine.timing import timed_into

        return timed_into(self.stages, name)

    def add_dataset(self, name: str, rows: Any, source: str = "") -> None:
        """Record a dataset's id (`source`: a Hub id or path), size and fingerprint."""
        self.datasets[name] = {"id": source, "rows": len(rows) if hasattr(rows, "__len__") else None,
                               "fingerprint": rows_fingerprint(rows)}


def rows_fingerprint(rows: Any) -> str:
    """A `datasets.Dataset`'s own fingerprint, else a SHA-256 of the rows (images by their pixels)."""
    own = getattr(rows, "_fingerprint", None)
    if isinstance(own, str):
        return own
    digest = hashlib.sha256()
    for row in rows:
        for key in sorted(row):
            value = row[key]
            digest.update(key.encode())
            digest.update(value.tobytes() if hasattr(value, "tobytes") else repr(value).encode())
    return digest.hexdigest()[:16]


def examples_by_id(*row_lists: list[dict]) -> dict[str, dict]:
    """id -> row over query and candidate lists (what `save(examples=...)` takes)."""
    return {str(row["id"]): row for rows in row_lists for row in rows}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_run_files(result: AttributionResult, folder: Path, *, info: RunInfo | None = None,
                    relevant: Mapping[str, set[str]] | None = None, examples: Mapping[str, dict] | None = None,
                    top_k: int = 10) -> None:
    """Everything but the scores and ``result.json`` (written by `AttributionResult.save`) into `folder`."""
    from datasets import Dataset

    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    relevant = {q: set(ids) for q, ids in relevant.items()} if relevant is not None else None
    k = min(top_k, len(result.candidate_ids))
    table: dict[str, list] = {"query_id": [], "candidate_id": [], "rank": [], "score": []}
    for query_id, ranked in zip(result.query_ids, result.topk(k) if k else [[]] * len(result.query_ids),
                                strict=True):
        for rank, (candidate_id, score) in enumerate(ranked, start=1):
            table["query_id"].append(query_id)
            table["candidate_id"].append(candidate_id)
            table["rank"].append(rank)
            table["score"].append(score)
    if relevant is not None:
        table["relevant"] = [c in relevant.get(q, set()) for q, c in zip(table["query_id"], table["candidate_id"],
                                                                         strict=True)]
    Dataset.from_dict(table).to_parquet(str(folder / TOPK_FILE))
    metrics = None
    if relevant is not None:
        metrics = run_metrics(result, relevant)
        (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
    if examples is not None:
        shown = set(result.query_ids) | set(table["candidate_id"])
        _write_examples(folder / EXAMPLES_FILE, examples, shown, set(result.query_ids))
    info = info or RunInfo()
    record = {
        "method": result.method,
        "options": result.config,
        "model": {"id": info.model_id, "revision": info.model_revision, "fingerprint": info.model_fingerprint},
        "datasets": info.datasets,
        "queries": len(result.query_ids),
        "candidates": len(result.candidate_ids),
        "top_k": k,
        "stages_seconds": {name: round(seconds, 3) for name, seconds in info.stages.items()},
        "versions": package_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / RUN_FILE).write_text(json.dumps(record, indent=1, default=str))
    from hf_attrib.report import plot_proponent_scores, plot_score_histogram

    (folder / "plots").mkdir()
    plot_score_histogram({result.method or "scores": (result, relevant)}, folder / "plots" / "score-histogram.png")
    if relevant is not None:
        plot_proponent_scores(result, relevant, folder / "plots" / "proponent-scores.png")
    (folder / CARD_FILE).write_text(dataset_card(result, info, metrics, k))


def run_metrics(result: AttributionResult, relevant: Mapping[str, set[str]]) -> dict[str, Any]:
    """The field's metrics, each query's rank of its first relevant candidate, and the labels themselves."""
    from hf_attrib.evaluation.metrics import evaluate

    first: dict[str, int | None] = {}
    for row, query_id in enumerate(result.query_ids):
        wanted = relevant.get(query_id, set())
        ranks = [rank for rank, c in enumerate(result.ranking(row), start=1) if result.candidate_ids[c] in wanted]
        first[query_id] = ranks[0] if ranks else None
    return {"metrics": evaluate(result, relevant), "first_relevant_rank": first,
            "relevant": {q: sorted(relevant.get(q, set())) for q in result.query_ids}}


def display_text(row: Mapping[str, Any]) -> str | None:
    """A row's readable text: ``text``, else ``prompt [target]``, else ``caption``."""
    if isinstance(row.get("text"), str):
        return row["text"]
    if isinstance(row.get("prompt"), str):
        return f"{row['prompt']} [{row['target']}]" if isinstance(row.get("target"), str) else row["prompt"]
    return row["caption"] if isinstance(row.get("caption"), str) else None


def _write_examples(path: Path, examples: Mapping[str, dict], shown: set[str], queries: set[str]) -> None:
    from datasets import Dataset, Features, Image, Value

    rows = [(i, examples[i]) for i in sorted(shown) if i in examples]
    columns: dict[str, list] = {"id": [i for i, _ in rows], "role": ["query" if i in queries else "candidate"
                                                                     for i, _ in rows],
                                "text": [display_text(row) for _, row in rows]}
    features = {"id": Value("string"), "role": Value("string"), "text": Value("string")}
    if any(row.get("image") is not None for _, row in rows):
        columns["image"] = [row.get("image") for _, row in rows]
        features["image"] = Image()
    Dataset.from_dict(columns, features=Features(features)).to_parquet(str(path))


def dataset_card(result: AttributionResult, info: RunInfo, metrics: dict | None, k: int) -> str:
    """The README.md of a run folder, with YAML metadata that `DatasetCard.load` and `load_dataset` read."""
    from huggingface_hub import DatasetCardData

    method = result.method or "attribution"
    data = DatasetCardData(
        pretty_name=f"hf-attrib {method} scores", tags=["hf-attrib", "training-data-attribution", method],
        method=method, base_model=info.model_id or None,
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": TOPK_FILE}]}],
    )
    summary = [("method", method), ("model", info.model_id or "(not recorded)"),
               ("model weights SHA-256", (info.model_fingerprint or "(not recorded)")[:16]),
               ("queries", len(result.query_ids)), ("candidates", len(result.candidate_ids)),
               ("top-k kept in topk.parquet", k)]
    if metrics is not None:
        for name in ("mrr", "map", "precision@1", "recall@10", "top1_accuracy"):
            value = metrics["metrics"].get(name)
            if value is not None:
                summary.append((name, f"{value:.4f}"))
    table = "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in summary)])
    first = "\n".join(f"| {q} | {ranked[0][0]} | {ranked[0][1]:.6g} |"
                      for q, ranked in list(zip(result.query_ids, result.topk(1), strict=True))[:10])
    stages = json.dumps({name: round(seconds, 3) for name, seconds in info.stages.items()})
    return f"""---
{data.to_yaml()}
---

# {method} attribution scores

Which candidates (training examples) most influenced each query's output, by **{method}**
([hf-attrib](https://github.com/hf-attrib)). Higher score = stronger proponent.

{table}

Top candidate per query (first 10):

| query | top candidate | score |
|---|---|---|
{first}

Seconds per stage: {stages}. Options, datasets and package versions are in `run.json`.

## Load it back

```python
from hf_attrib import AttributionResult
result = AttributionResult.load("THIS_REPO_OR_FOLDER")   # scores [queries, candidates], ids, options
result.topk(5)

from datasets import load_dataset
topk = load_dataset("THIS_REPO_OR_FOLDER", split="train")  # query_id, candidate_id, rank, score
```
"""

