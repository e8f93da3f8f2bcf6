"""HTML documents, rendered from the RST by docutils (real tables, no warnings allowed)."""

from __future__ import annotations

import io
import re

from docutils.core import publish_doctree, publish_string
from docutils.utils import SystemMessage

from samband.errors import SambandError

_MESSAGE = re.compile(r"^\S*?:(\d+): \((\w+)/\d\) (.*)$", re.MULTILINE)
_SETTINGS = {
    "report_level": 2,  # warnings and worse are reported ...
    "halt_level": 2,  # ... and stop the rendering: a document must be clean
    "output_encoding": "unicode",
    "embed_stylesheet": True,
    "_disable_config": True,  # no docutils.conf of the user's machine changes the output
}


def rst_warnings(text: str) -> list[tuple[str, str, str]]:
    """(line, level, message) of every docutils message of level warning or above."""
    stream = io.StringIO()
    publish_doctree(
        text,
        settings_overrides={
            "report_level": 2,
            "halt_level": 5,
            "warning_stream": stream,
            "_disable_config": True,
        },
    )
    return _MESSAGE.findall(stream.getvalue())


def to_html(text: str, name: str) -> str:
    """The HTML5 page of an RST document; raise SambandError on any docutils warning."""
    try:
        html = publish_string(
            text,
            writer="html5",
            settings_overrides={**_SETTINGS, "warning_stream": io.StringIO()},
        )
    except SystemMessage as exc:
        raise SambandError(f"{name}: docutils cannot render the document: {exc}") from None
    return str(html)
