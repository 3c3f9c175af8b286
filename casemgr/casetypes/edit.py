"""Small edits of case-types.yaml text that keep everything else (comments, order, layout) as written.

The process owner's SLA form changes only the `hours:` number on the line the YAML loader says holds it (or adds
`sla: {hours: N}` under a stage that had none); the result is an ordinary candidate that is checked, diffed and
published like an edit in the text editor.
"""

from __future__ import annotations

import re

from casemgr.errors import ValidationFailed
from casemgr.policyfile import load_yaml_text

HOURS_RE = re.compile(r"(?<![a-z_])hours:\s*[0-9][0-9_.]*")
MAX_HOURS = 24 * 365


def _fmt(hours: float) -> str:
    return f"{hours:g}"


def set_sla_hours(text: str, case_type: str, hours: dict[str, float], *, file: str = "case-types.yaml") -> str:
    """`text` with the SLA hours of `case_type`'s stages set to `hours` (stage name -> hours)."""
    loaded = load_yaml_text(text, file)
    types = (loaded.data or {}).get("case_types") or []
    ti = next((i for i, ct in enumerate(types) if isinstance(ct, dict) and ct.get("name") == case_type), None)
    if ti is None:
        raise ValidationFailed(f"no case type {case_type!r} in {file}", field="case_type")
    stages = types[ti].get("stages") or []
    by_name = {s.get("name"): (si, s) for si, s in enumerate(stages) if isinstance(s, dict)}
    lines = text.split("\n")
    inserts: list[tuple[int, str]] = []
    for stage, value in hours.items():
        if stage not in by_name:
            raise ValidationFailed(f"case type {case_type!r} has no stage {stage!r}", field=f"sla_{stage}")
        if not (0 < value <= MAX_HOURS):
            raise ValidationFailed(f"SLA hours for {stage!r} must be between 0 and {MAX_HOURS}", field=f"sla_{stage}")
        si, sd = by_name[stage]
        base = ("case_types", ti, "stages", si)
        sla = sd.get("sla")
        if isinstance(sla, dict) and "hours" in sla:
            n = loaded.lines[base + ("sla", "hours")] - 1
            new, count = HOURS_RE.subn(f"hours: {_fmt(value)}", lines[n], count=1)
            if count != 1:
                raise ValidationFailed(f"cannot edit the SLA of {stage!r} on line {n + 1}", field=f"sla_{stage}")
            lines[n] = new
        elif sla is None:
            n = loaded.lines[base + ("name",)] - 1
            indent = lines[n].index("name")
            inserts.append((n + 1, " " * indent + f"sla: {{hours: {_fmt(value)}}}"))
        else:
            raise ValidationFailed(f"the SLA of {stage!r} is not a mapping with hours", field=f"sla_{stage}")
    for at, line in sorted(inserts, reverse=True):
        lines.insert(at, line)
    return "\n".join(lines)
