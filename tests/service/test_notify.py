"""Notifications of ``samband serve``: a signed webhook to a real HTTP receiver and an
e-mail to a real SMTP server (aiosmtpd), on a failed run, newly quarantined records and a
tripped circuit breaker; a receiver that is down does not stop the schedule."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from samband.errors import ConfigError
from samband.kinds.memory.connector import dataset
from samband.service import Service
from samband.service.notify import Notifier, sign
from tests.support.docs_examples import DOCS, block_after
from tests.support.service import SECRET, webhook_receiver
from tests.support.service import signed_events as _events

receiver = webhook_receiver  # the fixture, by the name the tests use

CONFIG = """\
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {external_ref: ext}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - id: customers
    source: crm.Customer
    target: erp.Account
    on_delete: propagate
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
      - {from: staff, to: staff, type: integer}
"""


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[int, _Mailbox]]:
    box = _Mailbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


def _service(folder: Path, notifier: Notifier, crm: str | None = None) -> Service:
    records = {
        str(i): {
            "data": {"id": i, "name": f"Company {i} AS", "org": f"9000000{i:02d}", "staff": staff},
            "version": 1,
            "modified": "2026-01-01T00:00:00+00:00",
            "deleted": False,
        }
        for i, staff in enumerate([5, 7, "many", *range(9, 26)], 1)
    }
    (folder / "crm.json").write_text(
        crm or json.dumps({"version": 1, "types": {"Customer": records}}), encoding="utf-8"
    )
    (folder / "samband.yaml").write_text(CONFIG, encoding="utf-8")
    return Service(folder / "samband.yaml", every=3600, notifier=notifier)


def test_quarantined_records_and_a_tripped_breaker_are_signed_webhooks(
    tmp_path: Path, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    service = _service(tmp_path, Notifier(url, SECRET))
    service.start()
    try:
        assert service.scheduler.wait_runs(1, timeout=60)
        first = _events(received)
        assert [e["kind"] for e in first] == ["records_quarantined"]
        assert "1 more record(s) in quarantine" in first[0]["message"]
        for record_id in range(1, 17):  # most of the source is gone: the breaker holds
            dataset("crm").remove("Customer", str(record_id))
        service.run_now()
        assert service.scheduler.wait_runs(2, timeout=60)
        kinds = [e["kind"] for e in _events(received)]
        assert kinds == ["records_quarantined", "breaker_tripped"]
    finally:
        service.stop()


def test_a_failed_run_is_mailed_and_an_unreachable_webhook_does_not_stop_the_schedule(
    tmp_path: Path, mailbox: tuple[int, _Mailbox]
) -> None:
    port, box = mailbox
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"  # nobody listens there
    notifier = Notifier.from_environment(
        {
            "SAMBAND_WEBHOOK_URL": closed,
            "SAMBAND_WEBHOOK_SECRET": SECRET,
            "SAMBAND_SMTP_URL": f"smtp://127.0.0.1:{port}",
            "SAMBAND_NOTIFY_EMAIL": "it@example.com, owner@example.com",
        }
    )
    service = _service(tmp_path, notifier, crm="not json")
    service.start()
    try:
        assert service.scheduler.wait_runs(1, timeout=60)
        service.run_now()
        assert service.scheduler.wait_runs(2, timeout=60), "the schedule stopped"
    finally:
        service.stop()
    assert len(box.messages) == 1  # the same failure in two runs is told once
    recipients, content = box.messages[0]
    assert recipients == ["it@example.com", "owner@example.com"]
    mail = message_from_bytes(content)
    assert mail["Subject"].endswith("a run failed")
    assert "crm.json cannot be read" in mail.get_payload(decode=True).decode()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SAMBAND_WEBHOOK_URL": "https://hooks.example/x"}, "without SAMBAND_WEBHOOK_SECRET"),
        ({"SAMBAND_WEBHOOK_URL": "ftp://x", "SAMBAND_WEBHOOK_SECRET": "s"}, "http(s)"),
        ({"SAMBAND_SMTP_URL": "smtp://mail.example"}, "SAMBAND_NOTIFY_EMAIL"),
        ({"SAMBAND_SMTP_URL": "mail.example", "SAMBAND_NOTIFY_EMAIL": "a@b"}, "smtp://"),
    ],
)
def test_incomplete_notification_settings_are_refused(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Notifier.from_environment(environ)
    assert message in caught.value.problems[0].message


def test_the_receiver_example_of_the_service_page_checks_the_signature() -> None:
    example = block_after(DOCS / "service.md", "## Notifications", "python")
    names: dict[str, Any] = {}
    exec(compile(example.code, example.where, "exec"), names)
    verify = names["verify"]
    body = b'{"kind": "run_failed"}'
    now = str(int(time.time()))
    headers = {"X-Samband-Timestamp": now, "X-Samband-Signature": sign(SECRET, now, body)}
    assert verify(SECRET, headers, body)
    assert not verify("another secret", headers, body)
    assert not verify(SECRET, headers, body + b" ")
    old = str(int(time.time()) - 3600)
    replayed = {"X-Samband-Timestamp": old, "X-Samband-Signature": sign(SECRET, old, body)}
    assert not verify(SECRET, replayed, body)
