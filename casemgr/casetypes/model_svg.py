"""The model view: a case type drawn as SVG on the server (issue 22: no CDN, no JavaScript library).

Stages are boxes top to bottom in their listed order, each with its owner role, SLA and tasks; allowed
transitions are arcs: forward moves on the right, moves back (rework, reopen) on the left. With two versions,
the union is drawn and every part carries its casemgr.casetypes.enums.DiffStatus as a class (added, removed,
changed, same) and a matching colour, so the picture reads the same in the page, as a file and in a test that
parses it. Only presentation attributes are used (no <style>): the page's Content-Security-Policy allows no
inline styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from casemgr.casetypes.enums import DiffStatus
from casemgr.casetypes.modeldiff import ModelDiff, StageDiff, sla_text
from casemgr.casetypes.schema import CaseTypeDef

BOX_W = 400
LINE = 17
HEAD = 50
GAP = 30
MAX_TASKS = 6
ARC_BASE = 26
ARC_STEP = 18
TOP = 56

STROKE = {DiffStatus.SAME: "#57606a", DiffStatus.ADDED: "#1a7f37", DiffStatus.REMOVED: "#cf222e",
          DiffStatus.CHANGED: "#9a6700"}
FILL = {DiffStatus.SAME: "#f6f8fa", DiffStatus.ADDED: "#dafbe1", DiffStatus.REMOVED: "#ffebe9",
        DiffStatus.CHANGED: "#fff8c5"}
TEXT = {DiffStatus.SAME: "#24292f", DiffStatus.ADDED: "#116329", DiffStatus.REMOVED: "#a40e26",
        DiffStatus.CHANGED: "#7d4e00"}


@dataclass
class _Box:
    d: StageDiff
    index: int
    y: float
    h: float

    @property
    def mid(self) -> float:
        return self.y + self.h / 2


def _a(value: object) -> str:
    return quoteattr(str(value))


def _height(d: StageDiff) -> float:
    shown = min(len(d.tasks), MAX_TASKS) + (1 if len(d.tasks) > MAX_TASKS else 0)
    return HEAD + LINE * shown + (8 if shown else 0)


def _markers() -> str:
    out = ["<defs>"]
    for st, colour in STROKE.items():
        out.append(f'<marker id="arrow-{st}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                   f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/>'
                   "</marker>")
    out.append("</defs>")
    return "".join(out)


def _stage(box: _Box, x: float, ct: CaseTypeDef) -> str:
    d, sd = box.d, box.d.stage
    classes = ["stage", str(d.status)] + (["final"] if sd.final else []) + (
        ["initial"] if sd.name == ct.first_stage else [])
    words = [f"{k}: {a} → {b}" for k, (a, b) in d.changed.items()]
    title = f"{sd.label or sd.name} ({d.status})" + (": " + "; ".join(words) if words else "")
    parts = [f'<g class={_a(" ".join(classes))} data-stage={_a(sd.name)} id={_a("stage-" + sd.name)}>',
             f"<title>{escape(title)}</title>",
             f'<rect class="stage-box" x="{x}" y="{box.y}" width="{BOX_W}" height="{box.h}" rx="8" '
             f'fill="{FILL[d.status]}" stroke="{STROKE[d.status]}" stroke-width="{2.5 if sd.final else 1.5}"'
             + (' stroke-dasharray="6 4"' if d.status == DiffStatus.REMOVED else "") + "/>"]
    ty = box.y + 20
    name = escape(sd.label or sd.name) + (f" ({escape(sd.name)})" if sd.label else "")
    flags = " · final" if sd.final else (" · start" if sd.name == ct.first_stage else "")
    parts.append(f'<text class="stage-name" x="{x + 12}" y="{ty}" font-family="sans-serif" font-size="14" '
                 f'font-weight="bold" fill="{TEXT[d.status]}">{name}{escape(flags)}</text>')
    ty += LINE + 3
    owner_st, sla_st = d.attr("owner"), d.attr("SLA")
    owner = f"owner: {sd.owner_role or 'none'}"
    if owner_st == DiffStatus.CHANGED:
        owner += f" (was {d.changed['owner'][0]})"
    sla = sla_text(sd)
    if sla_st == DiffStatus.CHANGED:
        sla += f" (was {d.changed['SLA'][0].removeprefix('SLA ')})"
    hours = f' data-hours="{sd.sla.hours:g}"' if sd.sla else ""
    parts.append(f'<text x="{x + 12}" y="{ty}" font-family="sans-serif" font-size="12">'
                 f'<tspan class={_a("owner " + str(owner_st))} fill="{TEXT[owner_st]}"'
                 f'{" font-weight=" + _a("bold") if owner_st != DiffStatus.SAME else ""}>{escape(owner)}</tspan>'
                 f'<tspan fill="#57606a"> · </tspan>'
                 f'<tspan class={_a("sla " + str(sla_st))}{hours} fill="{TEXT[sla_st]}"'
                 f'{" font-weight=" + _a("bold") if sla_st != DiffStatus.SAME else ""}>{escape(sla)}</tspan></text>')
    templates = {t.name: t for t in sd.tasks}
    if d.old is not None:
        templates = {**{t.name: t for t in d.old.tasks}, **templates}
    for i, (task, st) in enumerate(d.tasks.items()):
        ty += LINE
        if i == MAX_TASKS:
            parts.append(f'<text class="task more" x="{x + 20}" y="{ty}" font-family="sans-serif" font-size="12" '
                         f'fill="#57606a">+ {len(d.tasks) - MAX_TASKS} more</text>')
            break
        tpl = templates.get(task)
        role = f" ({tpl.role})" if tpl is not None and tpl.role else ""
        kind = f" [{tpl.kind}]" if tpl is not None and tpl.kind != "task" else ""
        mark = {DiffStatus.ADDED: "+ ", DiffStatus.REMOVED: "− "}.get(st, "• ")
        parts.append(f'<text class={_a("task " + str(st))} data-task={_a(task)} x="{x + 20}" y="{ty}" '
                     f'font-family="sans-serif" font-size="12" fill="{TEXT[st]}"'
                     + (' text-decoration="line-through"' if st == DiffStatus.REMOVED else "")
                     + f">{escape(mark + task + role + kind)}</text>")
    parts.append("</g>")
    return "".join(parts)


def _arcs(boxes: dict[str, _Box], transitions: dict[tuple[str, str], DiffStatus], x: float) -> tuple[str, float, float]:
    """The transition arcs, and how far they reach left and right of the boxes."""
    out: list[str] = []
    left = right = 0.0
    ordered = sorted(transitions.items(), key=lambda kv: (abs(boxes[kv[0][0]].index - boxes[kv[0][1]].index)
                                                          if kv[0][0] in boxes and kv[0][1] in boxes else 0, kv[0]))
    fan: dict[str, int] = {}
    for (a, b), st in ordered:
        if a not in boxes or b not in boxes or a == b:
            continue
        src, dst = boxes[a], boxes[b]
        forward = dst.index > src.index
        span = abs(dst.index - src.index)
        bulge = ARC_BASE + ARC_STEP * span
        edge = x + BOX_W if forward else x
        k = fan[a + str(forward)] = fan.get(a + str(forward), -1) + 1
        y1 = src.mid + (6 * k if forward else -6 * k) - (4 if forward else -4)
        y2 = dst.mid + (4 if forward else -4)
        cx = edge + bulge if forward else edge - bulge
        if forward:
            right = max(right, bulge)
        else:
            left = max(left, bulge)
        cls = f"transition {st} {'forward' if forward else 'back'}"
        out.append(f'<path class={_a(cls)} data-from={_a(a)} data-to={_a(b)} '
                   f'd="M{edge},{y1:.1f} C{cx},{y1:.1f} {cx},{y2:.1f} {edge},{y2:.1f}" fill="none" '
                   f'stroke="{STROKE[st]}" stroke-width="{2 if st != DiffStatus.SAME else 1.4}"'
                   + (' stroke-dasharray="5 4"' if st == DiffStatus.REMOVED else "")
                   + f' marker-end="url(#arrow-{st})"><title>{escape(f"{a} → {b} ({st})")}</title></path>')
    return "".join(out), left, right


def _legend(y: float) -> str:
    items = [(DiffStatus.ADDED, "added"), (DiffStatus.REMOVED, "removed"), (DiffStatus.CHANGED, "changed"),
             (DiffStatus.SAME, "unchanged")]
    out = [f'<g class="legend" transform="translate(12,{y})">']
    for i, (st, word) in enumerate(items):
        out.append(f'<rect x="{i * 110}" y="0" width="14" height="14" rx="3" fill="{FILL[st]}" '
                   f'stroke="{STROKE[st]}"/><text x="{i * 110 + 20}" y="12" font-family="sans-serif" '
                   f'font-size="12" fill="{TEXT[st]}">{word}</text>')
    out.append("</g>")
    return "".join(out)


def render(ct: CaseTypeDef, diff: ModelDiff, *, title: str) -> str:
    """The SVG document (a string, safe to embed in a page: every text is escaped)."""
    boxes: dict[str, _Box] = {}
    y = float(TOP)
    for i, d in enumerate(diff.stages):
        h = _height(d)
        boxes[d.name] = _Box(d, i, y, h)
        y += h + GAP
    n = max((b.index for b in boxes.values()), default=0) + 1
    reach = ARC_BASE + ARC_STEP * n + 16
    x = float(reach)
    arcs, _, right = _arcs(boxes, diff.transitions, x)
    width = int(x + BOX_W + max(right, 40) + 24)
    height = int(y + (20 if not diff.compared else 34))
    body = [f'<svg xmlns="http://www.w3.org/2000/svg" class="process-model" data-case-type={_a(ct.name)} '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-labelledby="model-title-{escape(ct.name)}">',
            f'<title id="model-title-{escape(ct.name)}">{escape(title)}</title>', _markers(),
            f'<text class="model-title" x="12" y="24" font-family="sans-serif" font-size="16" font-weight="bold" '
            f'fill="#24292f">{escape(title)}</text>',
            '<text x="12" y="42" font-family="sans-serif" font-size="11" fill="#57606a">forward moves on the '
            'right, moves back (rework, reopen) on the left</text>',
            arcs]
    body += [_stage(b, x, ct) for b in boxes.values()]
    if diff.compared:
        body.append(_legend(y - 8))
    body.append("</svg>")
    return "".join(body)
