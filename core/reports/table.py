"""The report in a terminal: tables that stay readable at 80 columns (core/cli/grid.py)."""

from __future__ import annotations

from typing import Any

import click

from core.cli import grid
from core.reports.labels import label
from core.reports.render import HEADLINE, list_cell, num, pct, running_note, show, show_delta, status_label


class _Table:
    """A titled table of the report: columns, rows, a style per row."""

    def __init__(self, title: str, *headers: str, right: tuple[int, ...] = ()) -> None:
        self.title = title
        self.columns = [grid.Col(h, right=i in right) for i, h in enumerate(headers)]
        self.rows: list[list[str]] = []
        self.styles: list[str | None] = []

    def add_row(self, *cells: str, style: str | None = None) -> None:
        self.rows.append([str(c) for c in cells])
        self.styles.append(style)


def _table(title: str, *columns: str, right: tuple[int, ...] = ()) -> _Table:
    return _Table(title, *columns, right=right)


class _Out:
    """Where the report goes, and how wide it may be."""

    def __init__(self, file: Any, width: int) -> None:
        self.file, self.width = file, width

    def print(self, item: Any, style: str | None = None) -> None:
        if isinstance(item, _Table):
            text = grid.render(item.columns, item.rows, title=item.title, limit=self.width, styles=item.styles)
            click.echo(text + "\n", file=self.file)
            return
        click.echo("\n".join(grid.styled(line, style) for line in grid.fold(str(item), self.width)), file=self.file)


def render_table(report: dict[str, Any], file: Any = None, width: int | None = None) -> None:
    """Print the report as tables to ``file`` (standard output), ``width`` columns wide (the terminal's)."""
    console = _Out(file, width or grid.terminal_width())
    p, loc = report["period"], report["period"]["locale"]
    L = lambda key: label(key, loc)  # noqa: E731
    sites = ", ".join(p["sites"]) or L("none")
    console.print(f"{p['chain']} · {p['title']} · {p['label']}", style="bold")
    console.print(
        f"{L('period')}: {p['first_day']} – {p['last_day']} ({p['timezone']})"
        f" · {L('site')}: {sites}"
        + (f" · {L('specialty')}: {', '.join(p['specialties'])}" if p["specialties"] else "")
    )
    console.print(f"{L('generated')}: {p['generated_at']} · {L('previous')}: {p['previous']}")
    if p.get("running"):
        console.print(running_note(p, loc), style="bold yellow")

    small = report["figures"]["small_sample"]
    figures = _table(
        L("figures"), L("metric"), p["label"], p["previous"], L("delta"), right=(1, 2, 3)
    )
    for name in HEADLINE:
        mark = " *" if small.get(name) and report["figures"][name] is not None else ""
        figures.add_row(
            L(name),
            show(name, report["figures"][name]) + mark,
            show(name, report["previous"][name]),
            show_delta(name, report["delta"].get(name), loc) if name in report["delta"] else "",
        )
    console.print(figures)

    sat = _table(
        L("satisfaction"), L("dimension"), L("n"), L("mean"), L("top2_rate"), right=(1, 2, 3)
    )
    for row in report["satisfaction"]:
        sat.add_row(
            row["label"],
            str(row["n"]),
            num(row["mean"]),
            pct(row["top2_rate"]) + (" *" if row["small_sample"] else ""),
        )
    if not report["satisfaction"]:
        sat.add_row(L("no_data"), "", "", "")
    console.print(sat)

    c, e, s = report["complaints"], report["escalations"], report["sales"]
    follow = _table(
        f"{L('complaints')} · {L('escalations')} · {L('sales')}",
        L("metric"),
        L("value"),
        right=(1,),
    )
    for name in ("opened", "responded_within_3d", "overdue", "closed"):
        follow.add_row(f"{L('complaints')}: {L(name)}", num(c[name]))
    follow.add_row(
        f"{L('complaints')}: {L('responded_within_3d_rate')}", pct(c["responded_within_3d_rate"])
    )
    for row in c["by_category"]:
        follow.add_row(f"  {row['label']}", str(row["opened"]))
    for name in ("opened", "resolved", "overdue", "median_hours_to_resolve"):
        follow.add_row(f"{L('escalations')}: {L(name)}", num(e[name]),
                       style="bold red" if name == "overdue" and e[name] else None)
    for name in ("leads", "followed_up", "booked"):
        follow.add_row(f"{L('sales')}: {L(name)}", num(s[name]))
    follow.add_row(
        f"{L('sales')}: {L('conversion_rate')}",
        pct(s["conversion_rate"])
        + (" *" if s["small_sample"] and s["conversion_rate"] is not None else ""),
    )
    console.print(follow)

    if report.get("channels"):
        msgs = _table(L("channels"), L("channel"), L("sent"), L("delivered"), L("failed"), L("answered"),
                      L("response_rate"), right=(1, 2, 3, 4, 5))
        for row in report["channels"]:
            msgs.add_row(L(f"channel_{row['channel']}"), str(row["sent"]), str(row["delivered"]),
                         str(row["failed"]), str(row["answered"]), pct(row["response_rate"]))
        console.print(msgs)

    if report["staff"]:
        staff = _table(L("staff"), L("comment"), L("praise"), L("criticism"), right=(1, 2))
        for row in report["staff"]:
            staff.add_row(row["staff"], str(row["praise"]), str(row["criticism"]))
        console.print(staff)

    if report["coordinators"]:
        coord = _table(
            L("coordinators"),
            L("coordinator"),
            L("attempts"),
            L("reached"),
            L("calling_hours"),
            L("calls_per_hour"),
            L("qa_reviewed"),
            L("qa_avg_score"),
            right=(1, 2, 3, 4, 5, 6),
        )
        # the username is an id: on its own line, never folded
        coord.columns[0].min_width = max(len(row["coordinator"]) + 2 for row in report["coordinators"])
        for row in report["coordinators"]:
            coord.add_row(
                f"{row['name']}\n({row['coordinator']})",
                str(row["attempts"]),
                str(row["reached"]),
                num(row["calling_hours"]),
                num(row["calls_per_hour"]),
                str(row.get("qa_reviewed", 0)),
                num(row.get("qa_avg_score")),
            )
        console.print(coord)

    extra = report.get("followups")
    if extra:
        more = _table(L("followups"), L("metric"), L("value"), right=(1,))
        more.add_row(L("reviews_booked"), str(extra["bookings"]["reviews_booked"]))
        for row in extra["bookings"]["by_site"]:
            more.add_row(f"  {row['site']} · {row['specialty']}", str(row["n"]))
        more.add_row(L("interruptions"), str(extra["interruptions"]["answered"]))
        for reason, n in extra["interruptions"]["by_reason"].items():
            more.add_row(f"  {L('reason.' + reason)}", str(n))
        ref = extra["referrals"]
        more.add_row(L("referrals_accepted"), str(ref["accepted"]))
        more.add_row(L("referrals_referred"), str(ref["referred"]))
        for row in ref["by_site"]:
            more.add_row(f"  {row['site']}", f"{row['accepted']} / {row['referred']}")
        for row in ref["by_referrer"]:
            more.add_row(f"  {L('referrer')} {row['patient_id']}", f"{row['accepted']} / {row['referred']}")
        more.add_row(L("sweep_swept"), str(extra["sweep"]["swept"]))
        more.add_row(L("sweep_recovered"), str(extra["sweep"]["recovered"]))
        more.add_row(L("greetings_due"), str(extra["greetings"]["due"]))
        more.add_row(L("greetings_done"), str(extra["greetings"]["done"]))
        console.print(more)

    if report["breakdown"]:
        by = report["period"]["by"]
        table = _table(
            f"{L('breakdown')}: {L('by_' + by)}",
            L("by_" + by),
            L("due"),
            L("reached"),
            L("follow_up_rate"),
            L("coverage"),
            L("overall_satisfaction_rate"),
            L("nps"),
            *([L("praise"), L("criticism")] if by == "staff" else []),
            right=(1, 2, 3, 4, 5, 6, 7, 8),
        )
        for row in report["breakdown"]:
            extra = [str(row["praise"]), str(row["criticism"])] if by == "staff" else []
            table.add_row(
                row["label"],
                str(row["due"]),
                str(row["reached"]),
                pct(row["follow_up_rate"]),
                pct(row["coverage"]),
                pct(row["overall_satisfaction_rate"]),
                show("nps", row["nps"]),
                *extra,
            )
        console.print(table)

    lists = report["lists"]
    unreachable = _table(
        f"{L('unreachable')} ({len(lists['unreachable'])})",
        L("patient_id"),
        L("phone"),
        L("milestone"),
        L("due_at"),
        L("last_outcome"),
    )
    for row in lists["unreachable"]:
        outcome = row["last_outcome_label"] or status_label(row["status"], loc)
        unreachable.add_row(
            f"{row['patient_name']} ({row['patient_id']})\n{row['site']}",
            row["phone"],
            f"{list_cell('unreachable', 'procedure', row, loc)}\n·{list_cell('unreachable', 'milestone', row, loc)}",
            list_cell("unreachable", "due_at", row, loc),
            f"{outcome} ×{row['attempts']}",
        )
    console.print(unreachable)
    sugg = _table(
        f"{L('suggestions')} ({len(lists['suggestions'])})", L("date"), L("patient_id"), L("text")
    )
    for row in lists["suggestions"]:
        sugg.add_row(row["date"], row["patient_id"], row["text"])
    console.print(sugg)
    open_c = _table(
        f"{L('open_complaints')} ({len(lists['open_complaints'])})",
        "#",
        L("patient_id"),
        L("category"),
        L("deadline"),
        L("description"),
    )
    for row in lists["open_complaints"]:
        open_c.add_row(
            str(row["complaint_id"]),
            row["patient_id"],
            row["category_label"],
            (row["deadline"] or "")[:16].replace("T", " ")
            + (f" {L('overdue')}" if row["overdue"] else ""),
            row["description"],
            style="bold red" if row["overdue"] else None,
        )
    console.print(open_c)
    open_e = _table(
        f"{L('open_escalations')} ({len(lists['open_escalations'])})",
        "#",
        L("patient_id"),
        L("assignee"),
        L("handle_by"),
        L("reason"),
    )
    for row in lists["open_escalations"]:
        open_e.add_row(
            str(row["escalation_id"]),
            row["patient_id"],
            row["assignee"] or "—",
            (row["handle_by"] or "")[:16].replace("T", " ") + (f" {L('overdue')}" if row["overdue"] else ""),
            row["reason"],
            style="bold red" if row["overdue"] else None,
        )
    console.print(open_e)

    console.print(L("definitions"), style="bold")
    sep = "：" if loc == "zh_CN" else ": "
    for key, text in report["definitions"].items():
        console.print(f"·{L(key)}{sep}{text}", style="dim")
    console.print(f"* {L('small_sample')}", style="dim")
