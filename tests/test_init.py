"""`samband init KIND...`: a starter config that validates for every kind and pair, never
overwrites a file unasked, and with --sandbox works against the sandboxes at once."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

import samband
from samband.check import check_config
from samband.cli import app
from samband.config.starter import StarterError, starter_text, write_starter
from samband.demo import token_key
from samband.engine.run import Engine
from samband.plugin import get_kind, kind_names
from tests.support.sandbox import serve

KINDS = [k for k in kind_names() if get_kind(k).starter is not None]
PAIRS = [
    *itertools.permutations(["poweroffice-go", "sql", "webcrm", "rest"], 2),
    ("crmoffice", "poweroffice-go"),
    ("exact-online", "sql"),
    ("sql", "sql"),
    ("rest", "webcrm", "sql"),
]


def test_every_kind_but_the_test_kinds_has_a_starter() -> None:
    assert set(KINDS) == {"crmoffice", "exact-online", "poweroffice-go", "rest", "sql", "webcrm"}


@pytest.mark.parametrize("sandbox", [False, True], ids=["production", "sandbox"])
@pytest.mark.parametrize("kinds", [(k,) for k in KINDS] + PAIRS, ids="+".join)
def test_the_starter_validates(
    kinds: tuple[str, ...], sandbox: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PMS_URL", "PMS2_URL"):
        monkeypatch.setenv(name, f"sqlite:///{tmp_path / 'pms.db'}")
    (tmp_path / "pms.db").write_bytes(b"")
    written = write_starter(tmp_path / "samband.yaml", kinds, sandbox=sandbox)
    problems = samband.validate(written.path)
    errors = [str(p) for p in problems if p.severity == "error"]
    assert errors == []
    if sandbox:  # everything it needs has a default: nothing to export first
        assert [str(p) for p in problems] == []
        assert "${" in written.path.read_text(encoding="utf-8")


def test_it_never_overwrites_unasked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("samband.yaml").write_text("mine\n", encoding="utf-8")
    runner = CliRunner()
    refused = runner.invoke(app, ["init", "rest"])
    assert refused.exit_code == 2
    assert "samband.yaml exists; pass --force" in refused.output
    assert Path("samband.yaml").read_text(encoding="utf-8") == "mine\n"
    forced = runner.invoke(app, ["init", "rest", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "kind: rest" in Path("samband.yaml").read_text(encoding="utf-8")


def test_an_unknown_kind_is_named_with_the_closest(tmp_path: Path) -> None:
    with pytest.raises(StarterError, match="unknown kind 'poweroffice'; did you mean"):
        starter_text(["poweroffice"])
    assert not (tmp_path / "samband.yaml").exists()


def test_sandbox_starter_checks_and_syncs_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init poweroffice-go sql --sandbox`, the sandbox started, `check` and `sync` with
    nothing exported (the port aside: tests cannot rely on the default one)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["init", "poweroffice-go", "sql", "--sandbox"])
    assert result.exit_code == 0, result.output
    assert "samband sandbox poweroffice-go --port 8082" in result.output
    assert (tmp_path / "pms.db").is_file()  # the local database, with its tables
    text = (tmp_path / "samband.yaml").read_text(encoding="utf-8")
    assert "http://127.0.0.1:8082/v2" in text
    box = get_kind("poweroffice-go").create_sandbox()
    box.seed(4, 1)
    server = serve(box)
    try:
        environ = {"POWEROFFICE_BASE_URL": server.url + "/v2"}
        with token_key():
            report = check_config(tmp_path / "samband.yaml", environ=environ)
            assert report.ok, report.as_dict()
            with Engine.from_file(tmp_path / "samband.yaml", environ=environ) as engine:
                summary = engine.sync().to_dict()
    finally:
        server.stop()
    assert summary["created"] == len(box.records("Customers")) > 0, summary
