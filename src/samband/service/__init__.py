"""``samband serve``: one long-running process with the scheduler, the dashboard, the JSON
API and ``/metrics``.  :class:`Service` is the Python API; :func:`create_app` its web face."""

from __future__ import annotations

from samband.service.service import Service
from samband.service.web import create_app

__all__ = ["Service", "create_app"]
