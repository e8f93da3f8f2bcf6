"""Every command, run as a user runs it (a real process), against each failure a user can
cause or meet: it ends in one line that says what and what to do, with exit code 1 (2
for a config or a usage error), never in a traceback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import run

MEMORY = """
store: {store}
systems:
  crm: {{kind: memory, path: crm.json, entity_types: {{Customer: {{}}}}}}
  erp: {{kind: memory, path: erp.json, entity_types: {{Account: {{external_ref: ext}}}}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{{from: name, to: name, type: string}}]
"""

REST_UNKNOWN_TYPE = """
store: sqlite:///state.db
systems:
  crm:
    kind: rest
    base_url: http://127.0.0.1:9
    auth: none
    entity_types: {Customer: {path: customers, properties: {name: strnig}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
"""

# commands that open the store (`qa` keeps a store of its own, next to its report), the
# ones that compile the dataflows, and the ones that take a record ref
USES_STORE = {
    "sync",
    "run",
    "worker",
    "status",
    "links",
    "conflicts",
    "errors",
    "retry",
    "history",
    "unlink",
    "link",
    "resync",
    "backup",
    "records",
    "systems",
    "dataflow",
}
COMPILES = {"sync", "run", "worker", "qa"}
TAKES_REF = {"links", "history", "retry", "unlink", "link"}
# `demo` uses no config and no store (it starts its own sandboxes in a folder of its own);
# it is left out for its running time, not for its behaviour.  `serve` runs until stopped
# and reports a store it cannot use on /readyz, not by ending
# `hash-password` reads a password with getpass, whose own warnings (no terminal) come
# before its one line
NOT_RUN = {"demo", "serve", "hash-password"}


def commands(port: int, ref: str = "crm:Customer:1") -> dict[str, list[str]]:
    """Every command of `samband --help`, with the arguments it needs."""
    config = ["-c", "samband.yaml"]
    return {
        "validate": ["validate", *config],
        "check": ["check", *config],
        # over an existing file: refused (a file stands where its folder would be: too)
        "init": ["init", "sql", "-o", "samband.yaml"],
        "sync": ["sync", *config],
        "run": ["run", *config, "--every", "1s"],
        "worker": ["worker", *config, "--every", "1s"],
        "status": ["status", *config],
        "links": ["links", ref, *config],
        "conflicts": ["conflicts", *config],
        "errors": ["errors", *config],
        "retry": ["retry", ref, *config],
        "history": ["history", ref, *config],
        "records": ["records", "find", ref, *config],
        "systems": ["systems", *config],
        "dataflow": ["dataflow", "pause", "crm.Customer->erp.Account", *config],
        "unlink": ["unlink", ref, *config],
        "link": ["link", ref, "erp:Account:1", *config],
        "resync": ["resync", "crm.Customer", *config],
        "backup": ["backup", *config],
        "restore": ["restore", "no-such-backup", *config],
        "sandbox": ["sandbox", "rest", "--port", str(port)],
        "auth": ["auth", "exact-online", "crm", *config, "--no-browser"],
        "qa": ["qa", *config, "-o", "qa-report"],
        "docs": ["docs", *config, "-o", "documents"],
        "sql": ["sql", "install-tracking", "crm.Customer", *config],
        # a queue that does not answer (nothing listens on port 9)
        "tenants": ["tenants", "run-all", "--queue", "postgresql://samband@127.0.0.1:9/q"],
    }


@dataclass
class Situation:
    name: str
    config: str
    ref: str = "crm:Customer:1"
    damage_store: bool = False


SITUATIONS = [
    Situation("damaged state.db", MEMORY.format(store="sqlite:///state.db"), damage_store=True),
    # the store's folder cannot be made: a file stands where it would be
    Situation("store in an unwritable place", MEMORY.format(store="sqlite:///afile/state.db")),
    Situation("malformed ref", MEMORY.format(store="sqlite:///state.db"), ref="bogus"),
    Situation("REST property of an unknown type", REST_UNKNOWN_TYPE),
]


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port something else listens on: every `samband sandbox` here meets it in use."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_every_command_of_the_help_is_covered(busy_port: int, tmp_path: Path) -> None:
    shown = run(["--help"], tmp_path, {"COLUMNS": "200"})
    listed = set(re.findall(r"^│ (\w[\w-]*)\s", shown.stdout, re.MULTILINE))
    listed -= {"-", "--help"}
    assert listed, shown.stdout
    assert listed - NOT_RUN == set(commands(busy_port)), listed


def expected_codes(command: str, situation: Situation) -> set[int]:
    if command == "sandbox":
        return {1}  # the port is in use in every situation
    if situation.ref == "bogus":
        return {2} if command in TAKES_REF else {0, 1, 2}
    if situation.name.startswith("REST"):
        if command in COMPILES:
            return {2}
        return {0, 1, 2}
    if command in USES_STORE:
        return {1}
    return {0, 1, 2}


def _prepare(folder: Path, situation: Situation) -> None:
    (folder / "samband.yaml").write_text(situation.config)
    (folder / "afile").write_text("a file, not a folder\n")
    if situation.damage_store:
        (folder / "state.db").write_bytes(b"not a database, it was overwritten\n" * 50)


def _run_all(
    folder: Path, situation: Situation, port: int
) -> dict[str, subprocess.CompletedProcess[str]]:
    todo = {name: args for name, args in commands(port, situation.ref).items()}
    if situation.ref == "bogus":
        todo = {name: args for name, args in todo.items() if name in TAKES_REF}
    env = {"SAMBAND_CRASH_DIR": str(folder / "crashes")}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(run, args, folder, env) for name, args in todo.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda s: s.name)
def test_every_command_ends_in_one_line(
    situation: Situation, busy_port: int, tmp_path: Path
) -> None:
    _prepare(tmp_path, situation)
    results = _run_all(tmp_path, situation, busy_port)
    wrong = []
    for name, result in results.items():
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        problems = []
        if "Traceback" in result.stderr or "Traceback" in result.stdout:
            problems.append("a traceback")
        if result.returncode not in expected_codes(name, situation):
            problems.append(f"exit {result.returncode}")
        if result.returncode != 0 and len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr")
        if "failed unexpectedly" in result.stderr:
            problems.append("the last-resort handler")
        if problems:
            wrong.append(f"{name}: {', '.join(problems)}: {result.stderr!r}")
    assert not wrong, "\n".join(wrong)
    assert not (tmp_path / "crashes").exists()


def test_an_unexpected_error_is_one_line_and_the_traceback_goes_to_a_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "samband.yaml").write_text(MEMORY.format(store="sqlite:///state.db"))
    (tmp_path / "crm.json").write_text(
        '{"version": 1, "types": {"Customer": {"1": {"data": {"name": "A"}, "version": 1,'
        ' "modified": "2026-01-01T00:00:00+00:00"}}}}'
    )
    crashes = tmp_path / "crashes"
    # a defect: an error no code expects, raised where a create has returned
    env = {"SAMBAND_CRASH_DIR": str(crashes), "SAMBAND_FAIL_AT": "create:1"}
    result = run(["sync", "-c", "samband.yaml"], tmp_path, env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: samband sync failed unexpectedly: InjectedDefect: ")
    (saved,) = crashes.iterdir()
    assert str(saved) in line
    assert "Traceback" in saved.read_text()
    # with -vv the traceback is in the log too; still never on the terminal by default
    for made in ("state.db", "erp.json"):
        (tmp_path / made).unlink()
    verbose = run(["-vv", "sync", "-c", "samband.yaml"], tmp_path, env)
    assert "InjectedDefect" in verbose.stderr


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A folder on a file system mounted read-only, holding a store made before (needs the
    right to mount: skipped without it)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a file system here: {mounted.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_store_on_a_read_only_file_system(read_only_mount: Path, tmp_path: Path) -> None:
    (tmp_path / "samband.yaml").write_text(
        MEMORY.format(store=f"sqlite:///{read_only_mount}/state.db")
    )
    assert run(["sync", "-c", "samband.yaml"], tmp_path).returncode == 0
    remount = ["mount", "-o", "remount,ro", str(read_only_mount)]
    assert subprocess.run(remount, capture_output=True).returncode == 0
    for command in (["sync"], ["status"], ["errors"], ["run", "--every", "1s"]):
        result = run([*command, "-c", "samband.yaml"], tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        (line,) = result.stderr.splitlines()
        assert "read-only file system" in line and "`store:`" in line, line
