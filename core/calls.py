"""Recording a call: attempts, outcomes and retries, answers, and what follows (DOMAIN.md §4, §6, §7).

One function, :func:`record_call`, is used by ``followup record`` and the
interactive ``followup call``. Everything is validated before anything is
written, and it runs inside the caller's transaction: a bad answer leaves the
database as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import vocab
from core.config import ChainConfig, Site
from core.db.models import Attempt, Episode, Patient, Task
from core.errors import FollowupError, checked_text
from core.messages import MESSAGES, Joined, Msg
from core.plugins import Plugins
from core.privacy import scrub_phones
from core.protocol import Action, Duration, Milestone, PatientInfo, TaskContext
from core.tasklist import local_iso
from core.vocab import (
    FAILED_OUTCOMES,
    FINAL_STATUSES,
    REACHED_OUTCOMES,
    TREATED_TRIGGERS,
    Channel,
    Outcome,
    TaskStatus,
    Urgency,
)

if TYPE_CHECKING:
    from core.db.uow import UnitOfWork

FAILED = FAILED_OUTCOMES
OUTCOMES = vocab.OUTCOMES
COMPLAINT_DAYS = 3


class CallError(FollowupError):
    """A call cannot be recorded as given; nothing was stored."""


@dataclass
class CallResult:
    task: Task
    outcome: str
    attempt_id: int
    actions: list[dict[str, Any]] = field(default_factory=list)
    counted: bool = True  # False: a failed attempt too soon after the previous counted one (:func:`counts`)
    previous_failure: datetime | None = None  # the counted failed attempt it came too soon after
    min_gap: Duration | None = None

    def as_dict(self, tz: Any) -> dict[str, Any]:
        t = self.task
        return {
            "task": {
                "id": t.id, "status": t.status, "attempts": t.attempts, "failed_attempts": t.failed_attempts,
                "attempts_logged": t.attempts_logged, "max_attempts": t.max_attempts,
                "next_attempt_at": local_iso(t.next_attempt_at, tz) if t.status == TaskStatus.OPEN else None,
                "overdue": t.status == TaskStatus.OPEN and t.next_attempt_at is not None
                and t.next_attempt_at > t.window_end,
                "milestone": t.milestone, "site": t.site,
            },
            "outcome": self.outcome,
            "attempt_id": self.attempt_id,
            "counted": self.counted,
            "previous_failed_at": None if self.counted else local_iso(self.previous_failure, tz),
            "min_gap": str(self.min_gap) if self.min_gap else None,
            "actions": self.actions,
        }


def age_on(birth: date | None, day: date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def task_context(session: Session, config: ChainConfig, task: Task, now: datetime,
                 user: str | None = None) -> TaskContext:
    """What hooks are told about a task: never the phone number."""
    episode = session.get(Episode, task.episode_id)
    patient = session.get(Patient, task.patient_id)
    assert episode is not None and patient is not None
    site = config.site(task.site)
    history = session.execute(select(Attempt).where(Attempt.task_id == task.id).order_by(Attempt.at)).scalars().all()
    staff = config.staff(user) if user else None
    return TaskContext(
        site_code=site.code, site_name=site.name, site_phone=site.phone, specialty=task.specialty,
        procedure=task.procedure,
        milestone=task.milestone, purpose=task.purpose, urgency=task.urgency,  # type: ignore[arg-type]
        patient=PatientInfo(
            external_id=patient.external_id, name=patient.name, gender=patient.gender,  # type: ignore[arg-type]
            age=age_on(patient.birth_date, now.astimezone(site.timezone).date()),
            locale=patient.locale or site.locale,
            preferred_call_time=patient.preferred_call_time,
        ),
        occurred_at=episode.occurred_at, now=now, doctor=episode.doctor,
        department=episode.department,
        diagnosis=episode.diagnosis, attributes=dict(episode.attributes or {}),
        failed_attempts=task.failed_attempts,
        attempt_history=tuple(
            {"at": local_iso(a.at, site.timezone), "outcome": a.outcome, "by": a.by,
             "note": scrub_phones(a.note)}  # hooks never see a phone number, not even one typed into a note
            for a in history
        ),
        coordinator=staff.name if staff else None,
        age_bands=config.model.defaults.age_bands.model_dump(),
        timezone=str(site.timezone),
        treated=task.trigger in TREATED_TRIGGERS,
    )


def task_milestone(plugins: Plugins, site: Site, task: Task) -> Milestone:
    """The milestone a task was scheduled from, with the task's own offset/window snapshot."""
    found = {m.key: m for _, m in plugins.milestones(task.specialty, task.procedure)}
    base = found.get(task.milestone)
    if base is None and task.purpose == "greeting":  # core/greetings.py: its own names and script, no survey
        from core.greetings import greeting_milestone

        return greeting_milestone(task)
    if base is None:  # extra calls and milestones since removed from the protocol
        return Milestone(
            key=task.milestone, purpose=task.purpose,
            names={"zh_CN": "追加回访", "en": "Extra follow-up call"},  # type: ignore[arg-type]
            offset=Duration.parse(task.offset), window=[task.window_earliest, task.window_latest],  # type: ignore[arg-type]
            urgency=task.urgency, channel=task.channel,  # type: ignore[arg-type]
        )
    before = getattr(task, "before_event", None)
    return base.model_copy(update={"offset": Duration.parse(task.offset),
                                   "event_at": Duration.parse(before) if before else base.event_at})


def counts(outcome: str, at: datetime, previous_failure: datetime | None, min_gap: Duration) -> bool:
    """Does this attempt count (towards ``attempts`` and, failed, towards the unsuccessful limit)?

    Every attempt counts except a failed one less than ``min_gap`` after the previous *counted*
    failed attempt of the same task (``previous_failure``): a call that dropped and was redialled
    at once, or three tries in one minute, are one try, not three (DOMAIN.md §4, seed 001). It is
    still recorded (``attempts_logged``, the coordinators' calls in the reports).
    """
    if outcome not in FAILED or previous_failure is None or previous_failure > at:
        return True
    return at >= min_gap.add_to(previous_failure)


def last_counted_failure(session: Session, task_id: int, before: datetime) -> datetime | None:
    """When the task's latest counted failed attempt up to ``before`` was made (None: there is none)."""
    return session.execute(
        select(func.max(Attempt.at)).where(Attempt.task_id == task_id, Attempt.counted.is_(True),
                                           Attempt.outcome.in_(FAILED), Attempt.at <= before)
    ).scalar()


def parse_answers(plugins: Plugins, task: Task, raw: dict[str, str]) -> dict[str, Any]:
    """Validate every answer against its question; raise with all problems, store nothing."""
    questions = plugins.questions(task.specialty, task.procedure, task.milestone)
    parsed: dict[str, Any] = {}
    problems: list[Any] = []  # each one a Msg, or a ValueError (rendered in the reader's language when it can be)
    for key, value in raw.items():
        question = questions.get(key)
        if question is None:
            problems.append(Msg("unknown_question", key=key, keys=", ".join(sorted(questions))))
            continue
        if question.treated_only and task.trigger not in TREATED_TRIGGERS:
            problems.append(Msg("question_treated_only", key=key))
            continue
        try:
            parsed[key] = question.parse_answer(value)
        except ValueError as exc:
            problems.append(exc)
    if problems:
        raise CallError(key="answer_problems", values={"problems": Joined(problems)})
    return parsed


def status_word(status: str) -> Any:
    """A task's status for a person: its catalogue word (zh_CN 已完成, en completed), or the status itself."""
    return Msg(f"status.{status}") if f"status.{status}" in MESSAGES else status


def record_call(
    session: Session,
    config: ChainConfig,
    plugins: Plugins,
    task_id: int,
    *,
    outcome: str,
    user: str,
    now: datetime,
    answers: dict[str, str] | None = None,
    note: str | None = None,
    callback_at: datetime | None = None,
    booked_at: datetime | None = None,
    recording: str | None = None,
    channel: str = "phone",
) -> CallResult:
    """Record one attempt on a task and everything that follows from it.

    It writes in one unit of work (core/db/uow.py: access check, the site's turn, audit row).
    Two coordinators recording on the same task at once both count, one after the other: the
    task is read again under a row lock once its site's turn is taken (PostgreSQL ``SELECT ...
    FOR UPDATE``; on SQLite the transaction starts with ``BEGIN IMMEDIATE``, so writers wait for
    each other). Whoever comes second after the task became final is refused, with who
    recorded it and when.

    ``channel`` is ``phone`` for a call, ``questionnaire`` for the patient's own answers
    (core/questionnaire.py): those are taken even while a coordinator holds the task.
    """
    from core.db.uow import unit_of_work  # here: showing a card (followup script) needs none of it

    task = load_task(session, config, task_id, user)
    checked_text("--note", note)
    if outcome not in OUTCOMES:
        raise CallError(key="unknown_outcome", values={"outcome": outcome, "choices": ", ".join(OUTCOMES)})
    with unit_of_work(session, config, sites=[task.site], user=user, now=now, action="record") as uow:
        return _record(uow, plugins, task_id, outcome=outcome, answers=answers, note=note, callback_at=callback_at,
                       booked_at=booked_at, recording=recording, channel=channel)


def _record(uow: UnitOfWork, plugins: Plugins, task_id: int, *, outcome: str, answers: dict[str, str] | None,
            note: str | None, callback_at: datetime | None, booked_at: datetime | None, recording: str | None,
            channel: str) -> CallResult:
    from core.planner import planner

    session, config, user, now = uow.session, uow.config, uow.user, uow.now
    task = uow.lock_task(task_id)  # the newest committed row, locked until commit: counters change once
    assert task is not None
    if task.status != TaskStatus.OPEN:
        refuse_closed(session, config, task)
    site = config.site(task.site)
    if (channel == "phone" and task.assignee and task.assignee != user and task.claimed_until is not None
            and task.claimed_until >= now):
        until = f"{task.claimed_until.astimezone(site.timezone):%H:%M}"
        raise CallError(key="task_held", values={"id": task_id, "holder": task.assignee, "until": until})
    spec = plugins.specialty(task.specialty)
    proc = spec.procedure(task.procedure) if spec else None
    check_booking(task, proc, outcome, booked_at, site, now,
                  invites=outcome == Outcome.BOOKED and invites_back(plugins, task))
    if recording is not None and outcome in FAILED:
        raise CallError(key="recording_only_attempted", values={"outcome": outcome})
    if outcome == Outcome.CALLBACK_REQUESTED:
        if callback_at is None:
            raise CallError(key="callback_needs_time")
        check_callback_time(site, callback_at, now)
    elif callback_at is not None:
        raise CallError(key="callback_only_with_request", values={"outcome": outcome})
    if answers and outcome not in REACHED_OUTCOMES:
        raise CallError(key="answers_only_when_reached", values={"outcome": outcome})
    parsed = parse_answers(plugins, task, answers or {}) if answers else {}

    min_gap = site.attempt_policy.min_gap
    previous = last_counted_failure(session, task.id, now) if outcome in FAILED else None
    counted = counts(outcome, now, previous, min_gap)
    attempt = Attempt(
        task_id=task.id, at=now, site=task.site, by=user, outcome=outcome, note=note, callback_at=callback_at,
        recording=recording,
        counted=counted,
        channel=channel,
    )
    session.add(attempt)
    session.flush()
    task.attempts_logged += 1
    if counted:
        task.attempts += 1
    task.claimed_until = None
    task.updated_at = now
    patient = session.get(Patient, task.patient_id)
    assert patient is not None
    actions: list[dict[str, Any]] = []

    if outcome in FAILED and not counted:
        pass  # recorded, not counted: the retry planned after the counted failure stays as it was
    elif outcome in FAILED:
        task.failed_attempts += 1
        if task.failed_attempts >= task.max_attempts:
            task.status = TaskStatus.UNSUCCESSFUL
            task.completed_at = now
        else:
            task.next_attempt_at = planner(config, site).retry(now, task.urgency)
    elif outcome == Outcome.WRONG_NUMBER:
        task.status = TaskStatus.WRONG_NUMBER
        task.completed_at = now
        patient.phone_invalid = True
        actions.append({"kind": "fix_phone", "reason": "phone number flagged for correction"})
    elif outcome == Outcome.REFUSED:
        task.status = TaskStatus.REFUSED
        task.completed_at = now
    elif outcome == Outcome.CALLBACK_REQUESTED:
        assert callback_at is not None
        task.next_attempt_at = planner(config, site).callback(callback_at, now)
    else:  # reached or booked
        task.status = TaskStatus.COMPLETED if outcome == Outcome.REACHED else TaskStatus.BOOKED
        task.completed_at = now
        task.booked_at = booked_at
    questions = plugins.questions(task.specialty, task.procedure, task.milestone) if parsed else {}
    if parsed:
        from core.db.models import Answer  # mapped on first use (core/db/models/__init__.py)
    for key, value in parsed.items():
        question = questions[key]
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        session.add(Answer(task_id=task.id, attempt_id=attempt.id, question=key, dimension=question.dimension,
                           value=value, number=number))
    uow.audit("attempt", entity="task", entity_id=task.id, patient_id=task.patient_id,
              detail={"outcome": outcome, "answers": sorted(parsed), "status": task.status, "channel": channel,
                      **({} if counted else {"counted": False})})
    if outcome in REACHED_OUTCOMES:
        context = task_context(session, config, task, now, user)
        for plugin_name, action in merge_actions(plugins.actions(context, parsed), site.locale):
            actions.append(apply_action(session, config, plugins, task, action, plugin_name, parsed, note, user, now))
    session.flush()
    return CallResult(task=task, outcome=outcome, attempt_id=attempt.id, actions=actions, counted=counted,
                      previous_failure=None if counted else previous, min_gap=min_gap)


def invites_back(plugins: Plugins, task: Task) -> bool:
    """Does the task's milestone invite the patient back (``invites_back`` in the plugin's protocol: a review,
    a suture removal, a rebooking), so that its call may end with an appointment (seed 002 邀请顾客到院复查)?"""
    found = plugins.milestones(task.specialty, task.procedure)
    return any(m.key == task.milestone and m.invites_back for _, m in found)


def booking_problem(task: Task, proc: Any, outcome: str, booked_at: datetime | None,
                    invites: bool) -> tuple[str, str, dict] | None:
    """Why ``outcome`` / ``booked_at`` do not fit this task, as ``(column, message key, values)``, or ``None``:
    ``booked`` fits a sales follow-up or a milestone that invites the patient back, and outside sales it says
    when the patient comes. (A recorded call and a loaded call history ask the same.)"""
    if booked_at is not None and outcome != Outcome.BOOKED:
        return "booked_at", "booked_at_only_with_booked", {"outcome": outcome}
    if outcome != Outcome.BOOKED:
        return None
    sales = bool(proc and proc.allows_booking)
    if not sales and not invites:
        return "outcome", "booked_not_inviting", {"milestone": task.milestone, "purpose": task.purpose}
    if booked_at is None and not sales:
        return "booked_at", "booked_needs_time", {"milestone": task.milestone}
    return None


def check_booking(task: Task, proc: Any, outcome: str, booked_at: datetime | None, site: Site, now: datetime,
                  invites: bool) -> None:
    """:func:`booking_problem` raised; a booked appointment lies ahead of now."""
    problem = booking_problem(task, proc, outcome, booked_at, invites)
    if problem is not None:
        raise CallError(key=problem[1], values=problem[2])
    if booked_at is None:
        return
    if booked_at <= now:
        raise CallError(key="booked_at_past", values={"at": local_iso(booked_at, site.timezone),
                                                       "now": local_iso(now, site.timezone)})


def merge_actions(found: list[tuple[str, Action]], locale: str) -> list[tuple[str, Action]]:
    """One escalation per call (reasons joined), one complaint per call with all its categories, one referral,
    one reminder.

    Several rules often fire on one answer set (low satisfaction, a criticism and
    complaint=是; a specialty's referral rule and core's); the doctor and the
    complaint desk should see one item with every reason, not three.
    """
    merged: dict[tuple[str, str | None], tuple[str, Action]] = {}
    for plugin_name, action in found:
        key: tuple[str, str | None] = (action.kind, None)
        if action.kind == "extra_call":
            key = (action.kind, str(action.after))
        if action.kind == "complaint":
            action = action.model_copy(update={"categories": complaint_categories([action])})
        if key not in merged:
            merged[key] = (plugin_name, action)
            continue
        first_plugin, first = merged[key]
        if action.kind in ("escalate", "complaint"):
            reason = {
                loc: "；".join(dict.fromkeys([first.reason.get(loc), action.reason.get(loc)])) if loc == "zh_CN"
                else "; ".join(dict.fromkeys([first.reason.get(loc), action.reason.get(loc)]))
                for loc in ("zh_CN", "en")
            }
            names = first_plugin if plugin_name == first_plugin else f"{first_plugin}+{plugin_name}"
            update: dict[str, Any] = {"reason": first.reason.model_validate(reason)}
            if action.kind == "escalate":  # one red flag makes the whole escalation clinical
                severities = {first.severity or "clinical", action.severity or "clinical"}
                update["severity"] = Urgency.CLINICAL if Urgency.CLINICAL in severities else Urgency.ROUTINE
            if action.kind == "complaint":
                categories = complaint_categories([first, action])
                update.update(categories=categories, category=categories[0])
            merged[key] = (names, first.model_copy(update=update))
    return list(merged.values())


def complaint_categories(actions: list[Action]) -> tuple[Any, ...]:
    """Every category of the complaints of one call, the specific ones before ``other``."""
    seen = [c for a in actions for c in (a.categories or (a.category or "other",))]
    unique = list(dict.fromkeys(seen))
    return tuple([c for c in unique if c != "other"] + [c for c in unique if c == "other"])


def staff_named(text: str | None, config: ChainConfig, doctor: str | None) -> str | None:
    """The staff member a criticism names: a colleague on the staff list or the attending doctor, or a
    titled name (李护士, 王医生); ``None`` when the text names nobody (it stays in the description)."""
    import re

    if not text:
        return None
    for name in sorted({m.name for m in config.model.staff} | ({doctor} if doctor else set()), key=len, reverse=True):
        if name and name in text:
            return name
    titled = re.search(r"([\u4e00-\u9fff]{1,3}?)(医生|护士长|护士|大夫|主任|咨询师|前台|院长)", text)
    if titled and titled.group(1) not in ("的", "那个", "这个", "有个", "一个", "位"):
        return titled.group(0)
    return None


def check_callback_time(site: Site, callback_at: datetime, now: datetime) -> None:
    """A requested callback must lie ahead, and not in the quiet hours (even clinical calls wait)."""
    from core.planner import callback_problem

    problem = callback_problem(site, callback_at, now)
    if problem is not None:
        raise CallError(key=problem[0], values=problem[1])


def load_task(session: Session, config: ChainConfig, task_id: int, user: str) -> Task:
    """The task ``user`` asks for: an error if there is none, or if it belongs to a site they do not work for.

    Checked before anything else is said about it (status, holder, patient): a coordinator learns
    nothing about another site's calls.
    """
    from core import access

    access.require(config, user, access.CALLS)
    task = session.get(Task, task_id) if 0 < task_id < 2**63 else None
    if task is None:
        raise CallError(key="no_task", values={"id": task_id})
    access.require(config, user, access.CALLS, task.site)
    return task


def call_card_phone(session: Session, task: Task, patient: Patient, user: str, now: datetime) -> str | None:
    """The number on a task's call card: in full (and audited) while ``user`` holds the task, else masked."""
    from core.privacy import mask_phone, reveal

    if task.assignee == user and task.claimed_until is not None and task.claimed_until >= now:
        return reveal(session, phone=patient.phone, user=user, at=now, patient_id=patient.id, why="call card",
                      entity="task", entity_id=task.id)
    return mask_phone(patient.phone) or None


def refuse_closed(session: Session, config: ChainConfig, task: Task) -> NoReturn:
    """A task that is not open takes no attempt: say what it is, and who made it final when."""
    last = session.execute(
        select(Attempt.by, Attempt.at).where(Attempt.task_id == task.id).order_by(Attempt.at.desc(), Attempt.id.desc())
        .limit(1)
    ).first()
    values = {"id": task.id, "status": status_word(task.status)}
    if task.status in FINAL_STATUSES and last is not None:
        at = last.at.astimezone(config.timezone_of(task.site))
        raise CallError(key="task_final", values={**values, "by": last.by, "at": f"{at:%Y-%m-%d %H:%M}"})
    raise CallError(key="task_not_open", values=values)


def check_site_access(config: ChainConfig, user: str, site_code: str) -> None:
    """May ``user`` work on calls at this site (core/access.py)."""
    from core import access

    access.require(config, user, access.CALLS, site_code)


def apply_action(
    session: Session, config: ChainConfig, plugins: Plugins, task: Task, action: Action, plugin_name: str,
    answers: dict[str, Any], note: str | None, user: str, now: datetime,
) -> dict[str, Any]:
    from core.audit import audit

    site = config.site(task.site)
    reason = action.reason.get(site.locale)
    episode = session.get(Episode, task.episode_id)
    assert episode is not None
    out: dict[str, Any] = {"kind": action.kind, "reason": reason, "plugin": plugin_name, "question": action.question}
    if action.kind == "escalate":
        from core.escalations import open_escalation

        row = open_escalation(session, config, task, reason=reason, severity=action.severity or "clinical",
                              user=user, now=now, source=plugin_name)
        out.update(id=row.id, doctor=episode.doctor, assigned_to=row.assignee, severity=row.severity,
                   handle_by=local_iso(row.due_at, site.timezone))
    elif action.kind == "complaint":
        criticism = answers.get("staff_criticism") if isinstance(answers.get("staff_criticism"), str) else None
        categories = list(action.categories or (action.category or "other",))
        said = ("批评：" if site.locale == "zh_CN" else "criticism: ") + criticism if criticism else None
        description = " — ".join(part for part in (reason, said, note) if part)
        handler = site.complaint_handler.get(site.locale)
        from core.db.models import Complaint

        row = Complaint(task_id=task.id, patient_id=task.patient_id, site=task.site,
                        category=categories[0], categories=categories,
                        staff=staff_named(criticism, config, episode.doctor), description=description,
                        opened_at=now, due_at=now + timedelta(days=COMPLAINT_DAYS), handler_role=handler)
        session.add(row)
        session.flush()
        out.update(id=row.id, category=row.category, categories=categories, staff=row.staff, handler=handler,
                   due_at=local_iso(row.due_at, site.timezone))
    elif action.kind == "extra_call":
        after = action.after or Duration(amount=1, unit="d")
        out.update(task_id=add_extra_call(session, config, task, after, now))
    elif action.kind == "referral" and answers.get("referral_accepted") is True:
        # the invitation was accepted: one referral per call (counted in the month's report)
        from core.db.models import Referral

        if session.execute(select(Referral.id).where(Referral.task_id == task.id)).first() is None:
            row = Referral(kind="accepted", referrer_id=task.patient_id, referred_id=None, site=task.site,
                           task_id=task.id, at=now, by=user)
            session.add(row)
            session.flush()
            out.update(id=row.id, accepted=True)
    elif action.kind == "record_dates":
        patient = session.get(Patient, task.patient_id)
        assert patient is not None
        stored = {key: answers[key] for key in ("birthday", "anniversary") if answers.get(key)}
        for key, value in stored.items():
            setattr(patient, key, value)
        if stored:
            out.update(stored=stored)
    audit(session, user=user, at=now, action=f"action:{action.kind}", entity="task", entity_id=task.id,
          patient_id=task.patient_id, detail={k: v for k, v in out.items() if k not in ("reason",)})
    return out


def add_extra_call(session: Session, config: ChainConfig, task: Task, after: Duration, now: datetime) -> int:
    """A follow-up requested during a call becomes a task of the same episode."""
    from core.db.uow import unit_of_work
    from core.planner import planner

    existing = session.execute(select(Task.milestone).where(Task.episode_id == task.episode_id)).scalars().all()
    n = 1 + sum(1 for m in existing if m.startswith("extra_"))
    episode = session.get(Episode, task.episode_id)
    assert episode is not None
    timing, plan = planner(config, task.site).extra_call(episode.occurred_at, now, after)
    offset, earliest, latest, urgency, _ = timing.snapshot()
    extra = Task(
        episode_id=task.episode_id, patient_id=task.patient_id, site=task.site, specialty=task.specialty,
        procedure=task.procedure, trigger=task.trigger, milestone=f"extra_{n}", purpose="extra_call",
        channel=Channel.PHONE, urgency=urgency, offset=offset, window_earliest=earliest, window_latest=latest,
        **plan.columns(), status=TaskStatus.OPEN, max_attempts=task.max_attempts, created_at=now, updated_at=now,
    )
    # inside the call's unit of work when a call asks for it; a unit of its own otherwise
    with unit_of_work(session, config, sites=[task.site], user="system", now=now):
        session.add(extra)
    return extra.id
