"""Tables that fit (core/cli/output.py): at any width, ids, dates and times are whole; text wraps; nothing is cut."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from core.cli.output import Column, print_table

ids = st.from_regex(r"[A-Z]{2}-[A-Z]{3,6}|P\d{4,6}|\d{1,7}", fullmatch=True)
times = st.from_regex(r"2026-(0[1-9]|1[0-2])-[0-2]\d [01]\d:[0-5]\d", fullmatch=True)
text = st.text(alphabet="回访节点术后第天换药提醒鼻部整形隆鼻 abcdefghij", min_size=0, max_size=40)


def _render(columns: list[Column], rows: list[list[str]], width: int) -> str:
    buffer = io.StringIO()
    print_table(columns, rows, console=Console(file=buffer, width=width, color_system=None))
    return buffer.getvalue()


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(ids, ids, text, times, text), min_size=1, max_size=6),
       width=st.integers(60, 140))
def test_kept_values_are_never_cut_and_lines_fit(rows, width) -> None:  # type: ignore[no-untyped-def]
    columns = [Column("id", "编号", keep=True), Column("patient", "患者", keep=True), Column("what", "回访节点"),
               Column("due", "应回访时间", keep=True), Column("note", "备注", drop=1)]
    out = _render(columns, [list(r) for r in rows], width)
    lines = out.splitlines()
    assert all(cell_len(line) <= width for line in lines)
    assert "…" not in out
    for row in rows:
        for value in (row[0], row[1], row[3]):
            assert any(value in line for line in lines), (value, out)


def test_an_optional_column_is_dropped_before_anything_is_cut() -> None:
    columns = [Column("id", "ID", keep=True), Column("due", "Due", keep=True),
               Column("long", "Long", keep=True, drop=1), Column("what", "What")]
    rows = [["12345", "2026-11-23 10:00", "X" * 60, "a call"]]
    narrow = _render(columns, rows, 60)
    assert "X" * 60 not in narrow and "2026-11-23 10:00" in narrow and "a call" in narrow
    wide = _render(columns, rows, 120)
    assert "X" * 60 in wide


# -- core/cli/grid.py: the layout itself ----------------------------------------------------------------------

cells = st.text(alphabet="回访节点术后 abcdefghij0123456789\n", min_size=0, max_size=60)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=5),
       limit=st.integers(24, 120), right=st.booleans())
def test_a_grid_fits_its_width_and_loses_no_character(rows, limit, right) -> None:  # type: ignore[no-untyped-def]
    import click

    from core.cli import grid

    cols = [grid.Col("编号"), grid.Col("回访节点"), grid.Col("n", right=right)]
    out = click.unstyle(grid.render(cols, rows, title="标题", limit=limit))  # ties of equal widths included
    lines = out.splitlines()
    assert all(grid.display_width(line) <= limit for line in lines), out
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("─")) + 1:]
    # every character of every cell is still there (folded, never cut or lost), and nothing else
    assert sorted("".join(body).replace(" ", "")) == sorted("".join(c for row in rows for c in row if c).replace(
        " ", "").replace("\n", ""))


def test_grid_folds_at_spaces_and_chinese_anywhere() -> None:
    from core.cli import grid

    assert grid.fold("take the second left turn", 10) == ["take the", "second", "left turn"]
    assert grid.fold("术后第三天换药提醒", 8) == ["术后第三", "天换药提", "醒"]
    assert grid.fold("P0001", 3) == ["P00", "01"]
    assert grid.display_width("王秀英 P1") == 9
