"""Rendering a report dict as a terminal table, JSON, CSV, XLSX or HTML.

CSV and the XLSX "figures" sheet share one long, stable layout: one row per
value, ``section, group, key, value`` (e.g. ``figures,,coverage,0.8571`` or
``satisfaction,overall,mean,3.5``), so a script finds a figure by its keys
whatever else the report grows. Lists get their own sheets in XLSX (and
``lists.<name>`` sections with the row number as group in CSV). Free text never
becomes a formula: CSV cells go through :func:`core.cli.output.safe_cell`, and
the workbook is written with ``strings_to_formulas`` off.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.cli.output import BOM, safe_cell, to_json
from core.reports.labels import DIMENSIONS, LABELS, STATUSES, label
from core.reports.queries import COUNTS

LIST_COLUMNS = {
    "unreachable": (
        "task_id",
        "patient_id",
        "patient_name",
        "phone",
        "site",
        "procedure",
        "milestone",
        "due_at",
        "status",
        "attempts",
        "last_outcome",
        "last_attempt_at",
    ),
    "suggestions": ("date", "patient_id", "patient_name", "phone", "site", "task_id", "text"),
    "open_complaints": (
        "complaint_id",
        "patient_id",
        "patient_name",
        "phone",
        "site",
        "category",
        "staff",
        "status",
        "opened_at",
        "deadline",
        "overdue",
        "description",
    ),
    "open_escalations": (
        "escalation_id",
        "patient_id",
        "patient_name",
        "phone",
        "site",
        "severity",
        "assignee",
        "status",
        "escalated_at",
        "handle_by",
        "overdue",
        "reason",
    ),
}
# a list column whose header is not its own label
_COLUMN_LABELS = {"staff": "staff_member"}


def column_label(column: str, locale: str) -> str:
    return label(_COLUMN_LABELS.get(column, column), locale)


# list sections of the report and the field that names each row's group
_GROUP_FIELD = {
    "satisfaction": "dimension",
    "complaints.by_category": "category",
    "staff": "staff",
    "coordinators": "coordinator",
    "channels": "channel",
    "breakdown": "key",
    "sites": "key",
    "trend": "period",
}
_SKIP = {"label"}  # localized text is not a figure: CSV keeps stable values only


# -- long layout (CSV and the figures sheet) -------------------------------------------------------
def long_rows(report: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    for section, value in report.items():
        if section == "lists":
            for name, rows in value.items():
                for i, row in enumerate(rows, 1):
                    for key in LIST_COLUMNS[name]:
                        yield f"lists.{name}", str(i), key, row.get(key)
        elif isinstance(value, dict):
            yield from _dict_rows(section, "", value)
        elif isinstance(value, list):
            yield from _list_rows(section, value)


def _dict_rows(
    section: str, group: str, data: dict[str, Any]
) -> Iterator[tuple[str, str, str, Any]]:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _dict_rows(section, key, value)
        elif isinstance(value, list):
            if value and isinstance(value[0], dict):  # e.g. complaints.by_category, followups.sweep.by_site
                yield from _list_rows(f"{section}.{group}.{key}" if group else f"{section}.{key}", value)
            else:
                yield section, group, key, ";".join(map(str, value))
        else:
            yield section, group, key, value


def _list_rows(section: str, rows: list[dict[str, Any]]) -> Iterator[tuple[str, str, str, Any]]:
    field = _GROUP_FIELD.get(section)
    for i, row in enumerate(rows, 1):
        group = str(row.get(field)) if field else str(i)
        for key, value in row.items():
            if key != field and key not in _SKIP:
                yield section, group, key, value


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return safe_cell(value)


def render_csv(report: dict[str, Any], *, bom: bool = True) -> str:
    """The long layout with its machine keys; UTF-8 BOM first unless ``bom=False`` (Excel needs it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "group", "key", "value"])
    for section, group, key, value in long_rows(report):
        writer.writerow([section, safe_cell(group), key, _csv_value(value)])
    return (BOM if bom else "") + buffer.getvalue()


def render_json(report: dict[str, Any]) -> str:
    return to_json(report) + "\n"


# -- XLSX ------------------------------------------------------------------------------------------
SHEETS = ("figures", "unreachable", "suggestions", "open_complaints", "open_escalations", "definitions", "data")
_TIME_COLUMNS = ("due_at", "last_attempt_at", "opened_at", "deadline", "escalated_at", "handle_by")
_STATUS_KINDS = {"open_complaints": "complaint", "open_escalations": "escalation"}


def sheet_names(locale: str) -> list[str]:
    """The workbook's sheets as the reader names them (the last, ``data``, is the long layout for machines)."""
    return [label(name, locale) for name in SHEETS]


def list_cell(name: str, column: str, row: dict[str, Any], locale: str) -> Any:
    """A list's value as a person reads it (labels, not keys; times to the minute): table, HTML and XLSX."""
    if column == "last_outcome":
        return row.get("last_outcome_label") or ""
    if column == "category":
        return row.get("category_label") or row.get("category") or ""
    if column == "status":
        return status_label(row["status"], locale, _STATUS_KINDS.get(name, "task"))
    if column == "severity":
        return label(f"severity:{row['severity']}", locale)
    if column == "overdue":
        return label("overdue", locale) if row.get("overdue") else ""
    if column in ("procedure", "milestone"):
        return row.get(f"{column}_label") or row.get(column) or ""
    if column in _TIME_COLUMNS:
        return (row.get(column) or "")[:16].replace("T", " ")
    return row.get(column)


def running_note(period: dict[str, Any], locale: str) -> str:
    """The mark of a period not over yet ("" when it is complete)."""
    if not period.get("running"):
        return ""
    return label("running", locale).format(through=(period["through"] or "")[:16].replace("T", " "))


def write_xlsx(report: dict[str, Any], path: Path) -> None:
    """Sheets in the reader's language: the figures as on screen, one per list, the definitions, and the
    long layout (``data``: section, group, key, value) for machines. Headings are frozen, columns sized
    to their contents, strings never formulas.

    Built in memory and written at once: a path that cannot be written raises ``OSError``
    (as for the other formats) and leaves no half-written workbook.
    """
    import xlsxwriter

    locale = report["period"]["locale"]
    L = lambda key: label(key, locale)  # noqa: E731
    names = dict(zip(SHEETS, sheet_names(locale), strict=True))
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    try:
        bold = workbook.add_format({"bold": True})
        title = workbook.add_format({"bold": True, "font_size": 13})
        percent = workbook.add_format({"num_format": "0.0%"})
        p = report["period"]

        ws = _Sheet(workbook.add_worksheet(names["figures"]))
        ws.row([f"{p['chain']} · {p['title']} · {p['label']}"], title, measure=False)
        ws.row([f"{L('period')}: {p['first_day']} – {p['last_day']} ({p['timezone']})"
                + (f" · {running_note(p, locale)}" if p.get("running") else "")], measure=False)
        ws.row([L("metric"), p["label"], p["previous"], L("delta")], bold)
        ws.sheet.freeze_panes(ws.r, 1)
        for name in HEADLINE:
            rate = name.endswith("_rate") or name == "coverage"
            ws.row([L(name), report["figures"][name], report["previous"][name], report["delta"].get(name)],
                   formats=[None, percent if rate else None, percent if rate else None,
                            percent if rate else None])
        ws.r += 1
        ws.row([L("satisfaction"), L("n"), L("mean"), L("top2_rate")], bold)
        for row in report["satisfaction"]:
            ws.row([row["label"], row["n"], row["mean"], row["top2_rate"]], formats=[None, None, None, percent])
        ws.r += 1
        c, e, sales = report["complaints"], report["escalations"], report["sales"]
        ws.row([f"{L('complaints')} · {L('escalations')} · {L('sales')}", L("value")], bold)
        for key in ("opened", "responded_within_3d", "overdue", "closed"):
            ws.row([f"{L('complaints')}: {L(key)}", c[key]])
        ws.row([f"{L('complaints')}: {L('responded_within_3d_rate')}", c["responded_within_3d_rate"]],
               formats=[None, percent])
        for row in c["by_category"]:
            ws.row([f"{L('complaints')}: {row['label']}", row["opened"]])
        for key in ("opened", "resolved", "median_hours_to_resolve"):
            ws.row([f"{L('escalations')}: {L(key)}", e[key]])
        for key in ("leads", "followed_up", "booked"):
            ws.row([f"{L('sales')}: {L(key)}", sales[key]])
        ws.row([f"{L('sales')}: {L('conversion_rate')}", sales["conversion_rate"]], formats=[None, percent])
        if report["staff"]:
            ws.r += 1
            ws.row([L("comment"), L("praise"), L("criticism")], bold)
            for row in report["staff"]:
                ws.row([row["staff"], row["praise"], row["criticism"]])
        if report["coordinators"]:
            ws.r += 1
            ws.row([L("coordinator"), L("attempts"), L("reached"), L("calling_hours"), L("calls_per_hour"),
                    L("qa_reviewed"), L("qa_avg_score")], bold)
            for row in report["coordinators"]:
                ws.row([f"{row['name']} ({row['coordinator']})", row["attempts"], row["reached"],
                        row["calling_hours"], row["calls_per_hour"], row.get("qa_reviewed"), row.get("qa_avg_score")])
        extra = report.get("followups")
        if extra:
            ws.r += 1
            ws.row([L("followups"), L("value")], bold)
            ws.row([L("reviews_booked"), extra["bookings"]["reviews_booked"]])
            for reason, n in extra["interruptions"]["by_reason"].items():
                ws.row([f"{L('interruptions')}: {L('reason.' + reason)}", n])
            ws.row([L("referrals_accepted"), extra["referrals"]["accepted"]])
            ws.row([L("referrals_referred"), extra["referrals"]["referred"]])
            ws.row([L("sweep_swept"), extra["sweep"]["swept"]])
            ws.row([L("sweep_recovered"), extra["sweep"]["recovered"]])
            ws.row([L("greetings_due"), extra["greetings"]["due"]])
            ws.row([L("greetings_done"), extra["greetings"]["done"]])
        if report["breakdown"]:
            ws.r += 1
            by = p["by"]
            ws.row([L("by_" + by), L("due"), L("reached"), L("follow_up_rate"), L("coverage"),
                    L("overall_satisfaction_rate"), L("nps")], bold)
            for row in report["breakdown"]:
                ws.row([row["label"], row["due"], row["reached"], row["follow_up_rate"], row["coverage"],
                        row["overall_satisfaction_rate"], row["nps"]],
                       formats=[None, None, None, percent, percent, percent, None])
        ws.fit()

        for name, columns in LIST_COLUMNS.items():
            ws = _Sheet(workbook.add_worksheet(names[name]))
            ws.row([column_label(c, locale) for c in columns], bold)
            ws.sheet.freeze_panes(1, 0)
            for row in report["lists"][name]:
                ws.row([list_cell(name, column, row, locale) for column in columns])
            ws.fit()

        ws = _Sheet(workbook.add_worksheet(names["definitions"]))
        ws.row([L("key"), L("metric"), L("definitions")], bold)
        ws.sheet.freeze_panes(1, 0)
        for key, text in report["definitions"].items():
            ws.row([key, _key_label(key, locale), text])
        ws.fit(limit=100)

        ws = _Sheet(workbook.add_worksheet(names["data"]))
        ws.row([L("section"), L("group"), L("key"), L("metric"), L("value")], bold)
        ws.sheet.freeze_panes(1, 0)
        for section, group, key, value in long_rows(report):
            if not section.startswith("lists."):
                ws.row([section, group, key, _key_label(key, locale), value])
        ws.fit()
    finally:
        workbook.close()
    path.write_bytes(buffer.getvalue())


class _Sheet:
    """Rows written one after another; each column remembers its widest value, for :meth:`fit`."""

    def __init__(self, sheet: Any) -> None:
        self.sheet, self.r, self.widths = sheet, 0, {}  # type: dict[int, int]

    def row(self, values: list[Any], fmt: Any = None, *, formats: list[Any] | None = None,
            measure: bool = True) -> None:
        from core.cli.grid import display_width as cell_len

        for c, value in enumerate(values):
            cell_format = (formats[c] if formats else None) or fmt
            _write(self.sheet, self.r, c, value, cell_format)
            if measure and value is not None:
                text = f"{value * 100:.1f}%" if cell_format is not None and isinstance(value, float) else str(value)
                self.widths[c] = max(self.widths.get(c, 0), cell_len(text))
        self.r += 1

    def fit(self, limit: int = 60) -> None:
        """Column widths that fit the values (in character cells; a Chinese character is two)."""
        for c, width in self.widths.items():
            self.sheet.set_column(c, c, min(limit, width + 2))


def _write(sheet: Any, row: int, col: int, value: Any, fmt: Any = None) -> None:
    if value is None:
        sheet.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value, fmt)
    elif isinstance(value, (int, float)):
        sheet.write_number(row, col, value, fmt)
    else:
        sheet.write_string(row, col, str(value), fmt)


def _key_label(key: str, locale: str) -> str:
    if key in LABELS:
        return label(key, locale)
    return label(key, locale, DIMENSIONS) if key in DIMENSIONS else key


# -- shared display helpers (table and HTML) -------------------------------------------------------
def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)


def show(name: str, value: Any) -> str:
    """A headline figure as people read it: rates in %, NPS in points."""
    if name == "nps":
        return "—" if value is None else f"{value:.1f}"
    if name.endswith("_rate") or name == "coverage":
        return pct(value)
    return num(value)


def show_delta(name: str, value: Any, locale: str | None = None) -> str:
    """A change from the previous period: counts and NPS as numbers, rates in percentage points."""
    if value is None:
        return "—"
    if name in ("nps", "due", "reached", "avg_attempts_per_reached"):  # figure names: not task words
        return f"{value:+.1f}" if isinstance(value, float) else f"{value:+d}"
    return f"{value * 100:+.1f}" + ("个百分点" if locale == "zh_CN" else " pt")


HEADLINE = (
    *COUNTS,
    "coverage",
    "follow_up_rate",
    "on_time_rate",
    "avg_attempts_per_reached",
    "satisfaction_n",
    "overall_satisfaction_rate",
    "nps_n",
    "nps",
)


def status_label(status: str, locale: str, kind: str = "task") -> str:
    """A task's or a complaint's status in the locale (``open`` means different things for each)."""
    found = label(f"{kind}:{status}", locale, STATUSES)
    return status if found == f"{kind}:{status}" else found
