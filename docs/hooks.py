"""MkDocs hooks: the generated reference pages are written before every build.

``docs/gen_cli.py`` (the CLI reference, from the Typer app) and ``docs/gen_config.py``
(the configuration reference, from the pydantic models) rewrite their page only when it
changed, so ``mkdocs build`` always publishes what the code says, and the committed pages
stay what ``tests/test_docs_site.py`` compares them with.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"samband_docs_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_pre_build(config: Any, **kwargs: Any) -> None:
    for name in ("gen_cli", "gen_config"):
        _load(name).write()
