"""Plots of attribution results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hf_attrib.results import AttributionResult

GRID_PANEL_WIDTH = 1.6  # inches per panel of an image grid
HISTOGRAM_WIDTH = 4.0  # inches per panel of a histogram
TEXT_WIDTH = 11.0
CHART_METRICS = ("mrr", "map", "precision@1", "recall@10", "top1_accuracy")


def plot_proponent_scores(
    result: AttributionResult, relevant: dict[str, set[str]], path: str | Path, *, max_queries: int = 12
) -> Path:
    """One row per query: every candidate's score as a dot, true proponents in red, the top-1 circled."""
    plt = _pyplot()

    shown = result.query_ids[:max_queries]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 1.2))
    for row, query_id in enumerate(shown):
        scores = result.scores[row]
        is_proponent = np.array([c in relevant.get(query_id, set()) for c in result.candidate_ids])
        y = np.full(scores.shape, row, dtype=float)
        ax.scatter(scores[~is_proponent], y[~is_proponent], s=8, color="0.6", alpha=0.6)
        ax.scatter(scores[is_proponent], y[is_proponent], s=22, color="tab:red")
        best = int(np.argmax(scores))
        ax.scatter([scores[best]], [row], s=120, facecolors="none", edgecolors="black")
    ax.set_yticks(range(len(shown)), labels=shown, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("Forward-INF score (loss increase after unlearning the query)")
    ax.set_title("Candidates per query: true proponents red, top-1 circled", fontsize=9)
    fig.tight_layout()
    return _save(fig, path, dpi=120)


def image_grid(query_image, query_caption: str, ranked: list[tuple[str, float, object, bool]], path: str | Path,
               *, title: str = "") -> Path:
    """The query image, then the ranked candidates (id, score, image, is_relevant) with their scores,
    like the seed's Fig. 10; a relevant candidate's title is red."""
    plt = _pyplot()
    columns = 1 + len(ranked)
    fig, axes = plt.subplots(1, columns, figsize=(GRID_PANEL_WIDTH * columns, 2.1))
    axes = np.atleast_1d(axes)
    _panel(axes[0], query_image, f"query\n{query_caption[:24]}")
    for axis, (candidate_id, score, image, relevant) in zip(axes[1:], ranked, strict=True):
        _panel(axis, image, f"{candidate_id[:20]}\n{score:.4g}", red=relevant)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _panel(axis, image, caption: str, *, red: bool = False, fontsize: int = 7) -> None:
    """One image without ticks, its caption above (red when marked). PIL images are drawn in RGB and arrays
    in gray (a grayscale image would otherwise be drawn in false colour)."""
    axis.imshow(image.convert("RGB") if hasattr(image, "convert") else image, cmap="gray")
    axis.set_title(caption, fontsize=fontsize, color="tab:red" if red else "black")
    axis.set_xticks([])
    axis.set_yticks([])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, dpi: int = 110) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=dpi)
    _pyplot().close(fig)
    return target


def plot_score_histogram(series: dict[str, tuple[AttributionResult, dict[str, set[str]] | None]],
                         path: str | Path) -> Path:
    """One panel per result: the histogram of all its scores, with the true proponents' scores in red
    (when labels are known)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(HISTOGRAM_WIDTH * len(series), 2.6), squeeze=False)
    for axis, (label, (result, relevant)) in zip(axes[0], series.items(), strict=True):
        scores = result.scores[np.isfinite(result.scores)]
        bins = np.histogram_bin_edges(scores, bins=40) if scores.size else 10
        axis.hist(scores, bins=bins, color="0.55", label="all candidates")
        if relevant:
            column = {candidate_id: c for c, candidate_id in enumerate(result.candidate_ids)}
            hits = [result.scores[q, column[c]] for q, query_id in enumerate(result.query_ids)
                    for c in relevant.get(query_id, ()) if c in column]
            axis.hist(hits, bins=bins, color="tab:red", label="true proponents")
            axis.legend(fontsize=7)
        axis.set_yscale("log")
        axis.set_xlabel("score", fontsize=8)
        axis.set_title(label, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_metric_chart(metrics: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Grouped bars: each metric (MRR, mAP, P@1, R@10, top-1) for each method."""
    plt = _pyplot()
    names = [m for m in CHART_METRICS if any(m in values for values in metrics.values())]
    fig, axis = plt.subplots(figsize=(3.4 + 1.3 * len(names), 3.0))
    width = 0.8 / max(len(metrics), 1)
    for i, (label, values) in enumerate(metrics.items()):
        heights = [values.get(name, np.nan) for name in names]
        axis.bar(np.arange(len(names)) + i * width, heights, width, label=label)
    axis.set_xticks(np.arange(len(names)) + width * (len(metrics) - 1) / 2, labels=names, fontsize=8)
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    axis.set_title("metrics per method", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def ranked_text_figure(entries: list[tuple[str, list[tuple[int, str, float, str, bool]]]], path: str | Path,
                       *, title: str = "") -> Path:
    """One panel per query: its text, then its ranked candidates (rank, id, score, text), proponents in red
    and starred."""
    import textwrap

    plt = _pyplot()
    rows = max((len(ranked) for _, ranked in entries), default=1)
    fig, axes = plt.subplots(len(entries), 1, figsize=(TEXT_WIDTH, (0.5 + 0.32 * rows) * len(entries) + 0.4),
                             squeeze=False)
    for axis, (query, ranked) in zip(axes[:, 0], entries, strict=True):
        axis.axis("off")
        axis.text(0, 1, textwrap.shorten(query, 140), fontsize=8, weight="bold", va="top", transform=axis.transAxes)
        for line, (rank, candidate_id, score, text, relevant) in enumerate(ranked, start=1):
            mark = "★" if relevant else " "
            axis.text(0, 1 - line / (rows + 1.2), f"{mark} {rank}. {score:9.4g}  {candidate_id[:24]:<24}  "
                      f"{textwrap.shorten(text or '', 90)}", fontsize=7, family="monospace", va="top",
                      color="tab:red" if relevant else "black", transform=axis.transAxes)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)



def pair_grid(pairs: list[tuple[str, str, float]], images: dict[str, object], path: str | Path,
              *, title: str = "", marked: set[tuple[str, str]] | None = None) -> Path:
    """One column per (query, candidate, score) pair: the query image above its candidate, the score in the
    title; marked pairs (e.g. exact duplicates) titled in red."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(pairs), figsize=(GRID_PANEL_WIDTH * len(pairs), 3.6), squeeze=False)
    for column, (query_id, candidate_id, score) in enumerate(pairs):
        red = marked is not None and (query_id, candidate_id) in marked
        shown = ((query_id, query_id), (candidate_id, f"{candidate_id}\n{score:.4g}"))
        for row, (identifier, caption) in enumerate(shown):
            _panel(axes[row, column], images[identifier], caption[:40], red=red, fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
