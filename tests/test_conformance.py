"""Every built-in plugin passes the conformance kit that plugin authors use."""

from __future__ import annotations

import pytest

from core.testing import conformance_problems

BUILT_IN = ("dental", "aesthetic", "inpatient", "hair")
# A small third-party plugin: one procedure with one milestone, completed by each test.
EYES = """specialty: {key: eyes, names: {zh_CN: 眼科, en: Ophthalmology}}
procedures:
  - code: cataract
    names: {zh_CN: 白内障手术, en: Cataract surgery}
    milestones:
      - key: day1
        purpose: check_in
        names: {zh_CN: 术后第一天, en: Day after surgery}
        offset: 1d
        window: [1d, 2d]
"""


@pytest.mark.parametrize("name", BUILT_IN)
def test_builtin_plugin_conforms(name: str, plugins) -> None:  # type: ignore[no-untyped-def]
    assert conformance_problems(name, plugins) == []


def test_kit_reports_a_milestone_asking_an_unknown_question(tmp_path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    from core.content import ProtocolPlugin

    (tmp_path / "protocol.yaml").write_text(
        EYES
        + """        questions: [vision_clear, eye_pain]
questions:
  - {key: vision_clear, type: yes_no, text: {zh_CN: 看得清楚吗, en: "Is your vision clear?"}}
rules:
  - when: [{question: glare, op: eq, value: true}]
    action: escalate
    reason: {zh_CN: 眩光, en: Glare}
""",
        encoding="utf-8",
    )
    plugins = register_plugin(ProtocolPlugin("eyes", root=tmp_path), "eyes")
    problems = conformance_problems("eyes", plugins)
    assert any("eye_pain" in p for p in problems), problems
    assert any("glare" in p for p in problems), problems


def test_kit_reports_a_script_written_in_english_only(tmp_path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    """Rendering falls back to en, so only the kit can tell a Chinese patient would hear English."""
    from core.content import ProtocolPlugin

    (tmp_path / "protocol.yaml").write_text(EYES + "        script: eyes/call.j2\n", encoding="utf-8")
    script = tmp_path / "templates" / "en" / "eyes" / "call.j2"
    script.parent.mkdir(parents=True)
    script.write_text('{% extends "script/base.j2" %}{% block purpose %}Hello {{ salutation }}.{% endblock %}',
                      encoding="utf-8")
    plugins = register_plugin(ProtocolPlugin("eyes", root=tmp_path), "eyes")

    assert conformance_problems("eyes", plugins) == [
        f"template 'eyes/call.j2' exists only in en: write {tmp_path / 'templates' / 'zh_CN' / 'eyes' / 'call.j2'} "
        "too, or zh_CN patients hear another language"
    ]


def test_kit_reports_a_condition_on_an_attribute_nobody_imports(tmp_path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    from core.content import ProtocolPlugin

    (tmp_path / "protocol.yaml").write_text(
        EYES + "        when: {both_eyes: true}\n"
        "attributes:\n  - {key: lens, type: text, names: {zh_CN: 晶体, en: Lens}}\n",
        encoding="utf-8",
    )
    plugins = register_plugin(ProtocolPlugin("eyes", root=tmp_path), "eyes")
    assert conformance_problems("eyes", plugins) == [
        "eyes.cataract.day1: `when` tests episode attribute 'both_eyes', which no specialty declares "
        "(attributes: in protocol.yaml), so no import ever fills it"
    ]


def test_kit_reports_a_script_that_drops_the_closing(tmp_path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    """Every script ends with core's thanks and the instruction to let the patient hang up first."""
    from core.content import ProtocolPlugin

    (tmp_path / "protocol.yaml").write_text(EYES + "        script: eyes/call.j2\n", encoding="utf-8")
    for locale in ("zh_CN", "en"):
        script = tmp_path / "templates" / locale / "eyes" / "call.j2"
        script.parent.mkdir(parents=True)
        script.write_text("Hello {{ salutation }}. Goodbye, please hang up first.", encoding="utf-8")
    plugins = register_plugin(ProtocolPlugin("eyes", root=tmp_path), "eyes")
    problems = conformance_problems("eyes", plugins)
    assert problems and all("hang-up instruction" in p for p in problems), problems


RED_FLAG_EYES = EYES + """        questions: [eye_pain]
questions:
  - key: eye_pain
    type: choice
    text: {zh_CN: 眼睛疼吗, en: "Does the eye hurt?"}
    choices:
      - {value: none, labels: {zh_CN: 不疼, en: not at all}}
      - {value: severe, labels: {zh_CN: 疼得厉害或越来越疼, en: badly or getting worse}}
    red_flag: {value: severe}
rules:
  - when: [{question: eye_pain, op: eq, value: severe, min_days: 3}]
    action: escalate
    reason: {zh_CN: 眼痛加重, en: Eye pain getting worse}
"""


def test_kit_reports_a_red_flag_no_rule_escalates(tmp_path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    """Dental day 1 as it was: the script says 'to the doctor at once', the rule waits until day 3."""
    from core.content import ProtocolPlugin

    (tmp_path / "protocol.yaml").write_text(RED_FLAG_EYES, encoding="utf-8")
    plugins = register_plugin(ProtocolPlugin("eyes", root=tmp_path), "eyes")
    problems = conformance_problems("eyes", plugins)
    assert len(problems) == 1, problems
    assert "eye_pain='severe'" in problems[0] and "no rule escalates it 1, 2 day(s) after" in problems[0]


def test_kit_accepts_a_red_flag_that_a_rule_escalates(tmp_path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    from core.content import ProtocolPlugin

    (tmp_path / "protocol.yaml").write_text(RED_FLAG_EYES.replace(", min_days: 3}]", "}]"), encoding="utf-8")
    plugins = register_plugin(ProtocolPlugin("eyes", root=tmp_path), "eyes")
    assert conformance_problems("eyes", plugins) == []


def test_kit_reports_a_closing_that_reads_the_hang_up_instruction_aloud(tmp_path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    """'Goodbye! (wait for them to hang up first)' in the farewell: core's closing says it, once, not read aloud."""
    from core.content import ProtocolPlugin

    (tmp_path / "protocol.yaml").write_text(EYES + "        script: eyes/call.j2\n", encoding="utf-8")
    farewells = {"zh_CN": "再见！（请等对方先挂电话）", "en": "Goodbye! (Wait for the patient to hang up first.)"}
    for locale, farewell in farewells.items():
        script = tmp_path / "templates" / locale / "eyes" / "call.j2"
        script.parent.mkdir(parents=True)
        script.write_text('{% extends "script/base.j2" %}{% block closing %}' + farewell + "{% endblock %}",
                          encoding="utf-8")
    plugins = register_plugin(ProtocolPlugin("eyes", root=tmp_path), "eyes")
    problems = conformance_problems("eyes", plugins)
    assert problems and all("who hangs up first before core's closing" in p for p in problems), problems


def test_kit_reports_an_optional_question_the_milestone_does_not_ask(tmp_path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    from core.content import ProtocolPlugin

    (tmp_path / "protocol.yaml").write_text(EYES + "        optional_questions: [recommend, glare]\n", encoding="utf-8")
    plugins = register_plugin(ProtocolPlugin("eyes", root=tmp_path), "eyes")
    assert conformance_problems("eyes", plugins) == [
        "eyes.cataract.day1: optional_questions names 'glare', which it does not ask"
    ]
