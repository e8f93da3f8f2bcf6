"""Security: no secret in any output, store row, token file or document; private files.

Every CLI command runs (as a subprocess, as a user would run it) with known secret
values in the environment — the custom CRM's API token, CRMOffice's client secret, the
token encryption key — and nothing it prints (tables, ``--json``, errors), nothing in the
store (every table dumped), no token file (encrypted) and no generated document may
contain them.  The store and the token files are created with mode 0600; TLS is verified
except on loopback; sandboxes bind loopback only; ``samband validate`` warns about
secrets written in a config file.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import ssl
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from samband.connectors._http import HttpClient, is_loopback
from samband.kinds.crmoffice.sandbox import CrmOfficeSandbox
from samband.kinds.rest.sandbox import CustomCrmSandbox
from samband.sandbox._base import SandboxServer, free_port, serve_forever

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")

CONFIG = """\
store: sqlite:///state.db
systems:
  crm:
    kind: rest
    label: Custom CRM
    base_url: {crm}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}"}}
    entity_types:
      Customer: {{path: customers, external_ref: external_ref,
                  properties: {{name: string, org_no: string, email: string}}}}
  crmo:
    kind: crmoffice
    label: CRMOffice
    base_url: {crmo}
    auth_url: {crmo}
    rate_limit: 0
    credentials:
      client_id: ${{CRMO_CLIENT_ID}}
      client_secret: ${{CRMO_CLIENT_SECRET}}
  erp:
    kind: memory
    label: ERP
    path: erp.json
    entity_types:
      Org: {{external_ref: ext, properties: {{name: {{type: string}}, org: {{type: string}}}}}}
dataflows:
  - source: crm.Customer
    target: erp.Org
    match: [[{{from: org_no, to: org}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: org_no, to: org, type: string}}
  - source: crmo.Companies
    target: erp.Org
    match: [[{{from: orgNr, to: org}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: orgNr, to: org, type: string}}
"""


class Secrets:
    def __init__(self) -> None:
        self.crm_token = f"crm-token-{uuid.uuid4().hex}"
        self.client_secret = f"client-secret-{uuid.uuid4().hex}"
        self.token_key = Fernet.generate_key().decode()
        self.env = {
            "CRM_TOKEN": self.crm_token,
            "CRMO_CLIENT_ID": "samband-test-client",
            "CRMO_CLIENT_SECRET": self.client_secret,
            "SAMBAND_TOKEN_KEY": self.token_key,
        }

    @property
    def values(self) -> list[str]:
        return [self.crm_token, self.client_secret, self.token_key]

    def find_in(self, text: str | bytes, where: str) -> list[str]:
        data = text.encode() if isinstance(text, str) else text
        return [f"{where} contains a secret" for v in self.values if v.encode() in data]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    secrets = Secrets()
    crm = CustomCrmSandbox(token=secrets.crm_token)
    crm.insert("Customer", {"name": "Fjord Data AS", "org_no": "923609016"})
    crmo = CrmOfficeSandbox(rate_limit=None, clients={"samband-test-client": secrets.client_secret})
    crmo.seed(2, 3)
    servers: list[SandboxServer] = [crm.serve(), crmo.serve()]
    config = tmp_path / "samband.yaml"
    config.write_text(CONFIG.format(crm=servers[0].url, crmo=servers[1].url))
    try:
        yield {"dir": tmp_path, "config": config, "secrets": secrets, "crm": crm, "crmo": crmo}
    finally:
        for server in servers:
            server.stop()


def samband(setup: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> Any:
    environ = {**os.environ, **setup["secrets"].env, **(env or {})}
    environ.pop("SAMBAND_KILL_AT", None)
    return subprocess.run(
        [PYTHON, "-m", "samband.cli", *args],
        cwd=setup["dir"],
        env=environ,
        capture_output=True,
        timeout=120,
    )


def login(setup: dict[str, Any]) -> Any:
    """``samband auth crmoffice crmo``, with this test playing the browser."""
    environ = {**os.environ, **setup["secrets"].env}
    proc = subprocess.Popen(
        [
            *(PYTHON, "-m", "samband.cli", "auth", "crmoffice", "crmo", "-c", "samband.yaml"),
            *("--no-browser", "--port", str(free_port())),
        ],
        cwd=setup["dir"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    printed = b""
    for line in proc.stdout:
        printed += line
        if line.startswith(b"http"):
            httpx.get(line.decode().strip(), follow_redirects=True, timeout=10)
            break
    rest, err = proc.communicate(timeout=60)
    return proc.returncode, printed + rest, err


def test_no_secret_in_the_log_at_any_level(setup: dict[str, Any]) -> None:
    """-v, -vv (every HTTP request and answer), --log-level debug in text and JSON: the
    API token, the client secret, the token key and every token the sandbox issued are
    masked, while the requests themselves are traced."""
    secrets: Secrets = setup["secrets"]
    code, out, err = login(setup)
    assert code == 0, (out, err)
    logs: dict[str, bytes] = {}
    for options in (
        ["-vv"],
        [],
        ["-v"],
        ["--log-level", "debug", "--log-format", "json"],
    ):
        result = samband(setup, *options, "sync", "-c", "samband.yaml")
        assert result.returncode == 0, result.stderr
        logs[" ".join(options) or "default"] = result.stdout + result.stderr
    refused = samband(
        setup, "-vv", "sync", "-c", "samband.yaml", env={"CRM_TOKEN": "wrong-" + uuid.uuid4().hex}
    )
    logs["-vv, a refused token"] = refused.stdout + refused.stderr
    crmo: CrmOfficeSandbox = setup["crmo"]
    issued = [*crmo.access_tokens, *crmo.refresh_tokens]
    assert issued
    leaks = [
        f"{name}: {value[:12]}…"
        for name, text in logs.items()
        for value in [*secrets.values, *issued]
        if value.encode() in text
    ]
    assert not leaks, leaks
    traced = logs["-vv"].decode()
    assert "→ GET" in traced and "← 200 GET" in traced, traced[:2000]
    assert "'authorization': '***'" in traced
    json_lines = [line for line in logs["--log-level debug --log-format json"].splitlines()]
    assert any(b'"logger": "samband.http"' in line for line in json_lines)


def test_no_secret_in_outputs_store_tokens_or_documents(setup: dict[str, Any]) -> None:
    secrets: Secrets = setup["secrets"]
    folder: Path = setup["dir"]
    leaks: list[str] = []
    outputs: dict[str, Any] = {}

    def run(name: str, *args: str, ok: bool = True, **kw: Any) -> Any:
        result = samband(setup, *args, **kw)
        outputs[name] = result
        leaks.extend(secrets.find_in(result.stdout + result.stderr, f"`samband {name}`"))
        if ok:
            assert result.returncode == 0, (name, result.stdout, result.stderr)
        return result

    run("validate", "validate", "-c", "samband.yaml")
    run("validate --json", "validate", "--json", "-c", "samband.yaml")
    code, out, err = login(setup)
    assert code == 0, (out, err)
    leaks.extend(secrets.find_in(out + err, "`samband auth`"))
    sync = run("sync --json", "sync", "--json", "-c", "samband.yaml")
    report = json.loads(sync.stdout)
    assert report["status"] == "ok" and report["created"] >= 3, report
    run("sync", "sync", "-c", "samband.yaml")
    run("sync --dry-run", "sync", "--dry-run", "-c", "samband.yaml")
    run("status", "status", "-c", "samband.yaml")
    run("status --json", "status", "--json", "-c", "samband.yaml")
    run("links", "links", "crm:Customer:1", "-c", "samband.yaml")
    run("links --json", "links", "crm:Customer:1", "--json", "-c", "samband.yaml")
    run("history --json", "history", "crm:Customer:1", "--json", "-c", "samband.yaml")
    run("conflicts --json", "conflicts", "--json", "-c", "samband.yaml")
    run("errors --json", "errors", "--json", "-c", "samband.yaml")
    run("retry", "retry", "-c", "samband.yaml")
    run("docs", "docs", "-c", "samband.yaml", "-o", "documents", "--format", "both")
    run("sandbox --help", "sandbox", "--help")
    # errors: a refused token (the wrong secret is a secret too), an unreachable system
    wrong = f"wrong-{uuid.uuid4().hex}"
    refused = run(
        "sync (401)", "sync", "--json", "-c", "samband.yaml", ok=False, env={"CRM_TOKEN": wrong}
    )
    assert refused.returncode == 1 and wrong.encode() not in refused.stdout + refused.stderr
    assert b"crm" in refused.stdout + refused.stderr

    # the store: every row of every table
    db = sqlite3.connect(folder / "state.db")
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()  # names from sqlite_master
            leaks.extend(secrets.find_in(repr(rows), f"store table {table}"))
    finally:
        db.close()
    # every file written: store (and its WAL), token files, documents, the memory system
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != "samband.yaml"]
    for path in files:
        leaks.extend(secrets.find_in(path.read_bytes(), str(path.relative_to(folder))))
    assert not leaks, leaks

    # private files
    tokens = list((folder / ".samband" / "tokens").glob("*.json.enc"))
    assert tokens, "the login stored no tokens"
    journal = [p for p in folder.glob("state.db-*") if p.is_file()]
    for path in [folder / "state.db", *journal, *tokens]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in tokens:
        data = path.read_bytes()
        assert data.startswith(b"gAAAAA"), "token files are Fernet tokens"
        assert b"access_token" not in data and b"refresh_token" not in data
        Fernet(secrets.token_key.encode()).decrypt(data)  # and this key opens them
    assert list((folder / "documents").iterdir()), "docs wrote nothing"


def test_validate_warns_about_secrets_written_in_the_file(tmp_path: Path) -> None:
    written = f"written-{uuid.uuid4().hex}"
    password = f"pw{uuid.uuid4().hex[:10]}"
    (tmp_path / "c.yaml").write_text(
        "store: sqlite:///s.db\nsystems:\n"
        "  crm:\n    kind: rest\n    base_url: https://crm.example\n    auth: bearer\n"
        f"    credentials: {{token: {written}}}\n    entity_types: {{C: {{path: c}}}}\n"
        f"  pms:\n    kind: sql\n    url: postgresql+psycopg://pms:{password}@db.example/pms\n"
    )
    result = subprocess.run(
        [PYTHON, "-m", "samband.cli", "validate", "-c", "c.yaml"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "SAMBAND_KILL_AT"},
    )
    output = (result.stdout + result.stderr).decode()
    assert "c.yaml:7:" in output and "credential 'token'" in output, output
    assert "c.yaml:11:" in output and "password" in output, output
    assert written not in output and password not in output, output


def test_tls_is_verified_except_on_loopback() -> None:
    assert is_loopback("http://127.0.0.1:8080") and is_loopback("https://localhost/x")
    assert is_loopback("http://[::1]:81/") and not is_loopback("https://api.example.com")
    assert not is_loopback("https://127.0.0.1.evil.example/")
    remote = HttpClient("x", "https://api.example.com/v2")
    local = HttpClient("x", "https://127.0.0.1:8443")
    try:
        assert _verify_mode(remote) == ssl.CERT_REQUIRED
        assert _verify_mode(local) == ssl.CERT_NONE
    finally:
        remote.close()
        local.close()


def _verify_mode(client: HttpClient) -> ssl.VerifyMode:
    transport = client._client._transport  # the SSL context httpx built from ``verify``
    context: ssl.SSLContext = transport._pool._ssl_context  # type: ignore[attr-defined]
    return context.verify_mode


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_sandboxes_bind_loopback_only(host: str) -> None:
    box = CustomCrmSandbox()
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(box.app, host=host)
    with pytest.raises(ValueError, match="loopback"):
        serve_forever(box.app, free_port(), host=host)


def test_sql_values_are_bound_parameters_and_never_sql(tmp_path: Path) -> None:
    """Values that look like SQL reach a ``kind: sql`` table verbatim; no SQL text in the
    product is built by formatting (identifiers are quoted by SQLAlchemy's dialects)."""
    from samband.config import parse_config
    from samband.engine.run import Engine
    from samband.kinds.memory.connector import dataset, forget_dataset
    from samband.kinds.sql.demo import create_pms_schema

    create_pms_schema(f"sqlite:///{tmp_path}/pms.db")
    name = f"crm-{uuid.uuid4().hex[:8]}"
    config = parse_config(
        f"store: sqlite:///{tmp_path}/state.db\nsystems:\n"
        f"  crm: {{kind: memory, dataset: {name}, entity_types: {{Company: {{}}}}}}\n"
        f"  pms:\n    kind: sql\n    url: sqlite:///{tmp_path}/pms.db\n"
        "    entity_types:\n"
        "      Customer: {table: customer, updated: updated_at, external_ref: external_ref}\n"
        "dataflows:\n  - source: crm.Company\n    target: pms.Customer\n    properties:\n"
        "      - {from: name, to: name, type: string}\n"
        "      - {from: city, to: city, type: string}\n"
    ).config
    evil = "Robert'); DROP TABLE customer; --"
    dataset(name).insert("Company", {"name": evil, "city": '" OR 1=1 --'})
    try:
        with Engine(config, state_dir=str(tmp_path)) as engine:
            report = engine.sync().to_dict()
        assert report["status"] == "ok" and report["created"] == 1, report
        db = sqlite3.connect(tmp_path / "pms.db")
        try:
            rows = db.execute("SELECT name, city FROM customer").fetchall()
        finally:
            db.close()
        assert rows == [(evil, '" OR 1=1 --')]
    finally:
        forget_dataset(name)
    formatted = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "src" / "samband").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\b(text|execute|exec_driver_sql)\(\s*f[\"']", line)
    ]
    assert not formatted, f"SQL text built by string formatting: {formatted}"
