"""A candidate set as an ordered list of shards, read one at a time, with a fingerprint.

Sources:

- a folder (or a list) of data files — ``*.parquet``, ``*.arrow``, ``*.jsonl``/``*.json``, ``*.csv`` — one
  shard per file, streamed with `datasets` (fingerprint: the files' names, sizes and SHA-256);
- a folder written by `Dataset.save_to_disk`, a `datasets.Dataset` or a list of rows — contiguous shards of
  `shard_size` rows (fingerprint: the dataset's own fingerprint, or a hash of the rows);
- a streaming `datasets.IterableDataset` (e.g. ``load_dataset(hub_id, streaming=True)``) — its `n_shards`
  shards, each ``dataset.shard(n_shards, i)``; its fingerprint is the `fingerprint` argument (e.g. the Hub
  revision), since a stream cannot be hashed without reading it all.

Shard i of a run is always the same rows in the same order, which is what makes runs resumable and lets
processes split the shards between them (shard i goes to process i mod world size, as
`datasets.distributed.split_dataset_by_node` assigns shards).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hf_attrib.data.rows import Row, iter_rows

BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json", ".json": "json", ".csv": "csv"}


class CandidateShards:
    """``CandidateShards.from_source(source, shard_size=...)``; ``rows(i)`` yields shard i's rows."""

    def __init__(self, n_shards: int, reader, fingerprint: str, description: str) -> None:
        if n_shards < 1:
            raise ValueError(f"candidates: {description} holds no shard")
        self.n_shards, self._reader, self.fingerprint, self.description = n_shards, reader, fingerprint, description

    def rows(self, index: int) -> Iterator[Row]:
        if not 0 <= index < self.n_shards:
            raise IndexError(f"shard {index} of {self.n_shards}")
        return iter_rows(self._reader(index), f"candidates shard {index}")

    @classmethod
    def from_source(cls, source: Any, *, shard_size: int = 10_000, fingerprint: str | None = None) -> CandidateShards:
        if isinstance(source, CandidateShards):
            return source
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        from datasets import Dataset, IterableDataset

        if isinstance(source, str | Path):
            path = Path(source)
            if (path / "state.json").is_file() and (path / "dataset_info.json").is_file():
                from datasets import load_from_disk

                return cls._from_dataset(load_from_disk(str(path)), shard_size, f"saved dataset {path}")
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.suffix in BUILDERS and p.is_file())
                if not files:
                    raise ValueError(f"candidates: {path} holds no {', '.join(BUILDERS)} file")
                return cls._from_files(files)
            if path.is_file():
                return cls._from_files([path])
            raise ValueError(f"candidates: {path} is neither a folder nor a data file (for a Hub dataset, pass "
                             "load_dataset(id, split=..., streaming=True) and its revision as fingerprint)")
        if isinstance(source, list | tuple) and source and all(isinstance(p, str | Path) for p in source):
            return cls._from_files([Path(p) for p in source])
        if isinstance(source, Dataset):
            return cls._from_dataset(source, shard_size, "dataset")
        if isinstance(source, IterableDataset):
            if not fingerprint:
                raise ValueError("candidates: a streaming IterableDataset needs fingerprint= (e.g. the dataset's "
                                 "Hub revision) so that a resumed run can tell it is the same data")
            return cls(source.n_shards, lambda i: source.shard(num_shards=source.n_shards, index=i),
                       f"stream:{fingerprint}", f"streaming dataset ({source.n_shards} shards)")
        rows = list(iter_rows(source, "candidates"))
        if not rows:
            raise ValueError("candidates is empty: nothing to attribute")
        from datasets.fingerprint import Hasher

        count = -(-len(rows) // shard_size)
        return cls(count, lambda i: rows[i * shard_size:(i + 1) * shard_size], f"rows:{Hasher.hash(rows)}",
                   f"{len(rows)} rows")

    @classmethod
    def _from_dataset(cls, dataset, shard_size: int, description: str) -> CandidateShards:
        count = -(-len(dataset) // shard_size)
        return cls(count, lambda i: dataset.select(range(i * shard_size, min(len(dataset), (i + 1) * shard_size))),
                   f"dataset:{dataset._fingerprint}:{shard_size}", f"{description} ({len(dataset)} rows)")

    @classmethod
    def _from_files(cls, files: list[Path]) -> CandidateShards:
        for file in files:
            if file.suffix not in BUILDERS:
                raise ValueError(f"candidates: {file} is not one of {', '.join(BUILDERS)}")
            if not file.is_file():
                raise ValueError(f"candidates: {file} does not exist")
        digest = hashlib.sha256()
        for file in files:
            digest.update(f"{file.name}:{file.stat().st_size}:{_file_sha256(file)}\n".encode())

        def read(index: int):
            from datasets import load_dataset

            file = files[index]
            return load_dataset(BUILDERS[file.suffix], data_files=[str(file)], split="train", streaming=True)

        return cls(len(files), read, f"files:{digest.hexdigest()}", f"{len(files)} data files")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
