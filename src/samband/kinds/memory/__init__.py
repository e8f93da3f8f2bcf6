"""Records held in the process (optionally in a JSON file): tests and runnable examples."""

from samband.kinds.memory.settings import MemorySettings, MemoryTypeSettings
from samband.plugin import KindDescriptor

KIND = KindDescriptor(
    name="memory",
    title="in-memory records",
    settings=MemorySettings,
    entity_type_settings=MemoryTypeSettings,
    connector="samband.kinds.memory.connector:MemoryConnector",
    test_only=True,
)
