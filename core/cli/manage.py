"""Follow-through commands: ``escalations``, ``complaints``, ``patients dnc``, ``audit``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from core.cli.main import App
from core.cli.output import FORMATS, ID, LIMIT, bom_option, emit, format_option, locale_option, short_time, to_json
from core.messages import message
from core.vocab import Urgency


@click.group("escalations", invoke_without_command=True)
@locale_option()
@click.pass_context
def escalations_group(ctx: click.Context, locale: str | None) -> None:
    """Red flags sent to the attending doctor: opened, acknowledged, resolved, each with a deadline."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(escalations_list, locale=locale)


@escalations_group.command("open")
@click.argument("task_id", type=ID)
@click.option("--reason", required=True, help="What the doctor must know (the coordinator's own judgement).")
@click.option("--severity", type=click.Choice([str(u) for u in Urgency]), default=str(Urgency.CLINICAL),
              show_default=True,
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
                                assignee=app.user if mine else None, user=app.user)  # full numbers: audited
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
@click.argument("escalation_id", type=ID)
@locale_option()
@click.pass_obj
def escalations_ack(app: App, escalation_id: int, locale: str | None) -> None:
    """Acknowledge an escalation assigned to you (you have seen it and will act)."""
    from core.db.engine import session_scope
    from core.escalations import acknowledge_escalation
    from core.tasklist import local_iso

    with session_scope(app.ready_db()) as session:
        row = acknowledge_escalation(session, app.config, escalation_id, user=app.user, now=app.now)
        due = (local_iso(row.due_at, app.config.timezone_of(row.site)) or "—")[:16].replace("T", " ")
    click.echo(message("escalation_acknowledged", app.ui_locale(locale), id=escalation_id, user=app.user, due=due))


@escalations_group.command("resolve")
@click.argument("escalation_id", type=ID)
@click.option("--how", required=True, help="What was done (e.g. 'seen by Dr Chen, antibiotics changed').")
@locale_option()
@click.pass_obj
def escalations_resolve(app: App, escalation_id: int, how: str, locale: str | None) -> None:
    """Mark an escalation assigned to you resolved, saying how."""
    from core.db.engine import session_scope
    from core.escalations import resolve_escalation

    with session_scope(app.ready_db()) as session:
        row = resolve_escalation(session, app.config, escalation_id, resolution=how, user=app.user, now=app.now)
        late = row.due_at is not None and row.resolved_at is not None and row.due_at < row.resolved_at
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
        rows = list_complaints(session, app.config, now=app.now, status=status, site=site, user=app.user)
    if fmt == "table":
        from core.cli.output import columns_for, print_table
        from core.privacy import mask_data
        from core.words import header

        rows = mask_data(rows)  # free text with numbers in it: masked, as in every output
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
@click.argument("complaint_id", type=ID)
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
        rows = [r for r in list_complaints(session, app.config, now=app.now, user=app.user) if r["id"] == complaint_id]
    if not rows:
        raise FollowupError(key="no_complaint", values={"id": complaint_id})
    if fmt == "json":
        click.echo(to_json(rows[0]))
        return
    from core.cli.grid import display_width as cell_len
    from core.privacy import mask_data

    loc = app.ui_locale(locale)
    row = mask_data(rows[0])
    labels = {key: header("deadline" if key == "due_at" else key, loc) for key in row}
    width = max(cell_len(text) for text in labels.values())
    for key in row:
        click.echo(f"{' ' * (width - cell_len(labels[key]))}{labels[key]}：{_complaint_cell(row, key, loc)}"
                   if loc == "zh_CN" else f"{labels[key]:>{width}}: {_complaint_cell(row, key, loc)}")


@complaints_group.command("respond")
@click.argument("complaint_id", type=ID)
@click.option("--text", required=True, help="The answer given to the patient.")
@locale_option()
@click.pass_obj
def complaints_respond(app: App, complaint_id: int, text: str, locale: str | None) -> None:
    """Record the answer given to the patient."""
    from core.db.engine import session_scope
    from core.followthrough import respond_complaint

    with session_scope(app.ready_db()) as session:
        row = respond_complaint(session, app.config, complaint_id, response=text, user=app.user, now=app.now)
        late = row.responded_at > row.due_at
    click.echo(message("complaint_responded_late" if late else "complaint_responded", app.ui_locale(locale),
                       id=complaint_id))


@complaints_group.command("close")
@click.argument("complaint_id", type=ID)
@click.option("--note", help="Why it can be closed.")
@locale_option()
@click.pass_obj
def complaints_close(app: App, complaint_id: int, note: str | None, locale: str | None) -> None:
    """Close a responded complaint."""
    from core.db.engine import session_scope
    from core.followthrough import close_complaint

    with session_scope(app.ready_db()) as session:
        close_complaint(session, app.config, complaint_id, user=app.user, now=app.now, note=note)
    click.echo(message("complaint_closed", app.ui_locale(locale), id=complaint_id))


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

    with session_scope(app.ready_db(), immediate=True) as session:  # a writer: SQLite's write lock from the start
        changed = set_do_not_contact(session, app.config, patient_id, on=not undo, reason=reason, user=app.user,
                                     now=app.now)
    click.echo(message("dnc_off" if undo else "dnc_on", app.ui_locale(locale), patient=patient_id, n=changed))


@patients_group.command("export")
@click.argument("patient_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON here (0600); default: stdout.")
@locale_option()
@click.pass_obj
def patients_export(app: App, patient_id: str, out: Path | None, locale: str | None) -> None:
    """Everything held about one patient, as JSON (PIPL: the patient's copy); audited."""
    import json

    from core.cli.output import _plain
    from core.db.engine import session_scope
    from core.errors import FollowupError
    from core.patients import export_patient
    from core.privacy import private_file

    with session_scope(app.ready_db()) as session:
        data = export_patient(session, app.config, patient_id, user=app.user, now=app.now)
        text = json.dumps(data, ensure_ascii=False, indent=2, default=_plain)  # the patient's own data: unmasked
        if out is None:
            click.echo(text)
            return
        try:
            private_file(out).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise FollowupError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    click.echo(message("patient_exported", app.ui_locale(locale), patient=patient_id, file=out), err=True)


@patients_group.command("erase")
@click.argument("patient_id")
@click.option("--reason", required=True, help="Why (e.g. 'patient request 2026-12-01, ticket 88').")
@locale_option()
@click.pass_obj
def patients_erase(app: App, patient_id: str, reason: str, locale: str | None) -> None:
    """Anonymise a patient (PIPL): name, phone, birth date and free text removed; counts kept; audited."""
    from core.db.engine import session_scope
    from core.patients import erase_patient

    with session_scope(app.ready_db()) as session:
        done = erase_patient(session, app.config, patient_id, reason=reason, user=app.user, now=app.now)
    click.echo(message("patient_erased", app.ui_locale(locale), patient=patient_id, n=done["tasks_suppressed"]))


@click.group("audit", invoke_without_command=True)
@click.option("--patient", help="Only this patient's history.")
@click.option("--limit", type=LIMIT, default=200, show_default=True)
@locale_option()
@bom_option()
@format_option(*FORMATS)
@click.pass_context
def audit_cmd(ctx: click.Context, patient: str | None, limit: int, locale: str | None, bom: bool, fmt: str) -> None:
    """Who changed what, and when (``audit verify``: check that nobody altered the log)."""
    if ctx.invoked_subcommand is not None:
        return
    from core.audit import list_audit
    from core.db.engine import session_scope

    app: App = ctx.obj
    with session_scope(app.ready_db()) as session:
        rows = list_audit(session, app.config, user=app.user, patient=patient, limit=limit)
    columns = ["at", "recorded_at", "user", "action", "entity", "entity_id", "detail"]
    if fmt != "table":
        emit(rows, columns, fmt, bom=bom)
        return
    from core.words import word

    loc = app.ui_locale(locale)
    shown = [{"at": short_time(r["at"]), "user": r["user"], "action": word("audit_action", r["action"], loc),
              "object": word("entity", r["entity"], loc) + (f" {r['entity_id']}" if r["entity_id"] is not None else ""),
              "detail": detail_text(r["detail"], loc)} for r in rows]
    emit(shown, ["at", "user", "action", "object", "detail"], "table", locale=loc)


@audit_cmd.command("verify")
@format_option("table", "json")
@locale_option()
@click.pass_obj
def audit_verify(app: App, fmt: str, locale: str | None) -> None:
    """Check the audit log's hash chain: the first row edited, inserted or removed; exit 1 if any."""
    from core.audit import verify
    from core.db.engine import session_scope

    with session_scope(app.ready_db()) as session:
        verdict = verify(session, app.config, user=app.user)
    if fmt == "json":
        click.echo(to_json({"ok": verdict.ok, "rows": verdict.rows, "problem": verdict.problem,
                            "row_id": verdict.row_id, "head": verdict.head, "unsealed": verdict.unsealed}))
    elif verdict.ok:
        click.echo(message("audit_intact", app.ui_locale(locale), n=verdict.rows, head=verdict.head))
    else:
        click.secho(message(f"audit_{verdict.problem}", app.ui_locale(locale), id=verdict.row_id, n=verdict.rows),
                    fg="red", err=True)
    if fmt != "json" and verdict.unsealed:
        click.echo(message("audit_unsealed", app.ui_locale(locale), n=verdict.unsealed))
    if not verdict.ok:
        raise SystemExit(1)


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

    from core import access
    from core.db.engine import session_scope
    from core.db.models import Patient
    from core.errors import FollowupError
    from core.outbox import set_optout

    with session_scope(app.ready_db(), immediate=True) as session:  # a writer: SQLite's write lock from the start
        found = session.execute(select(Patient).where(Patient.external_id == patient_id)).scalar_one_or_none()
        if found is None:
            raise FollowupError(key="no_patient", values={"patient": patient_id})
        access.require_patient(session, app.config, app.user, access.OPTOUT, found)
        found = found.id
        changed = set_optout(session, found, channel, undo=undo, user=app.user, now=app.now)
    key = ("optout_off" if undo else "optout_on") if changed else ("optout_was_off" if undo else "optout_was_on")
    click.echo(message(key, app.ui_locale(locale), patient=patient_id, channel=channel))
