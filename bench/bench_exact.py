"""Read 50 000 Exact Online accounts under the 60-calls-a-minute limit (sandbox, sped-up clock).

Prints, for the Sync API read the connector does by default and for a full scan through
the CRUD endpoint (pages of 60, so hundreds of calls), the achieved call rate as a share
of the allowed rate (goal >= 95 %) and the number of 429s (goal 0).

    .venv/bin/python bench/bench_exact.py [--accounts 50000] [--speed 20]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from samband import sampledata
from samband.config.model import EntityTypeConfig, SystemConfig
from samband.kinds.exact_online.connector import ExactOnlineConnector
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import Clock
from samband.secrets import TokenStore


def fill(box: ExactOnlineSandbox, count: int) -> None:
    for index, company in enumerate(sampledata.companies(count, random.Random(1), "NL"), 1):
        box.insert(
            "crm/Accounts",
            {
                "Code": str(index),
                "Name": company["name"],
                "Email": company["email"],
                "City": company["city"],
                "Postcode": company["zip_code"],
            },
        )


def connector(
    box: ExactOnlineSandbox, url: str, state: Path, full_scan: bool
) -> ExactOnlineConnector:
    issued = box.issue_tokens()
    now = box.clock.time()
    TokenStore("exact", state).save(
        {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_at": now + 600,
            "requested_at": now,
        }
    )
    types = {"Accounts": EntityTypeConfig.model_validate({"full_scan": True})} if full_scan else {}
    config = SystemConfig.model_validate(
        {"kind": "exact-online", "base_url": url, "division": box.division, "entity_types": types}
    )
    result = ExactOnlineConnector(
        "exact",
        config,
        {"client_id": box.client_id, "client_secret": box.client_secret},
        state_dir=str(state),
        clock=box.clock,
    )
    result.wanted_fields["Accounts"] = {"Name", "Code", "Email", "City", "Postcode"}
    return result


def measure(
    box: ExactOnlineSandbox, url: str, state: Path, full_scan: bool, label: str
) -> dict[str, float]:
    """Read every account once; print and return the figures (``python -m bench`` uses them)."""
    with box.lock:  # a fresh minute and day for each measurement
        box.minute_reset = box.day_reset = 0.0
        box.throttled = 0
    calls_before = box.api_calls
    conn = connector(box, url, state, full_scan)
    start_virtual, start_real = box.clock.time(), time.perf_counter()
    count = sum(len(page.records) for page in conn.read("Accounts", None))
    elapsed_virtual = box.clock.time() - start_virtual
    real = time.perf_counter() - start_real
    calls = box.api_calls - calls_before
    allowed_per_minute = box.minutely_limit
    achieved = calls / (elapsed_virtual / 60.0) if elapsed_virtual > 0 else float("inf")
    share = min(achieved / allowed_per_minute, float("inf"))
    bound = calls > allowed_per_minute
    print(
        f"{label}: {count} accounts, {calls} calls in {elapsed_virtual / 60:.1f} virtual minutes "
        f"({real:.1f} s real); "
        + (
            f"call rate {achieved:.1f}/min = {share:.1%} of the allowed {allowed_per_minute}/min"
            if bound
            else "fewer calls than one minute's budget: not rate bound"
        )
        + f"; 429s: {box.throttled}"
    )
    conn.close()
    return {
        "accounts": count,
        "calls": calls,
        "virtual_seconds": elapsed_virtual,
        "real_seconds": real,
        "rate_share": share if bound else float("nan"),
        "rate_bound": bound,
        "throttled": box.throttled,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--speed", type=float, default=20.0, help="sandbox clock speed-up")
    args = parser.parse_args()
    os.environ.setdefault("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    box = ExactOnlineSandbox(clock=Clock(speed=args.speed), minutely_limit=60, daily_limit=100_000)
    fill(box, args.accounts)
    server = _support_serve(box)
    try:
        with tempfile.TemporaryDirectory() as folder:
            measure(box, server.url, Path(folder) / "sync", False, "Sync API (default)")
            measure(box, server.url, Path(folder) / "scan", True, "CRUD full scan, 60/page")
    finally:
        server.stop()


def _support_serve(box: ExactOnlineSandbox):  # type: ignore[no-untyped-def]
    """The tests' server starter (uvicorn lifespan prepared, TCP_NODELAY set)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.sandbox import serve

    return serve(box)


if __name__ == "__main__":
    main()
