"""Samband: two-way sync of business records between the systems a company runs.

The Python API offers what the CLI offers::

    import samband

    samband.write_starter("samband.yaml", ["poweroffice-go", "sql"])  # samband init
    problems = samband.validate("samband.yaml")          # samband validate
    report = samband.check_config("samband.yaml")        # samband check
    samband.write_documents(samband.load_config("samband.yaml"), "docs")   # samband docs
    with samband.Engine.from_file("samband.yaml") as engine:             # samband sync
        report = engine.sync(dry_run=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from samband.config import Config, load_config, load_valid, parse_config
from samband.config.validate import validate_file as validate
from samband.errors import (
    ConfigError,
    ConnectorError,
    ConversionError,
    Problem,
    RecordError,
    SambandError,
)
from samband.types import DataType, coerce

if TYPE_CHECKING:
    from samband.engine.inspect import Inspector
    from samband.engine.run import Engine, RunReport

__version__ = "0.1.0"

_LAZY = {
    "Engine": ("samband.engine.run", "Engine"),
    "RunReport": ("samband.engine.run", "RunReport"),
    "Inspector": ("samband.engine.inspect", "Inspector"),
    "write_documents": ("samband.docs", "write_documents"),
    "render_documents": ("samband.docs", "render_documents"),
    "import_documents": ("samband.docs", "import_documents"),
    "run_qa": ("samband.qa", "run_qa"),
    "run_demo": ("samband.demo", "run_demo"),
    "check_config": ("samband.check", "check_config"),
    "starter_text": ("samband.config.starter", "starter_text"),
    "write_starter": ("samband.config.starter", "write_starter"),
    "find_config": ("samband.config.locate", "find_config"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(name)


__all__ = [
    "Config",
    "ConfigError",
    "ConnectorError",
    "ConversionError",
    "DataType",
    "Engine",
    "Inspector",
    "Problem",
    "RecordError",
    "RunReport",
    "SambandError",
    "check_config",
    "coerce",
    "find_config",
    "import_documents",
    "load_config",
    "load_valid",
    "parse_config",
    "render_documents",
    "run_demo",
    "run_qa",
    "starter_text",
    "validate",
    "write_documents",
    "write_starter",
]
