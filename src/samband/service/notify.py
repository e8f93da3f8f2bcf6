"""Notifications of ``samband serve``: a failed run, a tripped circuit breaker, a system
that refuses its credentials, records newly quarantined, and a run that succeeds again
after failures.  A failure is told once when it begins (or its reason changes), not at
every run that repeats it.  Sent as a signed JSON webhook and as e-mail over SMTP, as the
environment configures:

- ``SAMBAND_WEBHOOK_URL`` and ``SAMBAND_WEBHOOK_SECRET``: a POST of the event as JSON with
  ``X-Samband-Timestamp`` and ``X-Samband-Signature: sha256=HEX``, the HMAC-SHA256 of
  ``TIMESTAMP.BODY`` with the secret (the receiver refuses old timestamps: no replay).
- ``SAMBAND_SMTP_URL`` (``smtp://USER:PASSWORD@HOST:PORT``, ``smtps://`` for TLS, add
  ``?starttls=true`` for STARTTLS) and ``SAMBAND_NOTIFY_EMAIL`` (comma-separated
  addresses; ``SAMBAND_NOTIFY_FROM`` the sender).

A notification that cannot be sent is logged and dropped: it never stops the schedule."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import PurePath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from samband.errors import ConfigError, Problem

log = logging.getLogger(__name__)
TIMEOUT = 10.0


@dataclass(frozen=True)
class Event:
    # run_failed, breaker_tripped, auth_failed, records_quarantined, run_recovered
    kind: str
    config: str
    message: str
    at: str
    run: dict[str, Any] | None = None

    @property
    def subject(self) -> str:
        what = {
            "run_failed": "a run failed",
            "breaker_tripped": "the circuit breaker stopped a run",
            "records_quarantined": "records were quarantined",
            "auth_failed": "a system refused its credentials",
            "run_recovered": "runs succeed again",
        }.get(self.kind, self.kind)
        return f"Samband ({PurePath(self.config).name}): {what}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    user: str | None
    password: str | None
    tls: bool
    starttls: bool
    sender: str
    recipients: tuple[str, ...]


class Notifier:
    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        smtp: Smtp | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.smtp = smtp

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Notifier:
        url = environ.get("SAMBAND_WEBHOOK_URL") or None
        secret = environ.get("SAMBAND_WEBHOOK_SECRET") or None
        if url and not secret:
            raise _problem("SAMBAND_WEBHOOK_URL is set without SAMBAND_WEBHOOK_SECRET")
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise _problem("SAMBAND_WEBHOOK_URL must be an http(s) address")
        return cls(url, secret, _smtp(environ))

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or self.smtp)

    def send(self, event: Event) -> None:
        if self.webhook_url and self.webhook_secret:
            self._post(event)
        if self.smtp:
            self._mail(event)

    def _post(self, event: Event) -> None:
        assert self.webhook_url and self.webhook_secret
        body = json.dumps(asdict(event), default=str, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Samband-Event": event.kind,
            "X-Samband-Timestamp": timestamp,
            "X-Samband-Signature": sign(self.webhook_secret, timestamp, body),
        }
        try:
            answer = httpx.post(self.webhook_url, content=body, headers=headers, timeout=TIMEOUT)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("the webhook for %s was not delivered: %s", event.kind, exc)

    def _mail(self, event: Event) -> None:
        smtp = self.smtp
        assert smtp is not None
        message = EmailMessage()
        message["Subject"] = event.subject
        message["From"] = smtp.sender
        message["To"] = ", ".join(smtp.recipients)
        message.set_content(
            f"{event.message}\n\nConfig: {event.config}\nAt: {event.at}\n\n"
            "See `samband status`, `samband errors` and the dashboard for more."
        )
        client = smtplib.SMTP_SSL if smtp.tls else smtplib.SMTP
        try:
            with client(smtp.host, smtp.port, timeout=TIMEOUT) as connection:
                if smtp.starttls:
                    connection.starttls()
                if smtp.user:
                    connection.login(smtp.user, smtp.password or "")
                connection.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("the e-mail for %s was not sent: %s", event.kind, exc)


def _smtp(environ: Mapping[str, str]) -> Smtp | None:
    url = environ.get("SAMBAND_SMTP_URL")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise _problem("SAMBAND_SMTP_URL must look like smtp://USER:PASSWORD@HOST:PORT")
    recipients = tuple(
        a.strip() for a in environ.get("SAMBAND_NOTIFY_EMAIL", "").split(",") if a.strip()
    )
    if not recipients:
        raise _problem("SAMBAND_SMTP_URL is set without SAMBAND_NOTIFY_EMAIL (the recipients)")
    tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    return Smtp(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        starttls=query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"),
        sender=environ.get("SAMBAND_NOTIFY_FROM") or f"samband@{parts.hostname}",
        recipients=recipients,
    )


def _problem(message: str) -> ConfigError:
    return ConfigError([Problem("environment", 0, 0, message)])
