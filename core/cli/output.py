"""Rendering listings as a table (core/cli/grid.py), JSON or CSV: one shape, three formats."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import click

FORMATS = ("table", "json", "csv")
# A row id as a user types it: a positive 64-bit integer (beyond that: a usage error, not a database overflow).
ID = click.IntRange(1, 2**63 - 1)
LIMIT = click.IntRange(1, 1_000_000)


def format_option(*choices: str) -> Any:
    return click.option("--format", "fmt", type=click.Choice(choices or FORMATS), default=(choices or FORMATS)[0],
                        show_default=True, help="Output format.")


def locale_option(help: str = "Language of the messages (default: yours, else the chain's).") -> Any:
    """``--locale zh_CN|en``; also remembered on the App, so an error of this command is printed in it."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value and ctx.obj is not None:
            ctx.obj.locale = value
        return value

    return click.option("--locale", type=click.Choice(["zh_CN", "en"]), callback=remember, is_eager=True, help=help)


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def to_json(data: Any) -> str:
    """JSON for output: phone numbers in every string masked (core/privacy.py), a released one kept."""
    from core.privacy import mask_data

    return json.dumps(mask_data(data), ensure_ascii=False, indent=2, default=_plain)


def safe_cell(value: Any) -> Any:
    """Keep free text from becoming a spreadsheet formula (=, +, -, @ at the start)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = ";".join(str(_plain(v)) for v in value)
    return safe_cell(_plain(value))


BOM = "\ufeff"  # Excel on Windows reads a CSV as UTF-8 only when it starts with this


def bom_option() -> Any:
    """``--no-bom``: a CSV without the UTF-8 byte-order mark, for machines (the default has it, for Excel)."""
    return click.option("--bom/--no-bom", "bom", default=True, show_default=True,
                        help="Start a CSV with the UTF-8 byte-order mark (Excel needs it for Chinese).")


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], *, bom: bool = True) -> str:
    """A CSV document: the header, the rows (lists joined by ';', formulas defused), UTF-8 BOM unless ``bom=False``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    return (BOM if bom else "") + buffer.getvalue()


# -- tables that fit -------------------------------------------------------------------------------
# Columns whose values are never cut: ids, codes, dates, times, numbers. Everything else wraps.
KEEP = {"id", "task_id", "task_ids", "patient_id", "episode_id", "site", "code", "due_at", "opened_at",
        "window_start", "window_end", "next_attempt_at", "responded_at", "closed_at", "at", "date", "deadline",
        "attempts", "failed_attempts", "max_attempts", "entity_id", "phone", "version", "offset", "window",
        "timezone", "locale", "user", "assignee", "resolved_by", "key", "object"}


@dataclass
class Column:
    """One column of a person's table.

    ``keep``: never cut or wrapped (ids, dates, times); ``drop``: when the table does not
    fit the width, columns with the highest ``drop`` go first (0: never dropped).
    """

    key: str
    header: str
    keep: bool = False
    drop: int = 0
    justify: str = "left"
    style: str | None = None


_GAP = 2  # a column's share of the separators (SIMPLE_HEAD, one space of padding each side, no edges)
_MIN_TEXT = 8  # the narrowest a wrapping column is allowed to get


def display_width(text: str) -> int:
    """The columns a terminal gives ``text``: wide and fullwidth (CJK) characters two, combining marks none."""
    from core.cli.grid import display_width as width

    return width(text)


def _cell_width(text: str) -> int:
    return max((display_width(line) for line in text.splitlines() or [""]), default=0)


def fit_columns(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """The indexes of the columns shown at ``width``: optional ones are dropped until the rest fit."""
    shown = list(range(len(columns)))

    def needed(index: int) -> int:
        col = columns[index]
        content = max([_cell_width(col.header) if col.keep else 0]
                      + [_cell_width(r[index]) for r in rows]) if rows else _cell_width(col.header)
        if col.keep:
            return content
        return min(content, max(_MIN_TEXT, min(_cell_width(col.header), 12)))

    while True:
        total = sum(needed(i) for i in shown) + _GAP * (len(shown) - 1)
        droppable = [i for i in shown if columns[i].drop]
        if total <= width or not droppable:
            return shown
        shown.remove(max(droppable, key=lambda i: (columns[i].drop, i)))


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[Any]], *, title: str | None = None,
                console: Any = None, styles: Sequence[str | None] | None = None) -> None:
    """A table that fits the terminal (80 columns when piped): optional columns are dropped, text wraps,
    and ids, dates and times are never cut. ``console``: anything with ``file`` and ``width`` (a rich
    Console, say) to print there instead."""
    from core.cli import grid
    from core.privacy import mask_text

    width = console.width if console is not None else grid.terminal_width()
    cells = [["" if v is None else mask_text(v if isinstance(v, str) else str(v)) for v in row] for row in rows]
    empty = {i for i, c in enumerate(columns) if c.drop and cells and not any(r[i] for r in cells)}
    shown = [i for i in fit_columns(columns, cells, width) if i not in empty]
    widths = _share(columns, cells, shown, width)
    text = grid.render([grid.Col(columns[i].header, right=columns[i].justify == "right", keep=columns[i].keep)
                        for i in shown],
                       [[row[i] for i in shown] for row in cells], title=title, limit=width, styles=styles,
                       sizes=[widths[i] for i in shown])
    click.echo(text, file=console.file if console is not None else None)


def _share(columns: Sequence[Column], cells: Sequence[Sequence[str]], shown: list[int], width: int) -> dict[int, int]:
    """Each shown column's width: kept columns their widest value, the wrapping ones share the rest fairly."""
    natural = {i: max([_cell_width(columns[i].header)] + [_cell_width(r[i]) for r in cells]) for i in shown}
    widths = {i: natural[i] for i in shown if columns[i].keep}
    text = sorted((i for i in shown if not columns[i].keep), key=lambda i: natural[i])
    left = width - sum(widths.values()) - _GAP * (len(shown) - 1)
    for n, i in enumerate(text):  # water-filling: narrow columns take what they need, the rest split the remainder
        share = max(_MIN_TEXT // 2, left // (len(text) - n))
        widths[i] = min(natural[i], share)
        left -= widths[i]
    return widths


def columns_for(keys: Sequence[str], locale: str | None, *, drop: dict[str, int] | None = None) -> list[Column]:
    """Columns with their headings from the catalogue; ids, dates and times kept whole."""
    from core.words import header

    return [Column(k, header(k, locale), keep=k in KEEP, drop=(drop or {}).get(k, 0)) for k in keys]


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, *, title: str | None = None,
         locale: str | None = None, bom: bool = True, drop: dict[str, int] | None = None) -> None:
    """Rows as JSON (keys unchanged), CSV (keys as headers, BOM unless ``bom=False``) or a fitted table;
    every output passes the masking layer (core/privacy.py)."""
    from core.privacy import mask_data

    rows = [mask_data(dict(r)) for r in rows]
    if fmt == "json":
        click.echo(to_json([{c: r.get(c) for c in columns} for r in rows]))
        return
    if fmt == "csv":
        click.echo(csv_text(columns, ([r.get(c) for c in columns] for r in rows), bom=bom), nl=False)
        return
    print_table(columns_for(columns, locale, drop=drop), [[r.get(c) for c in columns] for r in rows], title=title)


def short_time(iso: str | None) -> str:
    """A local ISO instant as a table shows it: ``2026-11-23 10:00`` (the offset is the site's)."""
    return (iso or "")[:16].replace("T", " ")
