"""SOP links: a task may only show a work instruction from `policies/sop/` (issue 18).

A task's `sop` was joined to the policies folder and shown to agents, so a task naming `ai-policy.yaml`, a
rules file or `../…` displayed it. Every SOP link is resolved here (symbolic links followed) and accepted only
when it is a Markdown file inside `<policies dir>/sop/`: case types refuse others with file:line, the API
refuses them with 422, and the case page shows nothing for one that slipped in earlier.

Links are written `sop/<name>.md` (case types) or `policies/sop/<name>.md` (rules); both mean the same file.
"""

from __future__ import annotations

from pathlib import Path

SOP_DIR = "sop"


def resolve(policies_dir: Path, link: str | None) -> Path | None:
    """The SOP file `link` names, or None when it is missing, not Markdown or outside policies/sop/."""
    if not link or "\x00" in link:
        return None
    rel = link.removeprefix("policies/")
    root = (policies_dir / SOP_DIR).resolve()
    try:
        path = (policies_dir / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if root not in path.parents or path.suffix != ".md" or not path.is_file():
        return None
    return path


def problem(policies_dir: Path, link: str) -> str | None:
    """Why `link` is refused as an SOP link, or None."""
    if resolve(policies_dir, link) is not None:
        return None
    rel = link.removeprefix("policies/")
    try:
        inside = (policies_dir / SOP_DIR).resolve() in (policies_dir / rel).resolve().parents
    except (OSError, RuntimeError, ValueError):
        inside = False
    if not inside or not rel.endswith(".md"):
        return f"SOP link {link!r} must name a Markdown file inside policies/sop/ (e.g. sop/complaint-triage.md)"
    return f"SOP file not found: {link}"
