"""Server-rendered SVG charts (pygal), shipped as data: URIs in <img> so no script runs and no CDN is touched."""

from __future__ import annotations

import base64
import re
from typing import Any

import pygal
from pygal.style import Style

STYLE = Style(background="white", plot_background="white", font_family="system-ui, sans-serif",
              colors=("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed"))


def _config(**kw: Any) -> dict[str, Any]:
    # js=[]: pygal would otherwise link its tooltip script from a CDN.
    return {"style": STYLE, "js": [], "disable_xml_declaration": True, "width": 760, "height": 320,
            "show_legend": True, "legend_at_bottom": True, "print_values": False, "explicit_size": True,
            "truncate_label": 28, **kw}


def _data_uri(chart: Any) -> str:
    svg = chart.render()
    if isinstance(svg, bytes):
        svg = svg.decode("utf-8")
    # Images never run scripts, but ship none anyway: pygal's tooltip config script and comments go.
    svg = re.sub(r"<script\b.*?</script>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S).encode("utf-8")
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def backlog_chart(rows: list[dict[str, Any]]) -> str:
    chart = pygal.HorizontalBar(**_config(title="Open cases by stage", show_legend=False,
                                          height=max(200, 24 * len(rows) + 80)))
    chart.x_labels = [f"{r['case_type']}: {r['stage']}" for r in rows]
    chart.add("open", [r["open"] for r in rows])
    return _data_uri(chart)


def cycle_chart(rows: list[dict[str, Any]]) -> str:
    chart = pygal.Bar(**_config(title="Cycle time per stage (hours)", x_label_rotation=30))
    chart.x_labels = [f"{r['case_type']}: {r['stage']}" for r in rows]
    chart.add("median", [r["median_h"] for r in rows])
    chart.add("p90", [r["p90_h"] for r in rows])
    return _data_uri(chart)


def trend_chart(rows: list[dict[str, Any]]) -> str:
    chart = pygal.Line(**_config(title="SLA breach rate by day", show_legend=False, x_label_rotation=30,
                                 show_minor_x_labels=False, range=(0, 1)))
    chart.x_labels = [r["day"] for r in rows]
    chart.x_labels_major = [r["day"] for r in rows][:: max(1, len(rows) // 10)]
    chart.add("breach rate", [r["breach_rate"] for r in rows])
    return _data_uri(chart)
