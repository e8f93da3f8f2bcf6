"""``samband qa``: the dataflow documents (QA checklists) of a config, executed.

For every section of every document (one document per pair of systems, one section per
dataflow) a marked test record is created in the source, synchronized by the real
engine, checked property by property in the target, edited in the target (the edit
must flow back) and in the source (the edit must flow forward), and removed again.
Only records the run created are ever read, changed or deleted (see
:mod:`samband.qa.guard`); the engine runs against a QA-only store.

>>> result = run_qa("samband.yaml")          # doctest: +SKIP
>>> result.passed, [s.status for s in result.sections]   # doctest: +SKIP
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from samband.config.validate import load_valid
from samband.docs.model import documents_of
from samband.engine.run import Engine
from samband.errors import SambandError
from samband.qa.model import (
    FAILED,
    PASSED,
    SKIPPED,
    DocumentResult,
    Leftover,
    PropertyResult,
    QaResult,
    SectionResult,
)
from samband.qa.report import render_html, render_rst
from samband.qa.section import SectionRun

__all__ = [
    "DocumentResult",
    "Leftover",
    "PropertyResult",
    "QaResult",
    "SectionResult",
    "run_qa",
]


def run_qa(
    config_path: str | os.PathLike[str],
    *,
    only: str | None = None,
    output: Path | None = None,
    echo: Callable[[str], None] = print,
    environ: Mapping[str, str] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> QaResult:
    """Execute the QA checklists of the config at ``config_path``.

    ``only`` names one document (``<source system id>-<target system id>``); ``output``
    is where ``qa-<document>.rst`` and ``.html`` go (default: ``qa-report`` beside the
    config).  ``environ`` resolves ``${VAR}`` in the config (default: the process's);
    ``state_dir`` is where the systems' tokens are (default: ``.samband`` beside the config,
    as for ``samband sync``).
    """
    echo = _plain(echo)
    loaded = load_valid(config_path)
    config = loaded.config
    documents = documents_of(config)
    if only is not None:
        chosen = [d for d in documents if d.stem == only]
        if not chosen:
            names = ", ".join(d.stem for d in documents) or "none"
            raise SambandError(
                f"--only {only!r} names no document of {config_path}; the documents are: {names}"
            )
        documents = chosen
    # Only the systems of the chosen documents take part (their credentials alone are
    # needed); parents are made through dataflows between those systems.
    systems = {s for d in documents for s in (d.source_id, d.target_id)}
    config = config.model_copy(
        update={
            "dataflows": [
                f
                for f in config.dataflows
                if f.source_system in systems and f.target_system in systems
            ]
        }
    )
    folder = Path(output) if output is not None else Path(config_path).parent / "qa-report"
    state = None if state_dir is None else str(state_dir)
    builder = Engine(config, environ=environ, state_dir=state)
    try:
        builder.compile()
        # credentials and reachability first: one clear message, and nothing written
        for system_id in dict.fromkeys(s for d in documents for s in (d.source_id, d.target_id)):
            builder.connector(system_id).check()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SambandError(
                f"cannot create the folder {folder}: {exc.strerror or exc}"
            ) from None
        run_id = secrets.token_hex(3)
        started = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        result = QaResult(run_id)
        echo(f"QA run {run_id}: {sum(len(d.sections) for d in documents)} section(s)")
        stores = Path(tempfile.mkdtemp(prefix=".qa-state-", dir=folder))
        try:
            for document in documents:
                doc_result = DocumentResult(document.stem, document.title)
                flows = [
                    f
                    for f in builder.flows
                    if (f.source[0], f.target[0]) == (document.source_id, document.target_id)
                ]
                for number, (flow, section) in enumerate(
                    zip(flows, document.sections, strict=True), 1
                ):
                    section_result = SectionResult(
                        document.stem,
                        section.title,
                        f"{flow.source[0]}.{flow.source[1]}",
                        f"{flow.target[0]}.{flow.target[1]}",
                    )
                    SectionRun(
                        config,
                        builder.flows,
                        flow,
                        {sid: builder.connector(sid) for sid in builder.systems_in_use()},
                        run_id=run_id,
                        store_path=stores / f"{document.stem}-{number}.db",
                        environ=environ,
                        state_dir=state,
                        result=section_result,
                    ).run()
                    doc_result.sections.append(section_result)
                    _echo_section(echo, section_result)
                result.documents.append(doc_result)
                result.reports += _write(folder, doc_result, str(config_path), run_id, started)
        finally:
            for stale in stores.iterdir():
                stale.unlink()
            stores.rmdir()
    finally:
        builder.close()
    counts = {
        status: sum(1 for s in result.sections if s.status == status)
        for status in (PASSED, FAILED, SKIPPED)
    }
    echo(
        f"QA run {run_id}: {'PASSED' if result.passed else 'FAILED'} "
        f"({counts[PASSED]} passed, {counts[FAILED]} failed, {counts[SKIPPED]} skipped); "
        f"reports in {folder}"
    )
    for leftover in result.leftovers:
        echo(f"  left behind: {leftover.ref}: {leftover.why}")
    return result


def _plain(echo: Callable[[str], None]) -> Callable[[str], None]:
    """Lines quote what APIs answered: a Rich console must print them as they are (a
    ``[/x]`` in an error message is not markup, and must not stop the run)."""
    owner = getattr(echo, "__self__", None)
    if type(owner).__module__.startswith("rich.") and getattr(echo, "__name__", "") == "print":
        method: Any = echo
        return lambda line: method(line, markup=False, highlight=False)
    return echo


def _echo_section(echo: Callable[[str], None], section: SectionResult) -> None:
    echo(f"{section.document}: {section.title}: {section.status.upper()}")
    if section.status == SKIPPED:
        for message in section.messages:
            echo(f"  {message}")
        return
    for message in section.messages if section.status == FAILED else []:
        echo(f"  {message}")
    for prop in section.properties:
        if prop.status == FAILED:
            echo(
                f"  {prop.source} → {prop.target} ({prop.check}): expected {prop.expected!r}, "
                f"got {prop.actual!r}: {prop.reason}"
            )


def _write(
    folder: Path, document: DocumentResult, config: str, run_id: str, started: str
) -> list[str]:
    text = render_rst(document, config=config, run_id=run_id, started=started)
    files = {
        f"qa-{document.stem}.rst": text,
        f"qa-{document.stem}.html": render_html(text, f"qa-{document.stem}.html"),
    }
    written = []
    for name, content in files.items():
        path = folder / name
        temp = path.with_name(f".{name}.tmp")
        try:
            temp.write_text(content, encoding="utf-8", newline="\n")
            os.replace(temp, path)
        except OSError as exc:
            raise SambandError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(str(path))
    return written
