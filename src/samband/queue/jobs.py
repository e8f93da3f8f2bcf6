"""What one queued job does to one tenant, in the worker's thread: load the tenant's
config with its own environment, optionally mark types to be read again, run.

The queue runs one job of a tenant at a time, and a worker runs it only inside the
tenant's fence (:mod:`.fence`), so two workers never run one tenant together, also when
one of them was taken for dead.  The engine still takes its run lease in the tenant's
store, a second layer: a run started by hand (``samband sync --tenant``) meanwhile is
refused, not run twice, and so is the job while such a run lasts."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from samband.config.model import Config
from samband.config.validate import load_valid
from samband.errors import ConfigError, RunLocked, SambandError
from samband.tenants import Registry, Tenant, TenantError

log = logging.getLogger(__name__)

# A worker runs each tenant again and again; reading and checking its config was a sixth of
# a quiescent run.  Kept by the file's path and content (a changed file is read again; the
# checks read nothing else), and each job gets a copy of its own.  Bounded: past that many
# tenants, the oldest are read again.
_CONFIGS: dict[tuple[str, bytes], Config] = {}
_CONFIGS_MAX = 2048
_CONFIGS_LOCK = threading.Lock()


def _config(path: Path) -> Config:
    """The tenant's config, validated: from the cache when the file did not change."""
    try:
        key = (str(path.resolve()), hashlib.sha256(path.read_bytes()).digest())
    except OSError:
        return load_valid(path).config  # gone meanwhile: said as load_valid says it
    with _CONFIGS_LOCK:
        config = _CONFIGS.get(key)
    if config is None:
        config = load_valid(path).config  # ConfigError: said by the job, not kept
        with _CONFIGS_LOCK:
            stale = [k for k in _CONFIGS if k[0] == key[0]]
            for old in stale:
                del _CONFIGS[old]
            if len(_CONFIGS) >= _CONFIGS_MAX:
                del _CONFIGS[next(iter(_CONFIGS))]
            _CONFIGS[key] = config
    return config.model_copy(deep=True)


@dataclass
class Outcome:
    """How a job ended: ``status`` is ``ok``, ``gone`` (the tenant was removed while its
    job was queued), ``failed`` (``message`` says why) or a run's own status —
    ``yielded``: its turn was used up between two chunks, what it did is kept and the
    tenant's next run goes on (see :class:`Turn`)."""

    status: str
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "gone", "stopped", "paused", "locked", "yielded")

    @property
    def yielded(self) -> bool:
        return self.status == "yielded"


@dataclass(frozen=True)
class Turn:
    """How long one job may hold a worker: a run yields between two chunks once it has
    worked ``seconds`` or done ``chunks`` chunks that moved something (None: no limit),
    so one tenant's huge initial load does not keep the others waiting."""

    seconds: float | None = None
    chunks: int | None = None


def run_job(
    registry: Path,
    name: str,
    *,
    dataflows: Iterable[str] = (),
    resync: Iterable[str] = (),
    should_stop: Callable[[], bool] | None = None,
    turn: Turn = Turn(),
) -> Outcome:
    """One job of tenant ``name``: ``resync`` types (``SYSTEM.TYPE``) are read from the
    start, then one run: of ``dataflows`` (a targeted run: the tenant's dataflow keys, and
    those they depend on), else of all; the run yields once its ``turn`` is used up."""
    try:
        tenant = Registry(registry).get(name)
    except TenantError:
        return Outcome("gone", f"tenant {name} is no longer in the registry; job dropped")
    try:
        return _run(tenant, list(dataflows), list(resync), should_stop, turn)
    except ConfigError as exc:
        return Outcome("failed", str(exc))  # each problem names the file and line
    except RunLocked as exc:
        # another process runs this tenant (by hand; a worker cut off from the queue that
        # still runs): the job is tried again later, never run beside it
        return Outcome("locked", str(exc))
    except SambandError as exc:
        return Outcome("failed", str(exc))


def _run(
    tenant: Tenant,
    dataflows: list[str],
    resync: list[str],
    should_stop: Callable[[], bool] | None,
    turn: Turn,
) -> Outcome:
    from samband.engine.inspect import Inspector
    from samband.engine.run import Engine

    environ = tenant.environ()
    # a tenant.yaml that does not parse fails the run, saying why: its next scheduled run
    # cannot be queued without its `every`
    tenant.every()
    own = tenant.turn()  # tenant.yaml's `turn`, over the worker's
    if own is not None:
        turn = Turn(own or None, turn.chunks)
    config = _config(tenant.config_path)
    keys = {flow.key for flow in config.dataflows}
    unknown = [name for name in dataflows if name not in keys]
    if unknown:
        return Outcome(
            "failed",
            f"{tenant.name}: no dataflow {unknown[0]!r}; its dataflows: {', '.join(sorted(keys))}",
        )
    for entity_type in resync:
        system, _, etype = entity_type.partition(".")
        with Inspector(config) as inspector:
            inspector.resync(system, etype)
    # the queue runs one job of a tenant at a time, in its fence: a lease held in its store
    # means another process runs it (by hand): refused at once, not waited for
    with Engine(config, environ=environ, lease_wait=0) as engine:
        report = engine.sync(
            should_stop=should_stop,
            dataflows=dataflows or None,
            max_chunks=turn.chunks,
            max_seconds=turn.seconds,
        )
    total = report.total().as_dict()
    said = report.failed or report.yielded  # a yielded run says how much stays queued
    message = "; ".join(str(m) for m in report.messages) if said else ""
    return Outcome(report.status, message, {k: int(v) for k, v in total.items()})
