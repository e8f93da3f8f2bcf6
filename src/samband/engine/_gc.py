"""Fewer cyclic garbage-collector passes while a run is going on.

A run allocates millions of short-lived dicts, tuples and strings (rows, snapshots,
values), nearly all freed at once by reference counting.  CPython's default threshold
starts a collection every 700 net allocations, so the collector walks the heap thousands
of times and finds next to nothing: 8 % of an initial sync of 100 000 records.  With a
threshold of 50 000 it runs a hundred times less often; cycles (rare here) are still
collected, a little later.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = (700, 10, 10)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the first-generation threshold for the duration (runs may nest or overlap in
    threads: the setting the first one found is restored when the last one ends)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(_saved[0], THRESHOLD), _saved[1], _saved[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
