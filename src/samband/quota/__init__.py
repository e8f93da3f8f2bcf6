"""API quotas shared by every worker of a cluster: a token bucket per connection in
PostgreSQL (:class:`QuotaDatabase`).

A connection's rate limit (PowerOffice GO's 10 requests a second per subscription key,
Exact Online's 60 a minute per app and division) holds for the API, not for one process.
When ``SAMBAND_QUOTA_DATABASE`` names a PostgreSQL database, every connector paces its
calls through one row of that database per connection key, so that any number of worker
processes on any number of machines stay together under the limit; without it, each
process paces itself (the single-machine default).

The buckets themselves are :class:`samband.quota.bucket.QuotaDatabase`; that module imports
the PostgreSQL driver, so it is loaded only when a quota database is used.
"""

from samband.quota._cluster import cluster_database, reset_cluster_database
from samband.quota._keys import ENV, QuotaSpent, QuotaUnavailable, connection_key

__all__ = [
    "ENV",
    "QuotaSpent",
    "QuotaUnavailable",
    "cluster_database",
    "connection_key",
    "reset_cluster_database",
]
