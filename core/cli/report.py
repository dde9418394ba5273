"""``followup report``: weekly, monthly and quarterly figures in five formats."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import click

from core.cli.main import App
from core.cli.output import locale_option
from core.errors import FollowupError
from core.messages import message, os_error

FORMATS = ("table", "json", "csv", "xlsx", "html")
TREND_PERIODS = 6  # the HTML trend chart ("last 6 periods")


def _report_sites(app: App, requested: tuple[str, ...]) -> list[str]:
    """The sites asked for, limited to the sites the user may report on (core/access.py: role and sites)."""
    from core import access

    config = app.config
    who = access.require(config, app.user, access.REPORTS)
    allowed = [s for s in config.sites if who is None or who.covers(s)]
    if not requested:
        return sorted(allowed)
    for code in requested:
        config.site(code)  # unknown: an error naming the close match
        if code not in allowed:
            raise FollowupError(key="report_not_your_site",
                                values={"user": app.user, "sites": ", ".join(allowed), "site": code})
    return sorted(set(requested))


@click.command("report")
@click.argument("kind", required=False, type=click.Choice(["week", "month", "quarter"]))
@click.option(
    "--period",
    "period_text",
    metavar="2026-W47|2026-11|2026-Q4",
    help="Which period (default: the last complete one before --now).",
)
@click.option("--site", "sites", multiple=True, metavar="CODE", help="Only this site (repeatable).")
@click.option(
    "--specialty",
    "specialties",
    multiple=True,
    metavar="KEY",
    help="Only this specialty (repeatable).",
)
@click.option(
    "--by",
    type=click.Choice(["site", "specialty", "procedure", "coordinator", "staff"]),
    help="Break the headline figures down (staff: the attending doctor).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (required for xlsx).",
)
@click.option(
    "--trend",
    type=click.IntRange(0, 24),
    metavar="N",
    help=f"Include the figures of the last N periods (default: {TREND_PERIODS} for html, whose chart "
    "shows them; none for the other formats).",
)
@locale_option("Labels and messages (default: the site's, else the chain's).")
@click.option("--bom/--no-bom", "bom", default=True, show_default=True,
              help="Start a CSV with the UTF-8 byte-order mark (Excel needs it for Chinese).")
@click.pass_obj
def report_cmd(
    app: App,
    kind: str | None,
    period_text: str | None,
    sites: tuple[str, ...],
    specialties: tuple[str, ...],
    by: str | None,
    fmt: str,
    out: Path | None,
    locale: str | None,
    trend: int | None,
    bom: bool,
) -> None:
    """Weekly, monthly or quarterly follow-up figures.

    KIND is week (the default), month or quarter. Without --period the report
    covers the last complete period: on a Monday, the previous Monday–Sunday in
    the site's timezone (the chain's when several sites are in the report).
    A --period still running is marked as such in every format, and its figures
    count only the tasks already due.
    Every figure is defined in the report's footer and in docs/metrics.md.
    """
    from core.db.engine import session_scope
    from core.reports import (
        ReportRequest,
        build_report,
        last_complete,
        parse_period,
        scope_from_plugins,
    )

    if fmt == "xlsx" and out is None:
        raise FollowupError(key="report_xlsx_needs_out")
    from core.reports.build import report_catalogue

    config, plugins = app.config, app.plugins  # loaded only when the cached catalogue does not do
    codes = _report_sites(app, sites)
    known = report_catalogue(plugins)["specialties"]
    for key in specialties:
        if key not in known:
            raise FollowupError(key="import_unknown_specialty",
                                values={"specialty": key, "hint": "", "installed": ", ".join(known)})
    single = config.site(codes[0]) if len(codes) == 1 else None
    tz = single.timezone if single else ZoneInfo(config.model.defaults.timezone)
    loc = locale or (single.locale if single else config.model.defaults.locale)
    if period_text:
        period = parse_period(period_text, tz, kind)
    else:
        period = last_complete(kind or "week", app.now, tz)
    scope = scope_from_plugins(plugins, codes, list(specialties))
    if trend is None:
        trend = TREND_PERIODS if fmt == "html" else 0
    request = ReportRequest(period=period, scope=scope, by=by, locale=loc, now=app.now, trend=trend,
                            user=app.user)
    with session_scope(app.ready_db()) as session:
        report = build_report(session, config, plugins, request)
    from core.privacy import mask_data

    report = mask_data(report)  # free text (suggestions, complaint staff) with numbers masked, every format
    try:
        if out:
            from core.privacy import private_file

            private_file(out)  # 0600 before the first figure is written
        _emit(report, fmt, out, bom)
    except BrokenPipeError:  # the reader went away (`| head`): not a file problem (core/cli/main.py)
        raise
    except OSError as exc:  # --out in a missing or read-only directory
        raise FollowupError(key="report_cannot_write", values={"out": out, "error": os_error(exc)}) from None


def _emit(report: dict, fmt: str, out: Path | None, bom: bool = True) -> None:  # type: ignore[type-arg]
    if fmt == "xlsx":
        from core.reports.render import write_xlsx

        assert out is not None
        write_xlsx(report, out)
        click.echo(message("wrote", report["period"]["locale"], file=out), err=True)
        return
    if fmt == "table":
        from core.reports.table import render_table

        if out:
            with out.open("w", encoding="utf-8") as handle:
                render_table(report, handle, width=100)
            click.echo(message("wrote", report["period"]["locale"], file=out), err=True)
        else:
            render_table(report)
        return
    if fmt == "json":
        from core.reports.render import render_json

        text = render_json(report)
    elif fmt == "csv":
        from core.reports.render import render_csv

        text = render_csv(report, bom=bom)
    else:
        from core.reports.html import render_html

        text = render_html(report)
    if out:
        out.write_text(text, encoding="utf-8")
        click.echo(message("wrote", report["period"]["locale"], file=out), err=True)
    else:
        click.echo(text, nl=False)
