"""Wall time of named stages, added up in a dict (repeated stages accumulate)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed_into(store: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds spent in the block to ``store[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        store[name] = store.get(name, 0.0) + time.perf_counter() - start
