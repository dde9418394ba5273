"""Assembling the call script of a task: questions, aftercare, salutation, rendering."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from core.names import age_band, doctor_title, is_minor
from core.plugins import Plugins
from core.protocol import Milestone, Question, TaskContext
from core.templates import render
from core.vocab import Outcome

# What an earlier, unsuccessful attempt was, as the script acknowledges it (issue 14 item 10).
ATTEMPT_KINDS: dict[str, str] = {
    Outcome.NO_ANSWER: "no_answer",
    Outcome.BUSY: "busy",
    Outcome.NOT_CONVENIENT: "not_convenient",
    Outcome.POWERED_OFF: "unreachable",
    Outcome.OUT_OF_SERVICE: "unreachable",
    Outcome.CANNOT_CONNECT: "unreachable",
    Outcome.CALLBACK_REQUESTED: "callback",
}


# The last line of every script (seed 002): an instruction to the coordinator, not read aloud. The
# conformance kit checks that every plugin's scripts end with it.
HANG_UP: dict[str, str] = {
    "zh_CN": "（给回访专员的提示，不要念出来）等对方先挂断电话，再放下听筒。",
    "en": "(For you, not to be read out) Let the patient hang up first, then put the phone down.",
}

_ZH_SMALL = {1: "一", 2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九", 10: "十", 11: "十一"}


def relative_day(event: date, today: date, locale: str) -> str:
    """When the event was, by local calendar date: 今天 / 昨天 / 前天 / 5天前 / 两个月前 / 一年前 (and in English)."""
    days = (today - event).days
    zh = locale == "zh_CN"
    if days <= 0:
        return "今天" if zh else "today"
    if days == 1:
        return "昨天" if zh else "yesterday"
    if days == 2 and zh:
        return "前天"
    if days < 28:
        return f"{days}天前" if zh else f"{days} days ago"
    from dateutil.relativedelta import relativedelta  # here: most calls are within the first weeks

    span = relativedelta(today, event)
    months = span.years * 12 + span.months + (1 if span.days >= 15 else 0)
    if months < 12 or (months < 18 and span.years == 0):
        months = max(1, months)
        if zh:
            return f"{_ZH_SMALL.get(months, months)}个月前"
        return "a month ago" if months == 1 else f"{months} months ago"
    years = span.years + (1 if span.months >= 6 else 0)
    if zh:
        return f"{_ZH_SMALL.get(years, years)}年前"
    return "a year ago" if years == 1 else f"{years} years ago"


def earlier_attempts(history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The attempts before this call, as the script acknowledges them: how many of each kind, and the last one.

    ``{"total": 3, "no_answer": 2, "busy": 0, "not_convenient": 1, "unreachable": 0, "callback": 0,
    "last": "not_convenient"}``; attempts that reached someone are not counted.
    """
    counts = {"total": 0, "no_answer": 0, "busy": 0, "not_convenient": 0, "unreachable": 0, "callback": 0}
    last = None
    for attempt in history:
        kind = ATTEMPT_KINDS.get(str(attempt.get("outcome")))
        if kind is None:
            continue
        counts[kind] += 1
        counts["total"] += 1
        last = kind
    kinds = [(k, counts[k]) for k in ("no_answer", "busy", "not_convenient", "unreachable", "callback") if counts[k]]
    return {**counts, "last": last, "kinds": kinds}


def question_hint(question: Question, locale: str) -> str:
    zh = locale == "zh_CN"
    if question.type == "scale":
        return f"{question.min}–{question.max}"
    if question.type == "yes_no":
        return "是/否" if zh else "yes/no"
    if question.type == "choice":
        return " / ".join(f"{i} {c.labels.get(locale)}" for i, c in enumerate(question.choices, start=1))
    if question.type == "month_day":
        return "月-日，如 05-12" if zh else "month-day, e.g. 05-12"
    return ""


@dataclass
class PreparedScript:
    text: str
    questions: list[Question]
    aftercare: list[str]
    salutation: str


def ordered_questions(plugins: Plugins, context: TaskContext, milestone: Milestone) -> list[Question]:
    """The milestone's own questions in order, then core's general ones.

    Satisfaction questions (``treated_only``) are asked only of patients who were
    treated: a hair lead who never came is not asked how satisfied they were with the visit.
    """
    available = plugins.questions(context.specialty, context.procedure, milestone.key)
    keys = list(milestone.questions)
    if milestone.channel == "phone" and milestone.general_questions:
        keys += [k for k in plugins.general_question_keys() if k not in keys]
    missing = [k for k in keys if k not in available]
    if missing:
        from core.plugins import PluginError

        raise PluginError(
            context.specialty, "followup_questions",
            f"milestone {context.procedure}.{milestone.key} asks unknown question(s): {', '.join(missing)}",
        )
    return [available[k] for k in keys if context.treated or not available[k].treated_only]


def script_variables(
    context: TaskContext,
    milestone: Milestone,
    questions: Sequence[Question],
    aftercare: Sequence[str],
    salutation: str,
    locale: str,
    procedure_name: str,
) -> dict[str, Any]:
    """The variables every script template may use (documented in docs/plugins.md)."""
    days = context.calendar_days_since
    elapsed = context.days_since
    tz = context.timezone
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz) if tz else context.occurred_at.tzinfo
    optional = set(milestone.optional_questions)
    return {
        "locale": locale,
        "salutation": salutation,
        "clinic": context.site_name.get(locale),
        "clinic_phone": context.site_phone,
        "coordinator": context.coordinator,
        "patient": {
            "name": context.patient.name,
            "gender": context.patient.gender,
            "age": context.patient.age,
            "age_band": age_band(context.patient.age, context.age_bands),
            "minor": is_minor(context.patient.age, context.age_bands),
        },
        "procedure": {"code": context.procedure, "name": procedure_name},
        "milestone": {
            "key": milestone.key,
            "name": milestone.names.get(locale),
            "purpose": milestone.purpose,
            "urgency": milestone.urgency,
            "channel": milestone.channel,
        },
        "days_since": max(0, days),
        "ago": relative_day(context.occurred_at.astimezone(zone).date(), context.now.astimezone(zone).date(), locale),
        "treated": context.treated,
        "doctor": doctor_title(context.doctor, locale),
        "doctor_name": context.doctor,
        "department": context.department,
        "diagnosis": context.diagnosis,
        "attributes": dict(context.attributes),
        "questions": [
            {"key": q.key, "text": q.text.get(locale), "hint": question_hint(q, locale), "type": q.type,
             "optional": q.optional or q.key in optional,
             "red_flag": q.red_flag_label(locale) if q.red_flag and q.red_flag.applies(elapsed) else None}
            for q in questions
        ],
        "satisfaction_asked": any(q.treated_only for q in questions),
        "aftercare": list(aftercare),
        "failed_attempts": context.failed_attempts,
        # a reminder's event (the splint comes off on day 5): its day after the procedure and its local date
        **event_variables(context, milestone, locale),
        "earlier_attempts": earlier_attempts(context.attempt_history),
        "hang_up": HANG_UP.get(locale, HANG_UP["en"]),
    }


def event_variables(context: TaskContext, milestone: Milestone, locale: str) -> dict[str, Any]:
    """``event_day`` (5) and ``event_date`` (12月3日 / 3 December) of what a reminder prepares, else None."""
    at = milestone.event_at if milestone.before else None
    if at is None:
        return {"event_day": None, "event_date": None}
    from zoneinfo import ZoneInfo

    anchor = context.occurred_at.astimezone(ZoneInfo(context.timezone)) if context.timezone else context.occurred_at
    day = at.add_to(anchor).date()
    text = f"{day.month}月{day.day}日" if locale == "zh_CN" else f"{day.day} {day:%B}"
    return {"event_day": at.amount if at.unit == "d" else None, "event_date": text}


def prepare_script(
    plugins: Plugins,
    context: TaskContext,
    milestone: Milestone,
    locale: str,
    site_template_dirs: Sequence[str | Path] = (),
) -> PreparedScript:
    """Render the script a coordinator reads for this task, in ``locale``."""
    questions = ordered_questions(plugins, context, milestone)
    aftercare = plugins.aftercare(context.specialty, context.procedure, locale, milestone)
    salutation = plugins.salutation(context.patient, locale, context.age_bands)
    spec = plugins.specialty(context.specialty)
    proc = spec.procedure(context.procedure) if spec else None
    procedure_name = proc.names.get(locale) if proc else context.procedure
    variables = script_variables(context, milestone, questions, aftercare, salutation, locale, procedure_name)
    dirs = [*map(str, site_template_dirs), *plugins.template_dirs()]

    def _render(name: str, values: dict[str, Any]) -> str:
        return render(name, values, locale=locale, dirs=dirs)

    text = plugins.script(
        context=context, milestone=milestone, questions=questions, aftercare=aftercare,
        salutation=salutation, locale=locale, variables=variables, render=_render,
    )
    return PreparedScript(text=text, questions=questions, aftercare=aftercare, salutation=salutation)
