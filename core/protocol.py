"""Pydantic models of what plugins contribute.

Everything a plugin hands to core passes through one of these models, so a
plugin returning garbage is caught at the seam with a message naming the
plugin, the hook and the field (see :mod:`core.plugins`).

A plugin usually keeps its content in a ``protocol.yaml`` validated by
:class:`ProtocolFile`; :class:`core.content.ProtocolPlugin` turns that file
into hook implementations, so most plugins have almost no code.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from core.errors import InvalidValue
from core.vocab import Channel, Trigger, Urgency

LOCALES: tuple[str, ...] = ("zh_CN", "en")
TriggerKind = Trigger
MessageChannel = Literal["sms", "wechat", "email"]
QuestionType = Literal["scale", "yes_no", "choice", "text", "number", "month_day"]
ActionKind = Literal["escalate", "complaint", "referral", "extra_call", "record_dates"]
ComplaintCategory = Literal["rules_misunderstanding", "treatment_effect", "staff_or_service", "emotional", "other"]

_KEY = r"^[a-z][a-z0-9_]*$"
_DURATION_RE = re.compile(r"^\s*(-?\d+)\s*(min|h|d|w|mo|y)\s*$")
_UNIT_MINUTES = {"min": 1, "h": 60, "d": 1440, "w": 10080, "mo": 43830, "y": 525960}
MAX_YEARS = 100


class Strict(BaseModel):
    """Base for contributed data: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(BaseModel):
    """An offset from an episode's event time, written ``30min``, ``2h``, ``3d``, ``2w``, ``3mo``, ``1y``.

    ``min`` and ``h`` are elapsed time ("24h" after surgery is 24 real hours);
    ``d``, ``w``, ``mo`` and ``y`` are local calendar arithmetic, so
    Jan 31 + 1mo is Feb 28/29 and a day offset keeps the wall-clock time across a
    DST change.
    """

    model_config = ConfigDict(frozen=True)
    amount: int
    unit: Literal["min", "h", "d", "w", "mo", "y"]

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _DURATION_RE.match(value)
            if not match:
                raise ValueError(
                    f"invalid duration {value!r}: write a number and a unit, "
                    "e.g. 30min, 2h, 3d, 2w, 3mo, 1y"
                )
            return {"amount": int(match.group(1)), "unit": match.group(2)}
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"invalid duration {value!r}: add a unit, e.g. '{value}d'")
        return value

    @model_validator(mode="after")
    def _bounded(self) -> Duration:
        # Past this, date arithmetic overflows at scheduling time instead of failing here.
        if abs(self.approx_minutes) > _UNIT_MINUTES["y"] * MAX_YEARS:
            raise ValueError(f"duration {self} is longer than {MAX_YEARS} years")
        return self

    @model_serializer
    def _dump(self) -> str:
        return str(self)

    @classmethod
    def parse(cls, text: str) -> Duration:
        return cls.model_validate(text)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def approx_minutes(self) -> int:
        """Rough length, for ordering and validation only (a month counts 30.44 days)."""
        return self.amount * _UNIT_MINUTES[self.unit]

    def add_to(self, moment: datetime) -> datetime:
        """Return ``moment`` + this duration; ``moment`` must be timezone-aware."""
        if moment.tzinfo is None:
            raise ValueError("Duration.add_to needs an aware datetime")
        if self.unit in ("min", "h"):
            delta = timedelta(minutes=self.approx_minutes)
            return (moment.astimezone(ZoneInfo("UTC")) + delta).astimezone(moment.tzinfo)
        step = {
            "d": relativedelta(days=self.amount),
            "w": relativedelta(weeks=self.amount),
            "mo": relativedelta(months=self.amount),
            "y": relativedelta(years=self.amount),
        }[self.unit]
        naive = moment.replace(tzinfo=None) + step
        return _localize(naive, moment.tzinfo)


def _localize(naive: datetime, tz: Any) -> datetime:
    """Attach ``tz`` to a wall-clock time; a time skipped by DST moves forward."""
    aware = naive.replace(tzinfo=tz)
    roundtrip = aware.astimezone(ZoneInfo("UTC")).astimezone(tz).replace(tzinfo=None)
    if roundtrip != naive:  # inside a DST gap
        aware = (aware.astimezone(ZoneInfo("UTC"))).astimezone(tz)
    return aware


class LocalizedText(Strict):
    """A text every patient or coordinator may read: required in zh_CN and en."""

    zh_CN: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, locale: str) -> str:
        """The text in ``locale``; any other locale (``fr``, ``en_US``...) falls back to English."""
        return getattr(self, locale) if locale in LOCALES else self.en


class Window(Strict):
    earliest: Duration
    latest: Duration

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError("a window is [earliest, latest], e.g. [5d, 7d]")
            return {"earliest": value[0], "latest": value[1]}
        if isinstance(value, (str, int)):
            raise ValueError(f"a window is [earliest, latest], e.g. [5d, 7d], not {value!r}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.earliest.approx_minutes > self.latest.approx_minutes:
            raise ValueError(f"window earliest {self.earliest} is after latest {self.latest}")
        return self

    @model_serializer
    def _dump(self) -> list[str]:
        return [str(self.earliest), str(self.latest)]


class Milestone(Strict):
    """One planned follow-up of a procedure, relative to the episode's event time."""

    key: str = Field(pattern=_KEY)
    purpose: str = Field(pattern=_KEY, description="check_in, dressing_change, splint_removal, review...")
    names: LocalizedText
    anchor: Literal["occurred_at"] = "occurred_at"
    offset: Duration
    window: Window
    channel: Channel = Channel.PHONE
    urgency: Urgency = Urgency.ROUTINE
    questions: tuple[str, ...] = ()
    script: str = "script/base.j2"
    general_questions: bool = Field(
        default=True, description="ask core's general satisfaction questions after this milestone's own"
    )
    when: dict[str, Any] = Field(
        default_factory=dict,
        description="episode attributes that must match for this milestone to apply, e.g. {restored: false}",
    )
    fallback: Literal["phone"] | None = Field(
        default=None, description="a message milestone (sms, wechat, email) whose message fails becomes a phone task",
    )
    notice: MessageChannel | None = Field(
        default=None, description="a phone milestone: a message the day before (the clinic will call you tomorrow)",
    )
    after_unsuccessful: MessageChannel | None = Field(
        default=None, description="a phone milestone: a message with the questionnaire link once the calls failed",
    )

    @model_validator(mode="after")
    def _channel_options(self) -> Milestone:
        if self.fallback and self.channel not in ("sms", "wechat", "email"):
            raise ValueError(f"fallback: phone is for sms, wechat or email milestones, not {self.channel}")
        if (self.notice or self.after_unsuccessful) and self.channel != "phone":
            raise ValueError("notice and after_unsuccessful are for phone milestones")
        return self

    @model_validator(mode="after")
    def _offset_inside_window(self) -> Milestone:
        if not (
            self.window.earliest.approx_minutes
            <= self.offset.approx_minutes
            <= self.window.latest.approx_minutes
        ):
            raise ValueError(
                f"offset {self.offset} lies outside its window "
                f"[{self.window.earliest}, {self.window.latest}]"
            )
        return self


class Procedure(Strict):
    code: str = Field(pattern=_KEY)
    names: LocalizedText
    aliases: tuple[str, ...] = Field(
        default=(), description="other words clinics' exports use for it (种植牙, 洗牙...): import accepts them"
    )
    trigger: TriggerKind = Trigger.PROCEDURE
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    allows_booking: bool = False


class EpisodeAttribute(Strict):
    """A fact about an episode that clinics' exports carry as a column, declared by a specialty.

    Imported into ``Episode.attributes``; milestone ``when`` conditions, scripts
    (``attributes``) and the call card read it.
    """

    key: str = Field(pattern=_KEY, description="the column's canonical name, e.g. restored")
    type: Literal["yes_no", "text"]
    names: LocalizedText = Field(description="shown on the call card")
    headers: tuple[str, ...] = Field(default=(), description="other headers exports use, e.g. 出院带药")


class Specialty(Strict):
    key: str = Field(pattern=_KEY)
    names: LocalizedText
    procedures: tuple[Procedure, ...] = Field(min_length=1)
    attributes: tuple[EpisodeAttribute, ...] = ()

    @field_validator("procedures")
    @classmethod
    def _unique_codes(cls, procedures: tuple[Procedure, ...]) -> tuple[Procedure, ...]:
        seen: set[str] = set()
        for proc in procedures:
            if proc.code in seen:
                raise ValueError(f"procedure code {proc.code!r} appears twice")
            seen.add(proc.code)
        words: dict[str, str] = {}  # an import word (code, name, alias) names one procedure only
        for proc in procedures:
            for word in {w.casefold() for w in (proc.code, proc.names.zh_CN, proc.names.en, *proc.aliases)}:
                other = words.setdefault(word, proc.code)
                if other != proc.code:
                    raise ValueError(f"{word!r} names both procedure {other!r} and {proc.code!r}: "
                                     f"an import could not tell them apart")
        return procedures

    def procedure(self, code: str) -> Procedure | None:
        return next((p for p in self.procedures if p.code == code), None)


class Choice(Strict):
    value: str
    labels: LocalizedText


class Question(Strict):
    """A question asked during a call; ``dimension`` groups satisfaction figures in reports."""

    key: str = Field(pattern=_KEY)
    text: LocalizedText
    type: QuestionType
    min: int | None = None
    max: int | None = None
    choices: tuple[Choice, ...] = ()
    dimension: str | None = None
    required: bool = False

    @model_validator(mode="after")
    def _shape(self) -> Question:
        if self.type == "scale" and (self.min is None or self.max is None or self.min >= self.max):
            raise ValueError(f"scale question {self.key!r} needs min < max")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"choice question {self.key!r} needs choices")
        return self

    def parse_answer(self, raw: Any) -> Any:
        """Validate one answer; raise ``ValueError`` (an ``InvalidValue``: zh_CN and en) a coordinator understands."""
        text = str(raw).strip()
        if self.type == "yes_no":
            lowered = text.lower()
            if lowered in ("yes", "y", "true", "1", "是", "有"):
                return True
            if lowered in ("no", "n", "false", "0", "否", "没有", "无"):
                return False
            raise InvalidValue(key="answer_yes_no", values={"key": self.key, "text": text})
        if self.type in ("scale", "number"):
            try:
                number = int(text)
            except ValueError:
                raise InvalidValue(key="answer_whole_number", values={"key": self.key, "text": text}) from None
            if self.type == "scale" and not (self.min <= number <= self.max):  # type: ignore[operator]
                raise InvalidValue(key="answer_range",
                                   values={"key": self.key, "min": self.min, "max": self.max, "number": number})
            return number
        if self.type == "choice":
            # The value, its label in either language, or its number in the list (as the prompt shows it).
            for number, choice in enumerate(self.choices, start=1):
                labels = {choice.value.casefold(), choice.labels.zh_CN.casefold(), choice.labels.en.casefold()}
                if text.casefold() in labels or text == str(number):
                    return choice.value
            values = [c.value for c in self.choices]
            raise InvalidValue(key="answer_choice",
                               values={"key": self.key, "values": ", ".join(values), "n": len(values), "text": text})
        if self.type == "month_day":
            from core.monthday import parse_month_day

            found = parse_month_day(text)
            if found is None:
                raise InvalidValue(key="answer_month_day", values={"key": self.key, "text": text})
            return found
        if not text:
            raise InvalidValue(key="answer_empty", values={"key": self.key})
        return text


class Condition(Strict):
    """One test on an answer; all conditions of a rule must hold."""

    question: str = Field(pattern=_KEY)
    op: Literal["eq", "ne", "gte", "lte", "gt", "lt", "in", "answered"] = "eq"
    value: Any = None
    min_days: float | None = Field(default=None, description="only this many days or more after the event")
    max_days: float | None = None

    def holds(self, answers: dict[str, Any], days_since: float) -> bool:
        if self.min_days is not None and days_since < self.min_days:
            return False
        if self.max_days is not None and days_since > self.max_days:
            return False
        if self.question not in answers:
            return False
        got = answers[self.question]
        if self.op == "answered":
            return got not in (None, "")
        try:
            return {
                "eq": lambda: got == self.value,
                "ne": lambda: got != self.value,
                "gte": lambda: got >= self.value,
                "lte": lambda: got <= self.value,
                "gt": lambda: got > self.value,
                "lt": lambda: got < self.value,
                "in": lambda: got in self.value,
            }[self.op]()
        except TypeError:
            return False


class Action(Strict):
    """What should happen after a call: an escalation, a complaint, a referral invitation..."""

    kind: ActionKind
    reason: LocalizedText
    category: ComplaintCategory | None = None
    after: Duration | None = Field(default=None, description="for extra_call: when, after the call")
    question: str | None = None


class Rule(Strict):
    """A declarative action rule: when every condition holds, the action is taken."""

    when: tuple[Condition, ...] = Field(min_length=1)
    action: ActionKind
    reason: LocalizedText
    category: ComplaintCategory | None = None
    after: Duration | None = None
    procedures: tuple[str, ...] = Field(default=(), description="limit to these procedure codes")

    def evaluate(self, answers: dict[str, Any], days_since: float, procedure: str) -> Action | None:
        if self.procedures and procedure not in self.procedures:
            return None
        if all(c.holds(answers, days_since) for c in self.when):
            return Action(
                kind=self.action,
                reason=self.reason,
                category=self.category,
                after=self.after,
                question=self.when[0].question,
            )
        return None


class AftercarePoint(Strict):
    """One aftercare instruction, relevant from ``start`` to ``until`` after the event."""

    text: LocalizedText
    start: Duration = Duration(amount=0, unit="d")
    until: Duration | None = None

    def due_at(self, offset: Duration | None) -> bool:
        if offset is None:
            return True
        minutes = offset.approx_minutes
        if minutes < self.start.approx_minutes:
            return False
        return self.until is None or minutes <= self.until.approx_minutes


class Aftercare(Strict):
    """Aftercare text for one procedure in one locale, as the ``followup_aftercare`` hook returns it."""

    locale: str
    points: tuple[str, ...]


class SpecialtyHeader(Strict):
    key: str = Field(pattern=_KEY)
    names: LocalizedText


class ProtocolProcedure(Procedure):
    milestones: tuple[Milestone, ...] = Field(min_length=1)
    aftercare: tuple[AftercarePoint, ...] = ()


class ProtocolFile(Strict):
    """The schema of a plugin's ``protocol.yaml``."""

    specialty: SpecialtyHeader
    attributes: tuple[EpisodeAttribute, ...] = ()
    questions: tuple[Question, ...] = ()
    procedures: tuple[ProtocolProcedure, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> ProtocolFile:
        for proc in self.procedures:
            seen: set[str] = set()
            for ms in proc.milestones:
                if ms.key in seen:
                    raise ValueError(f"{proc.code}: milestone {ms.key!r} appears twice")
                seen.add(ms.key)
        return self


class PatientInfo(Strict):
    """What a hook may know about a patient: never the phone number."""

    external_id: str
    name: str
    gender: Literal["F", "M", "U"] = "U"
    age: int | None = None
    locale: str = "zh_CN"


class TaskContext(Strict):
    """Everything a script, question or action hook is told about one follow-up."""

    site_code: str
    site_name: LocalizedText
    site_phone: str | None = None
    specialty: str
    procedure: str
    milestone: str
    purpose: str
    urgency: Urgency = Urgency.ROUTINE
    patient: PatientInfo
    occurred_at: datetime
    now: datetime
    doctor: str | None = None
    department: str | None = None
    diagnosis: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    failed_attempts: int = 0
    attempt_history: tuple[dict[str, Any], ...] = ()
    coordinator: str | None = None
    age_bands: dict[str, int] = Field(default_factory=lambda: {"child_under": 14, "elderly_from": 60})

    @property
    def days_since(self) -> float:
        return (self.now - self.occurred_at).total_seconds() / 86400


__all__ = [
    "LOCALES",
    "Action",
    "Aftercare",
    "AftercarePoint",
    "Choice",
    "Condition",
    "Duration",
    "EpisodeAttribute",
    "LocalizedText",
    "Milestone",
    "PatientInfo",
    "Procedure",
    "ProtocolFile",
    "ProtocolProcedure",
    "Question",
    "Rule",
    "Specialty",
    "TaskContext",
    "Window",
]
