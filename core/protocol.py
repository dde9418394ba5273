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
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Duration(BaseModel):
    """An offset from an episode's event time, written ``30min``, ``2h``, ``3d``, ``2w``, ``3mo``, ``1y``.

    ``min`` and ``h`` are elapsed time ("24h" after surgery is 24 real hours);
    ``d``, ``w``, ``mo`` and ``y`` are local calendar arithmetic, so
    Jan 31 + 1mo is Feb 28/29 and a day offset keeps the wall-clock time across a
    DST change.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)
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
        step = _STEPS.get((self.unit, self.amount))
        if step is None:
            step = _STEPS[self.unit, self.amount] = _step(self.unit, self.amount)
        if self.unit in ("min", "h"):  # elapsed time
            return (moment.astimezone(UTC) + step).astimezone(moment.tzinfo)
        naive = moment.replace(tzinfo=None) + step  # wall-clock days, weeks, months, years
        return _localize(naive, moment.tzinfo)


# One step per (unit, amount), made once: adding a duration is on every scheduling and recording path.
# Days and weeks on a naive wall-clock time are a timedelta (what relativedelta gives, faster).
_STEPS: dict[tuple[str, int], Any] = {}


def _step(unit: str, amount: int) -> Any:
    if unit in ("min", "h"):
        return timedelta(minutes=amount * _UNIT_MINUTES[unit])
    if unit == "d":
        return timedelta(days=amount)
    if unit == "w":
        return timedelta(weeks=amount)
    from dateutil.relativedelta import relativedelta  # here: most commands never add a duration

    return relativedelta(months=amount) if unit == "mo" else relativedelta(years=amount)


def _localize(naive: datetime, tz: Any) -> datetime:
    """Attach ``tz`` to a wall-clock time; a time skipped by DST moves forward."""
    aware = naive.replace(tzinfo=tz)
    roundtrip = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if roundtrip != naive:  # inside a DST gap
        aware = aware.astimezone(UTC).astimezone(tz)
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
    invites_back: bool = Field(
        default=False,
        description="the call invites the patient back (a review, suture removal, a rebooking): it may end "
                    "with an appointment, outcome booked with booked_at",
    )
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
    before: str | None = Field(
        default=None, pattern=_KEY,
        description="the event of the procedure this call prepares (one of the procedure's events, e.g. "
                    "splint_removal): it reaches the patient before that event's day, never on or after it",
    )
    event_at: Duration | None = Field(
        default=None,
        description="set by core, not in protocol.yaml: when ``before``'s event happens at this site",
    )
    optional_questions: tuple[str, ...] = Field(
        default=(), description="questions that may be skipped at this milestone (for elderly patients, say)",
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
    events: dict[str, Duration] = Field(
        default_factory=dict,
        description="clinical events after the procedure that calls prepare (splint_removal: 5d); "
                    "a site may move them (events: in its YAML), and scripts read them",
    )


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


_COMPARE: dict[str, Any] = {
    "eq": lambda got, v: got == v,
    "ne": lambda got, v: got != v,
    "gte": lambda got, v: got >= v,
    "lte": lambda got, v: got <= v,
    "gt": lambda got, v: got > v,
    "lt": lambda got, v: got < v,
    "in": lambda got, v: got in v,
}


class RedFlag(Strict):
    """An answer the script tells the coordinator to pass to the doctor at once (issue 14 item 12).

    The question list marks it, and the conformance kit checks that a rule of the
    plugin escalates it at every milestone that asks the question while the flag
    applies (``min_days`` / ``max_days`` after the event, as in a rule).
    """

    op: Literal["eq", "ne", "gte", "lte", "gt", "lt", "in"] = "eq"
    value: Any
    min_days: float | None = None
    max_days: float | None = None
    label: LocalizedText | None = Field(default=None, description="how the script names the answer")

    def applies(self, days_since: float) -> bool:
        return not ((self.min_days is not None and days_since < self.min_days)
                    or (self.max_days is not None and days_since > self.max_days))

    def holds(self, answer: Any, days_since: float) -> bool:
        if not self.applies(days_since):
            return False
        try:
            return bool(_COMPARE[self.op](answer, self.value))
        except TypeError:
            return False


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
    optional: bool = Field(default=False, description="may be skipped (the script says so for elderly patients)")
    treated_only: bool = Field(
        default=False, description="a satisfaction question: asked only of patients who were treated",
    )
    red_flag: RedFlag | None = None

    @model_validator(mode="after")
    def _shape(self) -> Question:
        if self.type == "scale" and (self.min is None or self.max is None or self.min >= self.max):
            raise ValueError(f"scale question {self.key!r} needs min < max")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"choice question {self.key!r} needs choices")
        if self.red_flag is not None and self.type == "choice":
            values = {c.value for c in self.choices}
            wanted = self.red_flag.value if self.red_flag.op == "in" else [self.red_flag.value]
            unknown = [v for v in wanted if v not in values]
            if unknown:
                raise ValueError(f"question {self.key!r}: red_flag names unknown choice(s) {unknown}")
        return self

    def red_flag_answers(self) -> list[Any]:
        """Sample answers that raise the red flag (what the conformance kit feeds the rules)."""
        flag = self.red_flag
        if flag is None:
            return []
        if self.type == "choice":
            candidates: list[Any] = [c.value for c in self.choices]
        elif self.type == "yes_no":
            candidates = [True, False]
        elif self.type == "scale":
            candidates = list(range(self.min or 0, (self.max or 0) + 1))
        elif isinstance(flag.value, (int, float)) and not isinstance(flag.value, bool):
            candidates = [flag.value - 1, flag.value, flag.value + 1]
        else:
            candidates = [flag.value]
        out = []
        for c in candidates:
            try:
                if _COMPARE[flag.op](c, flag.value):
                    out.append(c)
            except TypeError:
                continue
        return out

    def red_flag_label(self, locale: str) -> str | None:
        """How the script names the red-flag answer: its label, else the choice(s), else the question and answer."""
        flag = self.red_flag
        if flag is None:
            return None
        if flag.label is not None:
            return flag.label.get(locale)
        zh = locale == "zh_CN"
        if self.type == "choice":
            wanted = set(self.red_flag_answers())
            labels = [c.labels.get(locale) for c in self.choices if c.value in wanted]
            return ("”或“" if zh else '" or "').join(labels)
        if self.type == "yes_no":
            yes = bool(self.red_flag_answers() and self.red_flag_answers()[0])
            return ("是" if yes else "否") if zh else ("yes" if yes else "no")
        signs = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "=", "ne": "≠", "in": "∈"}
        return f"{signs[flag.op]} {flag.value}"

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
            return bool(_COMPARE[self.op](got, self.value))
        except TypeError:
            return False


class Action(Strict):
    """What should happen after a call: an escalation, a complaint, a referral invitation..."""

    kind: ActionKind
    reason: LocalizedText
    category: ComplaintCategory | None = None
    after: Duration | None = Field(default=None, description="for extra_call: when, after the call")
    question: str | None = None
    severity: Literal["clinical", "routine"] | None = Field(
        default=None, description="for escalate: clinical (a red flag, the default) or routine (arrange a visit)",
    )
    categories: tuple[ComplaintCategory, ...] = Field(
        default=(), description="for a complaint merged from several rules: every category it touches",
    )


class Rule(Strict):
    """A declarative action rule: when every condition holds, the action is taken."""

    when: tuple[Condition, ...] = Field(min_length=1)
    action: ActionKind
    reason: LocalizedText
    category: ComplaintCategory | None = None
    after: Duration | None = None
    severity: Literal["clinical", "routine"] | None = None
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
                severity=self.severity,
            )
        return None


class AftercarePoint(Strict):
    """One aftercare instruction, relevant from ``start`` to ``until`` after the event."""

    text: LocalizedText
    # built without validating: a validated default would build Duration's validator on import, in every command
    start: Duration = Duration.model_construct(amount=0, unit="d")
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

    @model_validator(mode="after")
    def _events_known(self) -> ProtocolProcedure:
        for ms in self.milestones:
            if ms.before is not None and ms.before not in self.events:
                known = ", ".join(self.events) or "none"
                raise ValueError(f"milestone {ms.key}: before: {ms.before!r} is not an event of {self.code} "
                                 f"(events: {known})")
            if ms.before is not None and ms.offset.approx_minutes >= self.events[ms.before].approx_minutes:
                raise ValueError(f"milestone {ms.key}: its offset {ms.offset} is not before the event "
                                 f"{ms.before} at {self.events[ms.before]}")
        return self


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
    preferred_call_time: str | None = None  # when the patient prefers to be called (18:00-20:30)


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
    age_bands: dict[str, int] = Field(
        default_factory=lambda: {"child_under": 14, "minor_under": 18, "elderly_from": 60})
    timezone: str | None = Field(default=None, description="the site's timezone: calendar days are counted in it")
    treated: bool = Field(default=True, description="the patient was treated (not a lead, a no-show...)")

    @property
    def calendar_days_since(self) -> int:
        """Local calendar days from the event to the call: 12-04 23:00 → 12-05 09:00 is 1 (昨天)."""
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(self.timezone) if self.timezone else self.occurred_at.tzinfo
        return (self.now.astimezone(tz).date() - self.occurred_at.astimezone(tz).date()).days

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
    "RedFlag",
    "Rule",
    "Specialty",
    "TaskContext",
    "Window",
]
