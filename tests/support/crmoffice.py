"""Helpers of the CRMOffice tests: the first login, with the test playing the browser."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from samband.config.model import Config
from samband.kinds.crmoffice.connector import CrmOfficeConnector


def browser_login(config: Config, system_id: str, state_dir: Path) -> None:
    """Run ``login`` and play the browser: open the URL it prints, follow the redirects."""
    urls: list[str] = []
    printed = threading.Event()

    def echo(message: str) -> None:
        urls.extend(line for line in message.splitlines() if line.startswith("http"))
        printed.set()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            CrmOfficeConnector.login(
                system_id,
                config,
                port=0,
                open_browser=False,
                echo=echo,
                state_dir=str(state_dir),
                timeout=20,
            )
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
            printed.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert printed.wait(20)
    if urls:
        # the "browser": authorize redirects to the local listener (with a code or an error)
        httpx.get(urls[0], follow_redirects=True, timeout=10)
    thread.join(20)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
