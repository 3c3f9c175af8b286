"""Versioned, hot-reloaded documents: rules, the AI policy, and (next) case types, SOPs and macros.

One version is one row of policy_versions (models.PolicyVersion, `kind` from enums.DocumentKind); exactly
one row per kind is active. service.py: check -> diff -> publish (reason and author, audited) -> rollback ->
history, and the shipped file(s) recorded as version 1 before the first publish. live.py: the cheap
hot-reload check (the active version, one indexed query, or file stamps before anything was published).

How a new document kind joins:
1. add its value to enums.DocumentKind (policy_versions.kind is free text: no migration);
2. in the package that owns it, subclass document.DocumentType (several files) or SingleFileType (one file):
   set `kind` and `row_name`, implement `shipped_path()` (its file or directory under the policies dir) and
   `validate(doc, label=)` (return the working form; raise PolicyFileError with file:line problems);
   override `version_of` only if the version must be computed differently;
3. publish and roll back with service.publish(session, TYPE, TYPE.make(files), author=, reason=) and
   service.rollback(...); audit actions are `<kind>.publish|rollback|baseline`;
4. readers keep a live.LiveDocument(TYPE, build) and call .get() (or .refresh() on an interval).

A change request (four eyes) stores the candidate files, reason and author as a draft; on approval by another
lead it calls service.publish(..., approved_by=LEAD), which validates again and records the approver.
"""
