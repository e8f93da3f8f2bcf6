"""Read-only views of the store for ``samband status|links|conflicts|errors|history``,
and ``retry`` (which only re-queues records)."""

from __future__ import annotations

import os
from typing import Any

from samband.config.loader import base_dir
from samband.config.model import Config
from samband.config.validate import load_valid
from samband.store import schema as s
from samband.store.rows import Ref, loads, now_iso
from samband.store.store import Store


class Inspector:
    def __init__(self, config: Config, store_url: str | None = None) -> None:
        self.config = config
        self.store = Store(store_url or config.store, base_dir=base_dir(config))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Inspector:
        return cls(load_valid(path).config)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> dict[str, Any]:
        runs = self.store.table_rows(s.runs, order=s.runs.c.id.desc(), limit=5)
        last = [
            {
                "run": r["id"],
                "started": r["started_at"],
                "finished": r["finished_at"],
                "status": r["status"],
                **_totals(loads(r["stats"]) or {}),
                "reason": _reason(r["status"], loads(r["stats"]) or {}),
            }
            for r in runs
        ]
        links_by_flow: dict[str, int] = {}
        for flow in self.config.dataflows:
            links_by_flow[flow.key] = self.store.count_links(flow.key)
        return {
            "store": _safe_store(self.config.store),
            "runs": last,
            "links": [{"dataflow": k, "links": v} for k, v in links_by_flow.items()],
            "cursors": [
                {
                    "type": f"{c['system']}.{c['etype']}",
                    "cursor": c["cursor"],
                    "updated": c["updated_at"],
                }
                for c in self.store.all_cursors()
            ],
            "queued": [
                {"type": f"{c['system']}.{c['etype']}", "records": queued}
                for c in self.store.all_cursors()
                if (queued := self.store.count_dirty(c["system"], c["etype"]))
            ],
            "leases": [
                {"lease": r["name"], "held_by": r["owner"], "until": r["expires_at"]}
                for r in self.store.table_rows(s.leases, order=s.leases.c.name)
                if r["expires_at"] > now_iso()
            ],
            "conflicts": len(self.store.table_rows(s.conflicts)),
            "quarantined": len(self.store.dead_letters()),
            "open_intents": len(self.store.open_intents()),
        }

    def links(self, ref: str) -> list[dict[str, Any]]:
        """Every member of the link group of ``ref`` with its stored (mapped) values."""
        seen, frontier, pairs = {ref}, [ref], []
        while frontier:
            following = []
            for link in self.store.links_touching(frontier):
                pairs.append(link)
                for other in (link.source_ref, link.target_ref):
                    if other not in seen:
                        seen.add(other)
                        following.append(other)
            frontier = following
        rows = []
        for member in sorted(seen):
            snap = self.store.snapshot(member)
            linked = sorted(
                {
                    f"{p.dataflow}: {p.target_ref if p.source_ref == member else p.source_ref}"
                    for p in pairs
                    if member in (p.source_ref, p.target_ref)
                }
            )
            rows.append(
                {
                    "ref": member,
                    "values": snap.data if snap else None,
                    "modified": snap.modified if snap else None,
                    "deleted": snap.deleted if snap else None,
                    "linked": linked,
                }
            )
        return rows

    def conflicts(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.store.table_rows(s.conflicts, order=s.conflicts.c.id.desc(), limit=limit)
        return [
            {
                "at": r["at"],
                "dataflow": r["dataflow"],
                "source": r["source_ref"],
                "target": r["target_ref"],
                "property": r["property"],
                "source_value": loads(r["source_value"]),
                "target_value": loads(r["target_value"]),
                "winner": r["winner"],
                "reason": r["reason"],
            }
            for r in rows
        ]

    def errors(self, limit: int = 100) -> list[dict[str, Any]]:
        return [
            {
                "ref": r["ref"],
                "dataflow": r["dataflow"],
                "kind": r["kind"],
                "reason": r["reason"],
                "attempts": r["attempts"],
                "last": r["last_at"],
            }
            for r in self.store.dead_letters(limit=limit)
        ]

    def retry(self, refs: list[str] | None = None) -> int:
        """Mark quarantined records (all, or ``refs``) to be planned again next run."""
        letters = self.store.dead_letters(refs=refs)
        with self.store.tx():
            marked = self.store.set_dirty(
                {r["ref"] for r in letters} | set(refs or []), refresh=True
            )
            self.store.remove_dead_letters([r["id"] for r in letters])
        return marked

    def history(self, ref: str) -> list[dict[str, Any]]:
        Ref.parse(ref)
        rows = self.store.table_rows(s.audit, where=s.audit.c.ref == ref, order=s.audit.c.id)
        return [
            {
                "at": r["at"],
                "run": r["run_id"],
                "op": r["op"],
                "dataflow": r["dataflow"],
                "before": loads(r["before"]),
                "after": loads(r["after"]),
            }
            for r in rows
        ]


def _totals(stats: dict[str, Any]) -> dict[str, Any]:
    keys = ("created", "updated", "deleted", "linked", "conflicts", "errors", "api_calls")
    return {k: stats.get(k, 0) for k in keys}


def _reason(status: str, stats: dict[str, Any]) -> str | None:
    """Why a run did not end ``ok``: its messages, or what became of a process that
    ended without finishing its run."""
    if status in ("ok", "dry-run", "running"):
        return None
    messages = [str(m) for m in stats.get("messages") or []]
    if messages:
        return "; ".join(messages)
    if status == "interrupted":
        return "the process ended without finishing the run (killed, or the machine restarted)"
    return None


def _safe_store(url: str) -> str:
    from samband.store.store import redact_url

    return redact_url(url)
