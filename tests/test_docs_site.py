"""The README and the documentation site: their examples run, their references are current.

Every fenced block of the README and of docs/**/*.md is used: the first sync (a shell
block) and the Python API run as written; the dataflow-documents example runs on the
shipped seed configs; the "try it on the sandbox" examples of PowerOffice GO and of a
REST system run with their sandbox (on a free port); every ``samband …`` line of a shell
or console block names a command and options the CLI has; every YAML block parses, and
each complete config in one validates; the other Python blocks compile and their imports
resolve.  ``mkdocs build --strict`` (``make test``) checks the links and the navigation.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

from tests.support.docs_examples import (
    DOCS,
    README,
    ROOT,
    Block,
    block_after,
    blocks,
    command_lines,
    run_python,
    try_it_script,
)

GETTING_STARTED = DOCS / "getting-started.md"
FIRST_SYNC = "## A first sync in two minutes"


def _generator(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_references_are_current() -> None:
    """docs/reference/ is what the generators make from the code (``make docs`` rewrites it)."""
    for name, page in (("gen_cli", "cli.md"), ("gen_config", "configuration.md")):
        committed = (DOCS / "reference" / page).read_text(encoding="utf-8")
        assert _generator(name).render() == committed, f"run `python docs/{name}.py`"


def test_every_configuration_key_is_described() -> None:
    """Each key of the configuration reference says what it does (a field docstring)."""
    assert _generator("gen_config").undescribed() == []


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block
    assert len(text.splitlines()) <= 200


_run_python = run_python


def _check_python(block: Block) -> None:
    """Compiles, and every name it imports exists."""
    tree = ast.parse(block.code, block.where)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    module = ast.Module(body=imports, type_ignores=[])
    exec(compile(module, block.where, "exec"), {})


def _check_yaml(block: Block) -> None:
    from samband.config import parse_config

    data = yaml.safe_load(block.code)
    assert data is not None, block.where
    if isinstance(data, dict) and "systems" in data and "dataflows" in data:
        parse_config(block.code, block.where)  # raises ConfigError listing the problems


def test_first_sync_example_runs(tmp_path: Path) -> None:
    """The README's first sync (the same block as the getting-started page's) runs; then
    the Python API and the documents example; every other block is checked."""
    shell = block_after(README, FIRST_SYNC, "sh")
    assert block_after(GETTING_STARTED, FIRST_SYNC, "sh").code == shell.code
    script = shell.code.replace("/tmp/samband-hello", str(tmp_path / "hello"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-e", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    quiet = next(line for line in result.stdout.splitlines() if line.startswith("{"))
    assert json.loads(quiet)["created"] == 0 and json.loads(quiet)["updated"] == 0
    accounts = json.loads((tmp_path / "hello" / "erp.json").read_text())["types"]["Account"]
    assert [a["data"]["name"] for a in accounts.values()] == ["Acme AS"]
    assert (tmp_path / "hello" / "docs" / "crm-erp.html").exists()

    # the Python API example, in the same folder
    api = block_after(GETTING_STARTED, "## The Python API", "python")
    _run_python(api, tmp_path / "hello")

    # the dataflow documents from Python, on a copy of the shipped seed configs
    documents = block_after(DOCS / "documents.md", "From Python", "python")
    shutil.copytree(ROOT / "examples", tmp_path / "docs-example" / "examples")
    _run_python(documents, tmp_path / "docs-example")
    assert (tmp_path / "docs-example" / "docs").is_dir()

    # the "try it on the sandbox" examples of PowerOffice GO and of a REST system
    for page, heading, config_name in (
        (DOCS / "systems" / "poweroffice.md", "Try it against the sandbox", "poweroffice.yaml"),
        (DOCS / "systems" / "rest.md", "## Try it against the custom CRM", "samband.yaml"),
    ):
        folder = tmp_path / page.stem
        folder.mkdir()
        script, config, _ = try_it_script(page, heading, config_name)
        (folder / config_name).write_text(config, encoding="utf-8")
        result = subprocess.run(
            ["bash", "-e", "-c", script],
            capture_output=True,
            text=True,
            env=env,
            cwd=folder,
            timeout=240,
        )
        assert result.returncode == 0, f"{page.name}: {result.stdout}\n{result.stderr}"
        # the first sync creates, the one after it (nothing changed) writes nothing
        totals = [
            [int(cell) for cell in re.findall(r"\d+", line)]
            for line in result.stdout.splitlines()
            if line.startswith("│ total")
        ]
        assert len(totals) == 2 and totals[0][0] > 0 and not any(totals[1]), result.stdout

    kind_blocks = _adding_a_kind_blocks()
    ran = {api.where, documents.where, *(block.where for block in kind_blocks)}
    for block in blocks():
        if block.lang == "python" and block.where not in ran:
            _check_python(block)
        elif block.lang == "yaml":
            _check_yaml(block)


def _adding_a_kind_blocks() -> list[Block]:
    """The settings model and the descriptor of 'Adding a system kind'."""
    page = DOCS / "adding-a-kind.md"
    return [
        block_after(page, "## 2. Declare the settings", "python"),
        block_after(page, "## 3. Write the descriptor", "python"),
    ]


def test_adding_a_kind_example_builds_a_kind(tmp_path: Path) -> None:
    """The page's settings model and descriptor, written into a package ``acme_crm`` of
    ``samband.kinds``, make a kind whose settings refuse a misspelt key with a hint."""
    import samband.kinds
    from samband.plugin.settings import settings_problems

    settings_block, descriptor_block = _adding_a_kind_blocks()
    package = tmp_path / "acme_crm"
    package.mkdir()
    (package / "settings.py").write_text(settings_block.code, encoding="utf-8")
    (package / "__init__.py").write_text(descriptor_block.code, encoding="utf-8")
    samband.kinds.__path__.append(str(tmp_path))
    try:
        module = importlib.import_module("samband.kinds.acme_crm")
        kind = module.KIND
        assert kind.name == "acme-crm"
        problems = settings_problems(kind.settings, {"bse_url": "https://acme.example"})
        assert [problem.path for problem in problems] == [("bse_url",)]
        assert problems[0].hint is not None and "base_url" in problems[0].hint
    finally:
        samband.kinds.__path__.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.startswith("samband.kinds.acme_crm")]:
            del sys.modules[name]


def _resolve(words: list[str]) -> tuple[list[str], object]:
    """The command a ``samband …`` line names, and its words after the command path."""
    import typer.main

    from samband.cli import app

    command = typer.main.get_command(app)
    rest = words[1:]
    while hasattr(command, "list_commands") and rest and not rest[0].startswith("-"):
        ctx = command.context_class(command)
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            break
        command, rest = sub, rest[1:]
    return rest, command


def test_every_command_in_the_table_exists() -> None:
    """The commands table names real commands, and every ``samband …`` line of every
    shell or console block uses a command and options that exist."""
    from typer.testing import CliRunner

    from samband.cli import app

    table = (DOCS / "cli.md").read_text(encoding="utf-8").split("| command |", 1)[1]
    commands = set(re.findall(r"`samband ([a-z-]+)", table))
    assert len(commands) >= 15
    for command in sorted(commands):
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, f"samband {command}: {result.output}"

    lines = 0
    for block in blocks():
        if block.lang not in ("sh", "console"):
            continue
        for words in command_lines(block):
            lines += 1
            rest, command = _resolve(words)
            ctx = command.context_class(command)  # type: ignore[attr-defined]
            known = {
                opt
                for param in command.get_params(ctx)  # type: ignore[attr-defined]
                for opt in [*param.opts, *param.secondary_opts]
            }
            if hasattr(command, "list_commands"):
                assert not rest or rest[0].startswith("-"), f"{block.where}: {' '.join(words)}"
            for word in rest:
                if word.startswith("-"):
                    option = word.split("=", 1)[0]
                    assert option in known, f"{block.where}: {' '.join(words)}: {option}"
    assert lines >= 20
