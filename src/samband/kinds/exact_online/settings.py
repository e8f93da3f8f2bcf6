"""Settings of a ``kind: exact-online`` system (pacing comes from Exact's headers)."""

from __future__ import annotations

from samband.plugin.settings import EntityTypeSettings, HttpUrl, KindSettings


class ExactOnlineSettings(KindSettings):
    base_url: HttpUrl | None = None
    """Exact Online's address for your country (default `https://start.exactonline.nl`; `.be`,
    `.de`, `.co.uk`, ...)."""
    division: int | str | None = None
    """The division (administration) to sync (default: `CurrentDivision` of the logged-in user)."""
    page_size: int = 1000
    """Not used by the connector: Exact sets its own page sizes (60 records, 1000 on the Sync
    API)."""
    max_errors_per_hour: int = 8
    """Refused requests on one endpoint in an hour after which Samband stops calling it (Exact
    blocks an app for an hour after more than 10)."""
    redirect_uri: HttpUrl | None = None
    """The redirect URI of your Exact app, exactly as registered. Exact wants `https://`: then
    `samband auth` asks you to paste the address the browser is sent to. Default: Samband's
    listener on 127.0.0.1 (plain HTTP on this machine only)."""


class ExactOnlineTypeSettings(EntityTypeSettings):
    full_scan: bool = False
    """True: read every record on every run, so that the engine notices deletions (for Departments
    and Divisions, which have no Sync API)."""
    external_ref_field: str | None = None
    """The writable text field where creates stamp the source record's ref (default: the type's
    own, e.g. `FreeTextField_10` for Items); found again through the Sync API where Exact's
    mandatory filtering refuses a `$filter` on it."""
