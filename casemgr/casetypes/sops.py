"""The SOPs and work instructions in force, and the version a task is done under (issue 22).

In force is the active published SOP version (casemgr.casetypes.documents.SOPS), else the files inside
policies/sop/. A link is looked up by its name below sop/ in that version: a dictionary look-up, so nothing
outside the SOP set can be shown (issue 18); before anything is published the file is resolved on disk by
casemgr.casetypes.sop as before.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from casemgr import runtime
from casemgr.casetypes import sop as sop_links
from casemgr.casetypes.documents import SOPS, sop_name
from casemgr.documents.document import Document
from casemgr.documents.live import LiveDocument

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0


def _build(doc: Document, label: str) -> Document:
    SOPS.validate(doc, label=label)
    return doc


def new_live_sops() -> LiveDocument[Document]:
    """The context's live SOP set (casemgr.runtime.Runtime.sops)."""
    return LiveDocument(SOPS, _build, interval_s=CHECK_INTERVAL_S)


def _live() -> LiveDocument[Document]:
    return runtime.current().sops


def in_force(session: Any | None = None) -> Document | None:
    """The SOP document in force, or None when there is none (no SOP folder and nothing published)."""
    try:
        return _live().get(session)
    except Exception as exc:  # noqa: BLE001 - no SOP files at all: tasks simply show no instruction
        log.debug("no SOPs in force: %s", exc)
        return None


def _published(session: Any | None = None) -> Document | None:
    """The SOP version in force when one was published (None: the files on disk are in force)."""
    doc = in_force(session)
    key = _live().key
    return doc if doc is not None and key and key[0] == "db" else None


def current_version(session: Any | None = None) -> str | None:
    """The version a task completed now is done under."""
    doc = in_force(session)
    return doc.version if doc is not None else None


def sop_text(link: str | None, policies_dir: Path | None = None, session: Any | None = None) -> str | None:
    if not link:
        return None
    doc = _published(session)
    if doc is not None:
        name = sop_name(link)
        return doc.files.get(name) if name else None
    from casemgr.config import get_settings

    path = sop_links.resolve(Path(policies_dir or get_settings().policies_dir), link)  # only inside policies/sop/
    return path.read_text(encoding="utf-8") if path is not None else None


def text_of_version(session: Any, link: str | None, version: str | None) -> str | None:
    """The text of `link` as it was in SOP version `version` (what a task was done under)."""
    from casemgr.documents.live import _row_of_version

    name = sop_name(link)
    if not name or not version:
        return None
    row = _row_of_version(session, SOPS.kind, version)
    if row is None:
        return None
    return SOPS.from_row(row).files.get(name)


def link_problem(link: str, policies_dir: Path) -> str | None:
    """Why a case type's task may not link `link`: it must name an SOP of the version in force."""
    doc = _published()
    if doc is not None:
        name = sop_name(link)
        if name and name in doc.files:
            return None
        if name:
            return f"SOP file not found in the SOP version in force ({doc.version}): {link}"
    return sop_links.problem(policies_dir, link)
