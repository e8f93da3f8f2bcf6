"""``samband serve`` as a person uses it: headless Chromium (Debian's, driven by Playwright)
logs in, reads the overview, starts a run after an edit in the source database and sees
it arrive, is refused an action as a viewer, and logs out; pauses a dataflow on its page,
sees an edit not arrive, previews the next run and resumes: it arrives.  A screenshot of
each page goes to ``build/screenshots/`` (test artefacts)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from tests.conftest import IN_CI

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
ADMIN_PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "viewer password 42"
CONFIG = """\
store: sqlite:///state.db
systems:
  pms:
    kind: sql
    label: Custom PMS
    url: sqlite:///pms.db
    entity_types:
      Customer: {table: customer, id: id, updated: updated_at}
  erp:
    kind: sql
    label: ERP
    url: sqlite:///erp.db
    entity_types:
      Account: {table: account, id: id, updated: updated_at, external_ref: ext}
dataflows:
  - id: customers
    source: pms.Customer
    target: erp.Account
    match: [[{from: org_no, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org_no, to: org, type: string}
      - {from: staff, to: staff, type: integer}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed (apt-get install chromium; .ci/run does it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.execute(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, org_no TEXT, "
            "staff TEXT, updated_at TEXT)"
        )
        db.executemany(
            "INSERT INTO customer VALUES (?, ?, ?, ?, '2026-01-01T00:00:00+00:00')",
            [(1, "Acme AS", "912345678", "5"), (2, "Fjord AS", "987654321", "many")],
        )
    with sqlite3.connect(tmp_path / "erp.db") as db:
        db.execute(
            "CREATE TABLE account (id INTEGER PRIMARY KEY, name TEXT, org TEXT, staff INTEGER, "
            "updated_at TEXT, ext TEXT)"
        )
    (tmp_path / "samband.yaml").write_text(CONFIG, encoding="utf-8")
    hasher = PasswordHasher()
    users = f"ada admin {hasher.hash(ADMIN_PASSWORD)}\nvic viewer {hasher.hash(VIEWER_PASSWORD)}\n"
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "samband.cli",
            "serve",
            "-c",
            "samband.yaml",
            "--port",
            str(port),
            "--every",
            "1h",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SAMBAND_USERS": users, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        assert "serving" in process.stdout.readline()
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _log_in(page: Any, base: str, name: str, password: str) -> None:
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r".*/login(\?.*)?$"))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _account_names(folder: Path) -> list[str]:
    with sqlite3.connect(folder / "erp.db") as db:
        return sorted(name for (name,) in db.execute("SELECT name FROM account"))


def _run_now(page: Any, base: str) -> None:
    """Run now from the overview, then reload until the run is recorded as finished."""
    page.goto(f"{base}/")
    before = page.locator("#runs tr").count()
    page.click("#run-now")
    page.wait_for_url(f"{base}/")
    for _ in range(120):  # each reload is a look at the store
        rows = page.locator("#runs tr")
        if rows.count() > before and "running" not in rows.nth(1).inner_text():
            return
        page.reload()
    raise AssertionError("the run did not finish")


def test_an_admin_logs_in_runs_an_edit_through_and_logs_out(
    browser: Any, served: tuple[str, Path]
) -> None:
    from playwright.sync_api import expect

    base, folder = served
    page = browser.new_page()
    page.goto(f"{base}/")
    expect(page.locator("h1")).to_have_text("Samband")
    _shot(page, "login")
    _log_in(page, base, "ada", ADMIN_PASSWORD)
    # the first scheduled run ran at the start: reload until the overview shows it
    expect(page.locator("#runs tr")).to_have_count(2, timeout=60_000)
    expect(page.locator("#dataflows")).to_contain_text("customers")
    expect(page.locator("#systems")).to_contain_text("sql")
    _shot(page, "overview")
    assert _account_names(folder) == ["Acme AS"]  # Fjord AS has 'many' staff: quarantined

    with sqlite3.connect(folder / "pms.db") as db:
        db.execute(
            "UPDATE customer SET name = 'Acme Holding AS', "
            "updated_at = '2026-06-01T00:00:00+00:00' WHERE id = 1"
        )
    _run_now(page, base)
    assert _account_names(folder) == ["Acme Holding AS"]
    _shot(page, "after-run-now")

    # the quarantined record: fixed in the source, retried from the page
    page.click("nav >> text=Quarantine")
    expect(page.locator("#errors")).to_contain_text("pms:Customer:2")
    _shot(page, "quarantine")
    with sqlite3.connect(folder / "pms.db") as db:
        db.execute("UPDATE customer SET staff = '12' WHERE id = 2")
    page.locator("#errors tr", has_text="pms:Customer:2").locator("text=Retry").click()
    expect(page.locator("[role=status]")).to_contain_text("queued")
    _run_now(page, base)
    assert _account_names(folder) == ["Acme Holding AS", "Fjord AS"]

    # a conflict: both sides edited between runs; the losing value is taken from the page
    with sqlite3.connect(folder / "pms.db") as db:
        db.execute(
            "UPDATE customer SET name = 'Acme One AS', "
            "updated_at = '2026-07-01T00:00:00+00:00' WHERE id = 1"
        )
    with sqlite3.connect(folder / "erp.db") as db:
        db.execute(
            "UPDATE account SET name = 'Acme Two AS', "
            "updated_at = '2026-07-02T00:00:00+00:00' WHERE org = '912345678'"
        )
    _run_now(page, base)
    page.click("nav >> text=Conflicts")
    row = page.locator("#conflicts tr", has_text="Acme One AS")
    expect(row).to_contain_text("Acme Two AS")
    _shot(page, "conflicts")
    winner = row.locator("td").nth(8).inner_text()
    losing = "Acme One AS" if winner == "target" else "Acme Two AS"
    row.locator("text=Take source" if winner == "target" else "text=Take target").click()
    expect(page.locator("[role=status]")).to_contain_text("resolve")
    _run_now(page, base)
    with sqlite3.connect(folder / "pms.db") as db:
        assert db.execute("SELECT name FROM customer WHERE id = 1").fetchone()[0] == losing
    assert losing in _account_names(folder)

    page.click("form.user button")
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r".*/login(\?.*)?$"))


def test_a_viewer_sees_the_overview_without_the_controls(
    browser: Any, served: tuple[str, Path]
) -> None:
    from playwright.sync_api import expect

    base, _ = served
    page = browser.new_page()
    _log_in(page, base, "vic", VIEWER_PASSWORD)
    page.click("nav >> text=Documents")
    expect(page.locator("#documents li")).to_have_count(1)
    _shot(page, "documents")
    page.click("#documents a")
    expect(page.locator("table").first).to_contain_text("org")
    _shot(page, "document")
    page.goto(f"{base}/config")
    expect(page.locator("#config")).to_contain_text("pms.Customer")
    _shot(page, "config")
    page.goto(f"{base}/")
    assert page.locator("#dataflows").is_visible()
    assert page.locator("#run-now").count() == 0
    expect(page.locator("#systems")).to_contain_text("connected", timeout=60_000)
    _shot(page, "overview-viewer")
    # the runs page listens to the live events: the text comes from the stream, not the page
    page.click("nav >> text=Runs")
    expect(page.locator("#live-text")).to_contain_text("the last one ended ok", timeout=60_000)
    _shot(page, "runs")
    page.click("nav >> text=Records")
    page.fill("input[name=q]", "ACME")
    page.click("form[role=search] button")
    expect(page.locator("table.pair").first).to_contain_text("Acme AS")
    expect(page.locator("table.history").first).to_contain_text("create")
    _shot(page, "records")
    answer = page.request.post(f"{base}/api/run")
    assert answer.status == 403


def _until(condition: Any, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)  # a poll of the database, not a synchronisation by sleeping
    return bool(condition())


def test_a_paused_dataflow_holds_an_edit_until_resumed(
    browser: Any, served: tuple[str, Path]
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
    expect(page.locator("#summary")).to_contain_text("1 quarantined")
    expect(page.locator("svg.chart")).to_be_visible()
    expect(page.locator("#document")).to_contain_text("synchronized")
    _shot(page, "dataflow")
