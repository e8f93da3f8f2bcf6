"""Initial read of 50 000 PowerOffice GO customers from the sandbox.

Prints records/s and the API calls the read took, against the goal of
ceil(customers / page size) + 1 calls (the pages plus the token request), then a change
read after one edit (one call).  The sandbox and the connector both keep the real limit of
10 requests/second.

    .venv/bin/python bench/bench_poweroffice.py [--customers 50000] [--page-size 5000]
"""

from __future__ import annotations

import argparse
import math
import time

from samband.config.model import SystemConfig
from samband.kinds.poweroffice_go.connector import PowerOfficeConnector
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox

KEYS = {
    "application_key": "sandbox-application-key",
    "client_key": "sandbox-client-key",
    "subscription_key": "sandbox-subscription-key",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--page-size", type=int, default=5000)
    args = parser.parse_args()

    box = PowerOfficeSandbox()
    started = time.perf_counter()
    box.seed(args.customers, 1, only=("Customers",))
    print(f"seeded {args.customers} customers in {time.perf_counter() - started:.1f} s")
    box.clock.advance(60)
    server = box.serve()
    try:
        config = SystemConfig.model_validate(
            {
                "kind": "poweroffice-go",
                "base_url": f"{server.url}/v2",
                "page_size": args.page_size,
            }
        )
        po = PowerOfficeConnector("poweroffice", config, KEYS, overlap_seconds=0)
        po.wanted_fields["Customers"] = {
            "Name",
            "OrganizationNumber",
            "EmailAddress",
            "PhoneNumber",
        }
        started = time.perf_counter()
        count, cursor = 0, None
        for page in po.read("Customers", None):
            count += len(page.records)
            cursor = page.cursor or cursor
        elapsed = time.perf_counter() - started
        goal = math.ceil(args.customers / args.page_size) + 1
        print(
            f"initial read: {count} customers in {elapsed:.2f} s = {count / elapsed:,.0f} "
            f"records/s; {po.stats.api_calls} API calls (goal <= {goal}); "
            f"429s: {po.stats.throttled}"
        )
        before = po.stats.api_calls
        box.clock.advance(5)
        box.edit("Customers", next(iter(box.records("Customers"))), {"Name": "Endret AS"})
        started = time.perf_counter()
        changed = [r for page in po.read("Customers", cursor) for r in page.records]
        print(
            f"change read: {len(changed)} customer in {time.perf_counter() - started:.3f} s, "
            f"{po.stats.api_calls - before} API call(s)"
        )
        po.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
