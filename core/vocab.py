"""The words of a follow-up, defined once (DESIGN.md §8 "One vocabulary").

Task statuses, call outcomes, urgencies, channels and triggers, with the named
sets every query, report, trigger and message uses. No other module spells
these words: import them from here. Each is a :class:`~enum.StrEnum`, so a
member *is* its string (``TaskStatus.OPEN == "open"``), binds to the database as
that string and prints as it; what a person reads is the catalogue's word for it
(core/messages.py, ``status.open`` …).
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    OPEN = "open"  # on worklists, waiting for its next attempt
    COMPLETED = "completed"  # reached
    BOOKED = "booked"  # reached, and an appointment was made
    UNSUCCESSFUL = "unsuccessful"  # the counted failed attempts reached the limit (不成功回访)
    REFUSED = "refused"
    WRONG_NUMBER = "wrong_number"
    CANCELLED = "cancelled"  # its milestone no longer applies, or its episode was cancelled
    SUPPRESSED = "suppressed"  # the patient asked not to be contacted
    EXPIRED = "expired"  # its window closed long before it was scheduled (history)


class Outcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    POWERED_OFF = "powered_off"
    OUT_OF_SERVICE = "out_of_service"
    CANNOT_CONNECT = "cannot_connect"
    NOT_CONVENIENT = "not_convenient"
    WRONG_NUMBER = "wrong_number"
    REFUSED = "refused"
    CALLBACK_REQUESTED = "callback_requested"
    BOOKED = "booked"


class Urgency(StrEnum):
    CLINICAL = "clinical"  # keeps its date on holidays; only leaves quiet hours
    ROUTINE = "routine"  # placed in a calling window of a working day


class Channel(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    WECHAT = "wechat"
    EMAIL = "email"
    LETTER = "letter"
    QUESTIONNAIRE = "questionnaire"


class Trigger(StrEnum):
    """Why an episode is followed up (DOMAIN.md §1)."""

    PROCEDURE = "procedure"
    DISCHARGE = "discharge"
    CONSULTATION = "consultation"
    VISIT_WITHOUT_TREATMENT = "visit_without_treatment"
    MISSED_APPOINTMENT = "missed_appointment"
    INTERRUPTION = "interruption"
    VISIT = "visit"  # the next-day call after a paid visit (seed 002)
    GREETING = "greeting"  # a birthday or anniversary greeting (core/greetings.py): not an episode's trigger


class EpisodeStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


# -- named sets -------------------------------------------------------------------------------------
# Tuples, in a fixed order: SQL built from them (the day-count triggers) must not change between runs.

#: On worklists and claimable.
OPEN_STATUSES: tuple[TaskStatus, ...] = (TaskStatus.OPEN,)
#: Nothing changes a task in one of these: reconcile, replan and do-not-contact leave it alone.
FINAL_STATUSES: tuple[TaskStatus, ...] = (
    TaskStatus.COMPLETED, TaskStatus.BOOKED, TaskStatus.UNSUCCESSFUL, TaskStatus.REFUSED, TaskStatus.WRONG_NUMBER,
)
#: Not (or no longer) due: left out of the follow-up rate's denominator.
NOT_DUE_STATUSES: tuple[TaskStatus, ...] = (TaskStatus.CANCELLED, TaskStatus.SUPPRESSED, TaskStatus.EXPIRED)
#: Final statuses of a reached patient.
REACHED_STATUSES: tuple[TaskStatus, ...] = (TaskStatus.COMPLETED, TaskStatus.BOOKED)

#: Call outcomes that count as reaching the patient (a coordinator's reached calls; answers are recorded).
REACHED_OUTCOMES: tuple[Outcome, ...] = (Outcome.REACHED, Outcome.BOOKED)
#: Failed attempts: each counted one brings the task closer to unsuccessful.
FAILED_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.NO_ANSWER, Outcome.BUSY, Outcome.POWERED_OFF, Outcome.OUT_OF_SERVICE, Outcome.CANNOT_CONNECT,
    Outcome.NOT_CONVENIENT,
)
#: The failed outcomes that mean the patient could not be reached at all (the unreachable list, the sweep).
UNREACHABLE_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.NO_ANSWER, Outcome.POWERED_OFF, Outcome.OUT_OF_SERVICE, Outcome.CANNOT_CONNECT,
)
#: Every outcome, in the order prompts offer them.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)


class MessageKind(StrEnum):
    """What an outbox message is (core/outbox.py)."""

    MILESTONE = "milestone"  # the message of an sms/wechat/email milestone
    NOTICE = "notice"  # the day before a phone milestone's call
    AFTER_UNSUCCESSFUL = "after_unsuccessful"  # the questionnaire link once the calls failed


class MessageStatus(StrEnum):
    """Where an outbox message is."""

    QUEUED = "queued"
    SENDING = "sending"  # claimed by one sender
    SENT = "sent"
    DELIVERED = "delivered"  # the provider reported it
    FAILED = "failed"
    EXPIRED = "expired"  # no longer wanted (task completed, window ended)


# Channels whose tasks are sent by `followup send`, not called.
MESSAGE_CHANNELS: tuple[Channel, ...] = (Channel.SMS, Channel.WECHAT, Channel.EMAIL)

#: Episodes of these triggers are sales leads (DOMAIN.md §1).
SALES_TRIGGERS: tuple[Trigger, ...] = (Trigger.CONSULTATION, Trigger.VISIT_WITHOUT_TREATMENT)
#: Patients of these triggers were treated: satisfaction questions fit them (not a lead who never came).
TREATED_TRIGGERS: tuple[Trigger, ...] = (Trigger.PROCEDURE, Trigger.DISCHARGE, Trigger.VISIT)


def sql_in(values: tuple[str, ...]) -> str:
    """``('a', 'b')`` for SQL written as text (trigger bodies, partial index predicates)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"
