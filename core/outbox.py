"""The outbox: every message to a patient, queued, claimed by one sender, sent, retried or failed.

``followup send`` runs :func:`send_due`:

1. **enqueue** what is due: the message of an sms/wechat/email milestone at its
   due time; the ``notice`` of a phone milestone the day before its call; the
   ``after_unsuccessful`` message (questionnaire link) once the calls failed.
   One row per (task, kind, channel, seq): ``seq`` is 0 unless a message is
   resent on purpose, so a second ``send`` (or four at once) queues nothing twice.
2. **claim** due rows like calls are claimed: one ``UPDATE ... WHERE id IN
   (SELECT ... FOR UPDATE SKIP LOCKED) AND status = 'queued' RETURNING`` (on
   SQLite inside ``BEGIN IMMEDIATE``), so two senders never send one message.
   Sites in their quiet hours are left out. A row whose sender died (``sending``
   past its hold) is taken again.
3. **check** each claimed message: a do-not-contact or opted-out patient, a task
   no longer waiting for it (completed by a call, cancelled), a window that has
   ended: the message is ``failed`` or ``expired``, never sent. A patient who got
   ``max_per_patient_per_day`` messages today waits for tomorrow.
4. **send** through the channel plugin, outside any transaction; then record
   the receipt: ``sent`` (a milestone without questions completes its task),
   ``retry`` (backoff doubling from ``retry_after``; ``failed`` after
   ``max_tries``) or ``failed``. A failed milestone message with
   ``fallback: phone`` makes its task a phone call on the worklist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from core.audit import audit
from core.channels import (
    MESSAGE_CHANNELS,
    ChannelError,
    Message,
    Receipt,
    mask_address,
    open_channel,
    segments,
)
from core.channels import MessageKind as Kind
from core.channels import MessageStatus as MS
from core.config import ChainConfig, Site
from core.db.models import Attempt, Episode, OutboxMessage, Patient, PatientOptout, Task
from core.db.uow import unit_of_work
from core.plugins import Plugins
from core.vocab import Channel, TaskStatus

log = logging.getLogger(__name__)
SENDER = "system:send"
ADDRESS_OF = {Channel.SMS: "phone", Channel.WECHAT: "wechat_openid", Channel.EMAIL: "email"}


@dataclass
class SendSummary:
    queued: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    postponed: int = 0
    fallbacks: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in
                ("queued", "sent", "retried", "failed", "expired", "postponed", "fallbacks", "messages")}


# -- what a message says -----------------------------------------------------------------------


def _milestone(plugins: Plugins, site: Site, task: Task) -> Any:
    from core.calls import task_milestone
    from core.greetings import GREETING, greeting_milestone

    if task.purpose == GREETING:
        return greeting_milestone(task)

    base = task_milestone(plugins, site, task)
    effective = site.apply_overrides(task.specialty, task.procedure, [base])
    return effective[0] if effective else base


def has_questionnaire(plugins: Plugins, site: Site, task: Task, kind: str) -> bool:
    if kind == Kind.NOTICE:
        return False
    from core.questionnaire import questionnaire_questions

    return bool(questionnaire_questions(plugins, site, task))


def compose(
    session: Session, config: ChainConfig, plugins: Plugins, task: Task, kind: str, channel: str, now: datetime,
    *, next_try_at: datetime | None = None, seq: int = 0,
) -> dict[str, Any]:
    """The outbox row of one message: rendered text, address, provider template and parameters."""
    from core.channels import ProviderTemplate
    from core.greetings import GREETING, kind_of
    from core.messages import message as catalogue
    from core.templates import _environment, render

    site = config.site(task.site)
    patient = session.get(Patient, task.patient_id)
    episode = session.get(Episode, task.episode_id)
    assert patient is not None and episode is not None
    locale = patient.locale or site.locale
    installed = plugins.channels()
    plugin_name = (site.channels.get(channel) or {}).get("plugin", channel)
    cls = installed.get(plugin_name)
    row: dict[str, Any] = {
        "task_id": task.id, "patient_id": task.patient_id, "site": task.site, "channel": channel, "kind": kind,
        "seq": seq, "locale": locale, "status": MS.QUEUED, "tries": 0, "next_try_at": next_try_at or now,
        "queued_at": now, "body": "", "params": {},
    }
    if cls is None:
        row.update(status=MS.FAILED, error=f"channel {channel!r} is not configured")
        return row
    # The address a channel name stands for (an "email" carried by the file plugin still needs an
    # e-mail address); another channel name: what its plugin says it needs.
    kind_of_address = ADDRESS_OF.get(channel, cls.capabilities.address)
    address = {"phone": patient.phone, "email": patient.email, "wechat_openid": patient.wechat_openid,
               "none": patient.phone or patient.email or patient.wechat_openid or ""}[kind_of_address]
    row["recipient"] = address
    milestone = _milestone(plugins, site, task)
    link = None
    # The window's end, but never less than two days after the message is due (a short window, a night
    # in between, a provider down for an hour: the message and its link keep their meaning).
    expires = max(task.window_end, task.due_at + timedelta(days=2))
    if kind == Kind.AFTER_UNSUCCESSFUL:
        expires = max(expires, now + timedelta(days=7))
    if has_questionnaire(plugins, site, task, kind):
        from core.questionnaire import questionnaire_link

        link = questionnaire_link(session, config, task.id, expires)
    spec = plugins.specialty(task.specialty)
    proc = spec.procedure(task.procedure) if spec else None
    info = _patient_info(patient, site, now, locale)
    tz = site.timezone
    due_local = task.due_at.astimezone(tz)
    variables = {
        "salutation": plugins.salutation(info, locale, config.model.defaults.age_bands.model_dump()),
        "clinic": site.name.get(locale), "clinic_phone": site.phone or "",
        "milestone": milestone.names.get(locale), "procedure": proc.names.get(locale) if proc else task.procedure,
        "call_date": f"{due_local:%Y-%m-%d}", "call_time": f"{due_local:%H:%M}",
        "link": link or "", "kind": kind, "doctor": episode.doctor or "",
        # a birthday or anniversary greeting (core/greetings.py) has its own words
        "greeting": (task.milestone.split("_")[1] if task.purpose == "greeting" else ""),
    }
    dirs = [*map(str, site.template_dirs), *plugins.template_dirs()]
    names = [f"message/{task.specialty}/{kind}.j2", f"message/{kind}.j2"]
    if task.purpose == GREETING:  # a birthday or anniversary greeting (core/greetings.py)
        names = [f"message/greeting_{kind_of(task.milestone)}.j2"]
    text = _render_first(names, variables, locale, dirs)
    row.update(body=text, link=link, expires_at=expires,
               subject=catalogue("message_subject", locale, clinic=variables["clinic"],
                                 milestone=variables["milestone"]))
    if cls.capabilities.html:
        row["html"] = render("message/email.html.j2", {**variables, "text": text}, locale=locale, dirs=dirs)
    template = (site.channels.get(channel) or {}).get("templates", {}).get(kind)
    if template:
        entry = ProviderTemplate.model_validate(template)
        env = _environment(tuple(dirs), locale)
        row["template"] = entry.code
        row["params"] = {k: env.from_string(v).render(**variables).strip() for k, v in entry.params.items()}
    if not address:
        row.update(status=MS.FAILED, error=f"no {kind_of_address} for this patient")
    elif cls.capabilities.max_length and len(text) > cls.capabilities.max_length and not row.get("template"):
        row.update(status=MS.FAILED,
                   error=f"text of {len(text)} characters is longer than {cls.capabilities.max_length}")
    return row


def _render_first(names: list[str], variables: dict[str, Any], locale: str, dirs: list[str]) -> str:
    from jinja2 import TemplateNotFound

    from core.templates import TemplateRenderError, render

    for name in names[:-1]:
        try:
            return render(name, variables, locale=locale, dirs=dirs).strip()
        except TemplateRenderError as exc:
            if not isinstance(exc.__cause__, TemplateNotFound) or exc.__cause__.name != name:
                raise
    return render(names[-1], variables, locale=locale, dirs=dirs).strip()


def _patient_info(patient: Patient, site: Site, now: datetime, locale: str) -> Any:
    from core.calls import age_on
    from core.protocol import PatientInfo

    return PatientInfo(external_id=patient.external_id, name=patient.name, gender=patient.gender,  # type: ignore[arg-type]
                       age=age_on(patient.birth_date, now.astimezone(site.timezone).date()), locale=locale)


# -- enqueue ------------------------------------------------------------------------------------


def _insert(session: Session, row: dict[str, Any]) -> bool:
    """Insert one outbox row unless (task, kind, channel, seq) is there already; True if inserted."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(OutboxMessage).values(**row).on_conflict_do_nothing(
        index_elements=["task_id", "kind", "channel", "seq"])
    return bool(session.execute(stmt).rowcount)


def _not_queued(kind: str) -> Any:
    return ~exists().where(OutboxMessage.task_id == Task.id, OutboxMessage.kind == kind)


def _milestone_keys(
    plugins: Plugins, config: ChainConfig, sites: list[str], attr: str
) -> dict[tuple[str, str, str], str]:
    """(specialty, procedure, milestone) -> channel for every milestone with ``notice``/``after_unsuccessful``."""
    out: dict[tuple[str, str, str], str] = {}
    for code in sites:
        site = config.site(code)
        for key in site.specialties:
            spec = plugins.specialty(key)
            for proc in spec.procedures if spec else ():
                milestones = site.apply_overrides(key, proc.code, [m for _, m in plugins.milestones(key, proc.code)])
                for ms in milestones:
                    if getattr(ms, attr):
                        out[(key, proc.code, ms.key)] = getattr(ms, attr)
    return out


def enqueue_due(session: Session, config: ChainConfig, plugins: Plugins, *, now: datetime, sites: list[str],
                channel: str | None = None, summary: SendSummary | None = None) -> int:
    """Queue every message that is due now or tomorrow (a notice); returns how many rows were added.

    A message that cannot be composed for its patient (no address for the channel) is stored
    ``failed`` with the reason, and its milestone falls back to a call when it says so.
    """
    summary = summary if summary is not None else SendSummary()
    added = 0
    channels = [channel] if channel else list(MESSAGE_CHANNELS)
    due = session.execute(
        select(Task).where(Task.status == TaskStatus.OPEN, Task.site.in_(sites), Task.channel.in_(channels),
                           Task.next_attempt_at <= now, _not_queued(Kind.MILESTONE))
        .order_by(Task.next_attempt_at, Task.id)
    ).scalars().all()
    for task in due:
        row = compose(session, config, plugins, task, Kind.MILESTONE, task.channel, now)
        if _insert(session, row):
            added += 1
            if row["status"] == MS.FAILED:
                summary.failed += 1
                failed = session.execute(select(OutboxMessage).where(
                    OutboxMessage.task_id == task.id, OutboxMessage.kind == Kind.MILESTONE,
                    OutboxMessage.channel == task.channel, OutboxMessage.seq == 0)).scalar_one()
                fallback(session, config, plugins, failed, now, summary)
    notices = {k: c for k, c in _milestone_keys(plugins, config, sites, "notice").items() if c in channels}
    if notices:
        horizon = now + timedelta(days=2)
        rows = session.execute(
            select(Task).where(Task.status == TaskStatus.OPEN, Task.site.in_(sites), Task.channel == Channel.PHONE,
                               Task.attempts == 0, Task.due_at > now, Task.due_at <= horizon,
                               Task.milestone.in_({k[2] for k in notices}), _not_queued(Kind.NOTICE))
        ).scalars().all()
        for task in rows:
            wanted = notices.get((task.specialty, task.procedure, task.milestone))
            if wanted is None:
                continue
            site = config.site(task.site)
            at = notice_time(config, site, task.due_at)
            if at > now + timedelta(hours=24) or at >= task.due_at:
                continue  # not yet (the next run queues it), or the call is too close for a notice
            added += _insert(session, compose(session, config, plugins, task, Kind.NOTICE, wanted, now,
                                              next_try_at=max(at, now)))
    after = {k: c for k, c in _milestone_keys(plugins, config, sites, "after_unsuccessful").items() if c in channels}
    if after:
        rows = session.execute(
            select(Task).where(_calls_failed(), Task.site.in_(sites), Task.updated_at >= now - timedelta(days=7),
                               Task.milestone.in_({k[2] for k in after}), _not_queued(Kind.AFTER_UNSUCCESSFUL))
        ).scalars().all()
        for task in rows:
            wanted = after.get((task.specialty, task.procedure, task.milestone))
            if wanted is not None:
                added += _insert(session, compose(session, config, plugins, task, Kind.AFTER_UNSUCCESSFUL, wanted, now))
    return added


def _calls_failed() -> Any:
    """Tasks whose calls failed: unsuccessful, or reopened for another round (the month-end sweep)."""
    return or_(Task.status == TaskStatus.UNSUCCESSFUL,
               and_(Task.status == TaskStatus.OPEN, Task.channel == Channel.PHONE, Task.swept_at.is_not(None)))


def notice_time(config: ChainConfig, site: Site, due_at: datetime) -> datetime:
    """The day before the call, at ``messaging.notice_at`` local time (the planner's)."""
    from core.planner import planner

    hour, minute = map(int, config.model.messaging.notice_at.split(":"))
    return planner(config, site).notice_at(due_at, time(hour, minute))


def resend(session: Session, config: ChainConfig, plugins: Plugins, message_id: int, *, user: str,
           now: datetime) -> int:
    """Queue a message again on purpose: a new row with the next ``seq``; returns its id."""
    old = session.get(OutboxMessage, message_id)
    if old is None or old.task_id is None:
        from core.errors import FollowupError

        raise FollowupError(f"no message {message_id}")
    task = session.get(Task, old.task_id)
    assert task is not None
    seq = session.execute(select(func.max(OutboxMessage.seq)).where(
        OutboxMessage.task_id == old.task_id, OutboxMessage.kind == old.kind,
        OutboxMessage.channel == old.channel)).scalar_one() + 1
    row = compose(session, config, plugins, task, old.kind, old.channel, now, seq=seq)
    _insert(session, row)
    new_id = session.execute(select(OutboxMessage.id).where(
        OutboxMessage.task_id == old.task_id, OutboxMessage.kind == old.kind, OutboxMessage.channel == old.channel,
        OutboxMessage.seq == seq)).scalar_one()
    audit(session, user=user, at=now, action="resend", entity="message", entity_id=new_id, patient_id=old.patient_id,
          detail={"of": old.id})
    return new_id


# -- claim --------------------------------------------------------------------------------------


def sites_awake(config: ChainConfig, sites: Iterable[str], now: datetime) -> list[str]:
    """The sites not in their quiet hours now: messages are never sent at night."""
    return [c for c in sites if not config.site(c).quiet_hours.contains(now.astimezone(config.site(c).timezone).time())]


def claim(session: Session, config: ChainConfig, *, sender: str, sites: list[str], now: datetime, limit: int,
          channel: str | None = None) -> list[int]:
    """Take up to ``limit`` due messages for ``sender``; never one another sender holds."""
    awake = sites_awake(config, sites, now)
    if not awake:
        return []
    hold = config.model.messaging.sending_hold.add_to(now)
    due = or_(
        and_(OutboxMessage.status == MS.QUEUED, OutboxMessage.next_try_at <= now),
        and_(OutboxMessage.status == MS.SENDING, OutboxMessage.claimed_until < now),  # its sender died
    )
    where = [due, OutboxMessage.site.in_(awake)]
    if channel:
        where.append(OutboxMessage.channel == channel)
    picked = (select(OutboxMessage.id).where(*where).order_by(OutboxMessage.next_try_at, OutboxMessage.id)
              .limit(limit).with_for_update(skip_locked=True))
    if session.get_bind().dialect.name == "postgresql":
        ids: Any = select(picked.cte("picked").prefix_with("MATERIALIZED").c.id).scalar_subquery()
    else:
        ids = list(session.execute(picked).scalars())
        if not ids:
            return []
    stmt = (update(OutboxMessage).where(OutboxMessage.id.in_(ids), *where)
            .values(status=MS.SENDING, sender=sender, claimed_until=hold, tries=OutboxMessage.tries + 1)
            .returning(OutboxMessage.id).execution_options(synchronize_session=False))
    return sorted(session.execute(stmt).scalars())


# -- check, send, record -------------------------------------------------------------------------


def _start_of_day(site: Site, now: datetime) -> datetime:
    return datetime.combine(now.astimezone(site.timezone).date(), time(0), site.timezone)


def _blocked(session: Session, config: ChainConfig, plugins: Plugins, msg: OutboxMessage,
             now: datetime) -> tuple[str, str] | None:
    """Why a claimed message must not go out now: (status, reason), or ("queued", reason) to wait."""
    patient = session.get(Patient, msg.patient_id)
    assert patient is not None
    if patient.do_not_contact:
        return MS.FAILED, "patient is on do-not-contact"
    if session.get(PatientOptout, (msg.patient_id, msg.channel)) is not None:
        return MS.FAILED, f"patient opted out of {msg.channel}"
    task = session.get(Task, msg.task_id) if msg.task_id else None
    if task is not None:
        if msg.kind == Kind.MILESTONE and (task.status != TaskStatus.OPEN or task.channel != msg.channel):
            return MS.EXPIRED, f"task is {task.status}"
        if msg.kind == Kind.NOTICE and (task.status != TaskStatus.OPEN or task.attempts > 0 or now >= task.due_at):
            return MS.EXPIRED, "the call is no longer ahead"
        if msg.kind == Kind.AFTER_UNSUCCESSFUL and not (
                task.status == TaskStatus.UNSUCCESSFUL
                or (task.status == TaskStatus.OPEN and task.swept_at is not None)):
            return MS.EXPIRED, f"task is {task.status}"
    if msg.expires_at is not None and now >= msg.expires_at:
        return MS.EXPIRED, "its window has ended"
    site = config.site(msg.site)
    today = session.execute(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.patient_id == msg.patient_id, OutboxMessage.sent_at >= _start_of_day(site, now),
        OutboxMessage.id != msg.id)).scalar_one()
    if today >= config.model.messaging.max_per_patient_per_day:
        return MS.QUEUED, "daily limit for this patient reached"
    return None


def _tomorrow(config: ChainConfig, site: Site, now: datetime) -> datetime:
    from core.planner import planner

    return planner(config, site).next_day(now)


def _as_message(msg: OutboxMessage) -> Message:
    return Message(id=msg.id, channel=msg.channel, kind=msg.kind, locale=msg.locale, to=msg.recipient or "",
                   text=msg.body, subject=msg.subject, html=msg.html, link=msg.link, template=msg.template,
                   params=dict(msg.params or {}))


def _backoff(config: ChainConfig, tries: int, receipt: Receipt) -> timedelta:
    base = timedelta(minutes=config.model.messaging.retry_after.approx_minutes)
    delay = base * (2 ** max(0, tries - 1))
    if receipt.retry_after:
        delay = max(delay, timedelta(seconds=receipt.retry_after))
    return min(delay, timedelta(hours=12))


def record_receipt(session: Session, config: ChainConfig, plugins: Plugins, msg: OutboxMessage, receipt: Receipt,
                   now: datetime, summary: SendSummary) -> None:
    """Write what the channel answered, and what follows for the task."""
    msg.claimed_until = None
    msg.error = receipt.error
    if receipt.status == MS.SENT:
        msg.status, msg.sent_at, msg.provider_id = MS.SENT, now, receipt.provider_id
        summary.sent += 1
        task = session.get(Task, msg.task_id) if msg.task_id else None
        site = config.site(msg.site)
        if (task is not None and msg.kind == Kind.MILESTONE and task.status == TaskStatus.OPEN
                and not has_questionnaire(plugins, site, task, msg.kind)):
            with unit_of_work(session, config, sites=[task.site], user=SENDER, now=now, action="send"):
                task.status, task.completed_at, task.updated_at = TaskStatus.COMPLETED, now, now
    elif receipt.status == "retry" and msg.tries < config.model.messaging.max_tries:
        msg.status, msg.next_try_at = MS.QUEUED, now + _backoff(config, msg.tries, receipt)
        summary.retried += 1
    else:
        msg.status = MS.FAILED
        summary.failed += 1
        fallback(session, config, plugins, msg, now, summary)
    audit(session, user=SENDER, at=now, action=f"message:{msg.status}", entity="message", entity_id=msg.id,
          patient_id=msg.patient_id, detail={"channel": msg.channel, "kind": msg.kind, "tries": msg.tries,
                                             "error": receipt.error})


def fallback(session: Session, config: ChainConfig, plugins: Plugins, msg: OutboxMessage, now: datetime,
             summary: SendSummary) -> None:
    """A failed milestone message with ``fallback: phone``: its task becomes a call on the worklist."""
    if msg.kind != Kind.MILESTONE or msg.task_id is None:
        return
    task = session.get(Task, msg.task_id)
    if task is None or task.status != TaskStatus.OPEN or task.channel not in MESSAGE_CHANNELS:
        return
    site = config.site(task.site)
    if _milestone(plugins, site, task).fallback != Channel.PHONE:
        return
    patient = session.get(Patient, task.patient_id)
    if patient is None or patient.do_not_contact:
        return
    from core.planner import planner

    at = planner(config, site).fallback_call(max(now, task.due_at), task.window_end, task.urgency)
    with unit_of_work(session, config, sites=[task.site], user=SENDER, now=now, action="send") as uow:
        task.channel, task.next_attempt_at, task.updated_at = Channel.PHONE, at, now
        uow.audit("fallback:phone", entity="task", entity_id=task.id, patient_id=task.patient_id,
                  detail={"message": msg.id})
    summary.fallbacks += 1


def unanswered(session: Session, config: ChainConfig, plugins: Plugins, *, now: datetime, sites: list[str],
               summary: SendSummary) -> None:
    """Questionnaire milestones whose window ended without answers: a phone call (fallback) or expired."""
    rows = session.execute(
        select(Task).where(Task.status == TaskStatus.OPEN, Task.site.in_(sites), Task.channel.in_(MESSAGE_CHANNELS),
                           Task.window_end < now,
                           exists().where(OutboxMessage.task_id == Task.id, OutboxMessage.kind == Kind.MILESTONE,
                                          OutboxMessage.status.in_((MS.SENT, MS.DELIVERED))),
                           ~exists().where(Attempt.task_id == Task.id))
    ).scalars().all()
    from core.planner import planner

    with unit_of_work(session, config, sites={task.site for task in rows}, user=SENDER, now=now,
                      action="send") as uow:
        for task in rows:
            site = config.site(task.site)
            if _milestone(plugins, site, task).fallback == Channel.PHONE:
                at = planner(config, site).fallback_call(now, now, task.urgency)
                task.channel, task.next_attempt_at, task.updated_at = Channel.PHONE, at, now
                summary.fallbacks += 1
                action = "fallback:phone"
            else:
                task.status, task.completed_at, task.updated_at = TaskStatus.EXPIRED, now, now
                summary.expired += 1
                action = "questionnaire:unanswered"
            uow.audit(action, entity="task", entity_id=task.id, patient_id=task.patient_id, detail={})


def send_due(url: str, config: ChainConfig, plugins: Plugins, *, now: datetime, sites: list[str],
             channel: str | None = None, limit: int = 100, sender: str = SENDER, dry_run: bool = False,
             environ: dict[str, str] | None = None) -> SendSummary:
    """One run of ``followup send``: enqueue, claim, check, send, record. Each step its own short transaction."""
    from core.db.engine import session_scope

    summary = SendSummary()
    if dry_run:
        with session_scope(url) as session:
            summary.queued = enqueue_due(session, config, plugins, now=now, sites=sites, channel=channel)
            awake = sites_awake(config, sites, now)
            where = [OutboxMessage.status == MS.QUEUED, OutboxMessage.next_try_at <= now,
                     OutboxMessage.site.in_(awake or [""])]
            if channel:
                where.append(OutboxMessage.channel == channel)
            for msg in session.execute(select(OutboxMessage).where(*where).order_by(OutboxMessage.next_try_at,
                                       OutboxMessage.id).limit(limit)).scalars():
                summary.messages.append(describe(msg, config))
            session.rollback()
        return summary
    with session_scope(url, immediate=True) as session:
        summary.queued = enqueue_due(session, config, plugins, now=now, sites=sites, channel=channel,
                                     summary=summary)
        unanswered(session, config, plugins, now=now, sites=sites, summary=summary)
    with session_scope(url, immediate=True) as session:
        ids = claim(session, config, sender=sender, sites=sites, now=now, limit=limit, channel=channel)
    installed = plugins.channels()
    for message_id in ids:
        with session_scope(url, immediate=True) as session:  # writers: SQLite's write lock from the start
            msg = session.get(OutboxMessage, message_id)
            assert msg is not None
            if msg.sender != sender or msg.status != MS.SENDING:
                continue  # pragma: no cover - taken over after our hold ran out
            blocked = _blocked(session, config, plugins, msg, now)
            if blocked is not None:
                status, reason = blocked
                msg.claimed_until, msg.error = None, reason
                if status == MS.QUEUED:
                    msg.status, msg.tries = MS.QUEUED, msg.tries - 1
                    msg.next_try_at = _tomorrow(config, config.site(msg.site), now)
                    summary.postponed += 1
                else:
                    msg.status = status
                    if status == MS.FAILED:
                        summary.failed += 1
                        if "opted out" in reason:
                            fallback(session, config, plugins, msg, now, summary)
                    else:
                        summary.expired += 1
                audit(session, user=sender, at=now, action=f"message:{msg.status}", entity="message",
                      entity_id=msg.id, patient_id=msg.patient_id, detail={"reason": reason})
                summary.messages.append(describe(msg, config))
                continue
            outgoing = _as_message(msg)
            site = config.site(msg.site)
        receipt = _send_one(site, outgoing, installed, environ)
        with session_scope(url, immediate=True) as session:
            msg = session.get(OutboxMessage, message_id)
            assert msg is not None
            record_receipt(session, config, plugins, msg, receipt, now, summary)
            summary.messages.append(describe(msg, config))
    return summary


def _send_one(site: Site, message: Message, installed: dict[str, Any], environ: dict[str, str] | None) -> Receipt:
    """Send through the channel plugin; a misconfiguration or a plugin's exception is a retry, never a crash."""
    try:
        channel = open_channel(site, message.channel, installed, environ)
    except ChannelError as exc:
        return Receipt.retry(str(exc))
    try:
        receipt = channel.send(message)
    except Exception as exc:  # a plugin bug must neither crash the sender nor lose the message
        log.warning("channel %s raised %s", message.channel, type(exc).__name__)
        return Receipt.retry(f"channel raised {type(exc).__name__}: {str(exc)[:200]}")
    if not isinstance(receipt, Receipt):
        return Receipt.retry(f"channel returned {type(receipt).__name__}, not a Receipt")
    return receipt


def apply_report(session: Session, channel: str, report: Any, now: datetime) -> bool:
    """A provider's delivery report: the message is delivered, or failed (with fallback left to the next run)."""
    msg = session.execute(select(OutboxMessage).where(
        OutboxMessage.channel == channel, OutboxMessage.provider_id == report.provider_id)).scalars().first()
    if msg is None or msg.status not in (MS.SENT, MS.DELIVERED):
        return False
    if report.delivered:
        msg.status, msg.delivered_at = MS.DELIVERED, now
    else:
        msg.status, msg.error = MS.FAILED, report.error or "not delivered"
    audit(session, user=f"provider:{channel}", at=now, action=f"message:{msg.status}", entity="message",
          entity_id=msg.id, patient_id=msg.patient_id, detail={"error": msg.error})
    return True


# -- listing -------------------------------------------------------------------------------------

OUTBOX_KEYS = ("id", "task_id", "patient_id", "site", "channel", "kind", "status", "tries", "queued_at", "sent_at",
               "delivered_at", "error")


def describe(msg: OutboxMessage, config: ChainConfig) -> dict[str, Any]:
    from core.tasklist import local_iso

    tz = config.timezone_of(msg.site)
    return {
        "id": msg.id, "task_id": msg.task_id, "patient_id": msg.patient_id, "site": msg.site,
        "channel": msg.channel, "kind": msg.kind, "status": msg.status, "tries": msg.tries,
        "queued_at": local_iso(msg.queued_at, tz), "sent_at": local_iso(msg.sent_at, tz) if msg.sent_at else None,
        "delivered_at": local_iso(msg.delivered_at, tz) if msg.delivered_at else None,
        "error": _scrub(msg.error),
        "to": mask_address(msg.recipient), "segments": segments(msg.body) if msg.channel == Channel.SMS else None,
    }


def _scrub(text: str | None) -> str | None:
    from core.privacy import scrub_phones

    return scrub_phones(text) if text else text


def list_outbox(session: Session, config: ChainConfig, *, status: str | None = None, patient: str | None = None,
                sites: list[str] | None = None) -> list[dict[str, Any]]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    if patient:
        stmt = stmt.join(Patient, Patient.id == OutboxMessage.patient_id).where(
            or_(Patient.external_id == patient, Patient.id == (int(patient) if patient.isdigit() else -1)))
    if sites is not None:
        stmt = stmt.where(OutboxMessage.site.in_(sites))
    return [describe(m, config) for m in session.execute(stmt).scalars()]


def set_optout(session: Session, patient_id: int, channel: str, *, undo: bool, user: str, now: datetime) -> bool:
    row = session.get(PatientOptout, (patient_id, channel))
    if undo:
        if row is None:
            return False
        session.delete(row)
    else:
        if row is not None:
            return False
        session.add(PatientOptout(patient_id=patient_id, channel=channel, at=now, by=user))
    audit(session, user=user, at=now, action="optout:undo" if undo else "optout", entity="patient",
          entity_id=patient_id, patient_id=patient_id, detail={"channel": channel})
    return True
