"""The PostgreSQL token bucket (samband.quota): shared spacing, penalties, and what
happens when the row, the table or the database is missing."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from samband.connectors._cluster import ClusterLimiter
from samband.connectors._http import HttpClient
from samband.errors import ConnectorError, QuotaExhausted
from samband.quota import QuotaSpent, QuotaUnavailable, connection_key
from samband.quota.bucket import TABLE, QuotaDatabase, _conninfo

pytestmark = pytest.mark.postgres

KEY = connection_key("poweroffice-go", "subscription")


@pytest.fixture
def database(postgres_url: str) -> Iterator[QuotaDatabase]:
    db = QuotaDatabase(postgres_url)
    yield db
    db.close()


def _sql(url: str, statement: str) -> None:
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute(statement)


def test_the_key_names_the_kind_and_never_the_secret() -> None:
    key = connection_key("webcrm", "the-api-token")
    assert key.startswith("webcrm:")
    assert "the-api-token" not in key
    assert key == connection_key("webcrm", "the-api-token")
    assert key != connection_key("webcrm", "another-token")


def test_callers_on_two_connections_are_spaced_one_interval_apart(postgres_url: str) -> None:
    first, second = QuotaDatabase(postgres_url), QuotaDatabase(postgres_url)
    try:
        assert first.acquire(KEY, 5.0) == 0.0
        # the second process's slot is one interval after the first's, on the database's clock
        wait = second.acquire(KEY, 5.0)
        assert 4.0 < wait <= 5.0
        wait = first.acquire(KEY, 5.0)
        assert 9.0 < wait <= 10.0
    finally:
        first.close()
        second.close()


def test_a_penalty_seen_by_one_holds_back_every_other(postgres_url: str) -> None:
    seen, other = QuotaDatabase(postgres_url), QuotaDatabase(postgres_url)
    try:
        assert other.acquire(KEY, 0.01) == 0.0
        seen.penalise(KEY, 30.0)
        assert 29.0 < other.blocked_for(KEY) <= 30.0
        assert 29.0 < other.acquire(KEY, 0.01) <= 30.0
        state = other.state(KEY)
        assert state is not None and state.penalties == 1
    finally:
        seen.close()
        other.close()


def test_a_penalty_past_the_longest_wait_refuses_without_taking_a_slot(
    database: QuotaDatabase,
) -> None:
    database.penalise(KEY, 3600.0)  # a daily budget spent
    before = database.state(KEY)
    with pytest.raises(QuotaSpent) as caught:
        database.acquire(KEY, 1.0, max_wait=300.0)
    assert 3500 < caught.value.seconds <= 3600
    after = database.state(KEY)
    assert before is not None and after is not None
    assert after.grants == before.grants
    assert after.next_in <= before.next_in


def test_a_long_queue_of_workers_is_waited_out_not_taken_for_a_spent_budget(
    database: QuotaDatabase,
) -> None:
    """Many workers on one slow account (Exact Online: one call a second) queue far ahead;
    that is pacing, not a spent budget."""
    for _ in range(4):
        database.acquire(KEY, 100.0)
    assert 250 < database.acquire(KEY, 100.0, max_wait=60.0) <= 400


def test_a_granted_slot_is_voided_by_a_penalty_while_its_holder_sleeps(
    postgres_url: str,
) -> None:
    database, other = QuotaDatabase(postgres_url), QuotaDatabase(postgres_url)
    slept: list[float] = []

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:  # while this worker waits for its slot, another sees a 429
            other.penalise(KEY, 20.0)
        else:
            raise Stop

    limiter = ClusterLimiter(database, KEY, 10, 1.0, sleep=sleep)
    try:
        database.acquire(KEY, 0.1)  # the next slot is 0.1 s away: the limiter sleeps
        with pytest.raises(Stop):
            limiter.acquire()
        assert slept[0] <= 0.1
        assert 19.0 < slept[1] <= 20.0  # it asked again, and waits out the penalty
    finally:
        database.close()
        other.close()


def test_a_deleted_row_is_made_again(database: QuotaDatabase, postgres_url: str) -> None:
    database.acquire(KEY, 1.0)
    _sql(postgres_url, f"DELETE FROM {TABLE}")
    assert database.acquire(KEY, 1.0) == 0.0
    assert database.blocked_for(KEY) == 0.0


def test_a_dropped_table_is_made_again(database: QuotaDatabase, postgres_url: str) -> None:
    database.acquire(KEY, 1.0)
    _sql(postgres_url, f"DROP TABLE {TABLE}")
    assert database.acquire(KEY, 1.0) == 0.0


def test_a_lost_connection_is_opened_again(postgres_url: str) -> None:
    name = f"samband-quota-{uuid.uuid4().hex[:8]}"  # this test's connection only
    database = QuotaDatabase(postgres_url, application_name=name)
    database.acquire(KEY, 0.001)
    _sql(
        postgres_url,
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'",
    )
    database.acquire(KEY, 0.001)
    state = database.state(KEY)
    database.close()
    assert state is not None and state.grants == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_database_that_does_not_answer_stops_the_calls_with_a_clear_error() -> None:
    url = f"postgresql://samband:s3cret-pw@127.0.0.1:{_free_port()}/quota"
    database = QuotaDatabase(url, connect_timeout=2)
    with pytest.raises(QuotaUnavailable) as caught:
        database.acquire(KEY, 0.1)
    message = str(caught.value)
    assert "SAMBAND_QUOTA_DATABASE" in message and "127.0.0.1" in message
    assert "s3cret-pw" not in message

    # through a connector's HTTP client: an error naming the system, before any call
    limiter = ClusterLimiter(database, KEY, 10, 1.0)
    client = HttpClient("po", "http://127.0.0.1:9", limiter=limiter)
    with pytest.raises(ConnectorError) as error:
        client.request("GET", "/Customers")
    assert "'po'" in str(error.value) and "s3cret-pw" not in str(error.value)
    assert client.stats.api_calls == 0


def test_a_spent_budget_is_a_quota_exhausted_error_of_the_system(
    database: QuotaDatabase,
) -> None:
    database.penalise(KEY, 7200.0)
    client = HttpClient("exact", "http://127.0.0.1:9", limiter=ClusterLimiter(database, KEY, 1, 1))
    with pytest.raises(QuotaExhausted) as caught:
        client.request("GET", "/Accounts")
    assert caught.value.resume_at is not None
    assert client.stats.api_calls == 0


def test_the_local_clock_plays_no_part(
    database: QuotaDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose clock is an hour ahead (or behind) is still spaced by the database."""
    assert database.acquire(KEY, 2.0) == 0.0
    skewed = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: skewed)
    monkeypatch.setattr(time, "monotonic", lambda: skewed)
    assert 1.0 < database.acquire(KEY, 2.0) <= 2.0


def _take_slot_and_hang(url: str, ready: multiprocessing.synchronize.Event) -> None:
    database = QuotaDatabase(url)
    database.acquire(KEY, 1.0)
    ready.set()
    time.sleep(600)  # killed here, holding the slot


def test_a_worker_killed_holding_a_slot_holds_nobody_back(postgres_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    database = QuotaDatabase(postgres_url)
    try:
        database.acquire(KEY, 1.0)
        child = context.Process(target=_take_slot_and_hang, args=(postgres_url, ready))
        child.start()
        assert ready.wait(60), "the child never took its slot"
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        # the dead worker's slot is spent; the next comes one interval after it
        wait = database.acquire(KEY, 1.0)
        assert wait <= 2.0
    finally:
        database.close()


def test_a_forked_child_opens_its_own_connection(database: QuotaDatabase) -> None:
    database.acquire(KEY, 0.001)
    context = multiprocessing.get_context("fork")
    child = context.Process(target=database.acquire, args=(KEY, 0.001))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    # the parent's connection survived the child
    database.acquire(KEY, 0.001)
    state = database.state(KEY)
    assert state is not None and state.grants == 3
