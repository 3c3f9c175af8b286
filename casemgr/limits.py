"""Named length limits: how much of a text is kept where. One constant per concept; cut with these, not [:N].

Column widths are the tables' max_length (casemgr/*/models.py); a cut to fit a column uses the column's
constant here. Excerpts (audit events, error texts) are deliberately short copies of longer data.
"""

from __future__ import annotations

# ---------------------------------------------------------------- column widths

CASE_SUBJECT_CHARS = 500  # cases.subject
CASE_DESCRIPTION_CHARS = 100_000  # a case description or a message body stored as one
TASK_NAME_CHARS = 200  # tasks.name
PARTY_NAME_CHARS = 300  # parties.name / organisation, and a counterparty field
EMAIL_CHARS = 320  # an email address (RFC 5321: 64 + 1 + 255)
FIELD_LABEL_CHARS = 100  # a short free-text case field (contract_kind)
ACTOR_CHARS = 100  # who reviewed / resolved / completed something (the *_by columns)
AI_ACTOR_CHARS = 120  # "ai:<model>" actors and model versions (audit_events.actor, ai_decisions.model_version)
REASON_CODE_CHARS = 60  # ai_decisions.override_reason_code
CHANNEL_CHARS = 20  # messages.channel, quarantine.channel
SOURCE_CHARS = 500  # quarantine.source: a file name, a peer address
HEADER_CHARS = 998  # one RFC 5322 header line: messages.subject, derived Message-IDs
ATTACHMENT_NAME_CHARS = 255  # attachments.filename and content_type
ATTACHMENT_FILENAME_CHARS = 200  # a sanitised attachment file name is cut to this
ATTACHMENT_STEM_CHARS = 180  # the part of a long file name kept before its extension
ATTACHMENT_EXT_CHARS = 15  # an extension longer than this is not treated as one
DOWNLOAD_NAME_CHARS = 150  # the file name offered in Content-Disposition

# ---------------------------------------------------------------- excerpts

AUDIT_SUBJECT_CHARS = 200  # a message subject copied into an audit event
AUDIT_TEXT_CHARS = 2000  # a note body, an error or a reason copied into an audit event or a row
AUDIT_REASON_CHARS = 500  # a short reason (AI status, a discarded item's reason) in an audit event
AUDIT_VALUE_CHARS = 500  # a text value shown in an AI decision's audit event
AUDIT_VALUE_REPR_CHARS = 1000  # a dict/list longer than this (as text) is shown as "(large value)"
AUDIT_LIST_ITEMS = 50  # names listed in one audit event (attachments)
JOB_ERROR_CHARS = 4000  # jobs.last_error
PREVIEW_CHARS = 400  # the raw bytes of a held message shown in the quarantine list

# ---------------------------------------------------------------- AI

AI_TEXT_CHARS = 20000  # a drafted reply or an information request
AI_RATIONALE_CHARS = 1000  # the rationale stored with a suggestion

# ---------------------------------------------------------------- parsed mail

HEADER_LIST_ITEMS = 100  # recipients / References ids kept from one message
PARSE_NOTES_ITEMS = 20  # parser defects noted per message
