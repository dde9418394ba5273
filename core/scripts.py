"""Assembling the call script of a task: questions, aftercare, salutation, rendering."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.general import age_band
from core.plugins import Plugins
from core.protocol import Milestone, Question, TaskContext
from core.templates import render


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
    """The milestone's own questions in order, then core's general ones."""
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
    return [available[k] for k in keys]


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
        },
        "procedure": {"code": context.procedure, "name": procedure_name},
        "milestone": {
            "key": milestone.key,
            "name": milestone.names.get(locale),
            "purpose": milestone.purpose,
            "urgency": milestone.urgency,
            "channel": milestone.channel,
        },
        "days_since": max(0, int(context.days_since)),
        "doctor": context.doctor,
        "department": context.department,
        "diagnosis": context.diagnosis,
        "attributes": dict(context.attributes),
        "questions": [
            {"key": q.key, "text": q.text.get(locale), "hint": question_hint(q, locale), "type": q.type}
            for q in questions
        ],
        "aftercare": list(aftercare),
        "failed_attempts": context.failed_attempts,
    }


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
