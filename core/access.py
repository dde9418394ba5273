"""Who may do what to which site or patient: one answer, asked by the core functions themselves.

The CLI parses and prints; every core function that reads or changes patient data
(listing tasks, the worklist, script, record, claims, escalations, complaints,
do-not-contact, audit, reports, import, schedule, patients export/erase) calls
:func:`require` (or one of the helpers built on it) before it reads or writes anything.
A refusal is an :class:`AccessDenied`: one line in the user's language, nothing written.

Roles (``staff[].role`` in the chain file) and what they may do; ``sites`` limits
each role to those sites (an empty list: every site):

============  ===================================================================
coordinator   tasks and worklist, claim, call, record, script of their sites;
              reads escalations, complaints and reports of their sites, answers complaints
doctor        the escalations assigned to them (the episode's doctor): list, resolve,
              with the patient's full number
manager       reads tasks, worklist, reports, complaints, escalations and the audit of
              their sites; answers and closes complaints; samples and scores calls (QA)
admin         everything, at every site: import, schedule, do-not-contact, patients
              export and erase, the whole audit. An admin edits the chain file (the staff
              list) anyway, so withholding more from them would protect nothing.
============  ===================================================================

A chain without a staff list runs single-user: whoever runs the command may do anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import FollowupError

ROLES = ("coordinator", "doctor", "manager", "admin")

# action -> the roles that may do it (admin may do everything)
TASKS_READ = "tasks:read"        # followup tasks, worklist
CALLS = "calls"                  # claim, call, record, script
ESCALATIONS_READ = "escalations:read"
ESCALATIONS_RESOLVE = "escalations:resolve"
COMPLAINTS_READ = "complaints:read"
COMPLAINTS_ANSWER = "complaints:answer"
DNC = "patients:dnc"
OPTOUT = "patients:optout"      # no more messages on one channel (a patient's wish, told on a call)
PATIENTS_EXPORT = "patients:export"
PATIENTS_ERASE = "patients:erase"
AUDIT_READ = "audit:read"
REPORTS = "reports"
QA_REVIEW = "qa:review"          # the weekly spot check of calls: sample and score (seed 002)
IMPORT = "import"
SCHEDULE = "schedule"

RULES: dict[str, frozenset[str]] = {
    TASKS_READ: frozenset({"coordinator", "manager"}),
    CALLS: frozenset({"coordinator"}),
    ESCALATIONS_READ: frozenset({"coordinator", "doctor", "manager"}),
    ESCALATIONS_RESOLVE: frozenset({"doctor"}),
    COMPLAINTS_READ: frozenset({"coordinator", "manager"}),
    COMPLAINTS_ANSWER: frozenset({"coordinator", "manager"}),
    DNC: frozenset(),
    OPTOUT: frozenset({"coordinator", "manager"}),
    PATIENTS_EXPORT: frozenset(),
    PATIENTS_ERASE: frozenset(),
    AUDIT_READ: frozenset({"manager"}),
    REPORTS: frozenset({"coordinator", "manager"}),
    QA_REVIEW: frozenset({"manager"}),  # coordinators make the month's statistics (DOMAIN.md §3)
    IMPORT: frozenset(),
    SCHEDULE: frozenset(),
}


# Who acts when no staff member does: a patient answering their questionnaire through its signed link
# (core/questionnaire.py; the token is the check), followup itself (scheduling's default user, the
# outbox's sender "system:send"). Never a name a person may act as (App.user refuses them).
PATIENT = "patient"
SYSTEM = "system"
SYSTEM_USERS = frozenset({PATIENT, SYSTEM})


def is_system(user: str | None) -> bool:
    return user is not None and (user in SYSTEM_USERS or user.startswith(SYSTEM + ":"))


# The unit of work's actions (core/db/uow.py) as the actions above: every write of tasks, attempts and
# answers is checked there too.
WRITES: dict[str, str] = {
    "record": CALLS, "claim": CALLS, "release": CALLS, "questionnaire": CALLS, "send": CALLS,
    "extra_call": CALLS, "dnc": DNC, "schedule": SCHEDULE, "replan": SCHEDULE, "sweep": SCHEDULE,
    "greetings": SCHEDULE, "history": IMPORT,
}


def check_write(config: Any, user: str | None, action: str | None, sites: Iterable[str] = ()) -> None:
    """The unit of work's check: may ``user`` do ``action`` at each of ``sites`` (:class:`AccessDenied`)."""
    if config is None or action is None or action not in WRITES:
        return
    who = require(config, user, WRITES[action])  # the actor once (a claim covers up to every site of the chain)
    if who is not None and not who.all_sites:
        for site in sites:
            if not who.covers(site):
                require(config, user, WRITES[action], site)  # its refusal


class AccessDenied(FollowupError):
    """The user may not do this (to this site, patient or item); nothing was read or written."""


@dataclass(frozen=True)
class Actor:
    """The acting user as the chain knows them; ``staff`` None in a single-user chain."""

    username: str
    staff: Any = None

    @property
    def single_user(self) -> bool:
        return self.staff is None

    @property
    def role(self) -> str:
        return "admin" if self.staff is None else self.staff.role

    @property
    def all_sites(self) -> bool:
        return self.staff is None or self.role == "admin" or not self.staff.sites

    def covers(self, site: str | None) -> bool:
        return self.all_sites or site in self.staff.sites

    def may(self, action: str) -> bool:
        return self.role == "admin" or self.role in RULES[action]


def actor(config: Any, user: str) -> Actor:
    """``user`` as an :class:`Actor`; refused when the chain lists staff and ``user`` is not among them."""
    if not config.model.staff:
        return Actor(user)
    staff = config.staff(user)
    if staff is None:
        known = ", ".join(s.username for s in config.model.staff)
        raise AccessDenied(key="not_staff", values={"user": user, "path": config.path, "known": known})
    return Actor(user, staff)


def require(config: Any, user: str | None, action: str, site: str | None = None) -> Actor | None:
    """The actor, if ``user`` may do ``action`` (at ``site``); else :class:`AccessDenied`.

    ``user`` None: a trusted caller inside the process (tests, benchmarks, the demo builder);
    every command passes the acting user.
    """
    if user is None or is_system(user):  # followup itself, or a patient through a signed link
        return None
    who = actor(config, user)
    if not who.may(action):
        raise AccessDenied(key="role_denied", values={"user": user, "role": who.role,
                                                      "what": _What(action)})
    if site is not None and not who.covers(site):
        raise AccessDenied(key="not_your_site", values={"user": user, "sites": ", ".join(who.staff.sites),
                                                        "site": site})
    return who


def sites_for(config: Any, user: str | None, action: str, wanted: str | Iterable[str] | None = None) -> list[str]:
    """The sites where ``user`` may do ``action``, narrowed to ``wanted`` (each checked: unknown, or not theirs)."""
    who = require(config, user, action)
    allowed = list(config.sites) if who is None or who.all_sites else [s for s in config.sites if who.covers(s)]
    if not wanted:
        return allowed
    known = set(allowed)  # a claim may name every site of the chain: looked up, not searched
    out = []
    for code in [wanted] if isinstance(wanted, str) else list(wanted):
        if code not in known:
            config.site(code)  # unknown site: a clear error
            raise AccessDenied(key="not_your_site", values={
                "user": user, "sites": ", ".join(allowed), "site": code})
        out.append(code)
    return out


def patient_sites(session: Any, patient_id: int) -> set[str]:
    """A patient's home site and the sites of their tasks."""
    from sqlalchemy import select

    from core.db.models import Patient, Task

    home = session.execute(select(Patient.site).where(Patient.id == patient_id)).scalar_one_or_none()
    return {s for s in {home, *session.execute(select(Task.site).where(Task.patient_id == patient_id)).scalars()} if s}


def require_patient(session: Any, config: Any, user: str | None, action: str, patient: Any) -> Actor | None:
    """May ``user`` do ``action`` to this patient (a patient of one of their sites)?"""
    who = require(config, user, action)
    if who is None or who.all_sites:
        return who
    if not patient_sites(session, patient.id) & set(who.staff.sites):
        raise AccessDenied(key="not_your_patient", values={
            "patient": patient.external_id, "sites": ", ".join(who.staff.sites), "user": user})
    return who


def assigned_to(escalation: Any, who: Actor) -> bool:
    """Is the escalation this doctor's: assigned to them, or not yet assigned and at one of their sites."""
    assignee = getattr(escalation, "assignee", None)
    if assignee:
        return assignee == who.username
    # not yet assigned: the episode's doctor, or any doctor of the site (who may take it)
    return who.covers(escalation.site)


def require_escalation(config: Any, user: str | None, action: str, escalation: Any) -> Actor | None:
    """Doctors only the escalations assigned to them; others by site."""
    who = require(config, user, action, escalation.site)
    if who is not None and who.role == "doctor" and not assigned_to(escalation, who):
        raise AccessDenied(key="not_assigned", values={"user": user, "id": escalation.id})
    return who


class _What:
    """The action's words in the reader's language (for :class:`AccessDenied`)."""

    def __init__(self, action: str) -> None:
        self.action = action

    def render(self, locale: str | None) -> str:
        from core.messages import message

        return message(f"access.{self.action}", locale)

    def __str__(self) -> str:
        return self.render(None)
