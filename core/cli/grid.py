"""Plain-text tables for a terminal: headings, a rule, rows; text folds to fit, CJK counts double.

What the coordinator and the manager read (worklists, task lists, the report) is a handful of small
tables. Importing and running rich for them cost more than the query behind them (issue 13), so they
are laid out here: rich's "simple head" look (a title, the headings, one rule, no borders), columns
two spaces apart, right-aligned numbers, text folded at spaces (anywhere in Chinese) so that no line
is wider than the terminal (80 columns when piped), ids and times never cut. Bold and red reach a
terminal only: ``click.echo`` drops the colour codes when the output is piped or redirected.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import click

GAP = 2  # spaces between two columns
MIN_WIDTH = 6  # the narrowest a folding column gets


def display_width(text: str) -> int:
    """The columns a terminal gives ``text``: wide and fullwidth (CJK) characters two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cut(text: str, width: int) -> tuple[str, str]:
    """The longest head of ``text`` at most ``width`` columns wide (one character at least), and the rest."""
    used = 0
    for i, char in enumerate(text):
        used += display_width(char)
        if used > width:
            return (text[:i], text[i:]) if i else (text[:1], text[1:])
    return text, ""


_TOKENS = re.compile(r"\S+\s*|\s+")


def fold(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns: broken at spaces, a longer word (or a Chinese
    sentence, which has none) anywhere. Its own line breaks are kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if display_width(paragraph) <= width:
            lines.append(paragraph)
            continue
        line = ""
        for token in _TOKENS.findall(paragraph):
            if display_width((line + token).rstrip()) <= width:
                line += token
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = token.lstrip() if line.strip() else token
            while display_width(line.rstrip()) > width:
                head, line = _cut(line, width)
                lines.append(head)
        lines.append(line.rstrip())
    return lines


@dataclass
class Col:
    header: str
    right: bool = False  # numbers
    keep: bool = False  # ids and times: never folded
    min_width: int = 0


def widths(cols: Sequence[Col], rows: Sequence[Sequence[str]], limit: int) -> list[int]:
    """Each column's natural width (its widest line); the widest folding columns give way until the
    table fits ``limit`` columns (or none can give more)."""
    out = [max([display_width(line) for line in c.header.split("\n")]
               + [display_width(line) for row in rows for line in row[i].split("\n")]) for i, c in enumerate(cols)]
    floor = [max(c.min_width, MIN_WIDTH) for c in cols]
    while sum(out) + GAP * (len(out) - 1) > limit:
        candidates = [i for i, c in enumerate(cols) if not c.keep and out[i] > floor[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: out[i])
        over = sum(out) + GAP * (len(out) - 1) - limit
        second = max((out[i] for i in candidates if i != widest), default=0)
        # down to the next widest (they then give way in turn), by one column at least
        out[widest] = max(floor[widest], min(out[widest] - 1, max(out[widest] - over, second)))
    return out


def render(cols: Sequence[Col], rows: Sequence[Sequence[str]], *, title: str | None = None, limit: int = 80,
           styles: Sequence[str | None] | None = None, sizes: Sequence[int] | None = None) -> str:
    """The table as text (ANSI bold for the title and headings, a row's ``style`` "bold red" or "dim")."""
    sizes = list(sizes) if sizes is not None else widths(cols, rows, limit)
    total = sum(sizes) + GAP * (len(sizes) - 1)
    out: list[str] = []
    if title:
        out.extend(click.style(line, bold=True) for line in fold(title, max(total, limit)))
    out.extend(_row([c.header for c in cols], cols, sizes, "bold"))
    out.append("─" * total)
    for n, row in enumerate(rows):
        out.extend(_row(row, cols, sizes, styles[n] if styles else None))
    return "\n".join(out)


def _row(cells: Sequence[str], cols: Sequence[Col], sizes: Sequence[int], style: str | None) -> list[str]:
    folded = [cell.split("\n") if col.keep else fold(cell, size) for cell, col, size in zip(cells, cols, sizes,
                                                                                               strict=True)]
    height = max(len(lines) for lines in folded)
    lines = []
    for k in range(height):
        parts = []
        for lines_of, col, size in zip(folded, cols, sizes, strict=True):
            text = lines_of[k] if k < len(lines_of) else ""
            pad = " " * max(size - display_width(text), 0)
            parts.append(pad + text if col.right else text + pad)
        line = (" " * GAP).join(parts).rstrip()
        lines.append(styled(line, style))
    return lines


def styled(text: str, style: str | None) -> str:
    if not style or not text:
        return text
    words = style.split()
    flags = {flag: True for flag in ("bold", "dim") if flag in words}  # dim=False would also undo bold
    return click.style(text, fg=next((w for w in words if w in ("red", "yellow", "green")), None), **flags)


def terminal_width(default: int = 80) -> int:
    """``$COLUMNS`` when set, else the terminal's width; 80 when the output is not a terminal (piped)."""
    import os
    import sys

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else default
    except (OSError, ValueError, AttributeError):
        return default
