"""``samband init``: a starter ``samband.yaml`` for the kinds named.

Each kind brings its own system block (:class:`samband.plugin.Starter`); with two or more
kinds, the first one's customer-like records are synchronized with each other's (merged
by organisation number, the name kept in sync).  With ``sandbox=True`` the ``${VAR}``
references default to the local sandboxes (``samband sandbox KIND --port PORT``) and the
SQL kind's database is created beside the file, so ``samband check`` and ``samband sync``
work at once.

    >>> from samband.config.starter import starter_text
    >>> print(starter_text(["rest", "sql"]).splitlines()[0])
    # Samband starter config for rest and sql, written by `samband init`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from samband.errors import SambandError
from samband.plugin import Starter, UnknownKind, get_kind, kind_names
from samband.plugin.settings import closest


class StarterError(SambandError):
    """``samband init`` cannot write what was asked (an unknown kind, an existing file)."""


@dataclass(frozen=True)
class Written:
    """What :func:`write_starter` did: the file, and the sandboxes to start for it."""

    path: Path
    sandboxes: list[tuple[str, int]]  # (kind, port)


def _system_ids(chosen: list[tuple[str, Starter]]) -> list[str]:
    ids: list[str] = []
    for _, starter in chosen:
        system_id, number = starter.system_id, 2
        while system_id in ids:  # the same kind twice: pms, pms2, ...
            system_id = f"{starter.system_id}{number}"
            number += 1
        ids.append(system_id)
    return ids


def _starters(kinds: Sequence[str]) -> list[tuple[str, Starter]]:
    if not kinds:
        raise StarterError(f"name at least one kind: {', '.join(kind_names())}")
    found: list[tuple[str, Starter]] = []
    for kind in kinds:
        try:
            starter = get_kind(kind).starter_hooks()
        except UnknownKind:
            best = closest(kind, kind_names())
            maybe = f"did you mean {best!r}? " if best else ""
            raise StarterError(
                f"unknown kind {kind!r}; {maybe}kinds: {', '.join(kind_names())}"
            ) from None
        if starter is None:
            raise StarterError(f"kind {kind!r} has no starter config")
        found.append((kind, starter))
    return found


def _sandbox_env(kind: str, starter: Starter) -> dict[str, str]:
    hooks = get_kind(kind).demo_hooks()
    if hooks.environ is None or starter.sandbox_port is None:
        return {}
    environ = hooks.environ(f"http://127.0.0.1:{starter.sandbox_port}")
    # the sandboxes' own pacing is the vendor's; a starter keeps it
    return {k: v for k, v in environ.items() if not k.endswith("_RATE_LIMIT")}


def starter_text(kinds: Sequence[str], *, sandbox: bool = False) -> str:
    """The text of a starter config for ``kinds`` (see the module's text)."""
    chosen = _starters(kinds)
    ids = _system_ids(chosen)
    blocks: list[str] = []
    for (kind, starter), system_id in zip(chosen, ids, strict=True):
        block = starter.system(_sandbox_env(kind, starter) if sandbox else None)
        if system_id != starter.system_id:  # its own name, variables and files
            block = block.replace(f"  {starter.system_id}:\n", f"  {system_id}:\n", 1)
            block = block.replace(f"{starter.system_id.upper()}_", f"{system_id.upper()}_")
            block = block.replace(f"/{starter.system_id}.db", f"/{system_id}.db")
            block = re.sub(
                r"(?m)^(    label: .*)$",
                rf"\1 {system_id[len(starter.system_id) :]}",
                block,
                count=1,
            )
        blocks.append(block)
    names = " and ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)
    head = [
        f"# Samband starter config for {names}, written by `samband init`.",
        "# Credentials are ${ENV_VAR} references (the environment or the keyring), never",
        "# the secrets themselves.  Check it with `samband validate`, try the connections",
        "# with `samband check`, then `samband sync --dry-run` and `samband sync`.",
    ]
    if sandbox:
        head.append("# Wired to the local sandboxes: each ${VAR:-value} defaults to one.")
    lines = [*head, "store: sqlite:///samband.db", "", "systems:"]
    lines.append("\n".join(blocks).rstrip("\n"))
    lines.append("")
    lines.append(_dataflows(chosen, ids))
    return "\n".join(lines)


def _dataflows(chosen: list[tuple[str, Starter]], ids: list[str]) -> str:
    if len(chosen) < 2:
        return "dataflows: []  # add one: every SOURCE.TYPE is synchronized with a TARGET.TYPE\n"
    (_, first), source_id = chosen[0], ids[0]
    out = [
        "dataflows:",
        f"  # every {first.entity_type} record of {source_id} gets a linked record in each",
        "  # other system: an existing one with the same organisation number, else a new one",
    ]
    for (_, other), target_id in zip(chosen[1:], ids[1:], strict=True):
        out += [
            f"  - source: {source_id}.{first.entity_type}",
            f"    target: {target_id}.{other.entity_type}",
            f"    match: [[{{from: {first.org_field}, to: {other.org_field}, normalize: orgno}}]]",
            "    properties:",
            f"      - {{from: {first.name_field}, to: {other.name_field}, type: string}}",
            f"      - {{from: {first.org_field}, to: {other.org_field}, type: string}}",
        ]
    return "\n".join(out) + "\n"


def write_starter(
    path: str | os.PathLike[str],
    kinds: Sequence[str],
    *,
    sandbox: bool = False,
    force: bool = False,
) -> Written:
    """Write :func:`starter_text` to ``path`` (refused when it exists, unless ``force``);
    with ``sandbox``, also set up what the kinds without a sandbox need beside it."""
    target = Path(path)
    if target.exists() and not force:
        raise StarterError(f"{target} exists; pass --force to overwrite it")
    text = starter_text(kinds, sandbox=sandbox)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    sandboxes: list[tuple[str, int]] = []
    if sandbox:
        chosen = _starters(kinds)
        for (kind, starter), system_id in zip(chosen, _system_ids(chosen), strict=True):
            if starter.prepare is not None:
                starter.prepare(target.parent.resolve(), system_id)
            if starter.sandbox_port is not None:
                sandboxes.append((kind, starter.sandbox_port))
    return Written(target, sandboxes)
