"""System kinds: descriptors from entry points, strict typed settings, one RateLimit."""

from __future__ import annotations

from pathlib import Path

import pytest

from samband.config.model import SystemConfig
from samband.config.validate import validate_file
from samband.errors import ConnectorError
from samband.plugin import KindDescriptor, RateLimit, all_kinds, get_kind, kind_names
from samband.plugin.settings import settings_problems

BUILT_IN = {"poweroffice-go", "exact-online", "webcrm", "crmoffice", "sql", "rest", "memory"}


def test_every_built_in_kind_comes_from_an_entry_point() -> None:
    kinds = all_kinds()
    assert set(kinds) >= BUILT_IN
    for name, kind in kinds.items():
        assert isinstance(kind, KindDescriptor) and kind.name == name
        assert kind.connector_class().kind == name
    assert "memory" not in kind_names()  # the test kind stays out of help texts


def test_a_descriptor_imports_no_connector_until_asked() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from samband.plugin import all_kinds\n"
        "from samband.config.validate import check\n"
        "all_kinds()\n"
        "loaded = [m for m in sys.modules if m.startswith('samband.kinds.') and "
        "(m.endswith('.connector') or '.connector.' in m or m.endswith('.sandbox'))]\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("value", "bare_per", "expected"),
    [
        (10, 1.0, RateLimit(calls=10, per=1.0)),
        (250, 60.0, RateLimit(calls=250, per=60.0)),
        ("250", 60.0, RateLimit(calls=250, per=60.0)),
        ("250/minute", 1.0, RateLimit(calls=250, per=60.0)),
        ("10/s", 60.0, RateLimit(calls=10, per=1.0)),
        ({"calls": 100, "period": 60}, 1.0, RateLimit(calls=100, per=60.0)),
        ({"calls": 5, "per": 2}, 60.0, RateLimit(calls=5, per=2.0)),
        (0, 60.0, RateLimit(calls=0, per=60.0)),
    ],
)
def test_rate_limits_parse_with_the_old_meaning_of_a_bare_number(
    value: object, bare_per: float, expected: RateLimit
) -> None:
    assert RateLimit.parse(value, bare_per) == expected


def test_a_bare_rate_limit_keeps_each_kinds_old_unit() -> None:
    def limit(kind: str, value: object) -> RateLimit:
        settings = get_kind(kind).settings.model_validate({"rate_limit": value})
        return settings.rate_limit  # type: ignore[attr-defined, no-any-return]

    assert limit("poweroffice-go", 10) == RateLimit(calls=10, per=1.0)
    assert limit("rest", 5) == RateLimit(calls=5, per=1.0)
    assert limit("webcrm", 250) == RateLimit(calls=250, per=60.0)
    assert limit("crmoffice", 250) == RateLimit(calls=250, per=60.0)
    assert not limit("webcrm", 0).paced


def test_unknown_settings_are_refused_with_the_closest_key() -> None:
    webcrm = get_kind("webcrm")
    [problem] = settings_problems(webcrm.settings, {"bse_url": "https://x"})
    assert problem.message == "unknown key 'bse_url'"
    assert problem.hint == "did you mean 'base_url'?"
    [problem] = settings_problems(webcrm.entity_type_settings, {"externl_ref": "X"})
    assert problem.hint == "did you mean 'external_ref'?"
    # a ${VAR} without a default cannot be checked before a run; with one, its default is
    assert settings_problems(webcrm.settings, {"page_size": "${SIZE}"}) == []
    [problem] = settings_problems(webcrm.settings, {"page_size": "${SIZE:-many}"})
    assert problem.path == ("page_size",)


def test_a_connector_refuses_an_unknown_setting() -> None:
    config = SystemConfig(kind="webcrm", base_url="http://127.0.0.1:1", ratelimit=3)
    with pytest.raises(ConnectorError, match="did you mean 'rate_limit'"):
        get_kind("webcrm").connector_class()("web", config, {"api_token": "t"})


def test_validate_points_at_an_unknown_key_below_a_system(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "systems:\n"
        "  web:\n"
        "    kind: webcrm\n"
        "    base_ulr: https://api.webcrm.com\n"
        "    entity_types:\n"
        "      Persons: {external_reff: PersonCustom1}\n",
        encoding="utf-8",
    )
    problems = [str(p) for p in validate_file(path) if p.severity == "error"]
    assert any(
        p.startswith(f"{path}:4:5:") and "'base_ulr'" in p and "did you mean 'base_url'?" in p
        for p in problems
    ), problems
    assert any(
        p.startswith(f"{path}:6:17:") and "did you mean 'external_ref'?" in p for p in problems
    ), problems
