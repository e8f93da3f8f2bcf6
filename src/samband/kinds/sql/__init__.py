"""A SQL database (the "custom PMS" of the seeds): SQLite, PostgreSQL, MariaDB/MySQL."""

from samband.kinds.sql.settings import SqlSettings, SqlTypeSettings
from samband.plugin import KindDescriptor

KIND = KindDescriptor(
    name="sql",
    title="SQL database",
    settings=SqlSettings,
    entity_type_settings=SqlTypeSettings,
    connector="samband.kinds.sql.connector:SqlConnector",
    commands="samband.kinds.sql.cli:app",
    demo="samband.kinds.sql.demo:DEMO",
    describes_offline=False,
    starter="samband.kinds.sql.starter:STARTER",
    push="samband.kinds.sql.push:PUSH",
)
