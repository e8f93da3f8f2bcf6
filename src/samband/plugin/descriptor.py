"""What a system kind tells Samband about itself."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from samband.plugin.settings import EntityTypeSettings, KindSettings

if TYPE_CHECKING:
    from pathlib import Path

    from samband.config.model import Config
    from samband.connectors.base import Connector
    from samband.plugin.push import PushHooks
    from samband.sandbox._base import Sandbox


def load_reference(reference: str) -> Any:
    """``"package.module:attribute"`` → the attribute (the module is imported now)."""
    module_name, _, attribute = reference.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        value = getattr(value, part)
    return value


@dataclass(frozen=True)
class DemoHooks:
    """How ``samband demo`` runs a kind's sandbox.

    ``sandbox_options`` lift the vendor's limits so that a few thousand writes fit in two
    minutes; ``environ(url)`` is what the example config's ``${VAR}`` references of this
    kind need to reach the sandbox at ``url``; ``login`` does a first login without a
    browser (OAuth kinds), ``prepare`` creates what a kind without a sandbox needs (a
    database) and returns its environment.
    """

    sandbox_options: Mapping[str, Any] = field(default_factory=dict)
    environ: Callable[[str], dict[str, str]] | None = None
    login: Callable[[str, Config, Sandbox, Path, Mapping[str, str]], None] | None = None
    prepare: Callable[[Path], dict[str, str]] | None = None


def env_ref(name: str, sandbox: Mapping[str, str] | None) -> str:
    """``${NAME}``, or ``${NAME:-value}`` with the sandbox's value as the default."""
    if sandbox is not None and name in sandbox:
        return "${" + name + ":-" + sandbox[name] + "}"
    return "${" + name + "}"


@dataclass(frozen=True)
class Starter:
    """What ``samband init`` writes for a kind: a system block and the kind's type of
    customer-like records, which a starter's dataflow between two kinds synchronizes.

    ``system(sandbox)`` returns the YAML lines under ``systems:`` (indented by two); with
    ``sandbox`` (the kind's :attr:`DemoHooks.environ` for its sandbox URL) the ``${VAR}``
    references default to the sandbox's values.  ``prepare(folder, system_id)`` sets up
    what a kind without a sandbox needs beside the config (the SQL kind's database).
    """

    system_id: str
    entity_type: str
    name_field: str
    org_field: str
    system: Callable[[Mapping[str, str] | None], str]
    sandbox_port: int | None = None
    prepare: Callable[[Path, str], None] | None = None


@dataclass(frozen=True)
class KindDescriptor:
    """One system kind: its name in configs, its settings, where its code lives.

    ``connector``, ``sandbox``, ``commands`` and ``demo`` are ``"module:attribute"``
    references, imported on first use: reading a descriptor (the validator, ``--help``)
    imports no connector.
    """

    name: str  # the `kind:` of a system in the config
    title: str  # what people call the system ("PowerOffice GO")
    settings: type[KindSettings]  # the system's own settings (strict)
    connector: str  # "module:Class" of the Connector
    entity_type_settings: type[EntityTypeSettings] = EntityTypeSettings
    sandbox: str | None = None  # "module:Class" of the local emulator, if there is one
    credentials: tuple[str, ...] = ()  # names under `credentials:`
    # The document importer: squashed label prefixes ("poweroffice" for "PowerOffice GO");
    # for a document that leaves the label empty, the kind's entity types and those of
    # them that tell it apart (all types in use are the kind's, one of them telling); the
    # lines it writes under the system (TODOs the user fills in).
    label_aliases: tuple[str, ...] = ()
    entity_type_names: frozenset[str] = frozenset()
    telling_entity_types: frozenset[str] = frozenset()
    importer_lines: tuple[str, ...] = ()
    login: bool = False  # `samband auth KIND SYSTEM`: the connector has a classmethod login
    commands: str | None = None  # "module:attribute" of a Typer app: `samband <name> ...`
    demo: str | None = None  # "module:attribute" of its DemoHooks
    starter: str | None = None  # "module:attribute" of its Starter (`samband init`)
    push: str | None = None  # "module:attribute" of its PushHooks (`samband serve` receivers)
    test_only: bool = False  # kept out of help texts and the importer
    # The connector's describe() answers from code and config alone, so documents may ask it
    # which properties are read-only; False when it reaches the system (SQL reflection).
    describes_offline: bool = True

    def connector_class(self) -> type[Connector]:
        cls: type[Connector] = load_reference(self.connector)
        return cls

    def create_sandbox(self, **options: Any) -> Sandbox:
        if self.sandbox is None:
            raise KeyError(f"kind {self.name!r} has no sandbox")
        sandbox: Sandbox = load_reference(self.sandbox)(**options)
        return sandbox

    def starter_hooks(self) -> Starter | None:
        starter: Starter | None = load_reference(self.starter) if self.starter else None
        return starter

    def push_hooks(self) -> PushHooks | None:
        hooks: PushHooks | None = load_reference(self.push) if self.push else None
        return hooks

    def demo_hooks(self) -> DemoHooks:
        hooks: DemoHooks = load_reference(self.demo) if self.demo else DemoHooks()
        return hooks
