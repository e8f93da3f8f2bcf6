"""Config: YAML → pydantic models, validation with ``FILE:LINE:COLUMN`` messages."""

from samband.config.loader import LoadedConfig, load_config, parse_config, read_config
from samband.config.model import Config, Dataflow, MatchTerm, PropertyMapping, SystemConfig
from samband.config.validate import check, load_valid, validate_file

__all__ = [
    "Config",
    "Dataflow",
    "LoadedConfig",
    "MatchTerm",
    "PropertyMapping",
    "SystemConfig",
    "check",
    "load_config",
    "load_valid",
    "parse_config",
    "read_config",
    "validate_file",
]
