"""`hf-attrib report RUN_DIR`: pictures of every result in a run folder and an `index.html` that shows them
offline.

Results are the folders holding ``result.json`` (the run folder itself, or its sub-folders up to three levels
down, e.g. the demo's ``forward_inf/`` and ``images/forward-inf/``; sharded runs' ``shards/`` are skipped).
For each: a score histogram; for images, the query and its top-k candidates with scores; for text, a ranked
table with the proponents marked. Across them: a per-method metric chart. ``RUN_DIR/report/manifest.json``
lists every picture with its number of panels.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from hf_attrib.report import image_grid, plot_metric_chart, plot_score_histogram, ranked_text_figure
from hf_attrib.results import META_FILE, SCORES_FILE, AttributionResult
from hf_attrib.runs import EXAMPLES_FILE, METRICS_FILE, RUN_FILE

SKIPPED = {"shards", "report", "cache"}


@dataclass
class Picture:
    file: str
    kind: str
    panels: int
    result: str


@dataclass
class ReportManifest:
    index: Path
    pictures: list[Picture] = field(default_factory=list)


def find_results(run_dir: Path, depth: int = 3) -> list[Path]:
    """Folders under `run_dir` (itself included) holding a saved AttributionResult."""
    found = []
    if (run_dir / META_FILE).is_file() and (run_dir / SCORES_FILE).is_file():
        found.append(run_dir)
    if depth:
        for child in sorted(run_dir.iterdir()):
            if child.is_dir() and not child.name.startswith(".") and child.name not in SKIPPED:
                found += find_results(child, depth - 1)
    return found


def build_report(run_dir: str | Path, *, top_k: int = 8, text_top: int = 3, max_queries: int = 6) -> ReportManifest:
    """Write ``RUN_DIR/report/``: PNGs, ``index.html`` and ``manifest.json``."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    folders = find_results(root)
    if not folders:
        raise ValueError(f"{root} holds no attribution result (no folder with {META_FILE} and {SCORES_FILE})")
    out = root / "report"
    out.mkdir(exist_ok=True)
    manifest = ReportManifest(out / "index.html")
    sections, metrics = [], {}
    for folder in folders:
        label = "run" if folder == root else "-".join(folder.relative_to(root).parts)
        result = AttributionResult.load(folder)
        scored = json.loads((folder / METRICS_FILE).read_text()) if (folder / METRICS_FILE).is_file() else None
        relevant = {q: set(ids) for q, ids in scored["relevant"].items()} if scored else None
        if scored:
            metrics[label] = scored["metrics"]
        examples = _examples(folder)
        pictures = [_add(manifest, plot_score_histogram({label: (result, relevant)}, out / f"{label}-scores.png"),
                         "histogram", 1, label)]
        shown = result.query_ids[:max_queries]
        has_images = any(row.get("image") is not None for row in examples.values())
        if has_images:
            for row, query_id in enumerate(shown):
                ranked = []
                for c, s in result.topk(top_k)[row]:
                    if examples.get(c, {}).get("image") is None:
                        break  # the run folder keeps the images of its own top-k only
                    ranked.append((c, s, examples[c]["image"], bool(relevant and c in relevant.get(query_id, ()))))
                if examples.get(query_id, {}).get("image") is None or not ranked:
                    continue
                path = image_grid(examples[query_id]["image"], examples[query_id].get("text") or query_id, ranked,
                                  out / f"{label}-{_safe(query_id)}.png", title=f"{label}: top {len(ranked)}")
                pictures.append(_add(manifest, path, "image-grid", 1 + len(ranked), label))
        else:
            entries = [(f"{query_id}: {examples.get(query_id, {}).get('text') or ''}",
                        [(rank, c, s, examples.get(c, {}).get("text") or "",
                          bool(relevant and c in relevant.get(query_id, ())))
                         for rank, (c, s) in enumerate(result.topk(text_top)[row], start=1)])
                       for row, query_id in enumerate(shown)]
            path = ranked_text_figure(entries, out / f"{label}-ranked.png", title=f"{label}: top {text_top}")
            pictures.append(_add(manifest, path, "ranked-table", len(entries), label))
        sections.append(_section(label, folder, root, result, scored, pictures, top_k))
    if metrics:
        chart = _add(manifest, plot_metric_chart(metrics, out / "metrics.png"), "metric-chart", 1, "all")
        sections.insert(0, f'<h2>Metrics per method</h2>\n<img src="{chart.file}" alt="metrics per method">')
    manifest.index.write_text(_page(root, sections))
    (out / "manifest.json").write_text(json.dumps([p.__dict__ for p in manifest.pictures], indent=1))
    return manifest


def _examples(folder: Path) -> dict[str, dict]:
    if not (folder / EXAMPLES_FILE).is_file():
        return {}
    from datasets import Dataset

    return {row["id"]: row for row in Dataset.from_parquet(str(folder / EXAMPLES_FILE))}


def _add(manifest: ReportManifest, path: Path, kind: str, panels: int, label: str) -> Picture:
    picture = Picture(path.name, kind, panels, label)
    manifest.pictures.append(picture)
    return picture


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:60]


def _section(label: str, folder: Path, root: Path, result: AttributionResult, scored: dict | None,
             pictures: list[Picture], top_k: int) -> str:
    run = json.loads((folder / RUN_FILE).read_text()) if (folder / RUN_FILE).is_file() else {}
    model = run.get("model", {}).get("id") or "(not recorded)"
    facts = [("method", result.method), ("model", model), ("queries", len(result.query_ids)),
             ("candidates", len(result.candidate_ids)), ("folder", str(folder.relative_to(root)) or ".")]
    if scored:
        facts += [(name, f"{value:.4f}") for name, value in scored["metrics"].items()
                  if isinstance(value, float) and name in ("mrr", "map", "precision@1", "recall@10")]
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    images = "\n".join(f'<figure><img src="{html.escape(p.file)}" alt="{html.escape(p.kind)}">'
                       f"<figcaption>{html.escape(p.kind)}</figcaption></figure>" for p in pictures)
    relevant = {q: set(ids) for q, ids in scored["relevant"].items()} if scored else {}
    ranked = "".join(
        f"<tr><td>{html.escape(q)}</td><td>{rank}</td><td>{html.escape(c)}{' ★' if c in relevant.get(q, ()) else ''}"
        f"</td><td>{s:.6g}</td></tr>"
        for q, top in zip(result.query_ids[:20], result.topk(min(top_k, 5)), strict=False)
        for rank, (c, s) in enumerate(top, start=1))
    return (f"<h2>{html.escape(label)}</h2>\n<table class=facts>{rows}</table>\n{images}\n"
            f"<details><summary>top candidates (★ true proponent)</summary><table><tr><th>query</th><th>rank</th>"
            f"<th>candidate</th><th>score</th></tr>{ranked}</table></details>")


def _page(root: Path, sections: list[str]) -> str:
    body = "\n".join(f"<section>{s}</section>" for s in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hf-attrib report: {html.escape(root.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1400px; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
</style></head>
<body>
<h1>hf-attrib report: {html.escape(root.name)}</h1>
<p>Higher score = stronger proponent. Red / ★ = a true proponent (when labels are known).</p>
{body}
<script>
// for headless checks: how many pictures loaded
window.addEventListener("load", () => {{
  const images = Array.from(document.images);
  document.body.dataset.imagesLoaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.images = images.length;
}});
</script>
</body></html>
"""
