"""The webhook receivers of ``samband serve``: Exact Online's HashCode and the REST
contract's signature, checked on the raw body; unsigned, forged, altered, re-serialised,
replayed, stale and oversized requests refused with no reason given to the caller; the
refusals counted by reason with no label the caller chooses."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from samband.kinds.exact_online.push import hash_code, receive, top_level_spans
from samband.plugin.push import Refused
from samband.service import Service, create_app
from samband.service.push import ReplayGuard
from tests.support.docs_examples import DOCS, block_after
from tests.support.service import TestClient
from tests.support.webhooks import REST_SECRET, rest_request

SECRET = "exact-webhook-secret-0123456789"

CONFIG = """\
store: sqlite:///state.db
systems:
  exact:
    kind: exact-online
    base_url: http://127.0.0.1:9
    division: 3000001
    credentials:
      client_id: ${EXACT_CLIENT_ID}
      client_secret: ${EXACT_CLIENT_SECRET}
      webhook_secret: ${EXACT_WEBHOOK_SECRET}
  crm:
    kind: rest
    base_url: http://127.0.0.1:9
    auth: bearer
    credentials: {token: "${CRM_TOKEN}", webhook_secret: "${CRM_WEBHOOK_SECRET}"}
    entity_types:
      Customer:
        path: customers
        properties: {name: string}
  quiet:
    kind: exact-online
    base_url: http://127.0.0.1:9
    credentials: {client_id: x, client_secret: y}
  pms:
    kind: memory
    dataset: push-tests
    entity_types: {Customer: {external_ref: ext}, Org: {external_ref: ext}}
dataflows:
  - source: exact.Accounts
    target: pms.Customer
    match: [[{from: Name, to: name}]]
    properties: [{from: Name, to: name, type: string}]
  - source: crm.Customer
    target: pms.Org
    match: [[{from: name, to: name}]]
    properties: [{from: name, to: name, type: string}]
  - source: quiet.Contacts
    target: pms.Customer
    match: [[{from: FullName, to: name}]]
    properties: [{from: FullName, to: name, type: string}]
"""
ENVIRON = {
    "EXACT_CLIENT_ID": "id",
    "EXACT_CLIENT_SECRET": "secret",
    "EXACT_WEBHOOK_SECRET": SECRET,
    "CRM_TOKEN": "token",
    "CRM_WEBHOOK_SECRET": REST_SECRET,
}


def exact_body(
    key: str = "8f8c1c2e-0000-4000-8000-00000000000a",
    *,
    secret: str = SECRET,
    topic: str = "Accounts",
    created: str | None = None,
) -> bytes:
    content = json.dumps(
        {
            "Topic": topic,
            "ClientId": "id",
            "Division": 3000001,
            "Action": "Update",
            "Key": key,
            "ExactOnlineEndpoint": f"https://start.exactonline.nl/api/v1/3000001/crm/{topic}",
            "EventCreatedOn": created or time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        },
        separators=(",", ":"),
    )
    return f'{{"Content":{content},"HashCode":"{hash_code(secret, content)}"}}'.encode()


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[tuple[Service, TestClient, list[tuple]]]:
    path = tmp_path / "samband.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    service = Service(path, every=3600, environ=ENVIRON, push_gap=0)
    pushed: list[tuple] = []
    service._request_run = lambda flows, reason: pushed.append((tuple(flows), reason))  # type: ignore[method-assign]
    with TestClient(create_app(service, manage_service=False)) as client:
        yield service, client, pushed


def refusals(client: TestClient) -> dict[tuple[str, str], float]:
    text = client.get("/metrics").text
    return {
        (s.labels["system"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "samband_pushes_refused_total"
    }


# -- Exact Online's HashCode ----------------------------------------------------------------
def test_a_signed_exact_event_names_the_entity_type_and_the_key() -> None:
    change = receive(exact_body("8F8C1C2E-0000-4000-8000-00000000000A"), {}, SECRET)
    assert change is not None
    assert change.entity_types == ("Accounts",)
    assert change.keys == ("8f8c1c2e-0000-4000-8000-00000000000a",)
    assert change.action == "Update"
    sales = receive(exact_body(topic="SalesOrders"), {}, SECRET)
    assert sales is not None and sales.entity_types == ("SalesOrders", "SalesOrderLines")


def test_the_empty_validation_post_of_a_new_subscription_is_answered() -> None:
    assert receive(b"", {}, SECRET) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (exact_body(secret="another secret"), "bad_signature"),
        (exact_body().replace(b'"Update"', b'"Delete"'), "bad_signature"),  # altered
        (exact_body().replace(b'"Topic":', b'"Topic" :'), "bad_signature"),  # re-spaced
        (exact_body().replace(b',"HashCode"', b',"hashcode"'), "unsigned"),
        (exact_body().rsplit(b',"HashCode"', 1)[0] + b"}", "unsigned"),
        (exact_body().lower(), "malformed"),  # no Content any more
        (b'{"Content": {"Topic": "Accounts"}', "malformed"),
        (b"[1, 2]", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b'{"Content":' + b"[" * 100_000 + b'],"HashCode":"A"}', "malformed"),
    ],
    ids=[
        "wrong-secret",
        "altered",
        "content-respaced",
        "no-hashcode",
        "hashcode-cut",
        "lower-cased",
        "truncated",
        "not-an-object",
        "not-utf8",
        "nested-too-deep",
    ],
)
def test_an_exact_event_that_does_not_verify_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        receive(body, {}, SECRET)
    assert refused.value.reason == reason


def test_the_hashcode_is_upper_case_hex_as_exact_sends_it() -> None:
    body = exact_body()
    lower = body.replace(body[-66:-2], body[-66:-2].lower())
    with pytest.raises(Refused) as refused:
        receive(lower, {}, SECRET)
    assert refused.value.reason == "bad_signature"


def test_the_envelope_may_be_spaced_differently_as_the_content_is_what_is_signed() -> None:
    body = exact_body().decode()
    content = body[len('{"Content":') : body.index(',"HashCode"')]
    code = body[body.index('"HashCode":"') + 12 : -2]
    spaced = f'{{ "HashCode" : "{code}",\n  "Content" : {content} }}'.encode()
    change = receive(spaced, {}, SECRET)
    assert change is not None and change.entity_types == ("Accounts",)


def test_a_second_content_cannot_ride_along_a_signed_one() -> None:
    body = exact_body().decode()
    forged = body[:-1] + ',"Content":{"Topic":"Items","Key":"x"}}'
    with pytest.raises(Refused) as refused:
        receive(forged.encode(), {}, SECRET)
    assert refused.value.reason == "malformed"


def test_top_level_spans_are_the_raw_text_of_each_value() -> None:
    text = '{"a" : {"b": [1, 2]} , "c":"d"}'
    assert [(k, text[s:e]) for k, s, e in top_level_spans(text)] == [
        ("a", '{"b": [1, 2]}'),
        ("c", '"d"'),
    ]
    with pytest.raises(ValueError, match="after"):
        top_level_spans("{} x")


# -- the replay guard -----------------------------------------------------------------------
def test_the_replay_guard_forgets_after_the_window_and_stays_bounded() -> None:
    guard = ReplayGuard(window=60, limit=3)
    assert guard.first_time("a", 0)
    assert not guard.first_time("a", 59)
    assert guard.first_time("a", 61)  # the window passed
    for name in "bcd":
        assert guard.first_time(name, 62)
    assert len(guard._seen) <= 3


# -- through HTTP ---------------------------------------------------------------------------
def test_a_signed_exact_webhook_asks_for_a_run_of_the_dataflows_reading_the_type(
    hooks: tuple[Service, TestClient, list[tuple]],
) -> None:
    _, client, pushed = hooks
    answer = client.post("/hooks/exact", content=exact_body())
    assert answer.status_code == 200
    assert pushed == [(("exact.Accounts->pms.Customer",), "webhook from exact: exact.Accounts")]
    assert client.post("/hooks/exact", content=b"").status_code == 200  # validation
    assert len(pushed) == 1
    contacts = client.post("/hooks/exact", content=exact_body(topic="Contacts"))
    assert contacts.status_code == 200 and len(pushed) == 1  # no dataflow reads Contacts


def test_refused_requests_say_nothing_and_are_counted_by_reason(
    hooks: tuple[Service, TestClient, list[tuple]],
) -> None:
    _, client, pushed = hooks
    body = exact_body()
    assert client.post("/hooks/exact", content=body).status_code == 200
    replay = client.post("/hooks/exact", content=body)
    assert (replay.status_code, replay.content) == (400, b"")
    forged = client.post("/hooks/exact", content=exact_body(secret="guess"))
    assert (forged.status_code, forged.content) == (401, b"")
    old = exact_body(created="2020-01-01T00:00:00.000Z")
    assert client.post("/hooks/exact", content=old).status_code == 400
    huge = client.post("/hooks/exact", content=b" " * (300 * 1024))
    assert huge.status_code == 400
    assert client.get("/hooks/exact").status_code == 405
    for name in ("quiet", "pms", "nobody-" + "x" * 40):  # no secret, no webhooks, unknown
        assert client.post(f"/hooks/{name}", content=body).status_code == 404
    assert len(pushed) == 1
    counted = refusals(client)
    assert counted[("exact", "replayed")] == 1
    assert counted[("exact", "bad_signature")] == 1
    assert counted[("exact", "stale")] == 1
    assert counted[("exact", "too_large")] == 1
    assert counted[("", "unknown_system")] == 3
    assert {system for system, _ in counted} == {"exact", ""}  # no name the caller chose


def test_the_rest_webhook_is_signed_over_timestamp_and_body(
    hooks: tuple[Service, TestClient, list[tuple]],
) -> None:
    _, client, pushed = hooks
    event = {"type": "Customer", "id": "42", "action": "updated", "occurred_at": "now"}
    body, headers = rest_request(event)
    assert client.post("/hooks/crm", content=body, headers=headers).status_code == 200
    assert pushed == [(("crm.Customer->pms.Org",), "webhook from crm: crm.Customer")]
    assert client.post("/hooks/crm", content=body, headers=headers).status_code == 400  # replay
    respaced = json.dumps(event, indent=1).encode()
    assert client.post("/hooks/crm", content=respaced, headers=headers).status_code == 401
    unsigned = {k: v for k, v in headers.items() if k != "X-Samband-Signature"}
    assert client.post("/hooks/crm", content=body, headers=unsigned).status_code == 401
    stale_body, stale = rest_request(event, timestamp=int(time.time()) - 3600)
    assert client.post("/hooks/crm", content=stale_body, headers=stale).status_code == 400
    later = str(int(headers["X-Samband-Timestamp"]) + 1)
    moved = dict(headers, **{"X-Samband-Timestamp": later})  # re-dated
    assert client.post("/hooks/crm", content=body, headers=moved).status_code == 401
    batch, batch_headers = rest_request(
        [
            {"type": "Customer", "id": 1, "action": "created"},
            {"type": "Customer", "id": 2, "action": "deleted"},
        ]
    )
    assert client.post("/hooks/crm", content=batch, headers=batch_headers).status_code == 200
    deep = b"[" * 100_000 + b"]" * 100_000
    stamp = str(int(time.time()))
    mac = hmac.new(REST_SECRET.encode(), stamp.encode() + b"." + deep, hashlib.sha256)
    deep_headers = {
        "X-Samband-Timestamp": stamp,
        "X-Samband-Signature": "sha256=" + mac.hexdigest(),
    }
    assert client.post("/hooks/crm", content=deep, headers=deep_headers).status_code == 400
    bad, bad_headers = rest_request({"type": "Customer", "id": 1, "action": "exploded"})
    assert client.post("/hooks/crm", content=bad, headers=bad_headers).status_code == 400
    assert len(pushed) == 2
    counted = refusals(client)
    assert counted[("crm", "replayed")] == 1
    assert counted[("crm", "bad_signature")] == 2
    assert counted[("crm", "unsigned")] == 1
    assert counted[("crm", "stale")] == 1
    assert counted[("crm", "malformed")] == 2


def test_receivers_need_no_session_even_with_a_login(tmp_path: Path) -> None:
    from samband.service.access import Access, hash_password

    path = tmp_path / "samband.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    service = Service(path, every=3600, environ=ENVIRON, push_gap=0)
    pushed: list[object] = []
    service._request_run = lambda flows, reason: pushed.append(flows)  # type: ignore[method-assign]
    access = Access({"SAMBAND_USERS": f"ada admin {hash_password('a long password!')}"})
    with TestClient(create_app(service, access, manage_service=False)) as client:
        assert client.get("/", follow_redirects=False).status_code == 303  # pages need it
        assert client.post("/hooks/exact", content=exact_body()).status_code == 200
        assert client.post("/hooks/exact", content=exact_body(secret="x")).status_code == 401
    assert len(pushed) == 1


def test_a_stream_of_pushes_starts_a_run_at_most_once_per_gap(tmp_path: Path) -> None:
    path = tmp_path / "samband.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    service = Service(path, every=3600, environ=ENVIRON, push_gap=3600)
    asked: list[list[str]] = []
    service._request_run = lambda flows, reason: asked.append(flows)  # type: ignore[method-assign]
    service.pushed("exact", ["Accounts"], ["a"])
    service.pushed("crm", ["Customer"], ["1"])
    service.pushed("exact", ["Accounts"], ["b"])
    assert asked == [["exact.Accounts->pms.Customer"]]  # the rest waits for the gap
    assert service._push_timer is not None
    service._push_timer.cancel()
    service._gate_open()  # the gap is over
    assert asked[1:] == [["crm.Customer->pms.Org", "exact.Accounts->pms.Customer"]]
    service.stop()


def test_pushes_do_not_hurry_a_failing_system_past_its_backoff(tmp_path: Path) -> None:
    path = tmp_path / "samband.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    service = Service(path, every=3600, environ=ENVIRON, push_gap=0)
    service.scheduler.state.failures_in_a_row = 2
    assert service.pushed("exact", ["Accounts"], ["a"]) == ["exact.Accounts->pms.Customer"]
    assert not service.scheduler.requested
    service.scheduler.state.failures_in_a_row = 0
    service.pushed("exact", ["Accounts"], ["a"])
    assert service.scheduler.requested


def test_the_signing_example_of_the_service_page_is_accepted(
    hooks: tuple[Service, TestClient, list[tuple]],
) -> None:
    _, client, pushed = hooks
    example = block_after(DOCS / "service.md", "## Near-real-time", "python")
    names: dict[str, Any] = {}
    exec(compile(example.code, example.where, "exec"), names)
    body, headers = names["signed_event"](REST_SECRET, "Customer", "7", "updated")
    assert client.post("/hooks/crm", content=body, headers=headers).status_code == 200
    assert pushed == [(("crm.Customer->pms.Org",), "webhook from crm: crm.Customer")]
    forged, forged_headers = names["signed_event"]("not the secret", "Customer", "7", "updated")
    assert client.post("/hooks/crm", content=forged, headers=forged_headers).status_code == 401


def test_serve_refuses_a_public_url_that_is_not_http(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from samband.cli import app

    path = tmp_path / "samband.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "-c", str(path), "--public-url", "ftp://x"])
    assert result.exit_code == 2
    assert "--public-url" in result.output


def test_listeners_end_at_once_where_there_is_nothing_to_listen_to(tmp_path: Path) -> None:
    from samband.config import parse_config
    from samband.service.metrics import Metrics
    from samband.service.push import Listeners, PushMetrics

    text = """
systems:
  lite: {kind: sql, url: "sqlite:///pms.db", entity_types: {customers: {}}}
  unset: {kind: sql, url: "${NO_SUCH_DATABASE_URL}", entity_types: {customers: {}}}
"""
    config = parse_config(text).config
    metrics = PushMetrics(Metrics(dict).registry)
    listeners = Listeners(config, {}, lambda *args: None, metrics)
    listeners.start(["lite", "unset"])
    for thread in listeners._threads:
        thread.join(30)
        assert not thread.is_alive()
    assert listeners.connections == {}


def test_a_signature_or_timestamp_beyond_ascii_is_refused_not_an_error(
    hooks: tuple[Service, TestClient, list[tuple]],
) -> None:
    _, client, pushed = hooks
    body, headers = rest_request({"type": "Customer", "id": "7", "action": "updated"})
    odd_signature = dict(headers, **{"X-Samband-Signature": "sha256=\xe9t\xe9"})
    odd_timestamp = dict(headers, **{"X-Samband-Timestamp": "\u0661\u0662\u0663"})  # Arabic digits
    for odd in (odd_signature, odd_timestamp):
        raw = {name: value.encode("latin-1", "replace") for name, value in odd.items()}
        raw["X-Samband-Timestamp"] = odd["X-Samband-Timestamp"].encode("utf-8")
        answer = client.post("/hooks/crm", content=body, headers=raw)
        assert answer.status_code in (400, 401), answer.status_code
        assert answer.content == b""
    assert pushed == []
