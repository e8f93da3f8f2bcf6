"""The system kinds that ship with Samband, one package each.

Every package holds a kind's connector, its typed settings, its sandbox (which imports
nothing of the connector), its demo data and its :class:`~samband.plugin.KindDescriptor`
(``KIND`` in the package's ``__init__``), registered in ``pyproject.toml`` under
``[project.entry-points."samband.kinds"]``.  See docs/adding-a-kind.md.
"""
