"""The conformance kit for plugin authors, and pytest fixtures (a ``pytest11`` plugin).

In a plugin's own tests::

    from core.testing import assert_conformance

    def test_my_plugin_conforms():
        assert_conformance("ophthalmology")

It checks that every hook result validates, every procedure has milestones,
offsets parse and windows contain their targets, every question key a
milestone or a rule names exists, every milestone's script and aftercare
render in every locale for sample patients of every age band, with and
without earlier failed attempts, every script ends with core's thanks and
hang-up instruction, every answer a script names as a red flag has a rule
that escalates it, and every template file exists in every locale. The
four built-in plugins pass it in this repository's tests.

Fixtures: ``followup_plugins`` (a fresh plugin manager per test, never the
process-wide one) and ``register_plugin`` (registers an object and always
unregisters it afterwards). :func:`sample_context` builds the context of a
sample call, to test hooks such as ``followup_actions``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.plugins import PluginError, Plugins, build_plugins
from core.protocol import LOCALES, LocalizedText, Milestone, PatientInfo, TaskContext

SAMPLE_PATIENTS = (
    PatientInfo(external_id="sample-elderly-f", name="王秀英", gender="F", age=72),
    PatientInfo(external_id="sample-elderly-m", name="张国栋", gender="M", age=80),
    PatientInfo(external_id="sample-adult-m", name="李强", gender="M", age=35),
    PatientInfo(external_id="sample-adult-f", name="Emily Chen", gender="F", age=29, locale="en"),
    PatientInfo(external_id="sample-child", name="陈小雨", gender="F", age=8),
    PatientInfo(external_id="sample-unknown", name="赵云", gender="U", age=None),
)
SAMPLE_EVENT = datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def conformance_problems(name: str, plugins: Plugins | None = None, locales: tuple[str, ...] = LOCALES) -> list[str]:
    """Everything wrong with plugin ``name``, as sentences naming what to fix (empty: it conforms)."""
    from core.general import GENERAL_QUESTIONS
    from core.scripts import prepare_script

    plugins = plugins or build_plugins(strict=False)
    info = plugins.infos.get(name)
    if info is None:
        return [f"plugin {name!r} is not installed (installed: {', '.join(sorted(plugins.infos))})"]
    if info.status != "ok":
        return [f"plugin {name!r} failed to load: {info.error}"]
    problems: list[str] = []
    general = {q.key for q in GENERAL_QUESTIONS}
    obj = plugins.pm.get_plugin(name)
    try:
        # The catalogue as it is now, not info.specialties: a plugin registered directly (the
        # register_plugin fixture) whose protocol fails has no specialties recorded, and must
        # not pass for a plugin with nothing to check.
        specialties = [spec for owner, spec in plugins.specialties().values() if owner == name]
    except PluginError as exc:
        return [str(exc)]
    for spec in specialties:
        assert spec is not None
        for proc in spec.procedures:
            where = f"{spec.key}.{proc.code}"
            try:
                milestones = [m for _, m in plugins.milestones(spec.key, proc.code)]
                questions = plugins.questions(spec.key, proc.code, "")
            except PluginError as exc:
                problems.append(str(exc))
                continue
            if not milestones:
                problems.append(f"{where}: no milestones")
            declared = {a.key for _, other in plugins.specialties().values() for a in other.attributes}
            for ms in milestones:
                for key in ms.questions:
                    if key not in questions:
                        problems.append(f"{where}.{ms.key}: asks unknown question {key!r}")
                for key in ms.optional_questions:
                    if key not in ms.questions and key not in general:
                        problems.append(f"{where}.{ms.key}: optional_questions names {key!r}, which it does not ask")
                for key in ms.when:
                    if key not in declared:
                        problems.append(
                            f"{where}.{ms.key}: `when` tests episode attribute {key!r}, which no specialty "
                            "declares (attributes: in protocol.yaml), so no import ever fills it"
                        )
                problems.extend(_render_problems(plugins, spec.key, proc.code, ms, locales, prepare_script))
                problems.extend(message_problems(plugins, spec.key, proc, ms, locales))
                try:
                    problems.extend(red_flag_problems(plugins, spec.key, proc.code, ms))
                except PluginError as exc:
                    problems.append(str(exc))
            for locale in locales:
                try:
                    plugins.aftercare(spec.key, proc.code, locale, None)
                except PluginError as exc:
                    problems.append(str(exc))
        protocol = getattr(obj, "protocol", None)
        known = {q.key for q in getattr(protocol, "questions", ())} | general
        for i, rule in enumerate(getattr(protocol, "rules", ())):
            for cond in rule.when:
                if cond.question not in known:
                    problems.append(f"{spec.key}: rule {i + 1} tests unknown question {cond.question!r}")
            codes = {p.code for p in spec.procedures}
            for code in rule.procedures:
                if code not in codes:
                    problems.append(f"{spec.key}: rule {i + 1} names unknown procedure {code!r}")
    problems.extend(_template_locale_problems(plugins, name, locales))
    return problems


MAX_SMS_SEGMENTS = 3
SAMPLE_LINK = "https://followup.example-clinic.cn/q/123456.1796659200.pBKF3xEtRSyuWhWXGQ7BWU2z"


def message_problems(plugins: Plugins, specialty: str, proc: Any, ms: Milestone,
                     locales: tuple[str, ...] = LOCALES) -> list[str]:
    """The messages a milestone sends (its own on sms/wechat/email, a notice, after unsuccessful calls):
    each renders in every locale, and an SMS fits in ``MAX_SMS_SEGMENTS`` segments (70 characters of
    Chinese each; a longer text is billed per 67) with a realistic questionnaire link."""
    from core.channels import segments
    from core.outbox import _render_first
    from core.templates import TemplateRenderError

    kinds = [(kind, channel) for kind, channel in (
        ("milestone", ms.channel if ms.channel in ("sms", "wechat", "email") else None),
        ("notice", ms.notice), ("after_unsuccessful", ms.after_unsuccessful)) if channel]
    problems = []
    dirs = plugins.template_dirs()
    for kind, channel in kinds:
        for locale in locales:
            variables = {
                "salutation": "王奶奶" if locale == "zh_CN" else "Mrs Wang", "clinic": "康华口腔（徐汇店）"
                if locale == "zh_CN" else "Kanghua Dental Xuhui", "clinic_phone": "021-6488-1200",
                "milestone": ms.names.get(locale), "procedure": proc.names.get(locale),
                "call_date": "2026-03-03", "call_time": "10:30", "doctor": "陈志远", "kind": kind,
                "link": "" if kind == "notice" else SAMPLE_LINK,
            }
            where = f"{specialty}.{proc.code}.{ms.key}: {kind} message ({locale})"
            try:
                text = _render_first([f"message/{specialty}/{kind}.j2", f"message/{kind}.j2"], variables, locale,
                                     dirs)
            except TemplateRenderError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if channel == "sms" and locale == "zh_CN" and segments(text) > MAX_SMS_SEGMENTS:
                problems.append(f"{where}: {len(text)} characters make {segments(text)} SMS segments "
                                f"(at most {MAX_SMS_SEGMENTS}: 70 characters a segment in Chinese)")
    return problems


def _template_locale_problems(plugins: Plugins, name: str, locales: tuple[str, ...]) -> list[str]:
    """Every template file of the plugin (scripts and partials) exists in every locale.

    Rendering alone cannot see this: a template missing in ``zh_CN/`` falls back to
    ``en/``, so a Chinese patient would be read the English script.
    """
    try:
        own = [Path(d) for d in plugins.template_dirs(only=[name])]
    except PluginError as exc:
        return [str(exc)]
    problems = []
    for folder in own:
        files = {
            loc: {p.relative_to(folder / loc) for p in (folder / loc).rglob("*")
                  if p.is_file() and not p.name.startswith(".") and "__pycache__" not in p.parts}
            for loc in locales
        }
        for loc in locales:
            for missing in sorted(set().union(*files.values()) - files[loc]):
                have = [other for other in locales if missing in files[other]]
                problems.append(
                    f"template {missing.as_posix()!r} exists only in {', '.join(have)}: "
                    f"write {folder / loc / missing} too, or {loc} patients hear another language"
                )
    return problems


def _render_problems(plugins: Plugins, specialty: str, procedure: str, ms: Any, locales: tuple[str, ...],
                     prepare_script: Any) -> list[str]:
    """Every script renders for every sample patient, and ends with core's thanks and hang-up instruction."""
    from core.errors import FollowupError
    from core.scripts import HANG_UP

    problems = []
    treated = _treated(plugins, specialty, procedure)
    for patient in SAMPLE_PATIENTS:
        for failed in (0, 2):
            context = _sample_context(specialty, procedure, ms, patient, failed, treated=treated)
            for locale in locales:
                try:
                    text = prepare_script(plugins, context, ms, locale).text
                except FollowupError as exc:
                    problems.append(f"{specialty}.{procedure}.{ms.key} ({locale}): {exc}")
                    return problems
                if not text.strip():
                    problems.append(f"{specialty}.{procedure}.{ms.key} ({locale}): the script is empty")
                    continue
                told_twice = [line for line in text.splitlines()[:-1]
                              if ("先挂" in line or "hang up first" in line.lower())]
                if told_twice:
                    problems.append(
                        f"{specialty}.{procedure}.{ms.key} ({locale}): the script says who hangs up first before "
                        f"core's closing ({told_twice[0].strip()!r}); leave it to script/_closing.j2, an instruction "
                        "to the coordinator that is not read aloud"
                    )
                    return problems
                if not text.rstrip().endswith(HANG_UP[locale]):
                    problems.append(
                        f"{specialty}.{procedure}.{ms.key} ({locale}): the script does not end with core's "
                        f"closing (thanks, then the hang-up instruction {HANG_UP[locale]!r}); extend "
                        "script/base.j2 and override blocks, not the end"
                    )
                    return problems
    return problems


def _treated(plugins: Plugins, specialty: str, procedure: str) -> bool:
    from core.vocab import TREATED_TRIGGERS

    spec = plugins.specialty(specialty)
    proc = spec.procedure(procedure) if spec else None
    return proc is None or proc.trigger in TREATED_TRIGGERS


def red_flag_problems(plugins: Plugins, specialty: str, procedure: str, ms: Milestone) -> list[str]:
    """Each answer the script names as a red flag (``red_flag`` of a question it asks) has a rule that escalates.

    Checked at the start, the target and the end of the milestone's window, for
    every answer that raises the flag: the coordinator is told "the doctor is
    alerted automatically", so a rule must alert them.
    """
    problems = []
    questions = plugins.questions(specialty, procedure, ms.key)
    treated = _treated(plugins, specialty, procedure)
    moments = sorted({ms.window.earliest.approx_minutes, ms.offset.approx_minutes, ms.window.latest.approx_minutes})
    for key in ms.questions:
        question = questions.get(key)
        if question is None or question.red_flag is None:
            continue
        for answer in question.red_flag_answers():
            missed = []
            for minutes in moments:
                days = minutes / 1440
                if not question.red_flag.applies(days):
                    continue
                context = _sample_context(specialty, procedure, ms, SAMPLE_PATIENTS[2], 0, treated=treated,
                                          now=SAMPLE_EVENT + timedelta(minutes=minutes))
                if not any(action.kind == "escalate" for _, action in plugins.actions(context, {key: answer})):
                    missed.append(f"{days:g}")
            if missed:
                problems.append(
                    f"{specialty}.{procedure}.{ms.key}: the script names {key}={answer!r} "
                    f"({question.red_flag_label('en')}) as a red flag, but no rule escalates it "
                    f"{', '.join(missed)} day(s) after the event: add an escalate rule, or narrow the "
                    "question's red_flag (min_days/max_days)"
                )
    return problems


def _sample_context(specialty: str, procedure: str, ms: Milestone, patient: PatientInfo, failed_attempts: int,
                    attributes: dict[str, Any] | None = None, *, treated: bool = True,
                    now: datetime | None = None) -> TaskContext:
    from core.vocab import Outcome

    outcomes = (Outcome.NO_ANSWER, Outcome.NOT_CONVENIENT, Outcome.BUSY, Outcome.POWERED_OFF)
    history = tuple({"at": None, "outcome": outcomes[i % len(outcomes)], "by": "sample", "note": None}
                    for i in range(failed_attempts))
    return TaskContext(
        site_code="SAMPLE", site_name=LocalizedText(zh_CN="示例诊所", en="Sample Clinic"),
        site_phone="021-0000-0000", specialty=specialty, procedure=procedure, milestone=ms.key,
        purpose=ms.purpose, urgency=ms.urgency, patient=patient, occurred_at=SAMPLE_EVENT,
        now=now or ms.offset.add_to(SAMPLE_EVENT), doctor="陈志远", department="示例科室",
        failed_attempts=failed_attempts, attempt_history=history, attributes=attributes or {},
        timezone="Asia/Shanghai", treated=treated,
    )


def sample_context(
    specialty: str,
    procedure: str,
    milestone: str,
    plugins: Plugins | None = None,
    *,
    patient: PatientInfo = SAMPLE_PATIENTS[0],
    failed_attempts: int = 0,
    attributes: dict[str, Any] | None = None,
) -> TaskContext:
    """The :class:`TaskContext` of a sample call at ``milestone``, for testing hooks such as ``followup_actions``.

    The event is :data:`SAMPLE_EVENT` and the call happens at the milestone's
    offset after it, at the sample clinic, with ``patient`` (default: an elderly
    woman from :data:`SAMPLE_PATIENTS`).
    """
    plugins = plugins or build_plugins(strict=False)
    found = {m.key: m for _, m in plugins.milestones(specialty, procedure)}
    if milestone not in found:
        known = ", ".join(found) or "none"
        raise LookupError(f"no milestone {milestone!r} in {specialty}.{procedure} (milestones: {known})")
    return _sample_context(specialty, procedure, found[milestone], patient, failed_attempts, attributes,
                           treated=_treated(plugins, specialty, procedure))


def assert_conformance(name: str, plugins: Plugins | None = None) -> None:
    problems = conformance_problems(name, plugins)
    if problems:
        pytest.fail(f"plugin {name!r} does not conform:\n  - " + "\n  - ".join(problems), pytrace=False)


@pytest.fixture
def followup_plugins() -> Plugins:
    """A fresh plugin manager with core and every installed plugin."""
    return build_plugins(strict=False)


@pytest.fixture
def register_plugin(followup_plugins: Plugins) -> Iterator[Any]:
    names: list[str] = []

    def _register(obj: object, name: str) -> Plugins:
        followup_plugins.register(obj, name)
        names.append(name)
        return followup_plugins

    yield _register
    for name in names:
        followup_plugins.unregister(name)
