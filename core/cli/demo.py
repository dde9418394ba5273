"""``followup demo``: the whole pipeline on embedded SQLite, in a few seconds.

Sample patients and episodes live in ``config/demo/`` beside the chain file.
Episode times there are written as "days ago" so the demo always has work
today; the demo writes them out as an ordinary HIS-style export and imports it
through the same path a clinic uses.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime, time, timedelta
from pathlib import Path

import click

from core.cli.main import App
from core.cli.output import locale_option
from core.errors import FollowupError
from core.messages import message
from core.vocab import REACHED_OUTCOMES, Channel, Outcome, TaskStatus


def _write_episode_export(source: Path, target: Path, app: App) -> None:
    """Turn ``days_ago``/``time`` into ``occurred_at`` in the site's local time (no offset, as HIS exports do)."""
    config, now = app.config, app.now
    with source.open(encoding="utf-8") as fin, target.open("w", encoding="utf-8", newline="") as fout:
        reader = csv.DictReader(fin)
        columns = [c for c in reader.fieldnames or [] if c not in ("days_ago", "time")] + ["occurred_at"]
        writer = csv.DictWriter(fout, fieldnames=columns)
        writer.writeheader()
        for row in reader:
            tz = config.site(row["site"]).timezone
            day = now.astimezone(tz).date() - timedelta(days=int(row.pop("days_ago")))
            at = time.fromisoformat(row.pop("time"))
            row["occurred_at"] = datetime.combine(day, at).isoformat(timespec="minutes")
            writer.writerow(row)


@click.command("demo")
@click.option("--fresh", is_flag=True, help="Delete the demo database first.")
@locale_option()
@click.pass_obj
def demo(app: App, fresh: bool, locale: str | None) -> None:
    """Create the demo database, import sample patients and episodes, schedule, and show today's calls."""
    from sqlalchemy import func, select
    from sqlalchemy.engine import make_url

    from core.db.engine import get_engine, session_scope
    from core.db.models import Task
    from core.importing import import_file
    from core.scheduling import schedule

    url = app.db_url
    if not url.startswith("sqlite"):
        raise FollowupError("the demo runs on embedded SQLite; pass --db sqlite:///demo.db")
    config, plugins = app.config, app.plugins
    builder = _builder(app)
    for failed in plugins.failed():
        click.secho(f"Warning: plugin {failed.name!r} failed to load: {failed.error}", fg="yellow", err=True)
    database = make_url(url).database
    if fresh and database and Path(database).exists():
        get_engine.cache_clear()
        for suffix in ("", "-wal", "-shm"):
            Path(database + suffix).unlink(missing_ok=True)
    url = app.ready_db()
    demo_dir = config.path.parent / "demo"
    if not (demo_dir / "patients.csv").exists():
        raise FollowupError(f"{demo_dir}: the demo's sample files are missing (patients.csv, episodes.csv)")
    now = app.now
    loc = app.ui_locale(locale)
    click.secho(message("demo_chain", loc, chain=config.model.name.get(loc), n=len(config.sites), db=database),
                bold=True)
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "episodes.csv"
        _write_episode_export(demo_dir / "episodes.csv", export, app)
        with session_scope(url) as session:
            patients = import_file(session, config, plugins, demo_dir / "patients.csv", user=builder, now=now)
            episodes = import_file(session, config, plugins, export, user=builder, now=now)
            result = schedule(session, config, plugins, now, user=builder)
            history = simulate_history(session, config, plugins, now)
            history += beyond_the_milestones(session, config, plugins, now)
    click.echo(message("demo_imported", loc, patients=patients.patients_created, episodes=episodes.episodes_created,
                       created=result.created, existing=result.existing, expired=result.expired))
    if history:
        click.echo(message("demo_simulated", loc, n=history))
    _show_today(app, url, loc, builder)
    _show_messages(app, url, loc)
    with session_scope(url) as session:
        open_total = session.scalar(select(func.count()).select_from(Task).where(Task.status == TaskStatus.OPEN))
    click.echo(message("demo_open", loc, n=open_total))
    click.secho(message("demo_try", loc), bold=True)
    for command, key in TRY_NEXT:
        click.echo(f"  {command:<57}# {message(key, loc)}" if key else f"  {command}")


TRY_NEXT = (  # the README's "after the demo, try" list says the same
    ("followup --as zhang.li worklist --site SH-DENT", "demo_try_worklist"),
    ("followup --as zhang.li claim --site SH-DENT --count 3", "demo_try_claim"),
    ("followup --as zhang.li call", "demo_try_call"),
    ("followup --as zhang.li script TASK_ID --locale en", "demo_try_script"),
    ("followup protocols aesthetic.rhinoplasty --site SH-AES", "demo_try_protocols"),
    ("followup --as chen.jing report week", "demo_try_report"),
    ("followup --as chen.jing complaints", None),
    ("followup --as chen.zhiyuan escalations list --mine", None),
    ("followup --as admin outbox", "demo_try_outbox"),
)


# This patient never answers: their follow-up ends unreachable, and the month-end sweep calls them once more.
NEVER_ANSWERS = ("P0026",)
REASONS = ("cost", "time", "fear", "result", "other")


def beyond_the_milestones(session, config, plugins, now) -> int:  # type: ignore[no-untyped-def]
    """The month-end sweep, this year's greetings and one reviewed call, as a chain would have them.

    The sweep runs as ``followup schedule`` runs it; when this month's sweep days are
    already past, as it ran on the first of them, and its calls are simulated like
    any other (the sweep call reaches the patient). A supervisor scores one call of
    the week.
    """
    from sqlalchemy import select

    from core.db.models import Attempt
    from core.greetings import schedule_greetings
    from core.qa import CONNECTED, score
    from core.sweep import sweep

    local = now.astimezone(config.sites["SH-DENT"].timezone)
    first = min(config.model.sweep.days)
    if local.day > max(config.model.sweep.days):
        sweep(session, config, datetime.combine(local.date().replace(day=first), time(8, 0), local.tzinfo))
    else:
        sweep(session, config, now)
    recorded = simulate_history(session, config, plugins, now)
    schedule_greetings(session, config, now)
    supervisor = next((s.username for s in config.model.staff if s.role == "manager"), None)
    call = session.execute(
        select(Attempt.id).where(Attempt.outcome.in_(CONNECTED), Attempt.by != (supervisor or ""))
        .order_by(Attempt.at.desc(), Attempt.id.desc()).limit(1)
    ).scalar()
    if supervisor and call is not None:
        score(session, config, call, 85, "开场和核对身份规范；等待超过一分钟，需改进", supervisor, now)
    return recorded


SUGGESTIONS = ("希望周末也能预约", "停车位太少了", "候诊时间有点长", "希望能线上查看检查结果", "=HYPERLINK(\"x\")")
PRAISE = ("张护士很耐心", "医生讲解得很清楚", "前台服务热情")


def simulate_history(session, config, plugins, now, seed: int = 20261123) -> int:  # type: ignore[no-untyped-def]
    """Record plausible outcomes for every call that was due before today, through the real call path.

    Deterministic (seeded), so the demo's reports are the same on every machine
    for the same --now. Only core's general questions are answered: the
    specialty questions are left to a real coordinator. A patient whose
    milestone sends a questionnaire after unsuccessful calls never answers the
    phone, so the demo has a questionnaire link to open.
    """
    import random

    from sqlalchemy import select

    from core.calls import invites_back, record_call
    from core.db.models import Patient, Task
    from core.vocab import TREATED_TRIGGERS

    rng = random.Random(seed)
    never_answers: dict[tuple[str, str, str], bool] = {}
    escalated = False
    staff_for = {}
    for member in config.model.staff:
        for code in member.sites:
            staff_for.setdefault(code, member.username)
    recorded = 0
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(config.model.defaults.timezone)
    cutoff = datetime.combine(now.astimezone(tz).date(), time(0), tz)  # today's calls are left to the user
    while True:
        due = session.execute(
            select(Task).where(Task.status == TaskStatus.OPEN, Task.next_attempt_at < cutoff)
            .order_by(Task.next_attempt_at, Task.id)
        ).scalars().all()
        if not due:
            return recorded
        for task in due:
            at = task.next_attempt_at + timedelta(minutes=rng.randint(0, 50))
            at = min(at, cutoff)
            outcome = rng.choices(
                ["reached", "no_answer", "busy", "powered_off", "not_convenient", "refused"],
                weights=[72, 12, 5, 5, 4, 2],
            )[0]
            key = (task.specialty, task.procedure, task.milestone)
            if key not in never_answers:
                found = [m for _, m in plugins.milestones(task.specialty, task.procedure) if m.key == task.milestone]
                never_answers[key] = bool(found and found[0].after_unsuccessful)
            if never_answers[key]:
                outcome = Outcome.NO_ANSWER
            external_id = session.get(Patient, task.patient_id).external_id
            if external_id in NEVER_ANSWERS:
                outcome = (Outcome.REACHED if task.swept_at is not None
                           else rng.choice([Outcome.NO_ANSWER, Outcome.POWERED_OFF]))
            booked_at = None
            if outcome == Outcome.REACHED and invites_back(plugins, task):  # a review call books the visit
                outcome = Outcome.BOOKED
                booked_at = datetime.combine(at.astimezone(tz).date() + timedelta(days=3), time(10, 0), tz)
                booked_at = max(booked_at, at + timedelta(days=1))
            answers: dict[str, str] = {}
            if outcome == Outcome.REACHED and task.channel == Channel.PHONE and task.milestone != "missed" \
                    and task.trigger in TREATED_TRIGGERS:  # satisfaction only of patients who were treated
                answers["overall_satisfaction"] = str(rng.choice([5, 5, 5, 4, 4, 4, 3, 2]))
                answers["recommend"] = str(rng.choice([10, 10, 9, 9, 8, 7, 6, 3]))
                if rng.random() < 0.25:
                    answers["staff_praise"] = rng.choice(PRAISE)
                if rng.random() < 0.2:
                    answers["suggestions"] = rng.choice(SUGGESTIONS)
            if outcome in REACHED_OUTCOMES and task.procedure == "interruption":
                answers = {"interruption_reason": rng.choice(REASONS), "wants_rebook": "yes"}
            if outcome == Outcome.REACHED and task.procedure == "visit":  # satisfied: refers a friend, gives a birthday
                answers.update(treatment_satisfaction="5", referral_accepted="yes",
                               birthday=f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
            if outcome == Outcome.REACHED and task.milestone == "check_2h" and not escalated:
                answers["bleeding_stopped"] = "no"  # one red flag: an escalation for the attending dentist
                escalated = True
            connected = outcome in (*REACHED_OUTCOMES, Outcome.REFUSED, Outcome.CALLBACK_REQUESTED)
            record_call(session, config, plugins, task.id, outcome=outcome, user=staff_for.get(task.site, "demo"),
                        now=at, answers=answers, booked_at=booked_at,
                        recording=f"recordings/{task.site}/{task.id}-{task.attempts + 1}.mp3" if connected else None)
            recorded += 1


def _builder(app: App) -> str:
    """Who builds the demo: in a chain that allows --as (the demo chain), its admin; else the acting user,
    who must be allowed to import and schedule (core/access.py), as for any import."""
    from core import access

    config = app.config
    admin = next((s.username for s in config.model.staff if s.role == "admin"), None)
    if config.model.allow_as and admin:
        return admin
    access.require(config, app.user, access.IMPORT)
    return app.user


def _show_messages(app: App, url: str, loc: str) -> None:
    """Send what is due through the demo's channels (files in a folder) and say where they went."""
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import OutboxMessage
    from core.outbox import send_due

    config = app.config
    summary = send_due(url, config, app.plugins, now=app.now, sites=list(config.sites))
    folders = sorted({str(Path(s.get("folder", "")).resolve()) for site in config.sites.values()
                      for s in site.channels.values() if s.get("plugin") == "file" and s.get("folder")})
    with session_scope(url) as session:
        links = session.execute(select(OutboxMessage.link).where(OutboxMessage.link.is_not(None),
                                                                 OutboxMessage.answered_at.is_(None))
                                .order_by(OutboxMessage.id)).scalars().all()
        queued = session.execute(select(OutboxMessage.id).where(OutboxMessage.status == "queued")).all()
    click.secho(message("demo_messages", loc), bold=True)
    click.echo(message("demo_messages_sent", loc, n=summary.sent, folder=", ".join(folders) or "-"))
    if queued:
        click.echo(message("demo_messages_queued", loc, n=len(queued)))
    if links:
        click.echo(message("demo_messages_link", loc, link=links[0]))


def _show_today(app: App, url: str, loc: str, builder: str) -> None:
    """Each site's calls today, as ``followup worklist`` shows them."""
    from core.cli.work import _task_names, _worklist_table
    from core.db.engine import session_scope
    from core.worklist import worklist

    config, now = app.config, app.now
    with session_scope(url) as session:
        for site in config.sites.values():
            today = now.astimezone(site.timezone).date()
            rows = [line.as_dict(site.timezone) for line in worklist(session, config, day=today, now=now,
                                                                     sites=[site.code], user=builder)]
            what = _task_names(session, [t for r in rows for t in r["task_ids"]])
            click.echo()
            title = message("demo_site_today", loc, site=site.name.get(loc), code=site.code, day=today.isoformat(),
                            n=len(rows))
            _worklist_table(app, rows, what, [site.code], loc, title=title)
