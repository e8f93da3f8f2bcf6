"""Which config a command uses when ``-c`` is not given: ``$SAMBAND_CONFIG``, else
``samband.yaml`` in the current folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from samband.errors import ConfigError, Problem

DEFAULT_NAME = "samband.yaml"
ENV_VAR = "SAMBAND_CONFIG"


def find_config(
    cwd: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The config file to use; ConfigError when neither place has one.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, "samband.yaml"), "w").write("systems: {}\\n")
    >>> find_config(folder, environ={}).name
    'samband.yaml'
    """
    env = os.environ if environ is None else environ
    named = env.get(ENV_VAR, "").strip()
    if named:
        return Path(named)  # a file that is not there is said when it is read
    here = Path(cwd) if cwd is not None else Path.cwd()
    candidate = here / DEFAULT_NAME
    if candidate.is_file():
        return candidate if cwd is not None else Path(DEFAULT_NAME)
    raise ConfigError(
        [
            Problem(
                DEFAULT_NAME,
                1,
                1,
                f"no config file: there is no {DEFAULT_NAME} here and {ENV_VAR} is not set",
                f"pass -c FILE, set {ENV_VAR}=FILE, or write one with `samband init KIND...`",
            )
        ]
    )
