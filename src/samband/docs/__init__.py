"""Dataflow documents: QA checklists generated from the same config that drives the sync.

``render_documents`` builds every document in memory; ``write_documents`` writes them only
once all of them rendered (each file atomically), so an error never leaves half a folder;
``import_documents`` reads documents in the same format back into a config.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from samband.config.loader import read_config
from samband.config.model import Config
from samband.docs import rst
from samband.docs.html import to_html
from samband.docs.importer import import_documents
from samband.docs.model import Document, documents_of
from samband.errors import ConfigError, SambandError

__all__ = [
    "Document",
    "documents_of",
    "generated_stamp",
    "import_documents",
    "load_for_documents",
    "render_documents",
    "write_documents",
]

FORMATS = ("rst", "html", "both")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def generated_stamp(generated: str | None = None) -> str:
    """The ``Generated:`` value: the argument, else ``SOURCE_DATE_EPOCH``, else now (UTC)."""
    if generated is not None:
        if not _STAMP.fullmatch(generated):
            raise SambandError(f"--generated {generated!r} is not of the form YYYY-MM-DD HH:MM:SS")
        try:
            datetime.strptime(generated, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise SambandError(f"--generated {generated!r} is not a valid date and time") from None
        return generated
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            moment = datetime.fromtimestamp(int(epoch), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise SambandError(
                f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds since 1970"
            ) from None
    else:
        moment = datetime.now(tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def load_for_documents(path: str | os.PathLike[str]) -> Config:
    """The config at ``path``, checked for what documents need only: no system is asked for
    its schema, no ``${VAR}`` resolved and no file created, so documents of a config whose
    systems are out of reach, unconfigured or still a TODO of `samband docs import` can be
    generated.  Raise ConfigError when it has errors."""
    from samband.config.validate import check_offline

    loaded = read_config(path)
    errors = [p for p in check_offline(loaded) if p.severity == "error"]
    if errors:
        raise ConfigError(errors)
    return loaded.config


def render_documents(
    config: Config, fmt: str = "rst", generated: str | None = None
) -> dict[str, str]:
    """File name → text of every document of ``config`` (nothing is written)."""
    if fmt not in FORMATS:
        raise SambandError(f"unknown document format {fmt!r}; use rst, html or both")
    stamp = generated_stamp(generated)
    result: dict[str, str] = {}
    for document in documents_of(config):
        if fmt in ("rst", "both"):
            result[f"{document.stem}.rst"] = rst.render(document, stamp)
        if fmt in ("html", "both"):
            name = f"{document.stem}.html"
            result[name] = to_html(rst.render(document, stamp, for_html=True), name)
    return result


def write_documents(
    config: Config,
    out_dir: str | os.PathLike[str],
    fmt: str = "rst",
    generated: str | None = None,
) -> list[Path]:
    """Render every document, then write each one atomically into ``out_dir``."""
    rendered = render_documents(config, fmt, generated)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SambandError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    paths = []
    for name, text in rendered.items():
        path = folder / name
        _write_atomic(path, text)
        paths.append(path)
    return paths


def _write_atomic(path: Path, text: str) -> None:
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(text)
            os.chmod(temp, 0o644)  # mkstemp makes 0600; documents are for sharing
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise SambandError(f"cannot write {path}: {exc.strerror or exc}") from None
