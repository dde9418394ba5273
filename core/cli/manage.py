"""Follow-through commands: ``escalations``, ``complaints``, ``patients dnc``, ``audit``."""

from __future__ import annotations

from typing import Any

import click

from core.cli.main import App
from core.cli.output import FORMATS, bom_option, emit, format_option, locale_option, short_time, to_json
from core.messages import message


def _visible(app: App, rows: list[dict], site: str | None) -> list[dict]:
    """Coordinators see only their sites' escalations and complaints (--site narrows, and is checked)."""
    from core.cli.work import _sites_for

    allowed = set(_sites_for(app, site))
    return [r for r in rows if r["site"] in allowed]


def _check_site(app: App, site: str, what: str, item_id: int) -> None:
    """``what`` is the message key that names the item: escalation_denied or complaint_denied."""
    from core.calls import check_site_access
    from core.errors import FollowupError

    try:
        check_site_access(app.config, app.user, site)
    except FollowupError as exc:
        raise FollowupError(key=what, values={"id": item_id, "error": exc}) from None


@click.group("escalations", invoke_without_command=True)
@locale_option()
@click.pass_context
def escalations_group(ctx: click.Context, locale: str | None) -> None:
    """Red flags sent to the attending doctor: opened, acknowledged, resolved, each with a deadline."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(escalations_list, locale=locale)


@escalations_group.command("open")
@click.argument("task_id", type=int)
@click.option("--reason", required=True, help="What the doctor must know (the coordinator's own judgement).")
@click.option("--severity", type=click.Choice(["clinical", "routine"]), default="clinical", show_default=True,
              help="clinical: a red flag (4 working hours by default); routine: arrange a visit.")
@locale_option()
@click.pass_obj
def escalations_open(app: App, task_id: int, reason: str, severity: str, locale: str | None) -> None:
    """Send a task's patient to the doctor on your own judgement."""
    from core.calls import load_task
    from core.db.engine import session_scope
    from core.escalations import open_escalation
    from core.tasklist import local_iso

    with session_scope(app.ready_db()) as session:
        task = load_task(session, app.config, task_id, app.user)  # a coordinator escalates only their sites' tasks
        row = open_escalation(session, app.config, task, reason=reason, severity=severity, user=app.user,
                              now=app.now, source="coordinator")
        loc = app.ui_locale(locale)
        due = (local_iso(row.due_at, app.config.timezone_of(row.site)) or "")[:16].replace("T", " ")
        click.echo(message("escalation_opened", loc, id=row.id, assignee=row.assignee or message("no_assignee", loc),
                           due=due))


@escalations_group.command("list")
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]), help="Only these.")
@click.option("--site", help="Site code.")
@click.option("--mine", is_flag=True, help="Only those assigned to you, with the patient's name and phone.")
@locale_option()
@bom_option()
@format_option(*FORMATS)
@click.pass_obj
def escalations_list(app: App, status: str | None = None, site: str | None = None, mine: bool = False,
                     locale: str | None = None, bom: bool = True, fmt: str = "table") -> None:
    """List escalations; overdue ones (past their deadline, not resolved) are highlighted."""
    from core.db.engine import session_scope
    from core.escalations import JSON_KEYS, list_escalations
    from core.words import word

    with session_scope(app.ready_db()) as session:
        rows = list_escalations(session, app.config, now=app.now, status=status, site=site,
                                assignee=app.user if mine else None, user=app.user)
        if not mine:
            rows = _visible(app, rows, site)
        elif rows:
            from core.audit import audit

            audit(session, user=app.user, at=app.now, action="escalation:list_mine", entity="escalation",
                  detail={"ids": [r["id"] for r in rows]})  # the full numbers were shown
    if fmt != "table":
        emit(rows, JSON_KEYS, fmt, bom=bom)
        return
    loc = app.ui_locale(locale)
    click.echo(message("escalations_title", loc, n=len(rows)))
    for r in rows:  # one block each: a doctor reads the whole reason, name and number, never a cut-off cell
        who = f"{r['patient_name']} ({r['patient_id']})  {r['phone']}" if mine else r["patient_id"]
        line = (f"#{r['id']}  {who}  {r['site']}  {word('severity', r['severity'], loc)}  {r['assignee'] or '—'}  "
                f"{word('escalation_status', r['status'], loc)}  {message('due_by', loc, due=short_time(r['due_at']))}")
        if r["overdue"]:
            click.echo(click.style(f"{line}  ⚠ {word('flag', 'overdue', loc)}", fg="red", bold=True))
        else:
            click.echo(line)
        click.echo(f"    {r['reason']}")


@escalations_group.command("ack")
@click.argument("escalation_id", type=int)
@locale_option()
@click.pass_obj
def escalations_ack(app: App, escalation_id: int, locale: str | None) -> None:
    """Acknowledge an escalation assigned to you (you have seen it and will act)."""
    from core.db.engine import session_scope
    from core.db.models import Escalation
    from core.escalations import acknowledge_escalation
    from core.tasklist import local_iso

    with session_scope(app.ready_db()) as session:
        row = session.get(Escalation, escalation_id)
        if row is not None:
            _check_site(app, row.site, "escalation_denied", escalation_id)
        row = acknowledge_escalation(session, app.config, escalation_id, user=app.user, now=app.now)
        due = (local_iso(row.due_at, app.config.timezone_of(row.site)) or "—")[:16].replace("T", " ")
    click.echo(message("escalation_acknowledged", app.ui_locale(locale), id=escalation_id, user=app.user, due=due))


@escalations_group.command("resolve")
@click.argument("escalation_id", type=int)
@click.option("--how", required=True, help="What was done (e.g. 'seen by Dr Chen, antibiotics changed').")
@locale_option()
@click.pass_obj
def escalations_resolve(app: App, escalation_id: int, how: str, locale: str | None) -> None:
    """Mark an escalation assigned to you resolved, saying how."""
    from core.db.engine import session_scope
    from core.db.models import Escalation
    from core.escalations import resolve_escalation

    with session_scope(app.ready_db()) as session:
        row = session.get(Escalation, escalation_id)
        if row is not None:
            _check_site(app, row.site, "escalation_denied", escalation_id)
        late = row is not None and row.due_at is not None and row.due_at < app.now
        resolve_escalation(session, app.config, escalation_id, resolution=how, user=app.user, now=app.now)
    click.echo(message("escalation_resolved_late" if late else "escalation_resolved", app.ui_locale(locale),
                       id=escalation_id, user=app.user))


@click.group("complaints", invoke_without_command=True)
@locale_option()
@click.pass_context
def complaints_group(ctx: click.Context, locale: str | None) -> None:
    """Complaints: checked and answered within 3 days."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(complaints_list, locale=locale)


@complaints_group.command("list")
@click.option("--status", type=click.Choice(["open", "responded", "closed"]), help="Only these.")
@click.option("--site", help="Site code.")
@locale_option()
@bom_option()
@format_option(*FORMATS)
@click.pass_obj
def complaints_list(app: App, status: str | None = None, site: str | None = None, locale: str | None = None,
                    bom: bool = True, fmt: str = "table") -> None:
    """List complaints; overdue ones (no response after 3 days) are highlighted."""
    from core.db.engine import session_scope
    from core.followthrough import list_complaints

    with session_scope(app.ready_db()) as session:
        rows = _visible(app, list_complaints(session, app.config, now=app.now, status=status, site=site), site)
    if fmt == "table":
        from core.cli.output import columns_for, print_table
        from core.words import header

        loc = app.ui_locale(locale)
        columns = columns_for(["id", "patient_id", "site", "category", "staff", "status", "due_at", "description"],
                              loc, drop={"staff": 2, "site": 1})
        columns[6].header = header("deadline", loc)  # a complaint's due_at is when the answer is due
        print_table(columns, [[_complaint_cell(r, c.key, loc) for c in columns] for r in rows],
                    title=message("complaints_title", loc, n=len(rows)),
                    styles=["bold red" if r["overdue"] else None for r in rows])
        return
    emit(rows, ["id", "patient_id", "site", "category", "categories", "handler", "staff", "description", "status",
                "opened_at", "due_at", "responded_at", "response", "closed_at", "overdue"], fmt, bom=bom)


def _complaint_cell(row: dict, column: str, loc: str) -> str:  # type: ignore[type-arg]
    """A complaint's value as a person reads it: category and status in words, times to the minute."""
    from core.reports.labels import CATEGORIES, label
    from core.words import word

    value = row.get(column)
    if column == "category":  # every category of the call's one complaint
        return "、".join(label(c, loc, CATEGORIES) for c in row.get("categories") or [value] if c)
    if column == "categories":
        return "、".join(label(c, loc, CATEGORIES) for c in value or ()) or "—"
    if column == "status":
        return word("complaint_status", value, loc) + (" " + word("flag", "overdue", loc) if row["overdue"] else "")
    if column == "overdue":
        return word("flag", "yes" if value else "no", loc)
    if column.endswith("_at"):
        return short_time(value)
    return "—" if value is None else str(value)


@complaints_group.command("show")
@click.argument("complaint_id", type=int)
@locale_option()
@format_option("table", "json")
@click.pass_obj
def complaints_show(app: App, complaint_id: int, locale: str | None, fmt: str) -> None:
    """One complaint in full."""
    from core.db.engine import session_scope
    from core.errors import FollowupError
    from core.followthrough import list_complaints
    from core.words import header

    with session_scope(app.ready_db()) as session:
        rows = [r for r in _visible(app, list_complaints(session, app.config, now=app.now), None)
                if r["id"] == complaint_id]
    if not rows:
        raise FollowupError(key="no_complaint", values={"id": complaint_id})
    if fmt == "json":
        click.echo(to_json(rows[0]))
        return
    from rich.cells import cell_len

    loc = app.ui_locale(locale)
    labels = {key: header("deadline" if key == "due_at" else key, loc) for key in rows[0]}
    width = max(cell_len(text) for text in labels.values())
    for key in rows[0]:
        click.echo(f"{' ' * (width - cell_len(labels[key]))}{labels[key]}：{_complaint_cell(rows[0], key, loc)}"
                   if loc == "zh_CN" else f"{labels[key]:>{width}}: {_complaint_cell(rows[0], key, loc)}")


@complaints_group.command("respond")
@click.argument("complaint_id", type=int)
@click.option("--text", required=True, help="The answer given to the patient.")
@locale_option()
@click.pass_obj
def complaints_respond(app: App, complaint_id: int, text: str, locale: str | None) -> None:
    """Record the answer given to the patient."""
    from core.db.engine import session_scope
    from core.followthrough import respond_complaint

    with session_scope(app.ready_db()) as session:
        _check_complaint_site(app, session, complaint_id)
        row = respond_complaint(session, complaint_id, response=text, user=app.user, now=app.now)
        late = row.responded_at > row.due_at
    click.echo(message("complaint_responded_late" if late else "complaint_responded", app.ui_locale(locale),
                       id=complaint_id))


@complaints_group.command("close")
@click.argument("complaint_id", type=int)
@click.option("--note", help="Why it can be closed.")
@locale_option()
@click.pass_obj
def complaints_close(app: App, complaint_id: int, note: str | None, locale: str | None) -> None:
    """Close a responded complaint."""
    from core.db.engine import session_scope
    from core.followthrough import close_complaint

    with session_scope(app.ready_db()) as session:
        _check_complaint_site(app, session, complaint_id)
        close_complaint(session, complaint_id, user=app.user, now=app.now, note=note)
    click.echo(message("complaint_closed", app.ui_locale(locale), id=complaint_id))


def _check_complaint_site(app: App, session: object, complaint_id: int) -> None:
    from core.db.models import Complaint

    row = session.get(Complaint, complaint_id)  # type: ignore[attr-defined]
    if row is not None:
        _check_site(app, row.site, "complaint_denied", complaint_id)


@click.group("patients")
def patients_group() -> None:
    """Patients."""


@patients_group.command("dnc")
@click.argument("patient_id")
@click.option("--reason", help="Why the patient must not be contacted.")
@click.option("--undo", is_flag=True, help="Allow contact again and reopen the suppressed tasks.")
@locale_option()
@click.pass_obj
def patients_dnc(app: App, patient_id: str, reason: str | None, undo: bool, locale: str | None) -> None:
    """Do not contact: suppress every open task of the patient at once (undo with --undo)."""
    from core.db.engine import session_scope
    from core.followthrough import set_do_not_contact

    with session_scope(app.ready_db()) as session:
        _check_patient_site(app, session, patient_id)
        changed = set_do_not_contact(session, patient_id, on=not undo, reason=reason, user=app.user, now=app.now)
    click.echo(message("dnc_off" if undo else "dnc_on", app.ui_locale(locale), patient=patient_id, n=changed))


def _check_patient_site(app: App, session: object, external_id: str) -> None:
    """A coordinator may mark only a patient of their own sites (home site or any task's site)."""
    from sqlalchemy import select

    from core.db.models import Patient, Task
    from core.errors import FollowupError

    staff = app.config.staff(app.user)
    if staff is None or not staff.sites or staff.role == "admin":
        return
    patient = session.execute(  # type: ignore[attr-defined]
        select(Patient).where(Patient.external_id == external_id)).scalar_one_or_none()
    if patient is None:
        return  # set_do_not_contact says "no patient"
    sites = {patient.site} | set(session.execute(  # type: ignore[attr-defined]
        select(Task.site).where(Task.patient_id == patient.id)).scalars())
    if not sites & set(staff.sites):
        raise FollowupError(key="not_your_patient",
                            values={"patient": external_id, "sites": ", ".join(staff.sites), "user": app.user})


@click.command("audit")
@click.option("--patient", help="Only this patient's history.")
@click.option("--limit", type=int, default=200, show_default=True)
@locale_option()
@bom_option()
@format_option(*FORMATS)
@click.pass_obj
def audit_cmd(app: App, patient: str | None, limit: int, locale: str | None, bom: bool, fmt: str) -> None:
    """Who changed what, and when."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import AuditEntry, Patient
    from core.errors import FollowupError

    with session_scope(app.ready_db()) as session:
        query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
        if patient:
            pid = session.execute(select(Patient.id).where(Patient.external_id == patient)).scalar_one_or_none()
            if pid is None:
                raise FollowupError(key="no_patient", values={"patient": patient})
            query = query.where(AuditEntry.patient_id == pid)
        tz = ZoneInfo(app.config.model.defaults.timezone)  # shown in clinic time, stored in UTC
        rows = [{"at": e.at.astimezone(tz).isoformat(timespec="seconds"), "user": e.user, "action": e.action,
                 "entity": e.entity, "entity_id": e.entity_id, "detail": e.detail}
                for e in session.execute(query).scalars()]
    columns = ["at", "user", "action", "entity", "entity_id", "detail"]
    if fmt != "table":
        emit(rows, columns, fmt, bom=bom)
        return
    from core.words import word

    loc = app.ui_locale(locale)
    shown = [{"at": short_time(r["at"]), "user": r["user"], "action": word("audit_action", r["action"], loc),
              "object": word("entity", r["entity"], loc) + (f" {r['entity_id']}" if r["entity_id"] is not None else ""),
              "detail": detail_text(r["detail"], loc)} for r in rows]
    emit(shown, ["at", "user", "action", "object", "detail"], "table", locale=loc)


def detail_text(detail: Any, locale: str | None) -> str:
    """An audit entry's detail for a person: ``结果=已接通 状态=已完成``; keys and values in words where known."""
    from core.words import HEADERS, WORDS, header, word

    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)
    from core.reports.labels import CATEGORIES, label

    parts = []
    for key, value in detail.items():
        name = header(key, locale) if key in HEADERS else key
        if isinstance(value, bool):
            shown = word("flag", "yes" if value else "no", locale)
        elif key == "category" and isinstance(value, str):
            shown = label(value, locale or "en", CATEGORIES)
        elif key == "categories" and isinstance(value, list):
            shown = "、".join(label(v, locale or "en", CATEGORIES) for v in value) or "—"
        elif key in WORDS:
            shown = word(key, value, locale)
        elif isinstance(value, dict):
            shown = "(" + detail_text(value, locale) + ")"
        elif isinstance(value, list):
            shown = ", ".join(map(str, value)) or "—"
        else:
            shown = "—" if value is None else str(value)
        parts.append(f"{name}={shown}")
    return "\n".join(parts)


@patients_group.command("optout")
@click.argument("patient_id")
@click.option("--channel", required=True, type=click.Choice(["sms", "wechat", "email"]),
              help="The channel the patient no longer wants messages on.")
@click.option("--undo", is_flag=True, help="Send messages on this channel again.")
@locale_option()
@click.pass_obj
def patients_optout(app: App, patient_id: str, channel: str, undo: bool, locale: str | None) -> None:
    """Opt a patient out of one message channel (undo with --undo); calls are not affected."""
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Patient
    from core.errors import FollowupError
    from core.outbox import set_optout

    with session_scope(app.ready_db()) as session:
        _check_patient_site(app, session, patient_id)
        found = session.execute(select(Patient.id).where(Patient.external_id == patient_id)).scalar_one_or_none()
        if found is None:
            raise FollowupError(key="no_patient", values={"patient": patient_id})
        changed = set_optout(session, found, channel, undo=undo, user=app.user, now=app.now)
    key = ("optout_off" if undo else "optout_on") if changed else ("optout_was_off" if undo else "optout_was_on")
    click.echo(message(key, app.ui_locale(locale), patient=patient_id, channel=channel))
