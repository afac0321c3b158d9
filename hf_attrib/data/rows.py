"""Rows in, rows out: the one place that turns what users pass as queries or candidates into dicts.

A source may be a list of dicts, a `datasets.Dataset`, or a (streaming) `datasets.IterableDataset`.
Every error names the source ("queries", "candidates") and, where there is one, the row's id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

Row = dict[str, Any]


def iter_rows(source: Any, what: str) -> Iterator[Row]:
    """Yield the rows of `source` as plain dicts; `what` names the source in errors."""
    if source is None:
        raise ValueError(f"{what} is None: pass a list of dicts, a datasets.Dataset or an IterableDataset")
    if isinstance(source, dict):
        raise ValueError(
            f"{what} is a single dict; pass a list of rows (dicts), a datasets.Dataset or an IterableDataset"
        )
    if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
        raise ValueError(f"{what} must be a list of dicts or a datasets (Iterable)Dataset, got {type(source)!r}")
    for index, row in enumerate(source):
        if not isinstance(row, dict):
            raise ValueError(f"{what}[{index}] is a {type(row).__name__}, expected a dict with named columns")
        yield row


def materialize(source: Any, what: str) -> list[Row]:
    """All rows of `source` as a list; an empty source is a `ValueError` naming it."""
    rows = list(iter_rows(source, what))
    if not rows:
        raise ValueError(f"{what} is empty: nothing to attribute")
    return rows


def batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """Consecutive lists of at most `size` rows."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def row_id(row: Row, id_column: str, what: str, index: int) -> str:
    """The row's id as a string; a missing or empty id is a `ValueError` naming the row."""
    if id_column not in row or row[id_column] is None or str(row[id_column]) == "":
        raise ValueError(f"{what}[{index}] has no {id_column!r} column (columns: {sorted(row)})")
    return str(row[id_column])


def check_unique(ids: Sequence[str], what: str) -> None:
    """Ids identify rows in results; a duplicate would silently merge two rows."""
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            raise ValueError(f"{what} has the id {identifier!r} more than once; ids must be unique")
        seen.add(identifier)
