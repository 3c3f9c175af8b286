"""Jinja2 templates (autoescaped) shared by every page room."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True
# Templates ship with the package: no stat() of every template (and of a row template once per row) per render.
templates.env.auto_reload = False


@pass_context
def _can(context: Any, permission: str) -> bool:
    """`can('perm')` in any template: whether the page's principal holds a role access.py grants for it."""
    from casemgr.web.access import roles_for

    principal = context.get("principal")
    return principal is not None and principal.has_any(roles_for(permission))


templates.env.globals["can"] = _can
