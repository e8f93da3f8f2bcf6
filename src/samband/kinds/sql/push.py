"""PostgreSQL ``LISTEN`` for ``samband serve``: the tracking triggers ``pg_notify`` the
channel ``samband_changes`` with ``schema.table`` at each commit that changed a tracked
table; this waits on the channel and names the entity types whose table it was.

Only PostgreSQL notifies; on SQLite and MariaDB the schedule's polling stays the way
changes are found.  The service reconnects when the connection is lost."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from samband.config.env import resolve_all
from samband.kinds.sql.connector._schema import database_url, table_specs
from samband.kinds.sql.connector._tracking import NOTIFY_CHANNEL
from samband.plugin.push import PushHooks

if TYPE_CHECKING:
    from samband.config.model import SystemConfig

#: how often the wait wakes to look at the stop flag
POLL_SECONDS = 0.5


def listen(
    system_id: str,
    config: SystemConfig,
    environ: Mapping[str, str],
    on_change: Callable[[list[str]], None],
    stop: threading.Event,
    connected: Callable[[], None],
) -> None:
    """Returns at once when the database is not PostgreSQL (nothing to listen to), else
    when ``stop`` is set; raises when the connection is lost."""
    import psycopg
    from psycopg import sql

    url = database_url(config, resolve_all(config.credentials, environ, system=system_id))
    if url.get_backend_name() != "postgresql":
        return
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    specs = table_specs(config)
    with psycopg.connect(
        conninfo, autocommit=True, application_name=f"samband-listen:{system_id}"
    ) as conn:
        current = conn.execute("SELECT current_schema()").fetchone()
        default_schema = str(current[0]) if current and current[0] else "public"
        tables: dict[str, list[str]] = {}
        for name, spec in specs.items():
            if spec.table:
                tables.setdefault(f"{spec.schema or default_schema}.{spec.table}", []).append(name)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
        connected()
        while not stop.is_set():
            for note in conn.notifies(timeout=POLL_SECONDS):
                names = tables.get(note.payload)
                if names:
                    on_change(list(names))
                if stop.is_set():
                    break


PUSH = PushHooks(listen=listen)
