"""Rendering listings as a rich table, JSON or CSV: one shape, three formats."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
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


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, *, title: str | None = None,
         headers: dict[str, str] | None = None) -> None:
    """Rows as a table, JSON or CSV; every output passes the masking layer (core/privacy.py)."""
    from core.privacy import mask_data

    rows = [mask_data(dict(r)) for r in rows]
    if fmt == "json":
        click.echo(to_json([{c: r.get(c) for c in columns} for r in rows]))
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_csv_cell(r.get(c)) for c in columns])
        click.echo(buffer.getvalue(), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        table.add_column((headers or {}).get(c, c))
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    Console().print(table)
