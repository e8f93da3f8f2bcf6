"""``samband tenants …``: the tenants registry, and queueing tenants' jobs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from samband.cli._app import JsonOption, app, err, fail, out
from samband.errors import SambandError
from samband.tenants import TenantError

if TYPE_CHECKING:
    from samband.config import Config

tenants_app = typer.Typer(
    help="Many companies on one installation: the tenants registry and their queued jobs "
    "(see `samband worker --queue`).",
    no_args_is_help=True,
)
app.add_typer(tenants_app, name="tenants")

TenantsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--tenants-dir",
        help="The tenants registry (a folder of TENANT/samband.yaml); default: "
        "$SAMBAND_TENANTS, else ./tenants.",
        show_default=False,
    ),
]
QueueOption = Annotated[
    str,
    typer.Option(
        "--queue",
        envvar="SAMBAND_QUEUE",
        help="The queue's PostgreSQL database, postgresql://USER@HOST:PORT/DB "
        "(default: $SAMBAND_QUEUE).",
        show_default=False,
    ),
]

T = TypeVar("T")


def _registry(tenants_dir: Path | None) -> Any:
    from samband.tenants import Registry

    return Registry(tenants_dir)


def _with_queue(queue: str, action: Callable[[Any], Awaitable[T]]) -> T:
    from samband.queue.worker import open_app

    async def go() -> T:
        app_ = open_app(queue, max_size=2)
        async with app_.open_async():
            return await action(app_)

    try:
        return asyncio.run(go())
    except SambandError as exc:
        raise fail(exc) from None


@tenants_app.command("list")
def list_tenants(tenants_dir: TenantsDirOption = None, as_json: JsonOption = False) -> None:
    """The tenants of the registry: name, config, interval of their scheduled runs."""
    registry = _registry(tenants_dir)
    rows = []
    for tenant in registry.tenants():
        try:
            every: Any = registry.get(tenant.name).every()  # a bad name is said here
        except SambandError as exc:
            every = f"error: {exc}"
        rows.append({"tenant": tenant.name, "config": str(tenant.config_path), "every": every})
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    if not rows:
        err.print(
            f"no tenants in {registry.root}; add one with `samband tenants add NAME --config FILE`"
        )
        return
    table = Table(title=f"tenants in {registry.root}")
    for column in ("tenant", "config", "every"):
        table.add_column(column)
    for row in rows:
        every = row["every"]
        table.add_row(
            row["tenant"], row["config"], f"{every:g}s" if isinstance(every, float) else every
        )
    out.print(table)


@tenants_app.command("add")
def add_tenant(
    name: Annotated[
        str,
        typer.Argument(help="The tenant's name: letters and digits, words joined by one - or _."),
    ],
    config: Annotated[Path, typer.Option("--config", help="The tenant's config file, copied in.")],
    every: Annotated[
        str | None,
        typer.Option("--every", help="Its scheduled runs' interval, e.g. 5m (default 5m)."),
    ] = None,
    tenants_dir: TenantsDirOption = None,
) -> None:
    """Add a tenant: its config is copied to TENANTS/NAME/samband.yaml; its credentials
    are SAMBAND_TENANT_<NAME>__VAR variables, TENANTS/NAME/.env, or keyring entries of the
    service samband/NAME."""
    from samband.config.validate import load_valid

    try:
        load_valid(config)
        tenant = _registry(tenants_dir).add(name, config, every)
    except SambandError as exc:
        raise fail(exc, 2) from None
    out.print(f"added tenant {name}: {tenant.config_path}")


@tenants_app.command("remove")
def remove_tenant(name: str, tenants_dir: TenantsDirOption = None) -> None:
    """Take a tenant out of the registry.  Its queued jobs are dropped when their turn
    comes; its folder (config and state) is kept under TENANTS/.removed/."""
    try:
        kept = _registry(tenants_dir).remove(name)
    except SambandError as exc:
        raise fail(exc, 2) from None
    out.print(f"removed tenant {name}; its folder is kept as {kept}")


@tenants_app.command("run-all")
def run_all(queue: QueueOption, tenants_dir: TenantsDirOption = None) -> None:
    """Queue a run now for every tenant that has no scheduled run waiting or running (the
    workers do this on their own every 30 s)."""
    from samband.queue.worker import schedule_missing

    registry = _registry(tenants_dir)
    queued = _with_queue(queue, lambda a: schedule_missing(a, registry))
    out.print(f"queued {len(queued)} run(s): {', '.join(queued) or 'every tenant has one'}")


def _tenant_config(tenants_dir: Path | None, name: str) -> Config:
    """The tenant's checked config: what a queued job of it may name is known now."""
    from samband.config.validate import load_valid

    return load_valid(_registry(tenants_dir).get(name).config_path).config


@tenants_app.command("run")
def run_tenant(
    name: str,
    queue: QueueOption,
    dataflow: Annotated[
        list[str] | None,
        typer.Option("--dataflow", help="A dataflow this run is for (repeatable)."),
    ] = None,
    tenants_dir: TenantsDirOption = None,
) -> None:
    """Queue a run of one tenant now (what a webhook pushes); one waiting already covers it."""
    from samband.queue.tasks import defer_targeted

    try:
        config = _tenant_config(tenants_dir, name)
    except SambandError as exc:
        raise fail(exc, 2) from None
    known = [flow.key for flow in config.dataflows]
    for key in dataflow or []:
        if key not in known:
            known_keys = ", ".join(known)
            raise fail(TenantError(f"{name}: no dataflow {key!r}; its dataflows: {known_keys}"), 2)
    queued = _with_queue(queue, lambda a: defer_targeted(a, name, dataflow or []))
    out.print(f"queued a run of {name}" if queued else f"a run of {name} is queued already")


@tenants_app.command("resync")
def resync_tenant(
    name: str,
    entity_type: Annotated[str, typer.Argument(metavar="SYSTEM.TYPE")],
    queue: QueueOption,
    tenants_dir: TenantsDirOption = None,
) -> None:
    """Queue a job that reads one of the tenant's entity types from the start, then runs."""
    from samband.queue.tasks import defer_resync

    if "." not in entity_type:
        raise typer.BadParameter(f"{entity_type!r} is not SYSTEM.TYPE, e.g. crm.Customer")
    try:
        config = _tenant_config(tenants_dir, name)
    except SambandError as exc:
        raise fail(exc, 2) from None
    in_use = sorted({ref for flow in config.dataflows for ref in (flow.source, flow.target)})
    if entity_type not in in_use:
        used = ", ".join(in_use)
        raise fail(TenantError(f"{name}: {entity_type} is in no dataflow; types in use: {used}"), 2)
    _with_queue(queue, lambda a: defer_resync(a, name, [entity_type]))
    out.print(f"queued a resync of {name} {entity_type}")


@tenants_app.command("runs")
def tenant_runs(
    queue: QueueOption,
    name: Annotated[str | None, typer.Argument(help="Only this tenant's.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The tenants' latest jobs: when, on which worker, how they ended and why."""
    from samband.queue.runlog import PostgresRunLog

    rows = _with_queue(queue, lambda a: PostgresRunLog(a).recent(name, limit))
    if as_json:
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return
    table = Table(title="tenant runs")
    columns = ("tenant", "task", "worker", "started_at", "finished_at", "status", "message")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c] or "") for c in columns))
    out.print(table)
