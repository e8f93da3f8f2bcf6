"""``samband serve`` logs JSON lines by default: the runs begun and finished, each
request served (no query string), errors; the API token never shows, not even when a
client sends a wrong one.  A format chosen on the command line is kept."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from samband import logs
from tests.support.docs_examples import DOCS, block_after
from tests.support.service import free_port as _free_port
from tests.support.service import world as _world

TOKEN = "serve-api-token-5150"


def test_serve_writes_one_json_object_per_line_without_secrets(tmp_path: Path) -> None:
    config = _world(tmp_path)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "samband.cli", "serve", "-c", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SAMBAND_API_TOKEN": TOKEN},
    )
    try:
        assert process.stdout is not None
        assert "serving" in process.stdout.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wrong = client.get("/api/overview", headers={"Authorization": f"Bearer {TOKEN}x"})
            assert wrong.status_code == 401
            right = {"Authorization": f"Bearer {TOKEN}"}
            deadline = time.monotonic() + 60
            overview: dict[str, Any] = {"runs": []}
            while not overview["runs"] or overview["runs"][0]["status"] == "running":
                assert time.monotonic() < deadline, "the first run did not finish"
                time.sleep(0.05)  # paces the polls of the first run's end
                overview = client.get("/api/overview", params={"q": "secret"}, headers=right).json()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert process.stderr is not None
    text = process.stderr.read()
    assert TOKEN not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    events = {line.get("event") for line in lines}
    assert {"run_begun", "run_finished", "request"} <= events
    finished = next(line for line in lines if line.get("event") == "run_finished")
    assert finished["status"] == "ok" and finished["created"] == 2
    documented = json.loads(block_after(DOCS / "service.md", "## Logs", "text").code)
    assert set(documented) == set(finished)  # the docs show the line as it is
    requests = [line for line in lines if line.get("event") == "request"]
    assert {"method": "GET", "path": "/api/overview", "status": 401} in [
        {k: r[k] for k in ("method", "path", "status")} for r in requests
    ]
    assert not any("q=" in line["message"] or "secret" in line["message"] for line in requests)


def test_a_format_chosen_on_the_command_line_is_kept() -> None:
    logger = logging.getLogger("samband")
    try:
        logs.configure(logging.WARNING, "text")
        logs.chosen.update(format=True, level=True)
        logs.for_service()
        handler = next(h for h in logger.handlers if h.get_name() == "samband-cli")
        assert not isinstance(handler.formatter, logs.JsonFormatter)
        assert logger.level == logging.WARNING
        logs.chosen.update(format=False, level=False)
        logs.for_service()
        handler = next(h for h in logger.handlers if h.get_name() == "samband-cli")
        assert isinstance(handler.formatter, logs.JsonFormatter)
        assert logger.level == logging.INFO
    finally:
        logs.chosen.update(format=False, level=False)
        logs.configure(logging.WARNING, "text")
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).handlers = []
            logging.getLogger(name).propagate = True
