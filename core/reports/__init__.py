"""Weekly, monthly and quarterly follow-up reports (DOMAIN.md §3, §7; DESIGN.md §7).

``period``   report periods in a site's timezone (the Monday rule, quarters)
``queries``  every figure as a portable SQL aggregate
``build``    one report as one plain dict: the JSON shape all formats share
``render``   CSV, JSON and XLSX; ``table`` the terminal; ``html`` + ``svg`` the page
``labels``   every label and definition in zh_CN and en (docs/metrics.md in prose)
"""

from __future__ import annotations

from core.reports.build import ReportRequest, build_report, scope_from_plugins
from core.reports.period import KINDS, Period, last_complete, parse_period

__all__ = [
    "KINDS",
    "Period",
    "ReportRequest",
    "build_report",
    "last_complete",
    "parse_period",
    "scope_from_plugins",
]
