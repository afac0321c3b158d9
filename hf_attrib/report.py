"""Plots of attribution results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hf_attrib.results import AttributionResult


def plot_proponent_scores(
    result: AttributionResult, relevant: dict[str, set[str]], path: str | Path, *, max_queries: int = 12
) -> Path:
    """One row per query: every candidate's score as a dot, true proponents in red, the top-1 circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    target = Path(path)
    fig.savefig(target, dpi=120)
    plt.close(fig)
    return target


def image_grid(query_image, query_caption: str, ranked: list[tuple[str, float, object, bool]], path: str | Path,
               *, title: str = "") -> Path:
    """The query image, then the ranked candidates (id, score, image, is_relevant) with their scores,
    like the seed's Fig. 10; a relevant candidate's title is red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 + len(ranked)
    fig, axes = plt.subplots(1, columns, figsize=(1.6 * columns, 2.1))
    axes = np.atleast_1d(axes)
    axes[0].imshow(_rgb(query_image))
    axes[0].set_title(f"query\n{query_caption[:24]}", fontsize=7)
    for axis, (candidate_id, score, image, relevant) in zip(axes[1:], ranked, strict=True):
        axis.imshow(_rgb(image))
        axis.set_title(f"{candidate_id[:20]}\n{score:.4g}", fontsize=7, color="tab:red" if relevant else "black")
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def _rgb(image):
    """PIL images in RGB (a grayscale image would otherwise be drawn in false colour)."""
    return image.convert("RGB") if hasattr(image, "convert") else image
