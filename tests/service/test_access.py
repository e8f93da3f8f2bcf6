"""The login of ``samband serve``: every page and action without a session, with a
viewer's session, with an admin's, and with a forged CSRF token; the login throttle; the
session cookie; the users file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from samband.errors import ConfigError
from samband.kinds.memory.connector import dataset
from samband.service import Service, create_app
from samband.service.access import Access, read_users
from samband.service.web import check_bind
from tests.support.service import ADMIN_PASSWORD, USERS, VIEWER_PASSWORD, TestClient, csrf_of
from tests.support.service import login as _login

CONFIG = """\
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {external_ref: ext}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - id: customers
    source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties: [{from: name, to: name, type: string}, {from: org, to: org, type: string}]
"""
PAGES = ["/"]
FORMS = ["/run"]
API_GETS = ["/api/overview", "/api/status", "/api/conflicts", "/api/errors", "/metrics"]
API_POSTS = ["/api/run"]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    (tmp_path / "samband.yaml").write_text(CONFIG, encoding="utf-8")
    served = Service(tmp_path / "samband.yaml", every=3600)
    yield served
    served.stop()


def _client(service: Service, **options: object) -> TestClient:
    access = Access({"SAMBAND_USERS": USERS})
    app = create_app(service, access, manage_service=False, **options)  # type: ignore[arg-type]
    return TestClient(app, base_url="https://testserver")


def test_without_a_session_nothing_is_shown_and_nothing_done(service: Service) -> None:
    client = _client(service)
    for path in PAGES:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    for path in FORMS:
        assert client.post(path, follow_redirects=False).status_code == 303
    for path in API_GETS:
        assert client.get(path).status_code == 401, path
    for path in API_POSTS:
        assert client.post(path).status_code == 401, path
    assert client.get("/healthz").status_code == 200
    assert service.scheduler.state.runs == 0


def test_a_viewer_sees_everything_and_acts_on_nothing(service: Service) -> None:
    client = _client(service)
    token = _login(client, "vic", VIEWER_PASSWORD)
    page = client.get("/")
    assert page.status_code == 200 and "vic (viewer)" in page.text
    assert 'id="run-now"' not in page.text
    for path in API_GETS:
        assert client.get(path).status_code == 200, path
    assert client.post("/run", data={"csrf": token}).status_code == 403
    assert client.post("/api/run", headers={"X-CSRF-Token": token}).status_code == 403
    assert service.scheduler.state.runs == 0


def test_an_admin_acts_only_with_the_page_token(service: Service) -> None:
    client = _client(service)
    token = _login(client, "ada", ADMIN_PASSWORD)
    assert 'id="run-now"' in client.get("/").text
    forged = "x" * len(token)
    assert client.post("/run", data={"csrf": forged}).status_code == 403
    assert client.post("/run", data={}).status_code == 403
    assert client.post("/api/run", headers={"X-CSRF-Token": forged}).status_code == 403
    assert client.post("/api/run").status_code == 403
    service.start()
    assert service.scheduler.wait_runs(1, timeout=60)  # the first scheduled run
    dataset("crm").insert("Customer", {"name": "Acme AS", "org": "912345678"})
    answer = client.post("/run", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert service.scheduler.wait_runs(2, timeout=60), "the admin's run now did not run"
    names = [record["name"] for record in dataset("erp").records("Account").values()]
    assert names == ["Acme AS"]


def test_a_forged_login_form_is_refused(service: Service) -> None:
    client = _client(service)
    client.get("/login")
    answer = client.post(
        "/login", data={"name": "ada", "password": ADMIN_PASSWORD, "csrf": "forged"}
    )
    assert answer.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


def test_wrong_names_and_passwords_get_one_answer_and_are_throttled(service: Service) -> None:
    client = _client(service)
    token = csrf_of(client.get("/login").text)
    answers = []
    for name, password in [("ada", "wrong one"), ("nobody", ADMIN_PASSWORD)] + [
        ("ada", f"wrong {n}") for n in range(3)
    ]:
        answer = client.post("/login", data={"name": name, "password": password, "csrf": token})
        answers.append((answer.status_code, "Wrong name or password." in answer.text))
    assert answers == [(401, True)] * 5
    throttled = client.post(
        "/login", data={"name": "ada", "password": ADMIN_PASSWORD, "csrf": token}
    )
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_http_only_strict_and_secure_when_asked(service: Service) -> None:
    for secure in (False, True):
        client = _client(service, secure_cookies=secure)
        cookie = client.get("/login").headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert ("secure" in cookie.replace("samesite", "")) is secure


def test_the_login_goes_back_only_to_this_site(service: Service) -> None:
    client = _client(service)
    token = csrf_of(client.get("/login").text)
    for target, expected in [
        ("/api/status", "/api/status"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
    ]:
        answer = client.post(
            "/login",
            data={"name": "ada", "password": ADMIN_PASSWORD, "csrf": token, "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == expected
        token = csrf_of(client.get("/").text)


def test_a_network_address_is_served_once_users_exist() -> None:
    assert check_bind("0.0.0.0", Access({})) is not None
    assert check_bind("0.0.0.0", Access({"SAMBAND_USERS": USERS})) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ada admin", "NAME ROLE HASH"),
        ("ada root $argon2id$v=19$x", "role 'root'"),
        ("ada admin plaintext", "not an argon2 hash"),
    ],
)
def test_a_bad_users_file_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "users"
    path.write_text(f"# users\n{text}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_users({"SAMBAND_USERS_FILE": str(path)})
    problem = caught.value.problems[0]
    assert problem.line == 2 and message in problem.message


def test_hash_password_prints_a_hash_that_verifies() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "samband.cli", "hash-password", "--stdin"],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert PasswordHasher().verify(result.stdout.strip(), "a long enough password")
    users = read_users({"SAMBAND_USERS": f"me admin {result.stdout.strip()}"})
    assert (
        Access({"SAMBAND_USERS": f"me admin {result.stdout.strip()}"}).authenticate(
            "me", "a long enough password"
        )
        == users["me"]
    )
