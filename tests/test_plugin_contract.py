"""The plugin contract (DESIGN.md §3, STYLE.md): what a plugin author meets when they get it wrong.

Every test builds a fresh :class:`Plugins` with only core's own plugin and the
test plugins it needs, never the process-wide cached one, so nothing leaks
between tests.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import core.plugins
from core import hookspecs
from core.general import CorePlugin
from core.hookspecs import hookimpl
from core.plugins import PluginError, Plugins
from core.protocol import Milestone, PatientInfo, TaskContext

TESTS = Path(__file__).parent
DATA = TESTS / "data"
NAMES = {"zh_CN": "口腔", "en": "Dental"}
SPEC = {
    "key": "dental",
    "names": NAMES,
    "procedures": [{"code": "extraction", "names": {"zh_CN": "拔牙", "en": "Extraction"}}],
}


def ms(key: str, offset: str, window: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "purpose": "check_in",
        "names": {"zh_CN": key, "en": key},
        "offset": offset,
        "window": window,
        **extra,
    }


@pytest.fixture
def fresh() -> Plugins:
    plugins = Plugins()
    plugins.register(CorePlugin(), "core")
    return plugins


class Dental:
    @hookimpl
    def followup_specialties(self) -> list[dict[str, Any]]:
        return [SPEC]

    @hookimpl
    def followup_milestones(self, specialty: str, procedure: str) -> list[dict[str, Any]] | None:
        if (specialty, procedure) != ("dental", "extraction"):
            return None
        return [
            ms("week_1", "1w", ["6d", "8d"]),
            ms("same_day", "2h", ["2h", "3h"], urgency="clinical"),
        ]


def context(**extra: Any) -> TaskContext:
    tz = ZoneInfo("Asia/Shanghai")
    return TaskContext(
        site_code="SH-DENT",
        site_name={"zh_CN": "口腔", "en": "Dental"},
        specialty="dental",
        procedure="extraction",
        milestone="week_1",
        purpose="check_in",
        patient=PatientInfo(external_id="p1", name="王秀英", gender="F", age=72),
        occurred_at=datetime(2026, 6, 1, 10, tzinfo=tz),
        now=datetime(2026, 6, 8, 10, tzinfo=tz),
        **extra,
    )


# --- followup_specialties -------------------------------------------------------------------


def test_followup_specialties_missing_names_is_an_error_naming_plugin_hook_and_field(
    fresh: Plugins,
) -> None:
    class Garbage:
        @hookimpl
        def followup_specialties(self) -> list[dict[str, Any]]:
            return [{"key": "dental", "procedures": SPEC["procedures"]}]

    fresh.register(Garbage(), "garbage")
    with pytest.raises(PluginError) as info:
        fresh.specialties()
    assert (
        str(info.value)
        == "plugin 'garbage', hook followup_specialties: invalid Specialty: names: Field required"
    )
    assert (info.value.plugin, info.value.hook) == ("garbage", "followup_specialties")


def test_followup_specialties_returning_a_string_is_an_error(fresh: Plugins) -> None:
    class Stringy:
        @hookimpl
        def followup_specialties(self) -> str:
            return "dental"

    fresh.register(Stringy(), "stringy")
    with pytest.raises(
        PluginError,
        match="plugin 'stringy', hook followup_specialties: expected a list of Specialty, got str",
    ):
        fresh.specialties()


def test_followup_specialties_bad_procedure_field_names_its_path(fresh: Plugins) -> None:
    class BadCode:
        @hookimpl
        def followup_specialties(self) -> list[dict[str, Any]]:
            return [{**SPEC, "procedures": [{"code": "Root Canal", "names": NAMES}]}]

    fresh.register(BadCode(), "badcode")
    with pytest.raises(PluginError, match=r"procedures\.0\.code: String should match pattern"):
        fresh.specialties()


def test_duplicate_specialty_key_names_both_plugins(fresh: Plugins) -> None:
    fresh.register(Dental(), "dental_a")
    fresh.register(Dental(), "dental_b")
    with pytest.raises(PluginError) as info:
        fresh.specialties()
    message = str(info.value)
    assert "specialty 'dental'" in message
    assert "'dental_a'" in message and "'dental_b'" in message


def test_specialties_are_sorted_by_key_whatever_the_install_order(fresh: Plugins) -> None:
    class Zeta:
        @hookimpl
        def followup_specialties(self) -> list[dict[str, Any]]:
            return [{**SPEC, "key": "zeta"}]

    fresh.register(Zeta(), "zeta")
    fresh.register(Dental(), "dental")
    assert list(fresh.specialties()) == ["dental", "zeta"]
    assert fresh.specialties()["zeta"][0] == "zeta"  # tagged with the plugin that provides it


# --- followup_milestones -----------------------------------------------------------------------


def test_followup_milestones_are_ordered_by_offset_and_tagged(fresh: Plugins) -> None:
    fresh.register(Dental(), "dental")
    found = fresh.milestones("dental", "extraction")
    assert [(plugin, m.key) for plugin, m in found] == [
        ("dental", "same_day"),
        ("dental", "week_1"),
    ]
    assert isinstance(found[0][1], Milestone)
    assert fresh.milestones("dental", "implant_surgery") == []


def test_a_chain_plugin_may_add_a_milestone_to_another_plugins_procedure(fresh: Plugins) -> None:
    class Chain:
        @hookimpl
        def followup_milestones(self, specialty: str, procedure: str) -> list[dict[str, Any]]:
            return [ms("month_1", "1mo", ["4w", "6w"])]

    fresh.register(Dental(), "dental")
    fresh.register(Chain(), "chain")
    assert [(p, m.key) for p, m in fresh.milestones("dental", "extraction")][-1] == (
        "chain",
        "month_1",
    )


def test_duplicate_milestone_key_names_both_plugins(fresh: Plugins) -> None:
    class Chain:
        @hookimpl
        def followup_milestones(self, specialty: str, procedure: str) -> list[dict[str, Any]]:
            return [ms("week_1", "1w", ["6d", "8d"])]

    fresh.register(Dental(), "dental")
    fresh.register(Chain(), "chain")
    with pytest.raises(PluginError) as info:
        fresh.milestones("dental", "extraction")
    message = str(info.value)
    assert "milestone dental.extraction.week_1" in message
    assert "'dental'" in message and "'chain'" in message


def test_followup_milestones_with_offset_outside_window_names_the_milestone_field(
    fresh: Plugins,
) -> None:
    class Wrong:
        @hookimpl
        def followup_milestones(self) -> list[dict[str, Any]]:
            return [ms("late", "9d", ["1d", "2d"])]

    fresh.register(Wrong(), "wrong")
    with pytest.raises(
        PluginError,
        match=r"plugin 'wrong', hook followup_milestones: invalid Milestone: .*offset 9d lies outside",
    ):
        fresh.milestones("dental", "extraction")


def test_misspelt_hook_suggests_followup_milestones(fresh: Plugins) -> None:
    class Typo:
        @hookimpl
        def followup_milestone(self, specialty: str, procedure: str) -> list[Any]:
            return []

    with pytest.raises(PluginError) as info:
        fresh.register(Typo(), "typo")
    assert "plugin 'typo', hook followup_milestone: unknown hook 'followup_milestone'" in str(
        info.value
    )
    assert "did you mean followup_milestones?" in str(info.value)
    assert "typo" not in fresh.infos and fresh.pm.get_plugin("typo") is None


def test_misspelt_prefix_of_a_marked_hook_is_caught(fresh: Plugins) -> None:
    class Typo:
        @hookimpl
        def folowup_milestones(self, specialty: str, procedure: str) -> list[Any]:
            return []

    with pytest.raises(
        PluginError, match="unknown hook 'folowup_milestones' — did you mean followup_milestones"
    ):
        fresh.register(Typo(), "typo")
    assert fresh.pm.get_plugin("typo") is None


def test_hook_with_a_parameter_the_spec_lacks_names_the_plugin(fresh: Plugins) -> None:
    class Typo:
        @hookimpl
        def followup_milestones(self, specialty: str, procedur: str) -> list[Any]:
            return []

    with pytest.raises(PluginError, match=r"plugin 'typo', hook followup_milestones: .*'procedur'"):
        fresh.register(Typo(), "typo")


def test_hook_method_without_hookimpl_marker_is_an_error(fresh: Plugins) -> None:
    class Forgot:
        def followup_milestones(self, specialty: str, procedure: str) -> list[Any]:
            return []

    with pytest.raises(PluginError, match="not marked with @hookimpl"):
        fresh.register(Forgot(), "forgot")


def test_hook_wrappers_are_refused(fresh: Plugins) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def followup_milestones(self, specialty: str, procedure: str):  # type: ignore[no-untyped-def]
            return (yield)

    with pytest.raises(PluginError, match="hook wrappers are not supported"):
        fresh.register(Wrapper(), "wrapper")


def test_plugin_that_raises_is_named(fresh: Plugins) -> None:
    class Boom:
        @hookimpl
        def followup_milestones(self, specialty: str, procedure: str) -> list[Any]:
            raise KeyError("procedure_table")

    fresh.register(Boom(), "boom")
    with pytest.raises(
        PluginError,
        match="plugin 'boom', hook followup_milestones: raised KeyError: 'procedure_table'",
    ):
        fresh.milestones("dental", "extraction")


def test_unregistered_plugin_leaves_nothing_behind(fresh: Plugins) -> None:
    fresh.register(Dental(), "dental")
    assert "dental" in fresh.specialties()
    fresh.unregister("dental")
    assert fresh.specialties() == {}
    assert "dental" not in fresh.infos


def test_plugin_info_lists_the_hooks_it_implements(fresh: Plugins) -> None:
    fresh.register(Dental(), "dental", version="1.2", source="tests")
    listed = {p["name"]: p for p in fresh.list_plugins()}
    assert listed["dental"]["hooks"] == ["followup_milestones", "followup_specialties"]
    assert listed["dental"]["version"] == "1.2"
    assert listed["dental"]["status"] == "ok"


# --- first-result hooks ----------------------------------------------------------------------


def test_followup_salutation_core_default_follows_age_and_gender(fresh: Plugins) -> None:
    bands = {"child_under": 14, "elderly_from": 60}
    assert (
        fresh.salutation(
            PatientInfo(external_id="1", name="王秀英", gender="F", age=72), "zh_CN", bands
        )
        == "王奶奶"
    )
    assert (
        fresh.salutation(
            PatientInfo(external_id="2", name="李强", gender="M", age=35), "zh_CN", bands
        )
        == "李先生"
    )
    assert (
        fresh.salutation(
            PatientInfo(external_id="3", name="陈小雨", gender="F", age=8), "zh_CN", bands
        )
        == "陈小雨的家长"  # a minor's call goes to a parent or guardian
    )


def test_followup_salutation_chain_plugin_takes_precedence(fresh: Plugins) -> None:
    class Chain:
        @hookimpl(tryfirst=True)
        def followup_salutation(self, patient: PatientInfo) -> str:
            return f"尊敬的{patient.name}"

    fresh.register(Chain(), "chain")
    patient = PatientInfo(external_id="1", name="王秀英", gender="F", age=72)
    assert fresh.salutation(patient, "zh_CN", {}) == "尊敬的王秀英"


def test_followup_salutation_empty_answer_is_an_error(fresh: Plugins) -> None:
    class Blank:
        @hookimpl(tryfirst=True)
        def followup_salutation(self) -> str:
            return "  "

    fresh.register(Blank(), "blank")
    with pytest.raises(
        PluginError, match="plugin 'blank', hook followup_salutation: expected a non-empty string"
    ):
        fresh.salutation(PatientInfo(external_id="1", name="王秀英"), "zh_CN", {})


def test_followup_aftercare_first_answer_wins_and_is_validated(fresh: Plugins) -> None:
    class Specialty:
        @hookimpl
        def followup_aftercare(self, locale: str) -> dict[str, Any]:
            return {"locale": locale, "points": ["Bite on the gauze for 30 minutes."]}

    class Chain:
        @hookimpl(tryfirst=True)
        def followup_aftercare(self, locale: str) -> dict[str, Any]:
            return {"locale": locale, "points": ["Our own advice."]}

    fresh.register(Specialty(), "specialty")
    assert fresh.aftercare("dental", "extraction", "en") == ["Bite on the gauze for 30 minutes."]
    fresh.register(Chain(), "chain")
    assert fresh.aftercare("dental", "extraction", "en") == ["Our own advice."]


def test_followup_aftercare_garbage_names_the_field(fresh: Plugins) -> None:
    class Garbage:
        @hookimpl
        def followup_aftercare(self) -> dict[str, Any]:
            return {"points": "keep it dry"}

    fresh.register(Garbage(), "garbage")
    with pytest.raises(
        PluginError, match=r"hook followup_aftercare: invalid Aftercare: locale: Field required"
    ):
        fresh.aftercare("dental", "extraction", "en")


def test_followup_script_core_default_renders_the_milestone_script(fresh: Plugins) -> None:
    milestone = Milestone.model_validate(ms("week_1", "1w", ["6d", "8d"], script="script/base.j2"))
    rendered: list[str] = []

    def render(name: str, variables: dict[str, Any]) -> str:
        rendered.append(name)
        return f"rendered {name}"

    text = fresh.script(
        context=context(),
        milestone=milestone,
        questions=[],
        aftercare=[],
        salutation="王奶奶",
        locale="zh_CN",
        variables={},
        render=render,
    )
    assert text == "rendered script/base.j2" and rendered == ["script/base.j2"]


def test_followup_script_returning_a_non_string_is_an_error(fresh: Plugins) -> None:
    class Bad:
        @hookimpl(tryfirst=True)
        def followup_script(self) -> list[str]:
            return ["line one"]

    fresh.register(Bad(), "bad")
    milestone = Milestone.model_validate(ms("week_1", "1w", ["6d", "8d"]))
    with pytest.raises(
        PluginError, match="plugin 'bad', hook followup_script: expected the script text, got list"
    ):
        fresh.script(
            context=context(),
            milestone=milestone,
            questions=[],
            aftercare=[],
            salutation="x",
            locale="en",
            variables={},
            render=lambda n, v: "",
        )


def test_followup_calendar_default_and_chain_override(fresh: Plugins) -> None:
    assert not fresh.calendar("CN").is_working_day(date(2026, 10, 1))

    class Always:
        def is_working_day(self, day: date) -> bool:
            return True

        def is_published(self, day: date) -> bool:
            return True

    class Chain:
        @hookimpl(tryfirst=True)
        def followup_calendar(self, country: str) -> Any:
            return Always() if country == "CN" else None

    fresh.register(Chain(), "chain")
    assert fresh.calendar("CN").is_working_day(date(2026, 10, 1))
    assert not fresh.calendar("GB").is_working_day(date(2026, 12, 25))  # falls through to core


def test_followup_calendar_without_is_working_day_is_an_error(fresh: Plugins) -> None:
    class Bad:
        @hookimpl(tryfirst=True)
        def followup_calendar(self) -> Any:
            return {"2026-10-01": False}

    fresh.register(Bad(), "bad")
    with pytest.raises(
        PluginError,
        match="plugin 'bad', hook followup_calendar: the calendar has no is_working_day",
    ):
        fresh.calendar("CN")


# --- collected hooks --------------------------------------------------------------------------


def test_followup_questions_merge_by_key_and_the_first_called_wins(fresh: Plugins) -> None:
    class Chain:
        @hookimpl(tryfirst=True)
        def followup_questions(self) -> list[dict[str, Any]]:
            return [
                {
                    "key": "recommend",
                    "type": "yes_no",
                    "text": {"zh_CN": "会推荐吗", "en": "Would you recommend us?"},
                }
            ]

    core_keys = fresh.general_question_keys()
    assert {"overall_satisfaction", "recommend", "complaint"} <= set(core_keys)
    fresh.register(Chain(), "chain")
    merged = fresh.questions("dental", "extraction", "week_1")
    assert merged["recommend"].type == "yes_no"
    assert merged["overall_satisfaction"].type == "scale"
    assert fresh.general_question_keys() == core_keys  # core's list is core's own


def test_followup_questions_invalid_scale_is_an_error(fresh: Plugins) -> None:
    class Bad:
        @hookimpl
        def followup_questions(self) -> list[dict[str, Any]]:
            return [{"key": "pain", "type": "scale", "text": {"zh_CN": "疼吗", "en": "Pain?"}}]

    fresh.register(Bad(), "bad")
    with pytest.raises(
        PluginError,
        match="plugin 'bad', hook followup_questions: invalid Question: .*needs min < max",
    ):
        fresh.questions("dental", "extraction", "week_1")


def test_followup_actions_core_turns_low_satisfaction_into_a_complaint(fresh: Plugins) -> None:
    actions = fresh.actions(context(), {"overall_satisfaction": 1, "recommend": 10})
    kinds = sorted((plugin, action.kind) for plugin, action in actions)
    assert kinds == [("core", "complaint"), ("core", "referral")]


def test_followup_actions_garbage_names_plugin_and_field(fresh: Plugins) -> None:
    class Bad:
        @hookimpl
        def followup_actions(self) -> list[dict[str, Any]]:
            return [{"kind": "phone_the_police", "reason": {"zh_CN": "x", "en": "x"}}]

    fresh.register(Bad(), "bad")
    with pytest.raises(
        PluginError, match="plugin 'bad', hook followup_actions: invalid Action: kind: "
    ):
        fresh.actions(context(), {})


def test_followup_template_dirs_must_be_paths(fresh: Plugins, tmp_path: Path) -> None:
    class Good:
        @hookimpl
        def followup_template_dirs(self) -> list[Path]:
            return [tmp_path]

    class Bad:
        @hookimpl
        def followup_template_dirs(self) -> str:
            return str(tmp_path)

    fresh.register(Good(), "good")
    assert fresh.template_dirs() == [str(tmp_path)]
    fresh.register(Bad(), "bad")
    with pytest.raises(
        PluginError, match="plugin 'bad', hook followup_template_dirs: expected a list of paths"
    ):
        fresh.template_dirs()


def test_trace_prints_every_hook_call(fresh: Plugins, capsys: pytest.CaptureFixture[str]) -> None:
    fresh.register(Dental(), "dental")
    fresh.trace = True
    fresh.milestones("dental", "extraction")
    err = capsys.readouterr().err
    assert (
        "[followup trace] followup_milestones({'specialty': 'dental', 'procedure': 'extraction'}) <- dental:"
        in err
    )


# --- entry points ----------------------------------------------------------------------------


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, *specs: tuple[str, str]) -> None:
    """Make ``core.plugins`` see exactly these ``followup`` entry points (name, module:attr)."""
    monkeypatch.syspath_prepend(str(DATA / "entry_points"))  # not DATA: its plugins/ would shadow ours
    points = [
        importlib.metadata.EntryPoint(name, value, core.plugins.ENTRY_POINT_GROUP)
        for name, value in specs
    ]
    fake = SimpleNamespace(
        entry_points=lambda group: [p for p in points if p.group == group],
        version=importlib.metadata.version,
        PackageNotFoundError=importlib.metadata.PackageNotFoundError,
    )
    monkeypatch.setattr(core.plugins, "metadata", fake)


def test_load_plugins_allowlist_loads_only_dental(
    fresh: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLLOWUP_LOAD_PLUGINS", "dental")
    fresh.load_entry_points()
    assert sorted(fresh.infos) == ["core", "dental"]
    assert fresh.infos["dental"].source == "built-in"


def test_empty_allowlist_loads_no_entry_point_plugin(
    fresh: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLLOWUP_LOAD_PLUGINS", "")
    fresh.load_entry_points()
    assert list(fresh.infos) == ["core"]


def test_failing_entry_point_is_listed_as_failed_and_the_rest_work(
    fresh: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FOLLOWUP_LOAD_PLUGINS", raising=False)
    fake_entry_points(
        monkeypatch, ("garbage", "garbage_plugin:plugin"), ("mini", "mini_plugin:plugin")
    )
    fresh.load_entry_points()
    failed = {p.name: p for p in fresh.failed()}
    assert list(failed) == ["garbage"]
    assert failed["garbage"].error == "RuntimeError: garbage plugin exploded on import"
    assert failed["garbage"].source == "entry point garbage_plugin:plugin"
    assert fresh.infos["mini"].status == "ok"
    assert fresh.infos["mini"].specialties == ["dental"]
    assert [m.key for _, m in fresh.milestones("dental", "root_canal_treatment")] == [
        "check_same_day",
        "restoration_reminder",
    ]


def test_plugin_with_invalid_catalogue_is_disabled_with_the_reason(
    fresh: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FOLLOWUP_LOAD_PLUGINS", raising=False)
    fake_entry_points(
        monkeypatch, ("broken", "broken_plugin:plugin"), ("mini", "mini_plugin:plugin")
    )
    fresh.load_entry_points()
    broken = fresh.infos["broken"]
    assert broken.status == "failed"
    assert "offset 9d lies outside its window [1d, 2d]" in (broken.error or "")
    assert "protocol.yaml:" in (broken.error or "")  # names the file and line
    assert fresh.pm.get_plugin("broken") is None
    assert list(fresh.specialties()) == ["dental"]


def test_strict_mode_reraises_a_failing_plugin(
    fresh: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FOLLOWUP_LOAD_PLUGINS", raising=False)
    fake_entry_points(monkeypatch, ("garbage", "garbage_plugin:plugin"))
    with pytest.raises(PluginError, match="garbage plugin exploded") as raised:
        fresh.load_entry_points(strict=True)
    assert raised.value.__cause__ is None  # one line, never the traceback of the plugin's import


def test_strict_mode_masks_the_numbers_in_a_failing_plugins_text(
    fresh: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FOLLOWUP_LOAD_PLUGINS", raising=False)
    fake_entry_points(monkeypatch, ("leaky", "leaky_plugin:plugin"))
    with pytest.raises(PluginError) as raised:
        fresh.load_entry_points(strict=True)
    assert "138****5601" in str(raised.value) and "139****5678" in str(raised.value)
    assert "13812345601" not in str(raised.value) and "1234 5678" not in str(raised.value)


def test_build_plugins_reads_strict_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOLLOWUP_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("FOLLOWUP_STRICT_PLUGINS", "1")
    fake_entry_points(monkeypatch, ("garbage", "garbage_plugin:plugin"))
    with pytest.raises(PluginError, match="RuntimeError"):
        core.plugins.build_plugins()


# --- meta-tests (datasette style) -----------------------------------------------------------


HOOKS = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("followup_")
)


def test_hookspecs_module_lists_every_hook() -> None:
    assert len(HOOKS) >= 9
    marked = [n for n in HOOKS if getattr(getattr(hookspecs, n), "followup_spec", None) is not None]
    assert marked == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc and len(doc.split()) >= 5, f"{hook} needs a docstring saying what it is for"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_named_after_it(hook: str) -> None:
    names = []
    for path in TESTS.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names += [
            n.name
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
        ]
    assert any(hook in name for name in names), f"no test function has {hook!r} in its name"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_mentioned_in_the_plugin_guide_with_its_parameters(hook: str) -> None:
    guide = TESTS.parent / "docs" / "plugins.md"
    assert guide.exists(), "docs/plugins.md (the plugin guide) is missing"
    text = guide.read_text(encoding="utf-8")
    params = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert re.search(rf"\b{hook}\(", text), f"{hook} is not in docs/plugins.md"
    for param in params:
        assert param in text, f"{hook}'s parameter {param!r} is not in docs/plugins.md"
