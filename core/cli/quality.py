"""``followup qa``: the weekly spot check of recorded calls (sample, score)."""

from __future__ import annotations

import click

from core.cli.main import App
from core.cli.output import emit, format_option, locale_option, to_json
from core.messages import message

SAMPLE_COLUMNS = ["attempt_id", "coordinator", "site", "at", "task_id", "patient_id", "milestone", "outcome",
                  "recording", "score"]


@click.group("qa")
def qa_group() -> None:
    """Call quality: pick the week's calls to review, score them."""


@qa_group.command("sample")
@click.option("--week", required=True, help="ISO week, e.g. 2026-W48 (in the chain's timezone).")
@click.option("--per-coordinator", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Calls to review per coordinator.")
@click.option("--site", help="Site code (default: every site you work for).")
@locale_option()
@format_option("table", "json", "csv")
@click.pass_obj
def sample_cmd(app: App, week: str, per_coordinator: int, site: str | None, locale: str | None, fmt: str) -> None:
    """Connected calls of the week picked at random per coordinator; the same week gives the same pick."""
    from zoneinfo import ZoneInfo

    from core.cli.work import _sites_for
    from core.db.engine import session_scope
    from core.qa import Week, sample

    config = app.config
    parsed = Week.parse(week, ZoneInfo(config.model.defaults.timezone))
    sites = _sites_for(app, site, "qa:review")  # reviewers' sites (core/access.py)
    with session_scope(app.ready_db()) as session:
        rows = sample(session, config, parsed, per_coordinator, sites)
    if fmt == "table":
        click.echo(message("qa_sampled", app.ui_locale(locale), week=parsed.label, n=len(rows), per=per_coordinator))
    emit(rows, SAMPLE_COLUMNS, fmt)


@qa_group.command("score")
@click.argument("attempt_id", type=int)
@click.option("--score", "value", required=True, type=click.IntRange(0, 100), help="0–100.")
@click.option("--note", help="What was good or missing, against the script and the telephone manners.")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def score_cmd(app: App, attempt_id: int, value: int, note: str | None, locale: str | None, fmt: str) -> None:
    """A supervisor scores one call (scoring it again replaces the score)."""
    from zoneinfo import ZoneInfo

    from core.db.engine import session_scope
    from core.qa import score
    from core.tasklist import local_iso

    config, now = app.config, app.now
    with session_scope(app.ready_db()) as session:
        review = score(session, config, attempt_id, value, note, app.user, now)
        data = {"attempt_id": review.attempt_id, "score": review.score, "note": review.note, "by": review.by,
                "at": local_iso(review.at, ZoneInfo(config.model.defaults.timezone))}
    if fmt == "json":
        click.echo(to_json(data))
    else:
        click.echo(message("qa_scored", app.ui_locale(locale), id=attempt_id, score=value, who=app.user,
                           at=data["at"]))
