"""Backup and restore of an embedded (SQLite) store, consistent while a run writes: both
go through SQLite's online backup API, page by page under its locks, never a file copy.
A PostgreSQL store is backed up with the server's own tools (``pg_dump``)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from samband.errors import StoreError
from samband.store._database import _resolve_sqlite
from samband.store.schema import runs


def store_file(url: str, base_dir: str | None) -> Path:
    """The SQLite file of the store at ``url``; StoreError for any other store."""
    parsed = make_url(_resolve_sqlite(url, base_dir))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise StoreError(
            "the store is on a database server: back it up with the server's tools "
            "(PostgreSQL: pg_dump -Fc; restore with pg_restore), see docs/service.md"
        )
    return Path(parsed.database)


def backup_store(url: str, base_dir: str | None, target: Path) -> Path:
    """Write a consistent copy of the store to ``target`` (not overwritten)."""
    source = store_file(url, base_dir)
    if target.exists():
        raise StoreError(f"{target} exists: choose another name or move it away")
    partial = target.with_name(target.name + ".partial")
    try:
        with _open(source, readonly=True) as db, _open(partial) as copy:
            db.backup(copy)
            _check(copy, partial)
        os.chmod(partial, 0o600)  # the store holds your records' values
        os.replace(partial, target)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"the backup of {source} failed: {exc}") from None
    return target


def restore_store(url: str, base_dir: str | None, backup: Path) -> Path:
    """Put ``backup`` in place of the store; refused while a run is in progress."""
    target = store_file(url, base_dir)
    if not backup.is_file():
        raise StoreError(f"{backup} does not exist")
    try:
        with _open(backup, readonly=True) as copy:
            _check(copy, backup)
        if target.exists():
            with _open(target, readonly=True) as db:
                running = db.execute(
                    f"SELECT count(*) FROM {runs.name} WHERE status = 'running'"
                ).fetchone()[0]
            if running:
                raise StoreError(
                    f"a run is in progress on {target} (or one was killed: samband status "
                    "shows it): stop `samband serve`/`samband run` first; nothing was changed"
                )
        with _open(backup, readonly=True) as copy, _open(target) as db:
            copy.backup(db)
    except sqlite3.Error as exc:
        raise StoreError(f"the restore into {target} failed: {exc}; restore again") from None
    return target


@contextlib.contextmanager
def _open(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection closed at the end (sqlite3's own context manager only commits)."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        db = sqlite3.connect(path, timeout=30)
    try:
        yield db
    finally:
        db.close()


def _check(db: sqlite3.Connection, path: Path) -> None:
    """A store: a sound SQLite file with Samband's tables."""
    try:
        sound = db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        has_runs = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (runs.name,)
        ).fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a Samband store ({exc})") from None
    if not sound:
        raise StoreError(f"{path} is damaged (SQLite's integrity check failed)")
    if not has_runs:
        raise StoreError(f"{path} is not a Samband store (it has no {runs.name} table)")
