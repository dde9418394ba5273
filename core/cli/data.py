"""Data commands: ``import``, ``schedule``, ``tasks``."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli.main import App
from core.cli.output import FORMATS, LIMIT, bom_option, emit, format_option, locale_option, short_time, to_json
from core.errors import FollowupError
from core.messages import message, os_error
from core.vocab import TaskStatus


def _when(state: dict | None, locale: str | None = None) -> str:  # type: ignore[type-arg]
    """A task's state in a dry run's table: due time and status (in the reader's words)."""
    from core.words import word

    if state is None:
        return "—"
    return f"{state['due_at'][:16].replace('T', ' ')} {word('status', state['status'], locale)}"


def _progress(label: str):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)


@click.command("import")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate every row and show what would change; write nothing.")
@click.option("--allow-invalid-phone", is_flag=True,
              help="Import a phone that is not a valid number as given, flagged for correction (a warning, "
                   "not an error).")
@click.option("--template", type=click.Choice(["patients", "episodes", "calls"]),
              help="Write an empty file with the columns (Chinese name and canonical name) instead of importing: "
                   "to FILE, else patients.csv / episodes.xlsx / calls.csv here.")
@locale_option()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx"]), default=None,
              help="Output: table (default) or json; with --template, the file's type: csv (default) or xlsx.")
@click.pass_obj
def import_cmd(app: App, file: Path | None, dry_run: bool, allow_invalid_phone: bool, template: str | None,
               locale: str | None, fmt: str | None) -> None:
    """Import patients, episodes or a call history (CSV, XLSX or JSON); all rows or none.

    Headers may be the canonical names, the Chinese ones HIS exports use, or a site's own
    (import_columns); procedures their code, name or an alias (docs/import.md). A file with an
    outcome column is a call history: the calls already made, loaded by the rules of a recorded
    call (administrators only).
    """
    from core.db.engine import session_scope
    from core.importing import import_file

    if template:
        _write_template(app, template, file, fmt or "csv", locale)
        return
    if fmt not in (None, "table", "json"):
        raise click.UsageError("--format csv/xlsx goes with --template; an import prints table or json")
    fmt = fmt or "table"
    if file is None:
        raise click.UsageError("give the FILE to import (or --template patients|episodes)")
    if not file.exists():
        raise FollowupError(key="file_not_found", values={"file": file})
    from core.historyfile import is_call_history

    if is_call_history(file):
        _import_calls(app, file, dry_run, locale, fmt)
        return
    config, plugins, url, now = app.config, app.plugins, app.ready_db(), app.now
    loc = app.ui_locale(locale)
    with session_scope(url) as session, _progress(message("importing", loc, file=file.name)) as progress:
        bar = progress.add_task("rows", total=None)
        result = import_file(session, config, plugins, file, user=app.user, now=now, dry_run=dry_run,
                             progress=lambda n: progress.advance(bar, n), allow_invalid_phone=allow_invalid_phone)
        if dry_run:
            session.rollback()
    data = result.as_dict()
    if fmt == "json":
        click.echo(to_json(data))  # data["dry_run"] is the flag
        return
    for warning in result.warning_messages:  # about the file's columns, sheets and repeated rows
        click.secho(message("warning", loc, warning=warning), fg="yellow", err=True)
    click.echo(message(
        "would_import" if dry_run else "imported", loc, file=file,
        pc=data["patients_created"], pu=data["patients_updated"], pn=data["patients_unchanged"],
        ec=data["episodes_created"], eu=data["episodes_updated"], en=data["episodes_unchanged"],
    ))
    if not dry_run and data["episodes_created"]:
        click.echo(message("next_schedule", loc))


def _import_calls(app: App, file: Path, dry_run: bool, locale: str | None, fmt: str) -> None:
    """A call history (core/historyfile.py): checked, then loaded in one unit of work, or only checked."""
    from core.db.engine import session_scope
    from core.historyfile import import_history_file
    from core.words import word

    config, plugins, url, now = app.config, app.plugins, app.ready_db(), app.now
    loc = app.ui_locale(locale)
    with session_scope(url, immediate=not dry_run) as session:
        result = import_history_file(session, config, plugins, file, user=app.user, now=now, dry_run=dry_run)
        if dry_run:
            session.rollback()
    if fmt == "json":
        click.echo(to_json(result.as_dict()))
        return
    for warning in result.warning_messages:
        click.secho(message("warning", loc, warning=warning), fg="yellow", err=True)
    statuses = ("、" if loc == "zh_CN" else ", ").join(
        f"{word('status', status, loc)} {n}" for status, n in sorted(result.statuses.items()))
    click.echo(message("calls_would_import" if dry_run else "calls_imported", loc, file=file,
                       attempts=result.attempts, answers=result.answers, tasks=result.tasks, statuses=statuses))


def _write_template(app: App, kind: str, file: Path | None, fmt: str, locale: str | None) -> None:
    """An empty patients or episodes file: one header row, Chinese name and canonical name per column."""
    from core.cli.output import csv_text
    from core.importing import Columns, template_headers

    if fmt not in ("csv", "xlsx"):
        raise click.UsageError("--template writes --format csv or xlsx")
    target = file or Path(f"{kind}.{fmt}")
    if target.exists():
        raise FollowupError(key="template_exists", values={"path": target})
    if kind == "calls":
        from core.historyfile import template_headers as call_headers

        headers = call_headers()
    else:
        headers = template_headers(kind, Columns.of_plugins(app.plugins))
    try:
        if fmt == "csv":
            target.write_text(csv_text(headers, []), encoding="utf-8")
        else:
            import xlsxwriter

            from core.cli.grid import display_width as cell_len

            book = xlsxwriter.Workbook(str(target))
            sheet = book.add_worksheet(kind)
            bold = book.add_format({"bold": True})
            for c, text in enumerate(headers):
                sheet.write_string(0, c, text, bold)
                sheet.set_column(c, c, cell_len(text) + 2)
            sheet.freeze_panes(1, 0)
            book.close()
    except OSError as exc:
        raise FollowupError(key="init_cannot_write", values={"path": target, "error": os_error(exc)}) from None
    try:
        loc = locale or app.ui_locale()
    except FollowupError:  # no chain yet: a template is often the first thing written
        loc = locale or "zh_CN"
    click.echo(message("template_written", loc, file=target, n=len(headers)))


TASK_STATUSES = tuple(s.value for s in TaskStatus)  # an unknown status is a usage error, not an empty table


ANALYZE_AFTER = 10_000  # tasks created by one schedule run before the planner statistics are refreshed


@click.command("schedule")
@click.option("--replan", is_flag=True, help="Only re-place provisional tasks (after new holiday data arrived).")
@click.option("--dry-run", is_flag=True, help="Show what would be created, moved and cancelled; write nothing.")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def schedule_cmd(app: App, replan: bool, dry_run: bool, locale: str | None, fmt: str) -> None:
    """Bring every episode's follow-up tasks in line with the episode and its protocol.

    Creates missing tasks, moves open ones whose episode or milestone changed, cancels
    open ones that no longer apply; running it again changes nothing.
    """
    from sqlalchemy import func, select

    from core.db.engine import session_scope
    from core.db.models import Episode
    from core.scheduling import schedule

    config, plugins, url, now = app.config, app.plugins, app.ready_db(), app.now
    with session_scope(url, immediate=True) as session:  # a writer: SQLite's write lock from the start
        total = session.scalar(select(func.count()).select_from(Episode)) or 0
        with _progress(message("scheduling", app.error_locale() if locale is None else locale)) as progress:
            bar = progress.add_task("episodes", total=None if replan else total)
            result = schedule(session, config, plugins, now, progress=lambda n: progress.advance(bar, n),
                              dry_run=dry_run, provisional_only=replan, user=app.user)
        swept = greeted = None
        if not (dry_run or replan):  # beyond the protocols: the month-end sweep and the year's greetings
            from core.greetings import schedule_greetings
            from core.sweep import sweep

            swept = sweep(session, config, now, user=app.user)
            greeted = schedule_greetings(session, config, now, user=app.user)
        if dry_run:
            session.rollback()
    if dry_run:
        if fmt == "json":
            click.echo(to_json(result.changes))
            return
        from core.words import word

        loc = app.ui_locale(locale)
        if result.changes:  # nothing would change: the summary line says so
            emit([{"task_id": c["task_id"] or "", "episode_id": c["episode_id"], "milestone": c["milestone"],
                   "change": word("change", c["change"], loc), "before": _when(c["before"], loc),
                   "after": _when(c["after"], loc)}
                  for c in result.changes],
                 ["task_id", "episode_id", "milestone", "change", "before", "after"], "table", locale=loc)
    if result.created >= ANALYZE_AFTER and not dry_run:
        from core.db.engine import analyze

        analyze(url)  # the planner's statistics, for the worklist and reports (docs/performance.md)
    if fmt == "json":
        click.echo(to_json({**result.as_dict(), "swept": swept.swept if swept else 0, "greetings": greeted or 0}))
        return
    loc = app.ui_locale(locale)
    for problem in result.problems:  # protocol problems, for whoever maintains the plugins: English
        click.secho(f"Warning: {problem}", fg="yellow", err=True)
    click.echo(
        message("scheduled", loc, episodes=result.episodes, created=result.created, moved=result.moved,
                cancelled=result.cancelled, existing=result.unchanged)
        + (message("scheduled_expired", loc, n=result.expired) if result.expired else "")
        + (message("scheduled_suppressed", loc, n=result.suppressed) if result.suppressed else "")
        + (message("scheduled_provisional", loc, n=result.provisional) if result.provisional else "")
        + (message("scheduled_dry_run", loc) if dry_run else "")
        + (message("swept", loc, n=swept.swept, days=", ".join(f"{k} {v}" for k, v in swept.by_site.items()))
           if swept and swept.swept else "")
        + (message("greetings_created", loc, n=greeted) if greeted else "")
    )


@click.command("tasks")
@click.option("--patient", help="Patient id (as in the import).")
@click.option("--episode", help="Episode id (as in the import).")
@click.option("--site", help="Site code.")
@click.option("--status", type=click.Choice(TASK_STATUSES), help="Only tasks in this status.")
@click.option("--limit", type=LIMIT, help="At most this many.")
@locale_option()
@bom_option()
@format_option(*FORMATS)
@click.pass_obj
def tasks_cmd(app: App, patient: str | None, episode: str | None, site: str | None, status: str | None,
              limit: int | None, locale: str | None, bom: bool, fmt: str) -> None:
    """List follow-up tasks."""
    from core.db.engine import session_scope
    from core.tasklist import TASK_COLUMNS, list_tasks

    config, url = app.config, app.ready_db()
    with session_scope(url) as session:
        rows = list_tasks(session, config, patient=patient, episode=episode, site=site, status=status, limit=limit,
                          now=app.now, user=app.user)
    if fmt == "table":
        from core.words import Names, word

        loc = app.ui_locale(locale)
        names = Names(app.plugins, loc)
        shown = [{
            **r,
            "procedure": names.procedure(r["specialty"], r["procedure"]),
            "milestone": names.milestone(r["specialty"], r["procedure"], r["milestone"]),
            "urgency": word("urgency", r["urgency"], loc),
            "status": word("status", r["status"], loc) + (" " + word("flag", "overdue", loc) if r["overdue"] else ""),
            "due_at": short_time(r["due_at"]),
        } for r in rows]
        emit(shown, ["id", "patient_id", "site", "procedure", "milestone", "urgency", "status", "due_at", "attempts"],
             "table", locale=loc, drop={"site": 2 if site else 1, "urgency": 1 if site else 2})
    else:
        extra = ("attempts_logged", "failed_attempts", "max_attempts", "next_attempt_at", "overdue", "provisional",
                 "booked_at", "swept_at")
        emit(rows, (*TASK_COLUMNS, *extra), fmt, bom=bom)
