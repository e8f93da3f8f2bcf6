"""``/metrics`` in the Prometheus text format: counters fed by each finished run, gauges
read from the store at scrape time.  No per-record labels: a label is a system, an entity
type, a dataflow or a status, all bounded by the config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from samband.service.scheduler import RunOutcome

RUN_SECONDS_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
REQUEST_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, store_gauges: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.run_seconds = Histogram(
            "samband_run_duration_seconds",
            "Duration of sync runs.",
            buckets=RUN_SECONDS_BUCKETS,
            registry=r,
        )
        self.runs = Counter("samband_runs", "Sync runs by outcome.", ["status"], registry=r)
        self.records_read = Counter(
            "samband_records_read",
            "Records read, by system and entity type.",
            ["system", "entity_type"],
            registry=r,
        )
        self.records_written = Counter(
            "samband_records_written",
            "Records written, by dataflow and operation (created, updated, deleted, linked).",
            ["dataflow", "operation"],
            registry=r,
        )
        self.conflicts = Counter(
            "samband_conflicts", "Conflicts decided, by dataflow.", ["dataflow"], registry=r
        )
        self.api_requests = Counter(
            "samband_api_requests",
            "API requests, by system and HTTP status (error: no answer).",
            ["system", "status"],
            registry=r,
        )
        self.api_request_seconds = Histogram(
            "samband_api_request_duration_seconds",
            "Duration of API requests (until the answer is read), by system.",
            ["system"],
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "samband_rate_limit_waits",
            "Waits a rate limit imposed, by system and reason (pacing: the client's own "
            "limiter; 429: the server's answer).",
            ["system", "reason"],
            registry=r,
        )
        self.rate_limit_wait_seconds = Counter(
            "samband_rate_limit_wait_seconds",
            "Seconds spent waiting for rate limits, by system and reason.",
            ["system", "reason"],
            registry=r,
        )
        self.last_success = Gauge(
            "samband_last_successful_run_timestamp_seconds",
            "Unix time of the end of the last successful run, by dataflow.",
            ["dataflow"],
            registry=r,
        )
        self.running = Gauge(
            "samband_run_in_progress", "1 while a sync run is in progress.", registry=r
        )
        r.register(_StoreCollector(store_gauges))

    def observe(self, outcome: RunOutcome, finished_at: float) -> None:
        self.run_seconds.observe(outcome.seconds)
        self.runs.labels(outcome.status).inc()
        report = outcome.report or {}
        for key, counts in (report.get("dataflows") or {}).items():
            for operation in ("created", "updated", "deleted", "linked"):
                if counts.get(operation):
                    self.records_written.labels(key, operation).inc(counts[operation])
            if counts.get("conflicts"):
                self.conflicts.labels(key).inc(counts["conflicts"])
            ran = report.get("ran")  # a paused dataflow, or one left out, did not run
            if outcome.status == "ok" and (ran is None or key in ran):
                self.last_success.labels(key).set(finished_at)
        for type_key, counts in (report.get("collected") or {}).items():
            system, _, etype = type_key.partition(".")
            if counts.get("read"):
                self.records_read.labels(system, etype).inc(counts["read"])

    # -- a listener of the connectors' HTTP calls (samband.connectors._observe) ------------
    def answered(self, system: str, status: int | None, seconds: float) -> None:
        self.api_requests.labels(system, "error" if status is None else str(status)).inc()
        self.api_request_seconds.labels(system).observe(seconds)

    def waited(self, system: str, seconds: float, reason: str) -> None:
        self.rate_limit_waits.labels(system, reason).inc()
        self.rate_limit_wait_seconds.labels(system, reason).inc(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    """Gauges the store answers at scrape time: quarantined records, open conflicts, links."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        data = self._read()
        yield GaugeMetricFamily(
            "samband_quarantined_records",
            "Records in quarantine (dead letters).",
            value=data.get("quarantined", 0),
        )
        yield GaugeMetricFamily(
            "samband_conflicts_recorded", "Conflicts in the store.", value=data.get("conflicts", 0)
        )
        links = GaugeMetricFamily(
            "samband_links", "Linked pairs, by dataflow.", labels=["dataflow"]
        )
        for row in data.get("links", []):
            links.add_metric([row["dataflow"]], row["links"])
        yield links
