"""What a user does about what a run showed, applied by the next run: a conflict resolved
for one side, a quarantined record dismissed, a wrong link undone, two records linked by
hand, an entity type read again from the start.  Each is recorded in the audit trail
(``samband history REF``) and takes effect in one store transaction.

* **resolve** — the chosen side's value of the conflict is written to both records by
  the next run (see :func:`samband.engine.plan.apply_resolution`), whatever the other
  side holds then;
* **dismiss** — the record leaves ``samband errors`` and ``samband retry``; it is
  planned again only when it changes (and shown again if it fails again);
* **unlink** — "these are not the same thing": the pairs are never linked again, by any
  way (merge criteria, external reference, link group).  Each source is *held*: the runs
  neither link it nor create a counterpart for it until the user decides — ``samband link``
  it to the right record, or ``samband retry`` it to let the next run create one;
* **link** — two records become one link group, linked in every dataflow between their
  types.  The next run plans them as just linked: the values of the first record (if it
  is a dataflow's source; else of the first dataflow's source) fill the other, a value
  only the other has flows back; neither is created again;
* **resync** — one entity type is read from the start by the next run (with deletion
  detection); unchanged records are not changes, so nothing is created twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from samband.config.model import Config
from samband.engine.leases import RUN_LEASE
from samband.errors import RunLocked, SambandError
from samband.store.rows import AuditRow, LinkRow, Ref, loads, now_iso
from samband.store.store import Store

SIDES = ("source", "target")


class ActionError(SambandError):
    """An action that cannot be done as asked (an unknown id, a record not linked)."""


class NoSuch(ActionError):
    """An action on something that does not exist (a conflict id, a quarantined record)."""


@dataclass(frozen=True)
class Done:
    """What an action did, for the CLI and scripts."""

    action: str
    refs: list[str]
    detail: dict[str, Any]
    next_step: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "refs": self.refs,
            **self.detail,
            "next": self.next_step,
        }


class Actions:
    """The actions on one store for one config."""

    def __init__(self, config: Config, store: Store, actor: str | None = None) -> None:
        self.config, self.store = config, store
        # who acts, recorded in history: the OS user at the CLI, the logged-in user in
        # `samband serve`
        self.actor = actor

    def _by(self, after: dict[str, Any]) -> dict[str, Any]:
        return after | {"by": self.actor} if self.actor else after

    # -- conflicts ---------------------------------------------------------------------
    def resolve_conflict(self, conflict_id: int, take: str) -> Done:
        if take not in SIDES:
            raise ActionError(f"--take {take!r}: take source or target")
        row = self.store.journal.conflict(conflict_id)
        if row is None:
            raise NoSuch(
                f"there is no conflict {conflict_id}; `samband conflicts` lists them with ids"
            )
        links = self.store.links_by(row["dataflow"], "source", [row["source_ref"]])
        link = links.get(row["source_ref"])
        if link is None or link.target_ref != row["target_ref"]:
            raise ActionError(
                f"conflict {conflict_id}: {row['source_ref']} and {row['target_ref']} are not "
                "linked any more; there is nothing to apply it to"
            )
        value = loads(row[f"{take}_value"])
        self._idle()
        with self.store.tx():
            self.store.journal.resolve_conflict(conflict_id, take)
            self.store.set_dirty([row["source_ref"], row["target_ref"]])
            self.store.add_audit(
                AuditRow.new(
                    None,
                    ref,
                    row["dataflow"],
                    "resolve",
                    {"property": row["property"]}
                    | {side: loads(row[f"{side}_value"]) for side in SIDES},
                    self._by({"conflict": conflict_id, "take": take, row["property"]: value}),
                )
                for ref in (row["source_ref"], row["target_ref"])
            )
        return Done(
            "resolve",
            [row["source_ref"], row["target_ref"]],
            {"conflict": conflict_id, "property": row["property"], "take": take, "value": value},
            "run `samband sync`: it writes the value to both records",
        )

    # -- quarantined records ---------------------------------------------------------------
    def dismiss(self, ref: str) -> Done:
        Ref.parse(ref)
        letters = self.store.dead_letters(refs=[ref])
        if not letters:
            raise NoSuch(f"{ref} is not quarantined; `samband errors` lists those that are")
        self._idle()
        with self.store.tx():
            self.store.journal.dismiss_dead_letters([r["id"] for r in letters])
            self.store.add_audit(
                AuditRow.new(
                    None,
                    ref,
                    r["dataflow"],
                    "dismiss",
                    {"kind": r["kind"], "reason": r["reason"]},
                    self._by({"dismissed": True}),
                )
                for r in letters
            )
        return Done(
            "dismiss",
            [ref],
            {"dataflows": sorted({r["dataflow"] for r in letters})},
            "nothing: it is not retried, and is planned again only when it changes",
        )

    # -- links -------------------------------------------------------------------------
    def unlink(self, ref: str) -> Done:
        Ref.parse(ref)
        links = self.store.links_touching([ref])
        if not links:
            raise ActionError(f"{ref} is not linked to anything; `samband links {ref}` shows so")
        self._idle()
        with self.store.tx():
            self.store.delete_links([link.id for link in links])
            for link in links:
                self.store.unlinked.add(link.dataflow, link.source_ref, link.target_ref)
                self.store.add_dead_letter(
                    link.source_ref,
                    link.dataflow,
                    "unlinked",
                    f"unlinked by hand from {link.target_ref}: it is neither linked nor "
                    f"created until you decide. `samband link {link.source_ref} REF` links it "
                    f"to its counterpart; `samband retry {link.source_ref}` lets the next run "
                    "create one",
                    {"unlinked_from": link.target_ref},
                    None,
                )
                self.store.add_audit(
                    AuditRow.new(
                        None,
                        member,
                        link.dataflow,
                        "unlink",
                        {"linked_to": other},
                        self._by({"reason": "unlinked by hand (samband unlink)"}),
                    )
                    for member, other in (
                        (link.source_ref, link.target_ref),
                        (link.target_ref, link.source_ref),
                    )
                )
        pairs = [
            {"dataflow": lk.dataflow, "source": lk.source_ref, "target": lk.target_ref}
            for lk in links
        ]
        return Done(
            "unlink",
            [ref],
            {"unlinked": pairs},
            "`samband link` the records to their counterparts, or `samband retry` them to "
            "have counterparts created; no run links these pairs again",
        )

    def link(self, first: str, second: str) -> Done:
        a, b = Ref.parse(first), Ref.parse(second)
        flows = []
        for flow in self.config.dataflows:
            source = (flow.source_system, flow.source_type)
            target = (flow.target_system, flow.target_type)
            if (source, target) == ((a.system, a.etype), (b.system, b.etype)):
                flows.append((flow.key, first, second))
            elif (source, target) == ((b.system, b.etype), (a.system, a.etype)):
                flows.append((flow.key, second, first))
        if not flows:
            raise ActionError(
                f"no dataflow connects {a.system}.{a.etype} and {b.system}.{b.etype}; "
                "only records of a dataflow's source and target types can be linked"
            )
        for ref in (first, second):
            snap = self.store.snapshot(ref)
            if snap is None or snap.deleted:
                raise ActionError(
                    f"{ref} is not a record the store has read (or it was deleted); check the "
                    "id, or run `samband sync` first"
                )
        for key, source_ref, target_ref in flows:
            for side, ref in (("source", source_ref), ("target", target_ref)):
                existing = self.store.links_by(key, side, [ref]).get(ref)
                if existing is not None:
                    if (existing.source_ref, existing.target_ref) == (source_ref, target_ref):
                        raise ActionError(f"{first} and {second} are linked already")
                    other = existing.target_ref if side == "source" else existing.source_ref
                    raise ActionError(
                        f"{ref} is linked to {other} in dataflow {key}; "
                        f"`samband unlink {ref}` first"
                    )
        # The dataflow whose source is the first ref (else the first one) plans the pair
        # as just linked: its source's values fill the target.  A dataflow the other way
        # is linked "manual-reverse": its plan takes its own source's values as the agreed
        # ones, so it copies the same values the same way (see Apply.pair) instead of its
        # source's over the other.
        primary = next((f for f in flows if f[1] == first), flows[0])
        _key, winner, other = primary
        now = now_iso()
        self._idle()
        with self.store.tx():
            self.store.add_links(
                LinkRow.new(
                    key,
                    source_ref,
                    target_ref,
                    {},
                    "manual" if (key, source_ref) == primary[:2] else "manual-reverse",
                    None,
                    now,
                )
                for key, source_ref, target_ref in flows
            )
            for key, source_ref, target_ref in flows:
                self.store.unlinked.remove(key, source_ref, target_ref)
                self.store.resolve_dead_letters([source_ref], key)
                self.store.add_audit(
                    AuditRow.new(
                        None,
                        member,
                        key,
                        "link",
                        None,
                        self._by({"linked_to": linked, "how": "by hand"}),
                    )
                    for member, linked in ((source_ref, target_ref), (target_ref, source_ref))
                )
            self.store.set_dirty([first, second])
        return Done(
            "link",
            [first, second],
            {"dataflows": [f[0] for f in flows]},
            f"run `samband sync`: {winner}'s values fill {other} (a value only {other} has "
            "flows back)",
        )

    # -- entity types -----------------------------------------------------------------------
    def resync(self, system: str, etype: str) -> Done:
        in_use = {
            pair
            for flow in self.config.dataflows
            for pair in (
                (flow.source_system, flow.source_type),
                (flow.target_system, flow.target_type),
            )
        }
        if (system, etype) not in in_use:
            used = ", ".join(sorted(f"{s}.{t}" for s, t in in_use))
            raise ActionError(f"{system}.{etype} is in no dataflow; types in use: {used}")
        _cursor, fields = self.store.get_cursor(system, etype)
        self._idle()
        with self.store.tx():
            self.store.set_cursor(system, etype, None, fields or "")
            self.store.add_audit(
                [
                    AuditRow.new(
                        None, f"{system}:{etype}:*", "", "resync", None, self._by({"cursor": None})
                    )
                ]
            )
        return Done(
            "resync",
            [f"{system}:{etype}:*"],
            {"type": f"{system}.{etype}"},
            "run `samband sync`: it reads every record of the type again (unchanged ones "
            "are not changes; records gone are seen as deleted)",
        )

    def _idle(self) -> None:
        """Refuse while a run holds the store: the run would not see the change whole."""
        holder = self.store.lease_holder(RUN_LEASE)
        if holder is not None and holder[1] > now_iso():
            raise RunLocked(
                f"a samband run ({holder[0]}) is using this store until {holder[1]}; act "
                "when it is done"
            )
