"""A coordinator's day: ``worklist``, ``claim``, ``script``, ``call``, ``record``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from core.cli.main import App
from core.cli.output import FORMATS, ID, bom_option, emit, format_option, locale_option, to_json
from core.errors import FollowupError, InvalidValue
from core.messages import localize, message
from core.vocab import REACHED_OUTCOMES, Outcome, TaskStatus, Urgency


def _sites_for(app: App, site: str | None, action: str = "calls") -> list[str]:
    """The sites where the user may do ``action`` (core/access.py), narrowed by --site."""
    from core import access

    return access.sites_for(app.config, app.user, action, site)


@click.command("worklist")
@click.option("--site", help="Site code (default: every site you work for).")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]),
              help="The day (default: today in the site's timezone).")
@click.option("--mine", is_flag=True, help="Only what you have claimed.")
@locale_option()
@bom_option()
@format_option(*FORMATS)
@click.pass_obj
def worklist_cmd(app: App, site: str | None, day: datetime | None, mine: bool, locale: str | None, bom: bool,
                 fmt: str) -> None:
    """Today's calls: clinical first, then overdue, then by due time; one line per patient."""
    from core.db.engine import session_scope
    from core.worklist import worklist

    config, now, url = app.config, app.now, app.ready_db()
    sites = _sites_for(app, site, "tasks:read")
    rows: list[dict[str, Any]] = []
    with session_scope(url) as session:
        for code in sites:
            tz = config.site(code).timezone
            the_day: date = day.date() if day else now.astimezone(tz).date()
            for line in worklist(session, config, day=the_day, now=now, sites=[code],
                                 assignee=app.user if mine else None, user=app.user):
                rows.append(line.as_dict(tz))
        what = _task_names(session, [t for r in rows for t in r["task_ids"]]) if fmt == "table" else {}
    if fmt == "table":
        _worklist_table(app, rows, what, sites, app.ui_locale(locale))
    else:
        emit(rows, ["site", "patient_id", "patient_name", "phone", "urgency", "overdue", "due_at", "task_ids",
                    "milestones", "procedures", "attempts", "assignee", "phone_invalid", "value_tier"], fmt, bom=bom)


def _task_names(session: Any, ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """(specialty, procedure, milestone) of each task: the table shows their names, not keys."""
    from sqlalchemy import select

    from core.db.models import Task

    out: dict[int, tuple[str, str, str]] = {}
    for start in range(0, len(ids), 500):
        query = select(Task.id, Task.specialty, Task.procedure, Task.milestone).where(
            Task.id.in_(ids[start:start + 500]))
        out.update((i, (s, p, m)) for i, s, p, m in session.execute(query))
    return out


def _worklist_table(app: App, rows: list[dict[str, Any]], what_of: dict[int, tuple[str, str, str]],
                    sites: list[str], loc: str, title: str | None = None) -> None:
    """A table that fits the terminal (80 columns when piped): ids, phone, the overdue mark and the time whole."""
    from core.cli.output import Column, print_table
    from core.words import Names, header, word

    names = Names(app.plugins, loc)
    many_sites = len(sites) > 1
    columns = [
        *([Column("site", header("site", loc), keep=True, drop=1)] if many_sites else []),
        Column("task_ids", header("task_ids", loc), keep=True),
        Column("patient", header("patient", loc), keep=True),
        Column("milestones", header("milestones", loc)),
        Column("urgency", header("urgency", loc), keep=True),
        Column("due_at", header("due_at", loc), keep=True),
        Column("attempts", header("attempts", loc), keep=True, justify="right", drop=2),
        Column("assignee", header("assignee", loc), drop=3),
    ]
    cells, styles = [], []
    for r in rows:
        what = []
        for task_id in r["task_ids"]:
            specialty, code, key = what_of[task_id]
            what.append(f"{names.procedure(specialty, code)}\n·{names.milestone(specialty, code, key)}")
        urgency = word("urgency", r["urgency"], loc) + ("\n" + word("flag", "overdue", loc) if r["overdue"] else "")
        cells.append([
            *([r["site"]] if many_sites else []),
            ",".join(map(str, r["task_ids"])),
            f"{'★ ' if r.get('value_tier') else ''}{r['patient_name']} {r['patient_id']}\n{r['phone'] or ''}",
            "\n".join(what), urgency, r["due_at"][5:16].replace("T", " "), str(r["attempts"]), r["assignee"] or "",
        ])
        styles.append("bold red" if r["overdue"] else ("bold" if r["urgency"] == Urgency.CLINICAL else None))
    title = title or message("worklist_title", loc, sites=", ".join(sites), n=len(rows))
    print_table(columns, cells, title=title, styles=styles)


@click.command("claim")
@click.option("--site", help="Site code (default: every site you work for).")
@click.option("--count", type=click.IntRange(1, 500), default=5, show_default=True, help="How many patients.")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def claim_cmd(app: App, site: str | None, count: int, locale: str | None, fmt: str) -> None:
    """Take the next patients' calls; they are held for you for the chain's claim_hold."""
    from core.claims import claim
    from core.db.engine import session_scope

    loc = app.ui_locale(locale)
    sites = _sites_for(app, site)
    config, now, url = app.config, app.now, app.ready_db()
    with session_scope(url, immediate=True) as session:
        ids = claim(session, config, user=app.user, sites=sites, count=count, now=now)  # audits each claim
    hold = config.model.defaults.attempt_policy.claim_hold
    if fmt == "json":
        click.echo(to_json({"claimed": ids, "hold": str(hold)}))
    elif ids:
        click.echo(message("claimed", loc, n=len(ids), hold=hold, ids=", ".join(map(str, ids))))
    else:
        click.echo(message("nothing_to_claim", loc))


@click.command("script")
@click.argument("task_id", type=ID)
@locale_option("Default: the patient's, else the site's.")
@click.pass_obj
def script_cmd(app: App, task_id: int, locale: str | None) -> None:
    """What to say on this call: the preparation card and the script."""
    from core.db.engine import session_scope

    with session_scope(app.ready_db()) as session:
        click.echo(render_call_sheet(app, session, task_id, locale))


def render_call_sheet(app: App, session: Any, task_id: int, locale: str | None) -> str:
    from core.calls import call_card_phone, load_task, task_context, task_milestone
    from core.db.models import Patient
    from core.scripts import prepare_script

    config, plugins, now = app.config, app.plugins, app.now
    task = load_task(session, config, task_id, app.user)  # a coordinator sees only their sites' patients
    site = config.site(task.site)
    context = task_context(session, config, task, now, app.user)
    loc = locale or context.patient.locale or site.locale
    milestone = task_milestone(plugins, site, task)
    prepared = prepare_script(plugins, context, milestone, loc, site.template_dirs)
    patient = session.get(Patient, task.patient_id)
    # The number to dial: in full only on the card of a task this user holds (audited), never in hooks or exports.
    phone = call_card_phone(session, task, patient, app.user, now) or "—"
    if patient.phone_invalid:
        phone += (" ⚠ 号码已标记为错误：请先更正再拨打" if loc == "zh_CN"
                  else " ⚠ flagged wrong: correct it before calling")
    card = preparation_card(context, task, loc, plugins, site.timezone, phone, value_tier=patient.value_tier)
    return card + "\n" + call_notes(config, task, loc) + prepared.text


def call_notes(config: Any, task: Any, locale: str) -> str:
    """Under the card: a month-end sweep call says so; then the chain's telephone manners (seed 001)."""
    lines = []
    if task.swept_at is not None:
        lines.append("⟳ " + message("card_sweep", locale, outcome=_last_outcome(task, locale)))
    manners = config.call_manners(locale)
    if manners:
        lines.append(message("card_manners", locale) + ("：" if locale == "zh_CN" else ":"))
        lines += [f"  · {text}" for text in manners]
    return "".join(line + "\n" for line in lines) + ("\n" if lines else "")


def _last_outcome(task: Any, locale: str) -> str:
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    from core.db.models import Attempt
    from core.reports.labels import OUTCOMES
    from core.reports.labels import label as report_label

    session = object_session(task)
    outcome = session.execute(
        select(Attempt.outcome).where(Attempt.task_id == task.id, Attempt.at < task.swept_at)
        .order_by(Attempt.at.desc(), Attempt.id.desc()).limit(1)
    ).scalar() if session else None
    return report_label(outcome, locale, OUTCOMES) if outcome else "—"


def _attribute_text(value: Any, zh: bool) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return ("是" if value else "否") if zh else ("yes" if value else "no")
    return str(value)


def preparation_card(context: Any, task: Any, locale: str, plugins: Any, tz: Any = None,
                     phone: str | None = None, value_tier: str | None = None) -> str:
    """DOMAIN.md §2: what the coordinator must see before dialing.

    Earlier attempts show the outcome in Chinese on a Chinese card; the English card keeps the
    outcome's own name, the one ``followup record --outcome`` takes.
    """
    from core.privacy import mask_text
    from core.words import Names, word

    zh = locale == "zh_CN"

    def outcome(key: str) -> str:
        return word("outcome", key, "zh_CN") if zh else key

    spec = plugins.specialty(context.specialty)
    proc = spec.procedure(context.procedure) if spec else None
    attributes = spec.attributes if spec else ()
    gender = {"F": ("女", "female"), "M": ("男", "male")}.get(context.patient.gender, ("未知", "unknown"))
    labels = (
        ("患者", "Patient"), ("电话", "Phone"), ("方便接听", "Best time to call"), ("年龄", "Age"),
        ("性别", "Gender"), ("项目", "Procedure"),
        ("医生", "Doctor"),
        ("科室", "Department"), ("诊断", "Diagnosis"),
        # the episode's attributes, as the specialty names them (e.g. in-patient care's discharge medication)
        *((a.names.zh_CN, a.names.en) for a in attributes),
        ("本次", "This call"), ("已尝试", "Earlier attempts"),
    )
    values = (
        f"{context.patient.name} ({context.patient.external_id})",
        phone or "—",
        context.patient.preferred_call_time or "—",
        str(context.patient.age) if context.patient.age is not None else "—",
        gender[0] if zh else gender[1],
        (proc.names.get(locale) if proc else context.procedure)
        + f" · {(context.occurred_at.astimezone(tz) if tz else context.occurred_at).date().isoformat()}",
        context.doctor or "—", context.department or "—", context.diagnosis or "—",
        *(_attribute_text(context.attributes.get(a.key), zh) for a in attributes),
        f"{Names(plugins, locale).milestone(task.specialty, task.procedure, task.milestone)}"
        f" ({word('urgency', task.urgency, locale)})",
        "; ".join(f"{a['at'][:16].replace('T', ' ')} {outcome(a['outcome'])} ({a['by']})"
                  + (f": {mask_text(a['note'])}" if a["note"] else "")  # a number typed into a note: masked
                  for a in context.attempt_history) or "—",
    )
    from core.cli.output import display_width as cell_len

    names = [label[0 if zh else 1] for label in labels]
    width = max(cell_len(name) for name in names)
    lines = ["─" * 60]
    lines += [f"{name}{' ' * (width - cell_len(name))} : {value}"
              for name, value in zip(names, values, strict=True)]
    if value_tier:  # a valued patient (import column value_tier), right under the name
        tier = message("card_value_tier", locale)
        lines.insert(2, f"{tier}{' ' * (width - cell_len(tier))} : ★ {value_tier}")
    lines.append("─" * 60)
    return "\n".join(lines)


@click.command("record")
@click.argument("task_id", type=ID)
@click.option("--outcome", required=True, help="reached, no_answer, busy, powered_off, out_of_service, cannot_connect, "
              "not_convenient, wrong_number, refused, callback_requested, booked")
@click.option("--answer", "answers", multiple=True, metavar="KEY=VALUE", help="An answer (repeatable).")
@click.option("--note", help="Free-text note.")
@click.option("--callback-at", help="When the patient asked to be called back: 15:00, 明天下午3点, 后天上午, "
              "周一 10:00, tomorrow 3pm or ISO 8601 (the site's local time).")
@click.option("--booked-at", help="With --outcome booked: the appointment the call made "
              "(10:00, 周三上午, tomorrow 3pm, ISO 8601; the site's local time).")
@click.option("--recording", metavar="REF", help="The call's recording: a URL or a file path (for the weekly QA).")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def record_cmd(app: App, task_id: int, outcome: str, answers: tuple[str, ...], note: str | None,
               callback_at: str | None, booked_at: str | None, recording: str | None, locale: str | None,
               fmt: str) -> None:
    """Record a call without the interactive session (for scripts and integrations)."""
    from core.calls import record_call
    from core.db.engine import session_scope

    parsed: dict[str, str] = {}
    for item in answers:
        if "=" not in item:
            raise FollowupError(key="answer_format", values={"item": item})
        key, value = item.split("=", 1)
        if key.strip() in parsed:
            raise FollowupError(key="answer_repeated", values={"key": key.strip(), "first": parsed[key.strip()],
                                                               "second": value})
        parsed[key.strip()] = value
    config, plugins, now = app.config, app.plugins, app.now
    loc = app.ui_locale(locale)
    with session_scope(app.ready_db(), immediate=True) as session:  # SQLite: writers wait for their turn
        callback = booking = None
        if booked_at:  # the appointment, said like a callback time (10:00, 周三上午, ISO), in the site's time
            from core.db.models import Task

            task = session.get(Task, task_id)
            booking = parse_callback(app, booked_at, config.sites.get(task.site) if task else None, loc)
        if callback_at:
            from core.db.models import Task
            from core.whenparse import describe

            task = session.get(Task, task_id)
            site = config.sites.get(task.site) if task is not None else None
            callback = parse_callback(app, callback_at, site, loc)
            if site is not None and outcome == Outcome.CALLBACK_REQUESTED:
                from core.calls import check_callback_time

                check_callback_time(site, callback, now)  # a past time is refused before it is read back
            if fmt != "json":  # the JSON has it as next_attempt_at
                click.echo(message("callback_echo", loc, at=describe(callback, loc)))
        result = record_call(session, config, plugins, task_id, outcome=outcome, user=app.user, now=now,
                             answers=parsed, note=note, callback_at=callback, booked_at=booking,
                             recording=recording.strip() or None if recording is not None else None)
        data = result.as_dict(config.site(result.task.site).timezone)
    if fmt == "json":
        click.echo(to_json(data))
        return
    click.echo(describe_result(data, loc))


def describe_result(data: dict[str, Any], locale: str | None = None) -> str:
    """What one recorded call changed, for a person: the JSON of ``record`` in words."""
    from core.messages import MESSAGES
    from core.words import word as vocab

    def word(prefix: str, key: str) -> str:  # a status or action kind; its own name if unknown
        return message(f"{prefix}.{key}", locale) if f"{prefix}.{key}" in MESSAGES else key

    task = data["task"]
    outcome = vocab("outcome", data["outcome"], "zh_CN") if locale == "zh_CN" else data["outcome"]
    lines = [message("recorded", locale, id=task["id"], outcome=outcome, status=word("status", task["status"]),
                     attempts=task["attempts"], failed=task["failed_attempts"], max=task["max_attempts"])]
    if not data.get("counted", True):
        lines.append(message("not_counted", locale, at=data["previous_failed_at"], min_gap=data["min_gap"]))
    if task["status"] == TaskStatus.OPEN and task["next_attempt_at"]:
        lines.append(message("next_attempt_overdue" if task["overdue"] else "next_attempt", locale,
                             at=task["next_attempt_at"]))
    for action in data["actions"]:
        reason = message("fix_phone_reason", locale) if action["kind"] == "fix_phone" else action.get("reason") or ""
        lines.append(message("action", locale, kind=word("action", action["kind"]), reason=reason)
                     + (message("action_id", locale, id=action["id"]) if action.get("id") else "")
                     + (message("action_handler", locale, handler=action["handler"]) if action.get("handler") else "")
                     + (message("action_assignee", locale, assignee=action["assigned_to"],
                                due=action["handle_by"][:16].replace("T", " "))
                        if action.get("assigned_to") and action.get("handle_by") else ""))
    return "\n".join(lines)


def parse_callback(app: App, text: str, site: Any, locale: str | None) -> datetime:
    """A callback time as the patient said it (15:00, 明天下午3点, tomorrow 3pm, ISO), in the site's time."""
    from core.whenparse import parse_when, window_starts

    tz = site.timezone if site is not None else ZoneInfo(app.config.model.defaults.timezone)
    parts = window_starts(site.calling_windows) if site is not None else None
    try:
        return parse_when(text, app.now, tz, parts)
    except InvalidValue as exc:  # a one-line error in the reader's language, never a traceback
        raise FollowupError(key=exc.msg.key, values=exc.msg.values) from None


@click.command("call")
@click.option("--site", help="Site code (default: every site you work for).")
@locale_option("Language of the scripts (default: each patient's) and of the prompts (default: yours).")
@click.pass_obj
def call_cmd(app: App, site: str | None, locale: str | None) -> None:
    """Work through your claimed calls interactively; Ctrl-C keeps everything recorded so far."""
    from sqlalchemy import select

    from core.calls import FAILED, OUTCOMES, CallError, record_call
    from core.db.engine import session_scope
    from core.db.models import Task

    loc = app.ui_locale(locale)
    sites = _sites_for(app, site)
    config, plugins, now, url = app.config, app.plugins, app.now, app.ready_db()
    with session_scope(url) as session:
        rows = session.execute(
            select(Task.id, Task.patient_id).where(
                Task.assignee == app.user, Task.status == TaskStatus.OPEN, Task.site.in_(sites),
                Task.claimed_until >= now,
            ).order_by(Task.urgency, Task.next_attempt_at, Task.id)
        ).all()
    if not rows:
        click.echo(message("no_calls", loc))
        return
    # One call per patient: every task of the patient that this coordinator holds is covered by it.
    calls: dict[int, list[int]] = {}
    for task_id, patient_id in rows:
        calls.setdefault(patient_id, []).append(task_id)
    done = 0
    try:
        for group in calls.values():
            with session_scope(url) as session:
                for i, task_id in enumerate(group):
                    if i:
                        click.secho(message("also_covers", loc, task=task_id), bold=True)
                    click.echo("\n" + render_call_sheet(app, session, task_id, locale))
            pending = list(group)
            answers: dict[str, str] = {}
            while pending:  # until every task of this call is recorded or skipped
                outcome = _ask_outcome(loc, tuple(map(str, OUTCOMES)))
                if outcome == "skip":
                    break
                note = recording = None  # recordings are attached by `record --recording`
                callback = _prompt_callback(app, pending[0], loc) if outcome == Outcome.CALLBACK_REQUESTED else None
                booking = _prompt_booking(app, pending[0], loc) if outcome == Outcome.BOOKED else None
                if outcome in REACHED_OUTCOMES:
                    for task_id in pending:  # a question shared by two tasks is asked once
                        answers.update(_ask_questions(app, task_id, locale, skip=set(answers), ui=loc))
                if outcome not in FAILED:
                    note = click.prompt(message("note", loc), default="", show_default=False) or None
                for task_id in list(pending):
                    try:
                        with session_scope(url, immediate=True) as session:
                            reached = outcome in REACHED_OUTCOMES
                            mine = _answers_for(app, session, task_id, answers) if reached else {}
                            result = record_call(session, config, plugins, task_id, outcome=outcome, user=app.user,
                                                 now=now, answers=mine, note=note, callback_at=callback,
                                                 booked_at=booking, recording=recording)
                            data = result.as_dict(config.site(result.task.site).timezone)
                    except CallError as exc:  # the outcome does not fit this task: ask again for what is left
                        click.secho(message("not_saved", loc, task=task_id, error=exc), fg="red")
                        break
                    pending.remove(task_id)
                    done += 1
                    click.secho(describe_result(data, loc), fg="green")
    except (KeyboardInterrupt, click.Abort):
        click.echo(message("stopped", loc, n=done))
        return
    click.echo(message("done", loc, n=done))


def _ask_outcome(loc: str, outcomes: tuple[str, ...]) -> str:
    """The call's outcome: in Chinese a numbered menu of the outcomes' names (the number, the name or the
    outcome's own key is accepted); in English the keys ``record --outcome`` takes."""
    from core.words import word

    if loc != "zh_CN":
        return click.prompt(message("outcome", loc), type=click.Choice([*outcomes, "skip"]),
                            default=str(Outcome.REACHED))
    keys = [*outcomes, "skip"]
    names = [word("outcome", k, loc) if k != "skip" else message("skip_word", loc) for k in keys]
    click.echo("  ".join(f"{i} {name}" for i, name in enumerate(names, 1)))
    while True:
        typed = click.prompt(message("outcome_pick", loc), default="1").strip()
        if typed.isdigit() and 1 <= int(typed) <= len(keys):
            return keys[int(typed) - 1]
        if typed in names:
            return keys[names.index(typed)]
        if typed in keys:
            return typed
        click.secho(message("outcome_not_known", loc, text=typed, n=len(keys)), fg="red")


def _answers_for(app: App, session: Any, task_id: int, answers: dict[str, str]) -> dict[str, str]:
    """The answers of this call that belong to this task's questions."""
    from core.db.models import Task

    task = session.get(Task, task_id)
    keys = app.plugins.questions(task.specialty, task.procedure, task.milestone)
    return {k: v for k, v in answers.items() if k in keys}


def _prompt_booking(app: App, task_id: int, locale: str) -> datetime | None:
    """The appointment a booked call made (Enter: none, which only a sales follow-up accepts)."""
    from core.db.engine import session_scope
    from core.db.models import Task

    with session_scope(app.ready_db()) as session:
        site = app.config.sites.get(session.get(Task, task_id).site)
    while True:
        text = click.prompt(message("booked_at_prompt", locale), default="", show_default=False).strip()
        if not text:
            return None
        try:
            return parse_callback(app, text, site, locale)
        except FollowupError as exc:
            click.secho(localize(exc, locale), fg="red")


def _prompt_callback(app: App, task_id: int, locale: str) -> datetime:
    """Ask until the time is a valid callback time (ahead, not in the quiet hours)."""
    from core.calls import CallError, check_callback_time
    from core.db.engine import session_scope
    from core.db.models import Task
    from core.whenparse import describe

    with session_scope(app.ready_db()) as session:
        site = app.config.site(session.get(Task, task_id).site)
    tomorrow = app.now.astimezone(site.timezone).date() + timedelta(days=1)
    while True:
        try:
            moment = parse_callback(app, click.prompt(message("callback_at", locale, example=f"{tomorrow} 15:00")),
                                    site, locale)
            check_callback_time(site, moment, app.now)
        except (FollowupError, CallError, ValueError) as exc:
            click.secho(localize(exc, locale), fg="red")
            continue
        if click.confirm(message("callback_echo", locale, at=describe(moment, locale)) + "  "
                         + message("callback_confirm", locale), default=True):
            return moment


def _ask_questions(app: App, task_id: int, locale: str | None, skip: set[str] | None = None,
                   ui: str | None = None) -> dict[str, str]:
    """Ask the task's questions in the script's language; a bad answer is explained in the coordinator's (ui)."""
    from core.calls import task_context, task_milestone
    from core.db.engine import session_scope
    from core.db.models import Task
    from core.scripts import ordered_questions, question_hint

    config, plugins = app.config, app.plugins
    with session_scope(app.ready_db()) as session:
        task = session.get(Task, task_id)
        site = config.site(task.site)
        context = task_context(session, config, task, app.now, app.user)
        questions = ordered_questions(plugins, context, task_milestone(plugins, site, task))
    loc = locale or context.patient.locale or site.locale
    skip_hint = "（回车跳过）" if loc == "zh_CN" else " (Enter to skip)"
    answers: dict[str, str] = {}
    for q in questions:
        if skip and q.key in skip:
            continue
        hint = question_hint(q, loc)
        while True:
            raw = click.prompt(f"{q.text.get(loc)}" + (f" [{hint}]" if hint else "") + skip_hint,
                               default="", show_default=False)
            if not raw.strip():
                break
            try:
                q.parse_answer(raw)
            except ValueError as exc:
                click.secho(localize(exc, ui or loc), fg="red")
                continue
            answers[q.key] = raw
            break
    return answers
