"""Keyset paging trusts ``OrderBy=LastChangedDateTimeOffset`` only as far as the pages
show it: an API that ignores the order costs calls, never rows."""

from __future__ import annotations

from typing import Any

import pytest

from samband.config.model import SystemConfig
from samband.errors import TransientError
from samband.kinds.poweroffice_go.connector import PowerOfficeConnector
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.sandbox._base import SandboxServer
from tests.support.poweroffice import KEYS, serve


def connector(server: SandboxServer, **settings: Any) -> PowerOfficeConnector:
    config = SystemConfig.model_validate(
        {"kind": "poweroffice-go", "base_url": f"{server.url}/v2", "rate_limit": 1000, **settings}
    )
    po = PowerOfficeConnector("po", config, KEYS, overlap_seconds=0)
    # no address mapped: Customers are read through the change filter, not scanned
    po.wanted_fields["Customers"] = {"Name", "PhoneNumber"}
    return po


def customers(order_by: str, count: int = 24) -> PowerOfficeSandbox:
    box = PowerOfficeSandbox(rate_limit=1000, order_by=order_by)
    box.seed(count, 3, only=("Customers",))
    box.clock.advance(60)
    # a few early records edited later: id order and time order now differ, and a page's
    # last record can be one of the newest
    for record_id in list(box.records("Customers"))[3::5]:
        box.clock.advance(1)
        box.edit("Customers", record_id, {"Name": f"Endret {record_id} AS"})
    box.clock.advance(60)
    box.recording = True
    return box


@pytest.mark.parametrize("order_by", ["honour", "ignore", "shuffle"])
def test_a_first_read_sees_every_record_whatever_the_order(order_by: str) -> None:
    box = customers(order_by)
    running = serve(box)
    try:
        po = connector(running, page_size=4)
        pages = list(po.read("Customers", None))
        seen = [r.id for page in pages for r in page.records]
        assert set(seen) == {str(i) for i in box.records("Customers")}
        newest = max(r["LastChangedDateTimeOffset"] for r in box.records("Customers").values())
        assert pages[-1].cursor is not None and pages[-1].cursor[:19] == newest[:19]
        notices = po.take_notices()
        if order_by == "honour":
            assert notices == []
        else:
            assert len(notices) == 1 and "po: Customers" in notices[0]
    finally:
        running.stop()


@pytest.mark.parametrize("order_by", ["ignore", "shuffle"])
def test_a_change_read_sees_every_change_when_the_order_is_ignored(order_by: str) -> None:
    box = customers(order_by, count=30)
    running = serve(box)
    try:
        po = connector(running, page_size=3)
        pages = list(po.read("Customers", None))
        cursor = pages[-1].cursor
        assert cursor is not None
        edited = list(box.records("Customers"))[1::3]
        for record_id in edited:
            box.clock.advance(1)
            box.edit("Customers", record_id, {"PhoneNumber": f"+47 {record_id}"})
        changed = {r.id for page in po.read("Customers", cursor) for r in page.records}
        assert changed == {str(i) for i in edited}
    finally:
        running.stop()


@pytest.mark.parametrize("order_by", ["honour", "ignore", "shuffle"])
def test_a_read_stopped_after_any_page_resumes_from_its_cursor_without_a_gap(
    order_by: str,
) -> None:
    """A run that stops after a page keeps the last cursor it was given; the next run reads
    from there.  Whatever the server's order, the two runs together see every record."""
    box = customers(order_by)
    running = serve(box)
    try:
        everything = {str(i) for i in box.records("Customers")}
        for stop_after in range(1, 8):
            pages = connector(running, page_size=4).read("Customers", None)
            seen: set[str] = set()
            cursor: str | None = None
            for _ in range(stop_after):
                page = next(pages, None)
                if page is None:
                    break
                seen |= {r.id for r in page.records}
                cursor = page.cursor or cursor
            pages.close()
            resumed = connector(running, page_size=4).read("Customers", cursor)
            seen |= {r.id for page in resumed for r in page.records}
            assert seen == everything, f"stopped after page {stop_after}"
    finally:
        running.stop()


def test_keyset_paging_is_kept_while_the_order_is_honoured() -> None:
    box = customers("honour", count=30)
    running = serve(box)
    try:
        po = connector(running, page_size=4)
        list(po.read("Customers", None))
        calls = [e for e in box.log if e.method == "GET" and e.path == "/v2/Customers"]
        # each next page starts at a timestamp, not at a page number
        assert all(c.params["PageNumber"] == "1" for c in calls)
        assert sum(1 for c in calls if "lastChangedDateTimeOffsetGreaterThan" in c.params) >= 7
    finally:
        running.stop()


def test_a_single_page_needs_no_order() -> None:
    """All of it on one page: its order skips nothing, so it is not read twice."""
    box = customers("shuffle", count=6)
    running = serve(box)
    try:
        po = connector(running, page_size=50)
        seen = {r.id for page in po.read("Customers", None) for r in page.records}
        assert seen == {str(i) for i in box.records("Customers")}
        assert po.take_notices() == []
        assert len([e for e in box.log if e.method == "GET" and e.path == "/v2/Customers"]) == 1
    finally:
        running.stop()


@pytest.mark.parametrize("order_by", ["ignore", "shuffle"])
def test_a_record_deleted_during_the_page_by_page_read_hides_no_other(order_by: str) -> None:
    """Read by page number (the order is not honoured), a deletion shifts the later pages
    up by one; the record that would fall between two pages is still read, or a full scan
    would take it as deleted."""
    box = customers(order_by)
    running = serve(box)
    try:
        pages = connector(running, page_size=4).read("Customers", None)
        first = next(pages)
        box.clock.advance(1)
        box.remove("Customers", int(first.records[0].id))
        seen = {r.id for r in first.records} | {r.id for page in pages for r in page.records}
        assert {str(i) for i in box.records("Customers")} <= seen
    finally:
        running.stop()


def test_a_page_by_page_read_that_never_holds_still_fails_instead_of_leaving_a_gap() -> None:
    box = customers("shuffle")
    running = serve(box)
    try:
        pages = connector(running, page_size=4).read("Customers", None)
        cursors = []
        with pytest.raises(TransientError, match="fallen between two pages"):
            for page in pages:
                cursors.append(page.cursor)
                box.clock.advance(1)
                box.remove("Customers", next(iter(box.records("Customers"))))
        assert cursors and all(c is None for c in cursors)
    finally:
        running.stop()
