"""Command-line options every `samband` command shares, also the commands a kind brings
(``samband sql …``): the config file, found without ``-c`` as `samband.config.locate`
says, or a tenant's (``--tenant NAME``, from the tenants registry: `samband.tenants`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.core import ParameterSource
from typer._click.globals import get_current_context
from typer.core import TyperGroup

from samband.errors import ConfigError

TENANT = "samband.tenant"  # where --tenant leaves the tenant, in the command's context


def found_config() -> Path:
    """The ``--tenant``'s config, else ``$SAMBAND_CONFIG``, else ``./samband.yaml``; a
    usage error saying where it looked."""
    from samband.config.locate import find_config

    ctx = get_current_context(silent=True)
    tenant = ctx.meta.get(TENANT) if ctx is not None else None
    if tenant is not None:
        return Path(tenant.config_path)
    try:
        return find_config()
    except ConfigError as exc:
        problem = exc.problems[0]
        raise typer.BadParameter(f"{problem.message} ({problem.hint})") from None


def config_given(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    if ctx.meta.get(TENANT) is not None and ctx.get_parameter_source(param.name or "config") in (
        ParameterSource.COMMANDLINE,
        ParameterSource.ENVIRONMENT,
    ):
        raise typer.BadParameter("give -c FILE or --tenant NAME, not both")
    return value


ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        help="The config file (YAML); default: the --tenant's, else $SAMBAND_CONFIG, else "
        "./samband.yaml.",
        default_factory=found_config,
        show_default=False,
        callback=config_given,
    ),
]


def _take_tenant(ctx: typer.Context, value: str | None) -> str | None:
    """``--tenant NAME``: the tenant's config is the command's, and its own environment
    and keyring service are what ``${VAR}`` resolves from in this process."""
    from samband.config.env import use_scope
    from samband.tenants import Registry, TenantError

    if value is None:
        return None
    try:
        tenant = Registry().get(value)
        environ = tenant.environ()
    except TenantError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tenant") from None
    ctx.meta[TENANT] = tenant
    use_scope(environ)
    ctx.call_on_close(lambda: use_scope(None))  # also for a caller in the same process
    return value


_holder = typer.Typer()


@_holder.command()
def _tenant_option(
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            metavar="NAME",
            is_eager=True,
            expose_value=False,
            callback=_take_tenant,
            help="A tenant of the registry ($SAMBAND_TENANTS, else ./tenants): its config, "
            "its environment and keyring entries (instead of -c).",
        ),
    ] = None,
) -> None:
    """Only here for typer to build the --tenant option (see :func:`with_tenant`)."""


def with_tenant(command: Any) -> None:
    """Give every command (or listing group) of ``command``'s tree that takes ``-c`` the
    ``--tenant`` option too."""
    params = getattr(command, "params", [])
    if any("-c" in getattr(p, "opts", []) for p in params) and not any(
        "--tenant" in getattr(p, "opts", []) for p in params
    ):
        params.append(typer.main.get_command(_holder).params[0])
    for sub in getattr(command, "commands", {}).values():
        with_tenant(sub)


class SambandGroup(TyperGroup):
    """The ``samband`` command group: its commands that take ``-c`` take ``--tenant``."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        with_tenant(self)
