"""`AttributionResult`: a scores matrix with its ids, saved as a run folder (safetensors, JSON, parquet, a dataset
card; see `hf_attrib.runs`), loaded back from a folder or a Hub dataset repo."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

SCORES_FILE = "scores.safetensors"
META_FILE = "result.json"
FORMAT_VERSION = 1

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hf_attrib.runs import RunInfo


@dataclass
class AttributionResult:
    """Scores of every candidate for every query: ``scores[q, c]``, higher = stronger proponent.

    ``extras`` holds named per-candidate or per-query arrays a method wants to keep (e.g. Forward-INF's
    base losses); ``config`` the options that produced the scores.
    """

    scores: np.ndarray
    query_ids: list[str]
    candidate_ids: list[str]
    method: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.query_ids = [str(i) for i in self.query_ids]
        self.candidate_ids = [str(i) for i in self.candidate_ids]
        expected = (len(self.query_ids), len(self.candidate_ids))
        if self.scores.shape != expected:
            raise ValueError(f"scores has shape {self.scores.shape}, expected (queries, candidates) = {expected}")
        for name, ids in (("query_ids", self.query_ids), ("candidate_ids", self.candidate_ids)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"{name} are not unique")

    def ranking(self, query: int | str) -> np.ndarray:
        """Candidate indices of one query, best first; ties keep candidate order."""
        row = self.query_ids.index(query) if isinstance(query, str) else query
        return np.argsort(-self.scores[row], kind="stable")

    def topk(self, k: int = 10) -> list[list[tuple[str, float]]]:
        """Per query, the `k` best (candidate_id, score) pairs, best first."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return [
            [(self.candidate_ids[c], float(self.scores[q, c])) for c in self.ranking(q)[:k]]
            for q in range(len(self.query_ids))
        ]

    # ---- persistence --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = True, info: RunInfo | None = None,
             relevant: Mapping[str, set[str]] | None = None, examples: Mapping[str, dict] | None = None,
             top_k: int = 10, layout: str = "run") -> Path:
        """Write the run folder `path` (see `hf_attrib.runs`), all or nothing.

        `info`: where the result came from (model, datasets, stage times); `relevant`: query id -> ids of its
        true proponents (adds ``metrics.json`` and marks them); `examples`: id -> row of the queries and
        candidates, whose text or image the report shows; ``layout="scores"`` writes only the scores and
        ``result.json``. Files go to a temporary folder beside `path`, moved into place only when complete.
        """
        from safetensors.numpy import save_file

        if layout not in ("run", "scores"):
            raise ValueError(f"layout must be 'run' or 'scores', got {layout!r}")
        target = Path(path)
        if target.exists() and not overwrite:
            raise ValueError(f"{target} exists; pass overwrite=True to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            tensors = {"scores": self.scores, **{f"extra.{k}": np.asarray(v) for k, v in self.extras.items()}}
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(staging / SCORES_FILE))
            meta = {
                "format_version": FORMAT_VERSION,
                "method": self.method,
                "query_ids": self.query_ids,
                "candidate_ids": self.candidate_ids,
                "config": self.config,
            }
            (staging / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
            if layout == "run":
                from hf_attrib.runs import write_run_files

                write_run_files(self, staging, info=info, relevant=relevant, examples=examples, top_k=top_k)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, path_or_repo_id: str | os.PathLike, *, revision: str | None = None) -> AttributionResult:
        """A result from a run folder, or from a Hub dataset repo holding one (downloaded to the HF cache)."""
        from safetensors.numpy import load_file

        folder = Path(path_or_repo_id)
        if not folder.exists():
            from hf_attrib.hub import download_run

            folder = download_run(str(path_or_repo_id), revision=revision)
        for name in (SCORES_FILE, META_FILE):
            if not (folder / name).is_file():
                raise ValueError(f"{folder} is not a saved AttributionResult: {name} is missing")
        meta = json.loads((folder / META_FILE).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{folder / META_FILE}: unsupported format_version {meta.get('format_version')!r}")
        tensors = load_file(str(folder / SCORES_FILE))
        extras = {k.removeprefix("extra."): v for k, v in tensors.items() if k.startswith("extra.")}
        return cls(tensors["scores"], meta["query_ids"], meta["candidate_ids"], meta.get("method", ""),
                   meta.get("config", {}), extras)

    # ---- sharing ------------------------------------------------------------------------------------
    def to_dataset(self):
        """A `datasets.Dataset` with one row per (query, candidate): query_id, candidate_id, score, rank."""
        from datasets import Dataset

        rows: dict[str, list] = {"query_id": [], "candidate_id": [], "score": [], "rank": []}
        for q, query_id in enumerate(self.query_ids):
            for rank, c in enumerate(self.ranking(q), start=1):
                rows["query_id"].append(query_id)
                rows["candidate_id"].append(self.candidate_ids[c])
                rows["score"].append(float(self.scores[q, c]))
                rows["rank"].append(rank)
        return Dataset.from_dict(rows)

    def push_to_hub(self, repo_id: str, *, private: bool = False, api: Any = None, **save_options: Any) -> str:
        """Save the run folder (`save_options` as for :meth:`save`) and upload it as a Hub dataset repo;
        returns the repo's URL. The token comes from huggingface_hub's usual places (``HF_TOKEN``, login)."""
        from hf_attrib.hub import push_run

        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save(Path(tmp) / "run", **save_options)
            return push_run(folder, repo_id, private=private, api=api)
