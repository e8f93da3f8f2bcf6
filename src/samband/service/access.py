"""Who may see and do what: users with argon2 password hashes, the login throttle, the
CSRF token of a session, and the API's bearer token.

Users come from ``SAMBAND_USERS_FILE`` (a file) or ``SAMBAND_USERS`` (the environment):
one user per line (or separated by ``;``), ``NAME ROLE HASH``, where ROLE is ``admin`` or
``viewer`` and HASH is what ``samband hash-password`` prints.  A viewer sees every page;
an admin also acts (run now, and the actions to come)."""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from samband.errors import ConfigError, Problem

USERS_FILE_ENV = "SAMBAND_USERS_FILE"
USERS_ENV = "SAMBAND_USERS"
TOKEN_ENV = "SAMBAND_API_TOKEN"
SESSION_SECRET_ENV = "SAMBAND_SESSION_SECRET"
ROLES = ("admin", "viewer")
MAX_THROTTLE_KEYS = 10_000
SESSION_SECONDS = 8 * 3600

_hasher = PasswordHasher()
# verified when the name is unknown, so an unknown name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str = field(repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def read_users(environ: Mapping[str, str]) -> dict[str, User]:
    """The users of the environment (empty: no login configured)."""
    if environ.get(USERS_FILE_ENV):
        where = environ[USERS_FILE_ENV]
        try:
            text = Path(where).read_text(encoding="utf-8")
        except OSError as exc:
            raise _problem(where, 0, f"cannot be read ({exc.strerror or exc})") from None
    else:
        where, text = USERS_ENV, environ.get(USERS_ENV, "")
    users: dict[str, User] = {}
    for number, line in enumerate(text.replace(";", "\n").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise _problem(where, number, "write one user per line as NAME ROLE HASH")
        name, role, password_hash = parts
        if role not in ROLES:
            raise _problem(where, number, f"role {role!r} is not one of {', '.join(ROLES)}")
        if not password_hash.startswith("$argon2"):
            raise _problem(
                where, number, "the hash is not an argon2 hash: make one with samband hash-password"
            )
        users[name] = User(name, role, password_hash)
    return users


def _problem(where: str, line: int, message: str) -> ConfigError:
    return ConfigError([Problem(where, line, 0, f"users: {message}")])


class LoginThrottle:
    """At most ``attempts`` failed logins per client address and per user name in
    ``window`` seconds; then the login answers 429 until the oldest failure ages out."""

    def __init__(self, attempts: int = 5, window: float = 15 * 60) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, *keys: str) -> float:
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            failures = self._failures.get(key)
            if failures is None:
                continue
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) >= self.attempts:
                wait = max(wait, failures[0] + self.window - now)
        return wait

    def attempt(self, *keys: str) -> float:
        """The wait before another login may be tried; when none, the attempt is counted
        at once as a failure (until :meth:`succeeded`), so logins sent together cannot all
        pass the check before the first of them fails."""
        wait = self.retry_after(*keys)
        if not wait:
            self.failed(*keys)
        return wait

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self._failures) > MAX_THROTTLE_KEYS:  # forget the names tried long ago
            for key in [
                k for k, f in self._failures.items() if not f or f[-1] <= now - self.window
            ]:
                del self._failures[key]
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


class EndedSessions:
    """The sessions a logout ended.  The session cookie is signed, not stored, so a copy
    taken before the logout would still be let in: its id is refused here until the
    cookie would have expired anyway.  (Kept in memory: a restart with the same
    ``SAMBAND_SESSION_SECRET`` forgets them; without it, every cookie is refused.)"""

    def __init__(self, lifetime: float = SESSION_SECONDS) -> None:
        self.lifetime = lifetime
        self._ended: dict[str, float] = {}

    def end(self, session_id: str) -> None:
        now = time.monotonic()
        for old in [sid for sid, at in self._ended.items() if at <= now - self.lifetime]:
            del self._ended[old]
        self._ended[session_id] = now

    def ended(self, session_id: str) -> bool:
        return session_id in self._ended


class Access:
    """The access rules of one served config."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.users = read_users(environ)
        self.api_token = environ.get(TOKEN_ENV) or None
        self.session_secret = environ.get(SESSION_SECRET_ENV) or secrets.token_urlsafe(32)
        self.throttle = LoginThrottle()
        self.sessions = EndedSessions()

    @property
    def login_required(self) -> bool:
        return bool(self.users)

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.users.get(name)
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def bearer_ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        return bool(
            self.api_token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(value.strip().encode(), self.api_token.encode())
        )


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given and expected and hmac.compare_digest(given.encode(), expected.encode()))
