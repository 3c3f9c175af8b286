"""Macros / canned replies (issue 20): policies/macros/*.yaml, one macro per file, validated with file:line
errors; a reply rendered with sandboxed Jinja2 from case fields and the customer name, plus field changes,
tasks and an optional transition, applied as one audited case change with the case version.

(Macros will join casemgr.documents as a versioned kind later; for now they load from files.)"""
