"""The dataflow page in a real browser (headless Chromium, driven by Playwright): an
admin opens a dataflow from the overview, pauses it, edits a record in the source
database and runs: the edit does not arrive; previews the next run after resuming (the
edit is in the plan, nothing written), runs the dataflow alone: it arrives.  Screenshots
go to ``build/screenshots/`` (test artefacts)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.service.test_browser import (  # noqa: F401  (fixtures)
    ADMIN_PASSWORD,
    _account_names,
    _log_in,
    _run_now,
    _shot,
    browser,
    served,
)


def _until(condition: Any, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)  # a poll of the database, not a synchronisation by sleeping
    return bool(condition())


def test_a_paused_dataflow_holds_an_edit_until_resumed(
    browser: Any,  # noqa: F811
    served: tuple[str, Path],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, folder = served
    page = browser.new_page()
    _log_in(page, base, "ada", ADMIN_PASSWORD)
    expect(page.locator("#runs tr")).to_have_count(2, timeout=60_000)  # the first run
    assert _account_names(folder) == ["Acme AS"]

    page.click("#dataflows >> text=customers")
    expect(page.locator("h2").first).to_contain_text("customers")
    expect(page.locator("#paused")).to_have_text("no")
    page.click("#pause")
    expect(page.locator("[role=status]")).to_contain_text("pause")
    expect(page.locator("#paused")).to_have_text("yes")
    expect(page.locator("#state")).to_have_text("paused")
    _shot(page, "dataflow-paused")

    with sqlite3.connect(folder / "pms.db") as db:
        db.execute(
            "UPDATE customer SET name = 'Acme Paused AS', "
            "updated_at = '2026-06-01T00:00:00+00:00' WHERE id = 1"
        )
    _run_now(page, base)  # every dataflow: the paused one is left out
    assert _account_names(folder) == ["Acme AS"]

    page.click("#dataflows >> text=customers")
    page.click("#resume")
    expect(page.locator("#paused")).to_have_text("no")
    page.click("#preview")
    expect(page.locator("#plan")).to_contain_text("Acme Paused AS")
    _shot(page, "dataflow-preview")
    assert _account_names(folder) == ["Acme AS"]  # a preview writes nothing

    page.click("text=customers")
    page.click("#run-dataflow")
    expect(page.locator("[role=status]")).to_contain_text("queued")
    assert _until(lambda: _account_names(folder) == ["Acme Paused AS"]), _account_names(folder)
    page.reload()
    # Fjord AS (staff "many") stays quarantined: the dataflow is failing, and says why
    expect(page.locator("#state")).to_have_text("failing")
    expect(page.locator("main, body")).to_contain_text("1 quarantined")
    expect(page.locator("svg.chart")).to_be_visible()
    expect(page.locator("#document")).to_contain_text("synchronized")
    _shot(page, "dataflow")
