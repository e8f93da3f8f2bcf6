"""The engine's stateful convergence machines, ``SyncMachine`` and ``WideSyncMachine``.

Run by tests/engine/test_convergence.py and, with a real connector in the place of a
memory system, by the kinds' convergence tests.

Hypothesis stateful test of the engine's guarantees (DESIGN.md "Guarantees").

Random creates, edits (conflicting ones included), deletes and crashes at any point
inside apply (then a new engine on the same store), interleaved with runs.  After every
quiescent run: every link agrees on every mapped property, no source record has two
counterparts in a target type, no record we created is orphaned or duplicated, every
edit is present or recorded as a lost conflict, and a second run writes nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from samband.engine.inspect import Inspector
from samband.engine.model import normalize
from samband.engine.run import Engine
from samband.errors import CircuitBreakerTripped, RecordError, TransientError
from samband.store import Ref, schema
from tests.support.convergence import (
    EDITABLE,
    EDITABLE_WIDE,
    Edit,
    EditDuringTheRun,
    MemoryWorld,
    SimulatedCrash,
    Variant,
    World,
    check_agreement,
    check_edits,
    check_no_duplicates,
    check_orphans,
    wide_flows,
)

ORGS = ["911111111", "922222222", "933333333", "944444444", "955555555"]
EMAILS = ["a@x.no", "b@x.no", "c@x.no", "d@x.nl"]
WORDS = st.sampled_from(["Acme", "Nordlys", "Fjord", "Brug", "Tulp", "Vik"])
STAMPED = {("erp", "Org"): "ext", ("pms", "Account"): "ext", ("pms", "Client"): "ext"}


class SyncMachine(RuleBasedStateMachine):
    store_url: str = "sqlite:///:memory:"
    world_factory: Any = MemoryWorld
    editable: dict[tuple[str, str], list[str]] = EDITABLE

    def __init__(self) -> None:
        super().__init__()
        self.world: World = self.world_factory()
        self.config = self.make_config()
        self.engine = Engine(self.config, connectors=self.world.connectors())
        self.edits: list[Edit] = []
        self.counter = itertools.count(1)

    def make_config(self) -> Any:
        return self.world.config(self.store_url)

    def value_for(self, path: str, data: st.DataObject, name: str) -> Any:
        """The value an edit of ``path`` writes (None or "" are not checked as edits)."""
        return self.unique(name)

    def _sync(self, **options: Any) -> Any:
        """A run; when the circuit breaker refuses it, the user looks and forces it."""
        try:
            return self.engine.sync(**options)
        except CircuitBreakerTripped:
            return self.engine.sync(force=True, **options)

    def unique(self, word: str) -> str:
        return f"{word}-{next(self.counter)}"

    def teardown(self) -> None:
        self.engine.close()

    # -- outside changes ---------------------------------------------------------------
    @initialize(org=st.sampled_from(ORGS), name=WORDS)
    def seed(self, org: str, name: str) -> None:
        self.world.insert(
            "crm",
            "Company",
            {
                "name": self.unique(name),
                "org": org,
                "phone": "+47 22 33 44 55",
                "address": {"city": "Oslo"},
            },
        )
        self.world.insert(
            "erp", "Org", {"title": self.unique(name), "org_no": org, "tel": "22334455"}
        )

    @rule(system=st.sampled_from(["crm", "erp", "pms"]), org=st.sampled_from(ORGS), name=WORDS)
    def create_organisation(self, system: str, org: str, name: str) -> None:
        if system == "crm":
            self.world.insert(
                "crm",
                "Company",
                {"name": self.unique(name), "org": org, "address": {"city": "Bergen"}},
            )
        elif system == "erp":
            self.world.insert("erp", "Org", {"title": self.unique(name), "org_no": org})
        else:
            self.world.insert("pms", "Account", {"name": self.unique(name), "org_no": org})

    @rule(data=st.data(), email=st.sampled_from(EMAILS), name=WORDS)
    def create_person(self, data: st.DataObject, email: str, name: str) -> None:
        companies = self.world.records("crm", "Company")
        company = data.draw(st.sampled_from([None, *sorted(companies)])) if companies else None
        self.world.insert(
            "crm",
            "Person",
            {
                "first": self.unique(name),
                "email": email,
                # the company's id as the CRM holds it (a number, or "007")
                "company_id": companies[company].get("id", int(company)) if company else None,
            },
        )

    @rule(name=WORDS, code=st.sampled_from(["D1", "D2", "D3"]))
    def create_dept(self, name: str, code: str) -> None:
        self.world.insert("crm", "Dept", {"label": self.unique(name), "code": code})

    @rule(data=st.data(), name=WORDS)
    def edit(self, data: st.DataObject, name: str) -> None:
        key = data.draw(st.sampled_from(sorted(self.editable)))
        records = sorted(self.world.records(*key))
        if not records:
            return
        rid = data.draw(st.sampled_from(records))
        path = data.draw(st.sampled_from(self.editable[key]))
        value = self.value_for(path, data, name)
        self.world.edit(key[0], key[1], rid, {path: value})
        self._supersede(key, rid, path)
        if value not in (None, ""):
            self.edits.append(Edit(key[0], key[1], rid, path, value))

    def _supersede(self, key: tuple[str, str], rid: str, path: str) -> None:
        """A later edit supersedes earlier ones of the same field, and — since an earlier
        edit may have been synced by a run that crashed afterwards — of its link group."""
        group = self._link_group(Ref.text(key[0], key[1], rid))
        self.edits = [
            e
            for e in self.edits
            if (e.system, e.etype, e.rid, e.path) != (*key, rid, path)
            and Ref.text(e.system, e.etype, e.rid) not in group
        ]

    def _link_group(self, ref: str) -> set[str]:
        """The records linked with ``ref``: by the store's links, and by the external
        reference a create stamped (a run that crashed after the create and before it
        stored the link has already synced the source's values into the new record)."""
        store = self.engine.store()
        stamped: dict[str, set[str]] = {}
        for system, etype in self.editable:
            for rid, record in self.world.records(system, etype).items():
                if record.get("ext"):
                    created = Ref.text(system, etype, rid)
                    stamped.setdefault(str(record["ext"]), set()).add(created)
                    stamped.setdefault(created, set()).add(str(record["ext"]))
        seen, frontier = {ref}, [ref]
        while frontier:
            following = []
            links = store.links_touching(frontier)
            neighbours = [r for link in links for r in (link.source_ref, link.target_ref)]
            neighbours += [r for current in frontier for r in stamped.get(current, ())]
            for other in neighbours:
                if other not in seen:
                    seen.add(other)
                    following.append(other)
            frontier = following
        return seen

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.editable)))
        records = sorted(self.world.records(*key))
        if records:
            self.world.delete(key[0], key[1], data.draw(st.sampled_from(records)))

    # -- runs ----------------------------------------------------------------------------
    @rule()
    def run(self) -> None:
        self._sync()
        self._check_edits()

    @rule(
        system=st.sampled_from(["erp", "pms", "pms", "crm"]),
        op=st.sampled_from(["create", "after_create", "after_create", "update", "read", "get"]),
    )
    def crash_then_restart(self, system: str, op: str) -> None:
        self.world.crash_on(system, op)
        try:
            self._sync()
        except SimulatedCrash:
            pass
        else:  # the crash point was not reached: a complete run
            self._check_edits()
        self.engine.close()
        self.engine = Engine(self.config, connectors=self.world.connectors())
        _clear_failures(system)

    @rule()
    def quiesce(self) -> None:
        self._before_quiet_runs()
        first = self._sync()
        assert first.status == "ok", first.messages
        self._check_edits()
        self._after_first_quiet_run()
        second = self.engine.sync()
        assert second.writes == 0, f"a quiescent run wrote: {second.to_dict()['dataflows']}"
        store = self.engine.store()
        problems = (
            check_agreement(self.world, store, self.config)
            + check_no_duplicates(store, self.config)
            + check_orphans(self.world, store, self.config, STAMPED)
        )
        assert not problems, "\n".join(problems)

    def _before_quiet_runs(self) -> None:
        """What the world settles before the quiescent runs (nothing here)."""

    def _after_first_quiet_run(self) -> None:
        """What is checked once the first quiescent run is done (nothing here)."""

    def _check_edits(self) -> None:
        problems = check_edits(self.world, self.engine.store(), self.edits)
        assert not problems, "\n".join(problems)
        self.edits = []

    @invariant()
    def no_duplicate_links(self) -> None:
        problems = check_no_duplicates(self.engine.store(), self.config)
        assert not problems, "\n".join(problems)


# Hard values of every class (issue 17): Unicode variants of one name, decimals with more
# digits than a double holds, integers past 64 bits, blanks.
HARD_WORDS = st.sampled_from(["Müller", "Mu\u0308ller", "Ｆｊｏｒｄ", "Zero\u200bWidth", "Tromsø"])
HARD_DECIMALS = st.sampled_from(
    ["0.1", "0.10", "12345678901234567.89", "-0.000001", "1E+3", "98765432109876543.21"]
)
HARD_INTEGERS = st.sampled_from([2**70, -(2**65), 0, 7])
BLANKS = st.sampled_from(["", None])
ORG_VARIANTS = st.sampled_from([*ORGS, "９１１１１１１１１", "922\u200b222222", " 933 333 333 "])
CODES = st.sampled_from(["D1", "d1", " D2", "D3 "])


class WideSyncMachine(SyncMachine):
    """The machine over the wide dataflows (tests/support/convergence.py ``wide_flows``), with
    what a user's world adds: the config changed between runs, edits made while a run is
    under way, writes that fail (transiently or refused) and ``samband retry``, values of
    every hard class, references to the own type (self and cycles), records deleted and
    entered again."""

    editable = EDITABLE_WIDE

    def __init__(self) -> None:
        self.variant = Variant()
        self.reentered: list[tuple[str, str]] = []
        super().__init__()

    def make_config(self) -> Any:
        return self.world.config(self.store_url, wide_flows(self.variant))

    # -- values of every hard class ----------------------------------------------------
    def value_for(self, path: str, data: st.DataObject, name: str) -> Any:
        if path == "amount":
            return data.draw(st.one_of(HARD_DECIMALS, BLANKS))
        if path == "count":
            return data.draw(HARD_INTEGERS) + next(self.counter)
        if data.draw(st.integers(0, 4)) == 0:
            return data.draw(BLANKS)
        return self.unique(data.draw(st.one_of(WORDS, HARD_WORDS)))

    @rule(org=ORG_VARIANTS, name=HARD_WORDS, amount=HARD_DECIMALS, zeros=st.booleans())
    def create_company(self, org: str, name: str, amount: str, zeros: bool) -> None:
        """A company with hard values; with ``zeros`` its id has leading zeros ("007")."""
        data: dict[str, Any] = {
            "name": self.unique(name),
            "org": org,
            "amount": amount,
            "count": 2**70 + next(self.counter),
        }
        if zeros:
            data["id"] = f"00{next(self.counter)}"
        self.world.insert("crm", "Company", data)

    @rule(name=WORDS, code=CODES)
    def create_dept_variant(self, name: str, code: str) -> None:
        self.world.insert("crm", "Dept", {"label": self.unique(name), "code": code})

    # -- self and cyclic references ------------------------------------------------------
    @rule(data=st.data())
    def bill(self, data: st.DataObject) -> None:
        """A company billed to itself or to another (cycles follow)."""
        companies = self.world.records("crm", "Company")
        if not companies:
            return
        rid = data.draw(st.sampled_from(sorted(companies)))
        payer = data.draw(st.sampled_from([rid, *sorted(companies)]))
        self.world.edit("crm", "Company", rid, {"billed_to": companies[payer].get("id", payer)})

    @rule(data=st.data())
    def bill_in_erp(self, data: st.DataObject) -> None:
        orgs = self.world.records("erp", "Org")
        if not orgs:
            return
        rid = data.draw(st.sampled_from(sorted(orgs)))
        payer = data.draw(st.sampled_from(sorted(orgs)))
        self.world.edit("erp", "Org", rid, {"bill_to": int(payer)})

    # -- delete and enter again ----------------------------------------------------------
    @rule(data=st.data())
    def reenter(self, data: st.DataObject) -> None:
        """A company deleted and entered again (a new id) before the next run."""
        companies = self.world.records("crm", "Company")
        if not companies:
            return
        rid = data.draw(st.sampled_from(sorted(companies)))
        record = dict(companies[rid])
        self.world.delete("crm", "Company", rid)
        record.pop("id", None)
        record.pop("updated_at", None)
        new = self.world.insert("crm", "Company", record)
        old = f"crm:Company:{rid}"
        links = self.engine.store().links_by("F1", "source", [old])
        org = normalize(record.get("org"), "orgno")
        same_org = [
            r
            for r in self.world.records("erp", "Org").values()
            if normalize(r.get("org_no"), "orgno") == org
        ]
        twins = [
            c
            for c in self.world.records("crm", "Company").values()
            if normalize(c.get("org"), "orgno") == org
        ]
        if old in links and org and len(same_org) == 1 and len(twins) == 1:
            self.reentered.append((Ref.text("crm", "Company", new), links[old].target_ref))

    def _check_reentered(self) -> None:
        store = self.engine.store()
        for new, target in self.reentered:
            system, etype, rid = Ref.parse(target)
            new_rid = Ref.parse(new).id
            if rid not in self.world.records(system, etype):
                continue
            if new_rid not in self.world.records("crm", "Company"):
                continue
            linked = store.links_by("F1", "source", [new])
            assert new in linked and linked[new].target_ref == target, (
                f"{new} (entered again) is not linked to {target}, the target of the record "
                f"it replaces: {linked}"
            )
        self.reentered = []

    # -- writes that fail, and retry -----------------------------------------------------
    @rule(
        system=st.sampled_from(["crm", "erp", "pms"]),
        op=st.sampled_from(["update", "create"]),
        refused=st.booleans(),
        times=st.integers(1, 3),
    )
    def fail_writes(self, system: str, op: str, refused: bool, times: int) -> None:
        for _ in range(1 if refused else times):
            exc = RecordError("refused by the test") if refused else TransientError("timed out")
            self.world.fail_on(system, op, exc)

    @rule()
    def retry(self) -> None:
        with Inspector(self.config) as inspector:
            inspector.retry()

    # -- an edit made while a run is under way ---------------------------------------------
    @rule(data=st.data(), name=WORDS)
    def run_with_an_edit_during_it(self, data: st.DataObject, name: str) -> None:
        key = data.draw(st.sampled_from(sorted(self.editable)))
        records = sorted(self.world.records(*key))
        if not records:
            return
        rid = data.draw(st.sampled_from(records))
        path = data.draw(st.sampled_from(self.editable[key]))
        value = self.value_for(path, data, name)
        self._supersede(key, rid, path)  # by the edit the run is about to meet
        self._sync(progress=EditDuringTheRun(lambda: self.world.edit(*key, rid, {path: value})))
        self._check_edits()
        if value not in (None, ""):
            self.edits.append(Edit(key[0], key[1], rid, path, value))  # synced by the next run

    # -- config changes between runs -------------------------------------------------------
    @rule(
        f5_key=st.sampled_from(["F5", "F5-renamed", None]),
        f1_phone=st.booleans(),
        f2_normalize=st.sampled_from(["trim", "none"]),
        f1_by_name=st.booleans(),
    )
    def change_config(
        self, f5_key: str | None, f1_phone: bool, f2_normalize: str, f1_by_name: bool
    ) -> None:
        self.variant = Variant(f5_key, f1_phone, f2_normalize, f1_by_name)
        self.engine.close()
        self.config = self.make_config()
        self.engine = Engine(self.config, connectors=self.world.connectors())

    # -- a dry run changes nothing anywhere ------------------------------------------------
    @rule()
    def dry_run(self) -> None:
        before = self._everything()
        report = self.engine.sync(dry_run=True)
        assert report.status == "dry-run", report.messages
        assert self._everything() == before, "a dry run changed a system or the store"

    def _everything(self) -> Any:
        store = self.engine.store()
        tables = (schema.links, schema.snapshots, schema.dirty, schema.cursors, schema.intents)
        return (
            {key: self.world.records(*key) for key in sorted(self.editable)},
            [store.table_rows(t) for t in tables],
        )

    def _before_quiet_runs(self) -> None:
        # the user has fixed what was refused, and retries it
        self.world.clear_failures()
        self.retry()

    def _after_first_quiet_run(self) -> None:
        self._check_reentered()


def _clear_failures(system: str) -> None:
    from samband.kinds.memory.connector import dataset

    dataset(system).failures.clear()
