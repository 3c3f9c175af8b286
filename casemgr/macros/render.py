"""Macro replies rendered with sandboxed Jinja2: templates see a fixed set of plain values, never objects."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from casemgr.errors import ValidationFailed

# Templates may read exactly these names (see context()).
VARIABLES = frozenset({"case", "customer_name", "customer_first_name", "customer_email", "agent_name", "fields",
                       "due", "today"})

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
                            keep_trailing_newline=False)


def env() -> SandboxedEnvironment:
    return _env


def check(source: str) -> tuple[int, str] | None:
    """(line within the template, message) of the first problem, or None: syntax, and unknown variables."""
    try:
        ast = _env.parse(source)
    except TemplateSyntaxError as exc:
        return (exc.lineno or 1, f"template syntax error: {exc.message}")
    unknown = sorted(meta.find_undeclared_variables(ast) - VARIABLES)
    if unknown:
        line = next((i for i, text in enumerate(source.splitlines(), 1) if unknown[0] in text), 1)
        return (line, f"unknown template variable(s) {', '.join(unknown)}; available: {', '.join(sorted(VARIABLES))}")
    return None


def render(source: str, ctx: dict[str, Any]) -> str:
    try:
        return _env.from_string(source).render(**ctx).strip() + "\n"
    except (UndefinedError, SecurityError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"the macro's reply could not be rendered: {exc}", field="reply") from None
