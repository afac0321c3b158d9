"""Tracing generated images to training images from a YAML recipe (`hf-attrib trace-images`).

Recipe keys: ``pipeline`` (folder or Hub id), ``queries`` and ``candidates`` (folders written by
`Dataset.save_to_disk`, e.g. by ``hf-attrib generate``, with columns id, image, caption), ``adapter``
(StableDiffusionAdapter options), ``methods`` (forward-inf, tracin, nearest), optional ``relevant``
({query id: [candidate ids]}, for metrics), ``top_k`` and ``output_dir``. Writes each method's result,
``metrics.json`` and, per method and query, a PNG grid of the query and its top-k candidates.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from hf_attrib.adapters.diffusion import StableDiffusionAdapter, load_image
from hf_attrib.evaluation import metrics
from hf_attrib.methods.registry import build_method
from hf_attrib.report import image_grid
from hf_attrib.runs import RunInfo


def load_rows(source: Any, what: str) -> list[dict]:
    """Rows from a saved dataset folder, or the list itself."""
    if isinstance(source, list):
        return source
    from datasets import load_from_disk

    folder = Path(str(source))
    if not folder.is_dir():
        raise ValueError(f"{what}: {folder} is not a folder written by Dataset.save_to_disk")
    rows = list(load_from_disk(str(folder)))
    if not rows:
        raise ValueError(f"{what}: {folder} holds no rows")
    for index, row in enumerate(rows):
        row.setdefault("id", f"{what}-{index}")
        if "caption" not in row and "prompt" in row:
            row["caption"] = row["prompt"]
    return rows


def run_image_tracing(recipe: dict[str, Any], *, progress: bool = True) -> dict[str, Any]:
    if not recipe.get("pipeline"):
        raise ValueError("the recipe names no pipeline (a folder or a Hub id)")
    adapter = StableDiffusionAdapter.from_pretrained(str(recipe["pipeline"]), **recipe.get("adapter", {}))
    queries = load_rows(recipe.get("queries"), "queries")
    candidates = load_rows(recipe.get("candidates"), "candidates")
    relevant = {str(k): set(map(str, v)) for k, v in (recipe.get("relevant") or {}).items()}
    top_k = int(recipe.get("top_k", 8))
    run_dir = Path(recipe.get("output_dir") or f"runs/trace-images-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    images = {str(r["id"]): load_image(r["image"], str(r["id"]), "image") for r in candidates}
    examples = {**{str(r["id"]): {"image": images[str(r["id"])], "caption": r.get("caption")} for r in candidates},
                **{str(r["id"]): {"image": load_image(r["image"], str(r["id"]), "image"), "caption": r.get("caption")}
                   for r in queries}}
    info = RunInfo.for_model(adapter.model, str(recipe["pipeline"]))
    rows = []
    for spec in recipe.get("methods") or [{"name": "forward-inf"}]:
        label = spec.get("label") or spec.get("name")
        start = time.perf_counter()
        method = build_method(spec, adapter, progress=progress, allowed=("forward-inf", "tracin", "nearest"))
        with info.stage(label):
            result = method.attribute(queries, candidates)
        seconds = time.perf_counter() - start
        result.save(run_dir / label, info=info, relevant=relevant or None, examples=examples, top_k=top_k)
        for q, query in enumerate(queries):
            query_id = result.query_ids[q]
            ranked = [(cid, score, images[cid], cid in relevant.get(query_id, set()))
                      for cid, score in result.topk(top_k)[q]]
            image_grid(load_image(query["image"], query_id, "image"), query["caption"], ranked,
                       run_dir / "grids" / label / f"{query_id}.png", title=f"{label}: top {top_k}")
        report = {"method": label, "seconds": seconds, "queries_per_min": 60 * len(queries) / seconds,
                  "top1": [c for c, _ in (r[0] for r in result.topk(1))]}
        if relevant:
            report.update(metrics.evaluate(result, relevant, ks=(1, 5, 10)))
        rows.append(report)
    (run_dir / "metrics.json").write_text(json.dumps({"recipe": recipe, "results": rows}, indent=1, default=str))
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return {"rows": rows, "run_dir": run_dir}
