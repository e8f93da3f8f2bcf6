"""The process's quota database, named by ``SAMBAND_QUOTA_DATABASE``."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from samband.quota._keys import ENV

if TYPE_CHECKING:
    from samband.quota.bucket import QuotaDatabase

_cluster: dict[str, QuotaDatabase] = {}
_cluster_lock = threading.Lock()


def cluster_database(environ: dict[str, str] | None = None) -> QuotaDatabase | None:
    """The process's quota database named by ``SAMBAND_QUOTA_DATABASE``, or None."""
    url = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not url:
        return None
    with _cluster_lock:
        database = _cluster.get(url)
        if database is None:
            from samband.quota.bucket import QuotaDatabase

            database = _cluster[url] = QuotaDatabase(url)
        return database


def reset_cluster_database() -> None:
    """Forget the process's quota databases (tests that change the environment)."""
    with _cluster_lock:
        for database in _cluster.values():
            database.close()
        _cluster.clear()
