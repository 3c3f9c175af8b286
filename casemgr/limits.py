"""Named length limits: how much of a text is kept where. One constant per concept; use these, not [:N]."""

from __future__ import annotations

# Audit events describe a change; they never carry whole documents.
AUDIT_VALUE_CHARS = 500  # a text value shown in an AI decision's audit event
AUDIT_VALUE_REPR_CHARS = 1000  # a dict/list longer than this (as text) is shown as "(large value)"
AUDIT_TEXT_CHARS = 2000  # a note body, an excerpt or a reason copied into an audit event

# Text the AI proposes.
AI_TEXT_CHARS = 20000  # a drafted reply or an information request

# Names shown in lists.
TASK_NAME_CHARS = 200  # a task's name (the column holds 200)
