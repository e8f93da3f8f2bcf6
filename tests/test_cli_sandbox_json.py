"""``samband sandbox KIND --json`` prints one line of JSON with its URL before it serves,
so a script can read where it is."""

from __future__ import annotations

import json
import socket
import subprocess
import sys


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sandbox_json_names_its_url() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "samband.cli", "sandbox", "webcrm", "--port", str(port), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert json.loads(line) == {
        "kind": "webcrm",
        "url": f"http://127.0.0.1:{port}",
        "port": port,
    }
