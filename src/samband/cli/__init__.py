"""The ``samband`` command line.  Every command is a thin layer over the Python API;
each module below registers one group of commands on the shared application."""

from __future__ import annotations

import os
from importlib import import_module

from samband.cli._app import app

__all__ = ["app", "main"]

# importing a module registers its commands; this order is the order of `samband --help`
for _module in ("config", "check", "docs", "run", "serve", "inspect", "store", "setup", "qa"):
    import_module(f"samband.cli.{_module}_commands")


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()
