"""Shared helpers of the ``kind: sql`` tests."""

from __future__ import annotations

from sqlalchemy import DateTime
from sqlalchemy.dialects import mysql

#: a timestamp column with microseconds on every dialect (MariaDB's DATETIME has none)
STAMP = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
