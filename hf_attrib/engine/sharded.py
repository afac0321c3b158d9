"""Sharded, resumable, multi-process scoring: candidates read one shard at a time, never all at once.

``attribute_sharded(method, queries, candidates, output_dir)`` writes::

    output_dir/run.json               what the run is (method options, adapter, model and data fingerprints)
    output_dir/cache/                 the frozen-prefix states of the shard being scored (see prefix_cache)
    output_dir/shards/shard-00003/    each finished shard: an AttributionResult (scores.safetensors +
                                      result.json), written to a staging folder and renamed into place
    output_dir/result/                the merged AttributionResult, once every shard is done

Rerunning the same command skips the finished shards; the merged scores equal an uninterrupted run's bit
for bit, since shard i is always the same rows scored the same way. A run folder made with a different
model, adapter configuration, method option, query set or candidate set is refused.

With an `accelerate.Accelerator`, process r scores shards r, r + W, r + 2W, … (W processes, the rule of
`datasets.distributed.split_dataset_by_node`); the main process merges once all are done. `output_dir`
must be on storage every process sees.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_attrib.data.rows import check_unique, materialize
from hf_attrib.data.shards import CandidateShards
from hf_attrib.engine.scoring import EncodedRows
from hf_attrib.results import AttributionResult
from hf_attrib.runs import RunInfo

RUN_FILE = "run.json"


def attribute_sharded(method, queries: Any, candidates: Any, output_dir: str | Path, *, shard_size: int = 10_000,
                      fingerprint: str | None = None, accelerator=None, info: RunInfo | None = None
                      ) -> AttributionResult:
    """Score `candidates` (see `CandidateShards.from_source`: data files, a saved dataset, a Dataset, rows,
    or a streaming IterableDataset with `fingerprint`) shard by shard into `output_dir`. `info`: the model's
    id and revision for the merged result's run folder (fingerprints are filled in here).

    Memory holds one shard's inputs and the scores, whatever the number of candidates.
    """
    shards = CandidateShards.from_source(candidates, shard_size=shard_size, fingerprint=fingerprint)
    query_rows = materialize(queries, "queries")
    groups, query_ids = method.query_groups(query_rows)
    folder = Path(output_dir)
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    identity = run_identity(method, query_rows, shards)
    _claim(folder, identity, main=rank == 0)
    _barrier(accelerator)
    progress = method.args.progress and rank == 0
    mine = [i for i in range(shards.n_shards) if i % world == rank and not _shard_path(folder, i).is_dir()]
    for index in tqdm(mine, desc="candidate shards", disable=not progress):
        start = time.perf_counter()
        rows = list(shards.rows(index))
        if rows:
            encoded = EncodedRows.build(method.adapter, rows, method.args.batch_size, f"candidates shard {index}")
            cache = folder / "cache" / f"prefix-{index:05d}.safetensors"  # frozen-prefix states, if used
            cache.parent.mkdir(exist_ok=True)
            scores, base = method.scores_and_base(groups, encoded, cache_path=cache)
            cache.unlink(missing_ok=True)
            ids, base_losses = encoded.ids, base.mean(axis=(1, 2))
        else:  # a shard may be empty (e.g. a stream's last file)
            scores, ids, base_losses = np.zeros((len(groups), 0)), [], np.zeros(0)
        AttributionResult(scores, query_ids, ids, method=method.name, extras={"base_losses": base_losses},
                          config={"shard": index, "seconds": time.perf_counter() - start}
                          ).save(_shard_path(folder, index), layout="scores")
    _barrier(accelerator)
    if rank == 0:
        merged = merge_shards(folder, shards.n_shards, identity)
        info = info or RunInfo()
        info.model_fingerprint = identity["model_sha256"]
        info.datasets.update({
            "queries": {"id": "", "rows": len(query_rows), "fingerprint": identity["queries"]},
            "candidates": {"id": str(candidates) if isinstance(candidates, str | Path) else "",
                           "rows": len(merged.candidate_ids), "fingerprint": shards.fingerprint,
                           "shards": shards.n_shards}})
        info.stages["shards (sum over processes)"] = round(sum(merged.config["shard_seconds"]), 3)
        merged.save(folder / "result", info=info)
    _barrier(accelerator)
    return AttributionResult.load(folder / "result")


def run_identity(method, query_rows: list[dict], shards: CandidateShards) -> dict[str, Any]:
    """Everything the scores depend on; a resumed run must match it exactly."""
    from datasets.fingerprint import Hasher

    arguments = {k: v for k, v in method.args.to_dict().items() if k != "progress"}
    return {
        "method": method.name,
        "arguments": json.loads(json.dumps(arguments, default=str)),
        "adapter": type(method.adapter).__name__,
        "adapter_config": json.loads(json.dumps(method.adapter.config(), default=str)),
        "model_sha256": model_sha256(method.adapter.model),
        "queries": Hasher.hash(query_rows),
        "candidates": shards.fingerprint,
        "n_shards": shards.n_shards,
    }


def model_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            value = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}\n".encode())
            digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def merge_shards(folder: Path, n_shards: int, identity: dict[str, Any]) -> AttributionResult:
    """One AttributionResult from every shard, in shard order; a missing or unreadable shard is an error
    naming it (the other shards are kept: delete the bad one and rerun to rescore only it)."""
    parts = []
    for index in range(n_shards):
        path = _shard_path(folder, index)
        if not path.is_dir():
            raise ValueError(f"shard {index} is missing from {folder}; rerun the same command to score it")
        try:
            parts.append(AttributionResult.load(path))
        except Exception as error:  # noqa: BLE001 - any unreadable file: name the shard, keep the rest
            raise ValueError(f"shard {index} ({path}) cannot be read: {error}. Delete that folder and rerun "
                             "the same command to rescore only it") from None
    ids = [c for part in parts for c in part.candidate_ids]
    check_unique(ids, "candidates (across shards)")
    first = parts[0]
    return AttributionResult(
        np.concatenate([p.scores for p in parts], axis=1), first.query_ids, ids, method=first.method,
        config={**identity, "shard_seconds": [p.config.get("seconds") for p in parts]},
        extras={"base_losses": np.concatenate([p.extras["base_losses"] for p in parts])},
    )


def _claim(folder: Path, identity: dict[str, Any], *, main: bool) -> None:
    """Every process checks that an existing run.json describes this run; the main process also removes
    the staging folders a killed run left, or starts a new folder with run.json."""
    run_file = folder / RUN_FILE
    if run_file.is_file():
        recorded = json.loads(run_file.read_text()).get("identity", {})
        differing = [key for key in identity if recorded.get(key) != identity[key]]
        if differing:
            raise ValueError(f"{folder} holds a run with a different {', '.join(differing)}; refusing to resume "
                             "into it. Use a new output_dir (or delete this one to start over)")
        for staging in (folder / "shards").glob(".shard-*") if main else ():
            shutil.rmtree(staging, ignore_errors=True)
        return
    if not main:
        return
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"{folder} is not empty and holds no {RUN_FILE}; pass a new or empty output_dir")
    (folder / "shards").mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{RUN_FILE}.tmp"
    temporary.write_text(json.dumps({"identity": identity, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
    temporary.replace(run_file)


def _shard_path(folder: Path, index: int) -> Path:
    return folder / "shards" / f"shard-{index:05d}"


def _barrier(accelerator) -> None:
    if accelerator is not None:
        accelerator.wait_for_everyone()
