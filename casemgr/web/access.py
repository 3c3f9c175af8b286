"""Who may do what: every route names one permission here, and this table is the single place roles are granted.

The role x route matrix test reads this table.
"""

from __future__ import annotations

ALL_STAFF = frozenset({"agent", "lead", "governance", "reviewer", "admin", "legal", "finance", "compliance"})

PERMISSIONS: dict[str, frozenset[str]] = {
    "cases.read": ALL_STAFF,
    "cases.write": frozenset({"agent", "lead", "admin", "legal", "finance", "compliance"}),
    "cases.assign": frozenset({"agent", "lead", "admin"}),
    "intake.submit": frozenset({"intake", "agent", "lead", "admin"}),
    "audit.read": frozenset({"reviewer", "governance", "lead", "admin"}),
    "policy.read": frozenset({"governance", "reviewer", "lead", "admin"}),
    "policy.publish": frozenset({"governance"}),
    "rules.publish": frozenset({"governance"}),
    # Change requests (issue 21): drafting needs policy.publish / rules.publish; a different lead decides.
    "changes.read": frozenset({"governance", "reviewer", "lead", "admin"}),
    "changes.decide": frozenset({"governance"}),
    "review.work": frozenset({"reviewer"}),
    "dashboard.read": frozenset({"lead", "admin"}),
    "quarantine.manage": frozenset({"admin"}),
    "outbox.read": frozenset({"agent", "admin"}),  # /admin/outbox: outbound mail, the demo-mode local outbox
    "users.manage": frozenset({"admin"}),
    "security.read": frozenset({"admin"}),
    "account.password": ALL_STAFF,  # one's own password, with the current one (issue 18)
    "ai.decide": frozenset({"agent", "lead", "legal", "finance", "compliance", "reviewer"}),
    # Workspace (issue 20). Bulk: each action still checks cases.write / cases.assign per request.
    "cases.bulk": frozenset({"agent", "lead", "admin", "legal", "finance", "compliance"}),
    "views.read": ALL_STAFF,
    "views.save": ALL_STAFF,  # personal views; shared ones need views.share
    "views.share": frozenset({"lead", "admin"}),
    "notifications.read": ALL_STAFF,
    "profile.edit": ALL_STAFF,
    "customers.read": ALL_STAFF,
    "macros.read": ALL_STAFF,
    "macros.apply": frozenset({"agent", "lead", "admin", "legal", "finance", "compliance"}),
    # Processes as data (issue 22): everyone who reads cases sees the model view; process owners (the
    # governance leads, four eyes through change requests) edit case types and SOPs.
    "process.read": ALL_STAFF,
    "process.publish": frozenset({"governance"}),
}


def roles_for(permission: str) -> frozenset[str]:
    return PERMISSIONS[permission]
