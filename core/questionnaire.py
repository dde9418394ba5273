"""The patient's questionnaire: a signed link bound to one task, answered on the phone's browser.

A link is ``<questionnaire_url>/q/<task id>.<expiry>.<signature>``: the signature
is HMAC-SHA256 over the task id and the expiry (the window's end; a week after
an ``after_unsuccessful`` message) with the chain's key (``messaging.secret``,
e.g. ``${QUESTIONNAIRE_SECRET}``; otherwise a random key kept in the database). It
works once: a task that already has the patient's answers, or that a call has
completed, shows a clear page and changes nothing.

A submission is recorded by :func:`core.calls.record_call` like a call: an
attempt with channel ``questionnaire`` and outcome ``reached``, the answers
validated by the same :class:`core.protocol.Question` models, and the same
actions (red flags escalate, dissatisfaction opens a complaint).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import access
from core.config import ChainConfig, Site
from core.db.models import Attempt, OutboxMessage, ServiceKey, Task
from core.errors import FollowupError
from core.plugins import Plugins
from core.vocab import Channel, Outcome, TaskStatus

KEY_NAME = "questionnaire"


class TokenProblem(FollowupError):
    """A questionnaire link that cannot be used: ``kind`` is forged, expired, used or closed."""

    def __init__(self, kind: str, task_id: int | None = None):
        self.kind, self.task_id = kind, task_id  # task_id: the link was signed by us (not forged)
        super().__init__(f"questionnaire link {kind}")


def signing_key(session: Session, config: ChainConfig) -> bytes:
    """The chain's key from the environment, else the database's own (created once, race-safe)."""
    from core.channels import substitute

    configured = config.model.messaging.secret
    if configured:
        return substitute(configured).encode()
    found = session.get(ServiceKey, KEY_NAME)
    if found is None:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        session.execute(insert(ServiceKey).values(name=KEY_NAME, value=secrets.token_urlsafe(32))
                        .on_conflict_do_nothing(index_elements=["name"]))
        found = session.get(ServiceKey, KEY_NAME)
    assert found is not None
    return found.value.encode()


def _signature(key: bytes, task_id: int, expires: int) -> str:
    digest = hmac.new(key, f"q1.{task_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def make_token(key: bytes, task_id: int, expires: datetime) -> str:
    stamp = int(expires.timestamp())
    return f"{task_id}.{stamp}.{_signature(key, task_id, stamp)}"


def read_token(key: bytes, token: str, now: datetime) -> int:
    """The task id of a valid, unexpired link; :class:`TokenProblem` otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise TokenProblem("forged")
    task_id, stamp = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(_signature(key, task_id, stamp), parts[2]):
        raise TokenProblem("forged")
    if now >= datetime.fromtimestamp(stamp, UTC):
        raise TokenProblem("expired", task_id)
    return task_id


def questionnaire_link(session: Session, config: ChainConfig, task_id: int, expires: datetime) -> str:
    base = config.model.messaging.questionnaire_url.rstrip("/")
    return f"{base}/q/{make_token(signing_key(session, config), task_id, expires)}"


def questionnaire_questions(plugins: Plugins, site: Site, task: Task) -> list[Any]:
    """The questions of a task's questionnaire: the milestone's own, then core's general ones if it asks them."""
    from core.calls import task_milestone
    from core.greetings import GREETING

    if task.purpose == GREETING:
        return []  # a greeting asks nothing
    milestone = task_milestone(plugins, site, task)
    available = plugins.questions(task.specialty, task.procedure, task.milestone)
    keys = list(milestone.questions)
    if milestone.general_questions:
        keys += [k for k in plugins.general_question_keys() if k not in keys]
    return [available[k] for k in keys if k in available]


@dataclass
class Opened:
    task: Task
    locale: str
    questions: list[Any]
    clinic: str
    milestone: str


def patient_locale(session: Session, config: ChainConfig, task_id: int) -> tuple[str, str] | None:
    """The patient's language and the clinic's name for a task (for the pages of a spent link)."""
    from core.db.models import Patient

    task = session.get(Task, task_id)
    if task is None or task.site not in config.sites:
        return None
    patient = session.get(Patient, task.patient_id)
    site = config.site(task.site)
    locale = (patient.locale if patient else None) or site.locale
    return locale, site.name.get(locale)


def open_questionnaire(session: Session, config: ChainConfig, plugins: Plugins, token: str, now: datetime) -> Opened:
    """What the page shows for a link, or :class:`TokenProblem` (forged, expired, used, closed)."""
    from core.db.models import Patient

    task_id = read_token(signing_key(session, config), token, now)
    task = session.get(Task, task_id)
    if task is None:
        raise TokenProblem("forged")
    answered = session.execute(select(Attempt.id).where(Attempt.task_id == task.id,
                                                        Attempt.channel == Channel.QUESTIONNAIRE)).first()
    if answered is not None:
        raise TokenProblem("used", task.id)
    if task.status not in (TaskStatus.OPEN, TaskStatus.UNSUCCESSFUL):
        raise TokenProblem("closed", task.id)
    site = config.site(task.site)
    patient = session.get(Patient, task.patient_id)
    assert patient is not None
    locale = patient.locale or site.locale
    from core.calls import task_milestone

    return Opened(task=task, locale=locale, questions=questionnaire_questions(plugins, site, task),
                  clinic=site.name.get(locale), milestone=task_milestone(plugins, site, task).names.get(locale))


def submit(session: Session, config: ChainConfig, plugins: Plugins, token: str, raw: dict[str, str],
           now: datetime) -> Any:
    """Record the patient's answers as a reached attempt on channel ``questionnaire``; returns the CallResult."""
    from core.calls import record_call
    from core.db.uow import unit_of_work

    opened = open_questionnaire(session, config, plugins, token, now)
    task = opened.task
    # Take the task's row first: two submissions of one link at once are one answer and one "used" page.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Task.id).where(Task.id == task.id).with_for_update())
        session.refresh(task)
        if session.execute(select(Attempt.id).where(Attempt.task_id == task.id,
                                                    Attempt.channel == Channel.QUESTIONNAIRE)).first():
            raise TokenProblem("used", task.id)
    answers = {k: v for k, v in raw.items() if str(v).strip() != ""}
    with unit_of_work(session, config, sites=[task.site], user=access.PATIENT, now=now, action="questionnaire"):
        if task.status == TaskStatus.UNSUCCESSFUL:  # an after_unsuccessful message's link: answered after all
            task.status, task.completed_at = TaskStatus.OPEN, None
            session.flush()
        result = record_call(session, config, plugins, task.id, outcome=Outcome.REACHED, user=access.PATIENT, now=now,
                             answers=answers, channel=Channel.QUESTIONNAIRE)
    session.execute(update(OutboxMessage).where(OutboxMessage.task_id == task.id, OutboxMessage.link.is_not(None))
                    .values(answered_at=now).execution_options(synchronize_session=False))
    return result
