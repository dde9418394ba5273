"""Data commands: ``import``, ``schedule``, ``tasks``."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli.main import App
from core.cli.output import FORMATS, LIMIT, emit, format_option, locale_option, to_json
from core.errors import FollowupError
from core.messages import MESSAGES, message


def _progress(label: str):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate every row and show what would change; write nothing.")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def import_cmd(app: App, file: Path, dry_run: bool, locale: str | None, fmt: str) -> None:
    """Import patients or episodes (CSV, XLSX or JSON); all rows or none."""
    from core.db.engine import session_scope
    from core.importing import import_file

    if not file.exists():
        raise FollowupError(key="file_not_found", values={"file": file})
    config, plugins, url, now = app.config, app.plugins, app.ready_db(), app.now
    loc = app.ui_locale(locale)
    with session_scope(url) as session, _progress(message("importing", loc, file=file.name)) as progress:
        bar = progress.add_task("rows", total=None)
        result = import_file(session, config, plugins, file, user=app.user, now=now, dry_run=dry_run,
                             progress=lambda n: progress.advance(bar, n))
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


# every status the catalogue names (status.open, status.completed, ...): an unknown one is a usage error
TASK_STATUSES = tuple(key.removeprefix("status.") for key in MESSAGES if key.startswith("status."))
ANALYZE_AFTER = 10_000  # tasks created by one schedule run before the planner statistics are refreshed


@click.command("schedule")
@click.option("--replan", is_flag=True, help="Re-place provisional tasks (after new holiday data arrived).")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def schedule_cmd(app: App, replan: bool, locale: str | None, fmt: str) -> None:
    """Create the follow-up tasks of every episode; running it again creates nothing new."""
    from sqlalchemy import func, select

    from core.db.engine import session_scope
    from core.db.models import Episode
    from core.scheduling import replan as do_replan
    from core.scheduling import schedule

    config, plugins, url, now = app.config, app.plugins, app.ready_db(), app.now
    with session_scope(url) as session:
        if replan:
            moved = do_replan(session, config, now, user=app.user)
            click.echo(to_json({"moved": moved}) if fmt == "json" else message("replanned", app.ui_locale(locale),
                                                                                n=moved))
            return
        total = session.scalar(select(func.count()).select_from(Episode).where(Episode.status == "active")) or 0
        with _progress("scheduling") as progress:
            bar = progress.add_task("episodes", total=total)
            result = schedule(session, config, plugins, now, progress=lambda n: progress.advance(bar, n),
                              user=app.user)
    if result.created >= ANALYZE_AFTER:
        from core.db.engine import analyze

        analyze(url)  # the planner's statistics, for the worklist and reports (docs/performance.md)
    if fmt == "json":
        click.echo(to_json(result.as_dict()))
        return
    loc = app.ui_locale(locale)
    for problem in result.problems:  # protocol problems, for whoever maintains the plugins: English
        click.secho(f"Warning: {problem}", fg="yellow", err=True)
    click.echo(
        message("scheduled", loc, episodes=result.episodes, created=result.created, existing=result.existing)
        + (message("scheduled_expired", loc, n=result.expired) if result.expired else "")
        + (message("scheduled_suppressed", loc, n=result.suppressed) if result.suppressed else "")
        + (message("scheduled_provisional", loc, n=result.provisional) if result.provisional else "")
    )


@click.command("tasks")
@click.option("--patient", help="Patient id (as in the import).")
@click.option("--episode", help="Episode id (as in the import).")
@click.option("--site", help="Site code.")
@click.option("--status", type=click.Choice(TASK_STATUSES), help="Only tasks in this status.")
@click.option("--limit", type=LIMIT, help="At most this many.")
@format_option(*FORMATS)
@click.pass_obj
def tasks_cmd(app: App, patient: str | None, episode: str | None, site: str | None, status: str | None,
              limit: int | None, fmt: str) -> None:
    """List follow-up tasks."""
    from core.db.engine import session_scope
    from core.tasklist import TASK_COLUMNS, list_tasks

    config, url = app.config, app.ready_db()
    with session_scope(url) as session:
        rows = list_tasks(session, config, patient=patient, episode=episode, site=site, status=status, limit=limit,
                          now=app.now, user=app.user)
    if fmt == "table":
        emit(rows, ["id", "patient_id", "site", "procedure", "milestone", "urgency", "status", "due_at", "attempts"],
             "table")
    else:
        extra = ("failed_attempts", "max_attempts", "next_attempt_at", "overdue", "provisional")
        emit(rows, (*TASK_COLUMNS, *extra), fmt)
