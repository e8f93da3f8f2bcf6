"""Fresh planner statistics for the store's hot tables on PostgreSQL.

PostgreSQL plans a query from the statistics ``ANALYZE`` gathered.  A table that grew
from nothing in one run (the initial sync) has none, or ones from when it was small, and
the planner then walks every snapshot of a type for each ``rid IN (…)`` lookup instead
of seeking each key: 160 ms a lookup at 20 000 records, growing with the table.
Autovacuum may catch up a minute later, or never (it can be switched off), so the store
analyzes a hot table itself once it has grown by half since it was last analyzed.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

HOT_TABLES = (
    "samband_snapshots",
    "samband_dirty",
    "samband_links",
    "samband_match_keys",
    "samband_intents",
    "samband_audit",
    "samband_search_terms",
)
_ANALYZE = {table: "ANALYZE (SKIP_LOCKED) " + table for table in HOT_TABLES}
MIN_ROWS = 2_000  # below this, any plan is fast
GROWTH = 0.5  # analyze again after this share of the table was written anew


class Statistics:
    """Counts the rows written to each hot table and analyzes those that grew."""

    def __init__(self, conn: Connection) -> None:
        self.written = dict.fromkeys(HOT_TABLES, 0)
        self.size = self._sizes(conn)

    @staticmethod
    def _sizes(conn: Connection) -> dict[str, float]:
        """Each table's row count as of its last analysis (0 if never analyzed)."""
        sizes = dict.fromkeys(HOT_TABLES, 0.0)
        rows = conn.execute(
            text(
                "SELECT relname, reltuples FROM pg_class WHERE oid IN"
                " (SELECT to_regclass(name) FROM unnest(CAST(:names AS text[])) AS name)"
            ),
            {"names": list(HOT_TABLES)},
        )
        for name, tuples in rows:
            sizes[name] = max(float(tuples), 0.0)  # -1: never analyzed
        return sizes

    def wrote(self, table: str, rows: int) -> None:
        self.written[table] += rows

    def due(self) -> list[str]:
        return [
            table
            for table, rows in self.written.items()
            if rows >= MIN_ROWS and rows >= GROWTH * self.size[table]
        ]

    def analyze(self, conn: Connection) -> None:
        """Analyze the tables that are due (call between transactions)."""
        for table in self.due():
            # SKIP_LOCKED: another worker analyzing the same table does the job
            conn.exec_driver_sql(_ANALYZE[table])
            self.written[table] = 0
        conn.commit()
        self.size = self._sizes(conn)
        conn.commit()
