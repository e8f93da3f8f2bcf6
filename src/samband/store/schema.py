"""The store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Values that are JSON are kept as text (orjson), timestamps as ISO-8601 text in UTC, so
the schema is portable and a dump is readable.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import BigInteger

metadata = MetaData()
BigId = BigInteger().with_variant(Integer, "sqlite")

schema_version = Table(
    "samband_schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", String(40), nullable=False),
)

# The last collected state of each record (projected on the properties dataflows use).
snapshots = Table(
    "samband_snapshots",
    metadata,
    Column("system", String(100), primary_key=True),
    Column("etype", String(100), primary_key=True),
    Column("rid", String(200), primary_key=True),
    Column("hash", String(40), nullable=False),
    Column("data", Text, nullable=False),
    Column("modified", String(40)),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("seen_run", BigId),
    # read the record again from its system before it is planned (`samband retry`, or an
    # update that found the record edited since it was read)
    Column("refresh", Boolean, nullable=False, default=False, server_default=false()),
    sqlite_with_rowid=False,
)

# The queue of records collected (or written) and not planned yet.  ``seq`` grows with
# every mark, so a change that arrives while a record is being planned is not cleared by
# mistake.  A table of its own, not a column of the snapshot: clearing a mark then
# removes a small row instead of rewriting the snapshot with its data.
dirty = Table(
    "samband_dirty",
    metadata,
    Column("system", String(100), primary_key=True),
    Column("etype", String(100), primary_key=True),
    Column("rid", String(200), primary_key=True),
    Column("seq", BigId, nullable=False),
    sqlite_with_rowid=False,
)

# One row per linked pair of a dataflow; base holds the agreed values per target path.
links = Table(
    "samband_links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dataflow", String(300), nullable=False),
    Column("source_ref", String(400), nullable=False),
    Column("target_ref", String(400), nullable=False),
    Column("base", Text, nullable=False, default="{}"),
    Column("how", String(20), nullable=False),  # created | matched | recovered
    Column("created_run", BigId),
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("source_ref", "dataflow", name="uq_samband_links_source"),
    UniqueConstraint("target_ref", "dataflow", name="uq_samband_links_target"),
)

# the dashboard's and `samband status`'s link counts per dataflow, and the engine's reads
# of one dataflow's links, without reading every link of the others
Index("ix_samband_links_dataflow", links.c.dataflow)

# Normalised merge-criteria values of target records: (index name, key) → ref.
match_keys = Table(
    "samband_match_keys",
    metadata,
    Column("name", String(320), primary_key=True),
    Column("rid", String(200), primary_key=True),
    Column("key", String(500), nullable=False),
    sqlite_with_rowid=False,
)
Index("ix_samband_match_keys_lookup", match_keys.c.name, match_keys.c.key)

cursors = Table(
    "samband_cursors",
    metadata,
    Column("system", String(100), primary_key=True),
    Column("etype", String(100), primary_key=True),
    Column("cursor", Text),
    Column("fields", String(64)),  # signature of the projected properties
    Column("updated_at", String(40), nullable=False),
)

# Written (and committed) before the create calls of a chunk, one row per chunk: ``items``
# (JSON) lists each create still open, {key, source_ref, external_ref, values}.  An item
# is removed with the link its create led to; one left open after a crash is resolved by
# lookup.
intents = Table(
    "samband_intents",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("dataflow", String(300), nullable=False),
    Column("target_system", String(100), nullable=False),
    Column("target_etype", String(100), nullable=False),
    Column("items", Text, nullable=False),
    Column("run_id", BigId),
    Column("created_at", String(40), nullable=False),
    sqlite_with_rowid=False,
)

runs = Table(
    "samband_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("status", String(20), nullable=False),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("owner", String(200)),
    Column("stats", Text),
)

audit = Table(
    "samband_audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", BigId),
    Column("at", String(40), nullable=False),
    Column("ref", String(400), nullable=False),
    Column("dataflow", String(300)),
    Column("op", String(20), nullable=False),
    Column("before", Text),
    Column("after", Text),
)
Index("ix_samband_audit_ref", audit.c.ref)

conflicts = Table(
    "samband_conflicts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", BigId),
    Column("at", String(40), nullable=False),
    Column("dataflow", String(300), nullable=False),
    Column("source_ref", String(400), nullable=False),
    Column("target_ref", String(400), nullable=False),
    Column("property", String(300), nullable=False),
    Column("base", Text),
    Column("source_value", Text),
    Column("target_value", Text),
    Column("winner", String(20), nullable=False),  # source | target
    Column("reason", Text, nullable=False),
    # `samband conflicts resolve ID --take source|target`: the side whose value is to be
    # applied by the next run (applied_at set once it is)
    Column("resolution", String(20)),
    Column("resolved_at", String(40)),
    Column("applied_at", String(40)),
)

dead_letters = Table(
    "samband_dead_letters",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("ref", String(400), nullable=False),
    Column("dataflow", String(300), nullable=False),
    Column(
        "kind", String(20), nullable=False
    ),  # rejected | conversion | ambiguous | waiting | transient
    Column("reason", Text, nullable=False),
    Column("details", Text),
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_at", String(40), nullable=False),
    Column("last_at", String(40), nullable=False),
    Column("run_id", BigId),
    # `samband errors dismiss REF`: not listed nor retried any more (until it fails again)
    Column("dismissed_at", String(40)),
    UniqueConstraint("ref", "dataflow", name="uq_samband_dead_letters_ref"),
)

# Children whose parent is not linked yet.
waiting = Table(
    "samband_waiting",
    metadata,
    Column("dataflow", String(300), primary_key=True),
    Column("ref", String(400), primary_key=True),
    Column("parent", String(400), nullable=False),
    Column("runs", Integer, nullable=False, default=1),
    Column("last_run", BigId),
)

leases = Table(
    "samband_leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", String(40), nullable=False),
)

# The dataflows the links were made for, by key: a dataflow whose key changes (an id given
# or renamed) takes over the links of the one it was, found by its source and target.
dataflows = Table(
    "samband_dataflows",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("source", String(300), nullable=False),
    Column("target", String(300), nullable=False),
    # a digest of the mapped properties: when it changes, every linked pair is planned again
    Column("mapping", String(40)),
    # a digest of what decides which records flow and how they are linked (filter, create,
    # merge criteria): when it changes, or the dataflow is new, every live source record is
    # planned again (see samband.engine.reconcile)
    Column("linking", String(40)),
    Column("updated_at", String(40), nullable=False),
)

# The merge-criteria indexes that are complete.  An index is named after what it holds
# (the dataflow, the properties and their normalisation), so a changed combination is a
# new index, built from the stored snapshots before the run links anything by it.
match_indexes = Table(
    "samband_match_indexes",
    metadata,
    Column("name", String(320), primary_key=True),
    Column("dataflow", String(300), nullable=False),
    Column("built_at", String(40), nullable=False),
)

# Pairs a user unlinked (`samband unlink`): "these are not the same thing".  The run never
# links them again, by any way; while ``held``, the source is neither linked nor created
# (it waits for `samband link` or `samband retry`).
unlinked = Table(
    "samband_unlinked",
    metadata,
    Column("dataflow", String(300), primary_key=True),
    Column("source_ref", String(400), primary_key=True),
    Column("target_ref", String(400), primary_key=True),
    Column("held", Boolean, nullable=False, default=True),
    Column("at", String(40), nullable=False),
)
Index("ix_samband_unlinked_target", unlinked.c.target_ref)

# Per entity type, what its complete reads (every record, from no cursor) returned: the
# count of the last one taken as complete, and a read held back because it returned far
# fewer (its deletions are not applied until confirmed; see samband.engine.fullscan).
full_scans = Table(
    "samband_full_scans",
    metadata,
    Column("system", String(100), primary_key=True),
    Column("etype", String(100), primary_key=True),
    Column("complete_count", Integer),
    Column("complete_at", String(40)),
    Column("complete_run", BigId),
    Column("held_count", Integer),  # records the held read returned
    Column("held_expected", Integer),  # records it was compared with
    Column("held_unseen", Integer),  # records it did not return: the deletions held
    Column("held_at", String(40)),
    Column("held_run", BigId),
    Column("confirmed_at", String(40)),
    Column("confirmed_run", BigId),
)

# What a person set for a dataflow (`samband dataflow ...`), owned by the engine: paused
# (no run reads, plans or writes it), writes to either side switched off ("share"), and
# whether records that existed before its start mark are created ("full sync").
dataflow_controls = Table(
    "samband_dataflow_controls",
    metadata,
    Column("dataflow", String(300), primary_key=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("write_source", Boolean, nullable=False, default=True),
    Column("write_target", Boolean, nullable=False, default=True),
    Column("full_sync", Boolean, nullable=False, default=True),
    # when "only new records" began; the baseline (the source records that existed then)
    # is taken at once, or by the first run that has read the source type
    Column("start_mark", String(40)),
    Column("baseline_taken", Boolean, nullable=False, default=False),
    Column("updated_at", String(40), nullable=False),
    Column("updated_by", String(200)),
)

# Records a dataflow has still to plan: changes a run cleared from the queue while the
# dataflow was paused or not run ("missed"), and writes held while writing to a side is
# off ("share").  A missed record is queued again by the next run of its dataflow; a held
# one when writing is switched on again.
dataflow_held = Table(
    "samband_dataflow_held",
    metadata,
    Column("dataflow", String(300), primary_key=True),
    Column("ref", String(400), primary_key=True),
    Column("reason", String(20), primary_key=True),  # missed | share
    Column("at", String(40), nullable=False),
)

# "Only new records" (full sync off): the source records that existed at the start mark;
# they are linked if they match, never created.
dataflow_baseline = Table(
    "samband_dataflow_baseline",
    metadata,
    Column("dataflow", String(300), primary_key=True),
    Column("ref", String(400), primary_key=True),
    sqlite_with_rowid=False,
)

# The values of each record's snapshot as search terms (``samband records find``, the
# dashboard's records search): the whole value folded (case, width, spaces) and, for a
# value of digits and separators (an org number, a phone), its digits alone.  Found by
# prefix through the term index.  A snapshot written is queued (with its hash) and its
# terms are made after the run, off the run's path (see samband.store.search).
_TERM = String(200).with_variant(String(200, collation="C"), "postgresql")
search_terms = Table(
    "samband_search_terms",
    metadata,
    Column("system", String(100), primary_key=True),
    Column("etype", String(100), primary_key=True),
    Column("rid", String(200), primary_key=True),
    Column("term", _TERM, primary_key=True),
    sqlite_with_rowid=False,
)
Index("ix_samband_search_terms_term", search_terms.c.term)
search_queue = Table(
    "samband_search_queue",
    metadata,
    Column("system", String(100), primary_key=True),
    Column("etype", String(100), primary_key=True),
    Column("rid", String(200), primary_key=True),
    Column("hash", String(40), nullable=False),
    sqlite_with_rowid=False,
)
