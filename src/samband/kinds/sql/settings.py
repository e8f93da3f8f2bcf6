"""Settings of a ``kind: sql`` system (a database reached through SQLAlchemy)."""

from __future__ import annotations

from pydantic import Field, field_validator

from samband.plugin.settings import EntityTypeSettings, KindSettings


class SqlSettings(KindSettings):
    url: str | None = None
    """The database's SQLAlchemy URL (`sqlite:///pms.db`, `postgresql+psycopg://...`,
    `mysql+pymysql://...`); a relative SQLite path is beside the config file."""

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or "${" in value:
            return value  # a reference is checked once it is resolved
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            make_url(value).get_dialect()
        except (ArgumentError, NoSuchModuleError, ValueError):
            raise ValueError(
                f"{value.split('@')[-1]!r} is not a database URL SQLAlchemy knows; write e.g. "
                "sqlite:///pms.db, postgresql+psycopg://user:${PGPASSWORD}@host/db or "
                "mysql+pymysql://user:${MYSQL_PASSWORD}@host/db"
            ) from None
        return value

    page_size: int | None = None
    """Rows per page of a read (default 500)."""
    keep_changes: str | int | float = "7d"
    """How long the change log of a tracked table keeps entries the store has read: `7d`, `48h`, a
    bare number of days, or `forever`."""
    overlap_versions: int | None = None
    """For an integer version column: how many versions a read goes back before the cursor (default
    100)."""


class SqlTypeSettings(EntityTypeSettings):
    table: str | None = None
    """The table (default: the entity type's name)."""
    view: str | None = None
    """A view to read instead of a table (read only)."""
    schema_: str | None = Field(default=None, alias="schema")
    """The database schema holding the table (default: the connection's)."""
    id: str | None = None
    """The id column (default `id`); it must be the primary key or have a unique constraint or index
    of its own."""
    updated: str | None = None
    """The change column, a timestamp or an integer version (default: none, every read is a full
    scan)."""
    deleted: str | None = None
    """A soft-delete flag column (true: deleted); a delete then sets it instead of removing
    the row."""
    external_ref: str | None = None
    """The column where creates stamp the source record's ref, to find an interrupted
    create again."""
    columns: list[str] | None = None
    """Read only these columns, plus the id, change, soft-delete and external-reference columns
    (default: all)."""
