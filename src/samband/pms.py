"""Deprecated alias of :mod:`samband.kinds.sql.demo` (the custom PMS of the demo).

Kept so that ``from samband.pms import create_pms_schema`` in older scripts and documents
keeps working; new code imports :mod:`samband.kinds.sql.demo`.
"""

from samband.kinds.sql.demo import ENTITY_TYPES_YAML, create_pms_schema, seed_pms

__all__ = ["ENTITY_TYPES_YAML", "create_pms_schema", "seed_pms"]
