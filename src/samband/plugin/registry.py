"""The installed kinds, from the ``samband.kinds`` entry point group.

A distribution adds a kind with, in its ``pyproject.toml``::

    [project.entry-points."samband.kinds"]
    my-kind = "my_package.my_kind:KIND"

where ``KIND`` is a :class:`~samband.plugin.KindDescriptor` whose ``name`` is the entry
point's name.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from samband.plugin.descriptor import KindDescriptor

GROUP = "samband.kinds"


class UnknownKind(KeyError):
    """No installed kind has this name."""


@functools.cache
def _loaded() -> dict[str, KindDescriptor]:
    found: dict[str, KindDescriptor] = {}
    for point in entry_points(group=GROUP):
        descriptor = point.load()
        if not isinstance(descriptor, KindDescriptor):
            raise TypeError(f"entry point {point.name!r} of {GROUP} is not a KindDescriptor")
        if descriptor.name != point.name:
            raise ValueError(
                f"entry point {point.name!r} of {GROUP} names kind {descriptor.name!r}"
            )
        found.setdefault(descriptor.name, descriptor)
    return dict(sorted(found.items()))


def all_kinds(*, include_test_only: bool = True) -> dict[str, KindDescriptor]:
    """Every installed kind by name (sorted)."""
    return {
        name: kind for name, kind in _loaded().items() if include_test_only or not kind.test_only
    }


def kind_names(*, include_test_only: bool = False) -> list[str]:
    return list(all_kinds(include_test_only=include_test_only))


def get_kind(name: str) -> KindDescriptor:
    kinds = _loaded()
    if name not in kinds:
        raise UnknownKind(name)
    return kinds[name]
