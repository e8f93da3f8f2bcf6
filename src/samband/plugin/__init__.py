"""The contract between Samband and a system kind.

A kind is one package (``samband.kinds.<kind>`` for the built-in ones, or any other
distribution) that exposes a :class:`KindDescriptor` through the ``samband.kinds`` entry
point group.  The CLI, the config validator, the document importer, the demo and the
engine's connector registry read the descriptors; nothing else names a kind.

This package is neutral: it imports no kind and no connector (the descriptor names its
connector and sandbox as ``"module:attribute"`` and they are imported on first use).
"""

from samband.plugin.descriptor import DemoHooks, KindDescriptor, Starter, env_ref
from samband.plugin.registry import UnknownKind, all_kinds, get_kind, kind_names
from samband.plugin.settings import EntityTypeSettings, KindSettings, RateLimit, settings_problems

__all__ = [
    "DemoHooks",
    "EntityTypeSettings",
    "KindDescriptor",
    "KindSettings",
    "RateLimit",
    "Starter",
    "UnknownKind",
    "all_kinds",
    "env_ref",
    "get_kind",
    "kind_names",
    "settings_problems",
]
