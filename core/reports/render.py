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

from core.cli.output import safe_cell, to_json
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
            if value and isinstance(value[0], dict):
                yield from _list_rows(f"{section}.{key}", value)
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


def render_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "group", "key", "value"])
    for section, group, key, value in long_rows(report):
        writer.writerow([section, safe_cell(group), key, _csv_value(value)])
    return buffer.getvalue()


def render_json(report: dict[str, Any]) -> str:
    return to_json(report) + "\n"


# -- XLSX ------------------------------------------------------------------------------------------
def write_xlsx(report: dict[str, Any], path: Path) -> None:
    """Sheets: figures (long layout), one per list, definitions. Strings are never formulas.

    Built in memory and written at once: a path that cannot be written raises ``OSError``
    (as for the other formats) and leaves no half-written workbook.
    """
    import xlsxwriter

    locale = report["period"]["locale"]
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    try:
        bold = workbook.add_format({"bold": True})
        sheet = workbook.add_worksheet("figures")
        sheet.write_row(0, 0, ["section", "group", "key", label("metric", locale), "value"], bold)
        for r, (section, group, key, value) in enumerate(long_rows(report), 1):
            if not section.startswith("lists."):
                sheet.write_row(r, 0, [section, group, key, _key_label(key, locale)])
                _write(sheet, r, 4, value)
        sheet.set_column(0, 0, 24)
        sheet.set_column(1, 2, 22)
        sheet.set_column(3, 3, 26)
        sheet.set_column(4, 4, 14)
        for name, columns in LIST_COLUMNS.items():
            ws = workbook.add_worksheet(name)
            ws.write_row(0, 0, list(columns), bold)
            ws.write_row(1, 0, [column_label(c, locale) for c in columns], bold)
            for r, row in enumerate(report["lists"][name], 2):
                for c, column in enumerate(columns):
                    _write(ws, r, c, row.get(column))
            ws.set_column(0, len(columns) - 1, 16)
            ws.freeze_panes(2, 0)
        ws = workbook.add_worksheet("definitions")
        ws.write_row(0, 0, ["key", label("metric", locale), label("definitions", locale)], bold)
        for r, (key, text) in enumerate(report["definitions"].items(), 1):
            ws.write_row(r, 0, [key, _key_label(key, locale), text])
        ws.set_column(0, 1, 24)
        ws.set_column(2, 2, 100)
    finally:
        workbook.close()
    path.write_bytes(buffer.getvalue())


def _write(sheet: Any, row: int, col: int, value: Any) -> None:
    if value is None:
        sheet.write_blank(row, col, None)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, (int, float)):
        sheet.write_number(row, col, value)
    else:
        sheet.write_string(row, col, str(value))


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


def show_delta(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name in ("nps", "due", "reached", "avg_attempts_per_reached"):
        return f"{value:+.1f}" if isinstance(value, float) else f"{value:+d}"
    return f"{value * 100:+.1f} pt"


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
