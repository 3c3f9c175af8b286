"""Every setting is documented in docs/settings.md (as Datasette's test_settings_are_documented does)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from casemgr.config import Settings

pytestmark = pytest.mark.no_db  # runs no SQL: the PostgreSQL run leaves it out (scripts/test.sh)

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
PREFIX = "CASEMGR_"


def _sections() -> dict[str, str]:
    """`### CASEMGR_NAME` heading -> the text up to the next heading."""
    parts = re.split(r"^#{2,3} ", DOC.read_text(encoding="utf-8"), flags=re.M)
    return {p.split("\n", 1)[0].strip(): p.split("\n", 1)[1] for p in parts[1:] if p.startswith(PREFIX)}


def _env_name(field: str) -> str:
    return PREFIX + field.upper()


def _doc_default(value: Any) -> str | None:
    """How docs/settings.md writes a default; None when the default is computed (a factory) or a path."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float | str):
        return f"`{value}`"
    if isinstance(value, list):
        return "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
    return None


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_setting_is_documented(field: str) -> None:
    sections = _sections()
    name = _env_name(field)
    assert name in sections, f"{name} has no '### {name}' section in docs/settings.md"
    text = sections[name]
    defaults = re.findall(r"^Default: (.+)$", text, flags=re.M)
    assert len(defaults) == 1, f"{name}: the section needs exactly one 'Default:' line"
    info = Settings.model_fields[field]
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    expected = _doc_default(value)
    if expected is not None:
        assert defaults[0].strip() == expected, f"{name}: docs say {defaults[0]!r}, the code's default is {expected}"
    assert len(text.split("Default:")[0].split()) >= 5, f"{name}: say what the setting means"


def test_no_documented_setting_is_stale() -> None:
    fields = {_env_name(f) for f in Settings.model_fields}
    stale = sorted(set(_sections()) - fields)
    assert not stale, f"docs/settings.md documents settings that do not exist: {stale}"
