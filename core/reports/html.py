"""The report as one self-contained HTML page: inline CSS and SVG; no script, network, font."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from core.reports.labels import label
from core.reports.render import (
    HEADLINE,
    LIST_COLUMNS,
    column_label,
    list_cell,
    num,
    pct,
    running_note,
    show,
    show_delta,
    status_label,
)
from core.reports.svg import bar_chart, line_chart

TEMPLATES = Path(__file__).parent / "templates"


def render_html(report: dict[str, Any]) -> str:
    loc = report["period"]["locale"]
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    charts = {
        "sites": Markup(
            bar_chart(
                [(r["label"], r["follow_up_rate"], r["due"] < 30) for r in report["sites"]],
                title=label("chart_follow_up_by_site", loc),
                empty=label("no_data", loc),
                width=520,
            )
        ),
        "satisfaction": Markup(
            bar_chart(
                [(r["label"], r["top2_rate"], r["small_sample"]) for r in report["satisfaction"]],
                title=label("chart_satisfaction", loc),
                empty=label("no_data", loc),
                width=520,
            )
        ),
        "trend": "" if not report["trend"] else Markup(
            line_chart(
                [r["period"] for r in report["trend"]],
                [
                    (
                        label("follow_up_rate", loc),
                        "#2f6fb3",
                        [r["follow_up_rate"] for r in report["trend"]],
                    ),
                    (label("coverage", loc), "#e08a2c", [r["coverage"] for r in report["trend"]]),
                ],
                title=label("chart_trend", loc),
                width=1060,
            )
        ),
    }
    return env.get_template("report.html.j2").render(
        r=report,
        loc=loc,
        L=lambda key: label(key, loc),
        charts=charts,
        headline=HEADLINE,
        pct=pct,
        num=num,
        show=show,
        show_delta=show_delta,
        status_label=status_label,
        list_cell=list_cell,
        running_note=running_note,
        list_columns=LIST_COLUMNS,
        column_label=lambda column: column_label(column, loc),
    )
