"""Exact Online: the external-reference lookup under a case-insensitive database (f6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from samband.config.model import SystemConfig
from samband.kinds.exact_online.connector import ExactOnlineConnector
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import Clock
from samband.secrets import TokenStore


def test_exact_a_ref_that_differs_only_in_case_is_another_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exact Online compares text without regard to case (its sandbox too): the lookup
    that resolves an interrupted create asks for a few matches and takes the exact one,
    not the first record whose ref differs only in case."""
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    box = ExactOnlineSandbox(clock=Clock(), minutely_limit=100_000, daily_limit=100_000)
    box.seed(3, 1)
    server = box.serve()
    try:
        issued = box.issue_tokens()
        now = box.clock.time()
        TokenStore("exact", tmp_path).save(
            {
                "access_token": issued["access_token"],
                "refresh_token": issued["refresh_token"],
                "expires_at": now + 600,
                "requested_at": now,
            }
        )
        config = SystemConfig(kind="exact-online", base_url=server.url, division=box.division)
        exact = ExactOnlineConnector(
            "exact",
            config,
            {"client_id": box.client_id, "client_secret": box.client_secret},
            state_dir=str(tmp_path),
            clock=box.clock,
        )
        first = exact.create("Items", {"Code": "A-1", "Description": "a"}, "crm:Product:a0Xk")
        second = exact.create("Items", {"Code": "A-2", "Description": "b"}, "crm:Product:a0XK")
        found = exact.find_by_external_ref("Items", "crm:Product:a0XK")
        assert found is not None and found.id == second.id
        found = exact.find_by_external_ref("Items", "crm:Product:a0Xk")
        assert found is not None and found.id == first.id
        assert exact.find_by_external_ref("Items", "crm:Product:A0XK") is None
        exact.close()
    finally:
        server.stop()
