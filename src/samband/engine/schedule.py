"""When ``samband run`` and ``samband worker`` try again.

After a cycle that failed because a system could not be used (unreachable, refused
credentials, an unusable store), the next try waits twice as long as the last one,
starting from the interval (``--every``) and never longer than :data:`BACKOFF_CAP` (or the
interval, when that is longer).  The first cycle that works returns to the interval.
"""

from __future__ import annotations

BACKOFF_CAP = 15 * 60.0  # seconds


def next_wait(interval: float, failures: int, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait before the next cycle after ``failures`` failed cycles in a row."""
    if failures <= 0:
        return interval
    return min(interval * 2.0 ** min(failures, 32), max(cap, interval))
