"""Durable, encrypted storage of OAuth tokens (refresh tokens rotate on every use).

Tokens are written to ``<state dir>/tokens/<system>.json.enc``: encrypted with Fernet,
written to a temporary file, fsynced, then renamed over the old file (and the folder
fsynced), so a crash leaves either the old or the new token, never neither.  Files are
created with mode 0600.

The encryption key comes from, in order: ``SAMBAND_TOKEN_KEY`` in the environment; the
system keyring (service ``samband``, entry ``token-key``), created there on first use
when a keyring backend is available; else a key file ``<state dir>/tokens/.key``
(mode 0600) — the weakest option, said so by ``samband status``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from samband.errors import AuthError

KEYRING_SERVICE = "samband"
KEYRING_ENTRY = "token-key"


def _keyring_get() -> str | None:
    try:
        import keyring
        from keyring.backends import fail

        if isinstance(keyring.get_keyring(), fail.Keyring):
            return None
        return keyring.get_password(KEYRING_SERVICE, KEYRING_ENTRY)
    except Exception:
        return None


def _keyring_set(value: str) -> bool:
    try:
        import keyring
        from keyring.backends import fail

        if isinstance(keyring.get_keyring(), fail.Keyring):
            return False
        keyring.set_password(KEYRING_SERVICE, KEYRING_ENTRY, value)
        return True
    except Exception:
        return False


def keyring_credential(name: str, service: str = KEYRING_SERVICE) -> str | None:
    """A credential stored in the system keyring under service ``samband`` (a tenant's:
    ``samband/NAME``) and the name of the ``${VAR}`` that refers to it; None when there is
    none (or no keyring)."""
    try:
        import keyring
        from keyring.backends import fail

        if isinstance(keyring.get_keyring(), fail.Keyring):
            return None
        value = keyring.get_password(service, name)
    except Exception:
        return None
    return value if value else None


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600, durable before returning."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class TokenStore:
    """Encrypted token storage for one system."""

    def __init__(self, system_id: str, state_dir: str | os.PathLike[str]) -> None:
        self.system_id = system_id
        self.folder = Path(state_dir) / "tokens"
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in system_id)
        self.path = self.folder / f"{safe}.json.enc"

    def _fernet(self) -> Fernet:
        key = os.environ.get("SAMBAND_TOKEN_KEY") or _keyring_get()
        if not key:
            key_file = self.folder / ".key"
            if key_file.exists():
                key = key_file.read_text().strip()
            else:
                key = Fernet.generate_key().decode()
                if not _keyring_set(key):
                    write_private(key_file, key.encode())
        try:
            return Fernet(key.encode() if isinstance(key, str) else key)
        except ValueError:
            raise AuthError(
                self.system_id,
                "the token encryption key is not a valid Fernet key",
                "set SAMBAND_TOKEN_KEY to a key made by cryptography.fernet.Fernet.generate_key()",
            ) from None

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(self._fernet().decrypt(self.path.read_bytes()))
        except InvalidToken:
            raise AuthError(
                self.system_id,
                f"cannot decrypt the stored tokens in {self.path}",
                "the encryption key changed; run `samband auth` again",
            ) from None
        return data

    def save(self, tokens: dict[str, Any]) -> None:
        write_private(self.path, self._fernet().encrypt(json.dumps(tokens).encode()))

    def clear(self) -> None:
        if self.path.exists():
            self.path.unlink()
