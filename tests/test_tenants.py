"""Tenants: the registry, each tenant's own environment and keyring service, ``--tenant``
on the commands that take ``-c``, and ``samband tenants`` (the registry's commands)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from samband.cli import app
from samband.config.env import resolve
from samband.errors import ConnectorError
from samband.tenants import Registry, TenantError
from tests.support import tenants as t


def test_a_tenant_sees_its_own_variables_only(tmp_path: Path) -> None:
    t.make_tenant(tmp_path, "acme")
    t.make_tenant(tmp_path, "beta-co")
    (tmp_path / "acme" / ".env").write_text("# comment\nFROM_FILE=f\nTOKEN='from file'\n")
    process = {
        "SAMBAND_TENANT_ACME__TOKEN": "acme-token",
        "SAMBAND_TENANT_BETA_CO__TOKEN": "beta-token",
        "TOKEN": "the process's own",
    }
    acme = Registry(tmp_path).get("acme").environ(process)
    assert dict(acme) == {"FROM_FILE": "f", "TOKEN": "acme-token"}  # the process wins
    assert acme.keyring_service == "samband/acme"
    beta = Registry(tmp_path).get("beta-co").environ(process)
    assert dict(beta) == {"TOKEN": "beta-token"}
    # another tenant's variable, by its full name, is not there either
    with pytest.raises(ConnectorError, match="SAMBAND_TENANT_BETA_CO__TOKEN is not set"):
        resolve("${SAMBAND_TENANT_BETA_CO__TOKEN}", acme)


def test_a_tenants_keyring_entries_are_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []

    def credential(name: str, service: str = "samband") -> str | None:
        asked.append((service, name))
        return "stored" if service == "samband/acme" else None

    monkeypatch.setattr("samband.secrets.keyring_credential", credential)
    t.make_tenant(tmp_path, "acme")
    environ = Registry(tmp_path).get("acme").environ({})
    assert resolve("${API_KEY}", environ) == "stored"
    assert asked == [("samband/acme", "API_KEY")]


def test_names_and_broken_entries(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    with pytest.raises(TenantError, match="not a tenant name"):
        registry.get("../etc")
    with pytest.raises(TenantError, match="no tenant 'nope'"):
        registry.get("nope")
    t.make_tenant(tmp_path, "acme")
    (tmp_path / "acme" / ".env").write_text("NOT A LINE\n")
    with pytest.raises(TenantError, match=r"\.env:1: not VAR=value"):
        registry.get("acme").environ({})
    (tmp_path / "acme" / "tenant.yaml").write_text("every: soon\n")
    with pytest.raises(TenantError, match=r"tenant\.yaml"):
        registry.get("acme").every()


def test_a_env_file_that_is_not_utf8_is_said_with_its_line(tmp_path: Path) -> None:
    from samband.service.tenants import tenants_overview

    t.make_tenant(tmp_path, "acme")
    t.make_tenant(tmp_path, "beta")
    (tmp_path / "acme" / ".env").write_bytes(b"A=1\nTOKEN=s3cr\xff\xfet\n")
    with pytest.raises(TenantError, match=r"acme/\.env:2: not UTF-8") as refused:
        Registry(tmp_path).get("acme").environ({})
    assert "s3cr" not in str(refused.value)
    # the tenants page lists it as invalid, and the other tenant as ever
    rows = {row["name"]: row for row in tenants_overview(tmp_path)["tenants"]}
    assert not rows["acme"]["valid"] and ".env:2" in rows["acme"]["problems"][0]
    assert rows["beta"]["valid"]


def _cli(args: list[str], registry: Path, env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env={"SAMBAND_TENANTS": str(registry), **env})
    return result.exit_code, " ".join(result.output.split())


def test_tenant_option_runs_the_tenants_config_with_its_environment(tmp_path: Path) -> None:
    registry = tmp_path / "tenants"
    env = t.make_tenant(registry, "acme")
    # the process's plain CRM_URL is another company's: the tenant never reads it
    elsewhere = {"CRM_URL": "sqlite:////nonexistent/other-company.db"}
    code, output = _cli(["sync", "--tenant", "acme", "--json"], registry, {**env, **elsewhere})
    assert code == 0, output
    assert t.converged(registry, "acme")
    code, output = _cli(["status", "--tenant", "acme"], registry, {})
    assert code == 0 and "runs" in output
    code, output = _cli(["sync", "--tenant", "acme"], registry, elsewhere)
    assert code == 1 and "CRM_URL is not set" in output


def test_tenant_option_refusals(tmp_path: Path) -> None:
    registry = tmp_path / "tenants"
    t.make_tenant(registry, "acme")
    code, output = _cli(["validate", "--tenant", "nope"], registry, {})
    assert code == 2 and "no tenant 'nope'" in output and "acme" in output
    config = str(registry / "acme" / "samband.yaml")
    code, output = _cli(["validate", "--tenant", "acme", "-c", config], registry, {})
    assert code == 2 and "not both" in output


def test_tenants_add_list_remove(tmp_path: Path) -> None:
    registry = tmp_path / "tenants"
    t.make_tenant(tmp_path / "made", "acme")
    config = str(tmp_path / "made" / "acme" / "samband.yaml")
    code, output = _cli(
        ["tenants", "add", "acme", "--config", config, "--every", "10m"], registry, {}
    )
    assert code == 0, output
    code, output = _cli(["tenants", "add", "acme", "--config", config], registry, {})
    assert code == 2 and "exists already" in output
    code, output = _cli(["tenants", "list", "--json"], registry, {})
    assert code == 0 and '"tenant": "acme"' in output and '"every": 600.0' in output
    code, output = _cli(["tenants", "remove", "acme"], registry, {})
    assert code == 0 and ".removed" in output
    assert Registry(registry).names() == []
    code, output = _cli(["tenants", "remove", "acme"], registry, {})
    assert code == 2 and "no tenant 'acme'" in output


def test_the_tenants_environment_ends_with_its_command(tmp_path: Path) -> None:
    from samband.config.env import default_environ

    registry = tmp_path / "tenants"
    t.make_tenant(registry, "acme")
    code, output = _cli(["validate", "--tenant", "acme"], registry, {})
    assert code == 0, output
    assert default_environ() is __import__("os").environ


def test_two_tenants_never_share_a_variable_prefix(tmp_path: Path) -> None:
    # `acme-a` and `acme_a` would both read SAMBAND_TENANT_ACME_A__*: each would be given the
    # other's credentials
    registry = Registry(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text("systems: {}\n")
    registry.add("acme-a", config)
    with pytest.raises(TenantError, match="acme-a"):
        registry.add("ACME_A", config)
    # a name whose variables another tenant's prefix would take (`a` reads
    # SAMBAND_TENANT_A__*, so `a_` or `a__b` would hand theirs to it)
    for name in ("a_", "a__b", "a-_b", "b-"):
        with pytest.raises(TenantError, match="not a tenant name"):
            registry.add(name, config)


def test_tenants_made_by_hand_with_one_prefix_are_refused_both(tmp_path: Path) -> None:
    t.make_tenant(tmp_path, "beta-co")
    t.make_tenant(tmp_path, "beta_co")
    process = {"SAMBAND_TENANT_BETA_CO__CRM_URL": "sqlite:///secret.db"}
    for name in ("beta-co", "beta_co"):
        with pytest.raises(TenantError, match=r"beta-co.*beta_co|beta_co.*beta-co"):
            Registry(tmp_path).get(name).environ(process)
    # and a folder whose name reads another's variables is said, not skipped in silence
    t.make_tenant(tmp_path, "gamma")
    (tmp_path / "gamma__x").mkdir()
    (tmp_path / "gamma__x" / "samband.yaml").write_text("systems: {}\n")
    assert "gamma__x" in Registry(tmp_path).names()
    with pytest.raises(TenantError, match="not a tenant name"):
        Registry(tmp_path).get("gamma__x")
    listed = CliRunner().invoke(app, ["tenants", "list", "--tenants-dir", str(tmp_path), "--json"])
    rows = {row["tenant"]: row["every"] for row in json.loads(listed.stdout)}
    assert "not a tenant name" in rows["gamma__x"] and "both read" in rows["beta-co"]
    assert rows["gamma"] == 2.0


def test_a_worker_given_a_registry_that_is_not_there_says_so(tmp_path: Path) -> None:
    # a typo in a service unit's --tenants-dir: the worker would wait for jobs in silence
    missing = tmp_path / "tenats"
    result = CliRunner().invoke(
        app, ["worker", "--queue", "mysql://nowhere/db", "--tenants-dir", str(missing)]
    )
    output = " ".join(result.output.split())
    assert f"{missing} is not a folder" in output


def test_a_job_naming_what_the_tenant_does_not_have_is_refused_before_it_is_queued(
    tmp_path: Path,
) -> None:
    t.make_tenant(tmp_path, "acme")
    # a queue nobody listens on: a refusal comes before the queue is asked
    queue = ["--queue", "postgresql://samband@127.0.0.1:1/samband", "--tenants-dir", str(tmp_path)]
    runner = CliRunner()
    ran = runner.invoke(app, ["tenants", "run", "acme", "--dataflow", "nope", *queue])
    assert ran.exit_code == 2, ran.output
    assert "acme: no dataflow 'nope'; its dataflows: companies" in ran.output
    resynced = runner.invoke(app, ["tenants", "resync", "acme", "crm.Nope", *queue])
    assert resynced.exit_code == 2, resynced.output
    assert "crm.Nope is in no dataflow; types in use: crm.Company, pms.Customer" in resynced.output
    # what it has goes on to the queue (here: not there, said as such)
    asked = runner.invoke(app, ["tenants", "resync", "acme", "crm.Company", *queue])
    assert asked.exit_code == 1 and "queue" in asked.output, asked.output
