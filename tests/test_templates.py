"""Script templates (DESIGN.md §7): sandboxed, strict, site → plugin → core, locale with fallback to en."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.templates import TemplateRenderError, render


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    root = tmp_path / "plugin"
    write(root, "en/dental/post_op.j2", "Plugin script for {{ name }}.")
    write(root, "zh_CN/dental/post_op.j2", "插件话术：{{ name }}。")
    write(root, "en/dental/english_only.j2", "Only in English, {{ name }}.")
    return root


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    write(root, "zh_CN/dental/post_op.j2", "本店话术：{{ name }}。")
    return root


# --- strictness -------------------------------------------------------------------------


def test_missing_variable_is_an_error_naming_the_template(plugin_dir: Path) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render("dental/post_op.j2", {}, locale="en", dirs=[plugin_dir])
    message = str(info.value)
    assert message.startswith("template 'dental/post_op.j2' (en): 'name' is undefined")
    assert f"{plugin_dir / 'en' / 'dental' / 'post_op.j2'}:1" in message


def test_missing_variable_in_the_parent_template_names_the_parent(tmp_path: Path) -> None:
    write(
        tmp_path,
        "en/child.j2",
        '{% extends "script/base.j2" %}{% block purpose %}Calling {{ name }}.{% endblock %}',
    )
    with pytest.raises(TemplateRenderError) as info:
        render("child.j2", {"name": "Ms Wang"}, locale="en", dirs=[tmp_path])
    message = str(info.value)
    assert message.startswith("template 'child.j2' (en): ")
    assert "is undefined" in message
    assert "script/_greeting.j2:" in message  # core's opening, included by the base script, uses the variable


def test_missing_template_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render("dental/nowhere.j2", {}, locale="zh_CN", dirs=[tmp_path])
    message = str(info.value)
    assert "template 'dental/nowhere.j2' (zh_CN): not found" in message
    assert "core/templates/zh_CN" in message and "core/templates/en" in message


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "en/broken.j2", "Hello\n{% if name %}\nno end\n")
    with pytest.raises(TemplateRenderError) as info:
        render("broken.j2", {"name": "x"}, locale="en", dirs=[tmp_path])
    assert f"{tmp_path / 'en' / 'broken.j2'}:3" in str(info.value)


# --- sandbox ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ name.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_blocks_python_internals(tmp_path: Path, source: str) -> None:
    write(tmp_path, "en/evil.j2", source)
    with pytest.raises(
        TemplateRenderError, match=r"template 'evil.j2' \(en\): .*(unsafe|undefined)"
    ):
        render("evil.j2", {"name": "x"}, locale="en", dirs=[tmp_path])


def test_sandbox_blocks_mutating_the_variables(tmp_path: Path) -> None:
    write(tmp_path, "en/mutate.j2", "{{ items.append('x') }}")
    with pytest.raises(TemplateRenderError, match="unsafe"):
        render("mutate.j2", {"items": []}, locale="en", dirs=[tmp_path])


# --- lookup order -------------------------------------------------------------------------


def test_site_folder_overrides_plugin_template(plugin_dir: Path, site_dir: Path) -> None:
    assert (
        render("dental/post_op.j2", {"name": "王女士"}, locale="zh_CN", dirs=[site_dir, plugin_dir])
        == "本店话术：王女士。\n"
    )


def test_plugin_template_is_used_where_the_site_has_none(plugin_dir: Path, site_dir: Path) -> None:
    assert render(
        "dental/post_op.j2", {"name": "Ms Wang"}, locale="en", dirs=[site_dir, plugin_dir]
    ) == ("Plugin script for Ms Wang.\n")


def test_plugin_folder_overrides_core_template(tmp_path: Path) -> None:
    write(tmp_path, "en/script/base.j2", "A plugin's own base for {{ name }}.")
    assert (
        render("script/base.j2", {"name": "Ms Wang"}, locale="en", dirs=[tmp_path])
        == "A plugin's own base for Ms Wang.\n"
    )


def test_locale_falls_back_to_english(plugin_dir: Path) -> None:
    assert render(
        "dental/english_only.j2", {"name": "王女士"}, locale="zh_CN", dirs=[plugin_dir]
    ) == ("Only in English, 王女士.\n")


def test_unknown_locale_falls_back_to_english(plugin_dir: Path) -> None:
    assert (
        render("dental/post_op.j2", {"name": "M. Wang"}, locale="fr", dirs=[plugin_dir])
        == "Plugin script for M. Wang.\n"
    )


def test_the_patients_language_wins_over_an_english_site_override(
    plugin_dir: Path, tmp_path: Path
) -> None:
    # A site that only rewrote the English script must not make Chinese patients hear English.
    site = write(tmp_path / "en_site", "en/dental/post_op.j2", "Site English for {{ name }}.")
    assert (
        render("dental/post_op.j2", {"name": "王女士"}, locale="zh_CN", dirs=[site, plugin_dir])
        == "插件话术：王女士。\n"
    )
    assert render(
        "dental/post_op.j2", {"name": "Ms Wang"}, locale="en", dirs=[site, plugin_dir]
    ) == ("Site English for Ms Wang.\n")


def test_edited_template_is_picked_up(tmp_path: Path) -> None:
    write(tmp_path, "en/note.j2", "first")
    assert render("note.j2", {}, locale="en", dirs=[tmp_path]) == "first\n"
    path = tmp_path / "en" / "note.j2"
    path.write_text("second version", encoding="utf-8")
    import os

    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 10))  # a later mtime, without sleeping
    assert render("note.j2", {}, locale="en", dirs=[tmp_path]) == "second version\n"


# --- escaping and layout -----------------------------------------------------------------------


def test_call_scripts_are_plain_text_not_html_escaped(tmp_path: Path) -> None:
    write(tmp_path, "en/script.j2", "Dr {{ doctor }}")
    assert (
        render("script.j2", {"doctor": "Li & Wang <ENT>"}, locale="en", dirs=[tmp_path])
        == "Dr Li & Wang <ENT>\n"
    )


@pytest.mark.parametrize("name", ["report.html", "report.html.j2"])
def test_html_templates_are_escaped(tmp_path: Path, name: str) -> None:
    write(tmp_path, f"en/{name}", "<p>{{ note }}</p>")
    assert render(name, {"note": "<script>alert(1)</script>"}, locale="en", dirs=[tmp_path]) == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )


def test_blank_lines_left_by_skipped_blocks_collapse(tmp_path: Path) -> None:
    write(
        tmp_path, "en/gaps.j2", "one\n{% if false %}\nhidden\n{% endif %}\n\n\n\ntwo\n   \nthree\n"
    )
    assert render("gaps.j2", {}, locale="en", dirs=[tmp_path]) == "one\n\ntwo\n\nthree\n"


def test_core_base_script_renders_in_both_locales() -> None:
    from core.scripts import HANG_UP, earlier_attempts

    variables = {
        "salutation": "王奶奶",
        "coordinator": "张丽",
        "clinic": "康华口腔",
        "clinic_phone": "021-6255-8800",
        "patient": {"name": "王秀英", "age_band": "elderly", "minor": False},
        "procedure": {"name": "拔牙"},
        "milestone": {"name": "一周回访"},
        "days_since": 7,
        "ago": "7天前",
        "questions": [{"text": "还疼吗？", "hint": "0–10", "optional": False, "red_flag": None}],
        "satisfaction_asked": False,
        "aftercare": ["24小时内不要漱口"],
        "failed_attempts": 2,
        "earlier_attempts": earlier_attempts([{"outcome": "no_answer"}, {"outcome": "busy"}]),
        "doctor": "李医生",
        "doctor_name": "李明",
        "hang_up": "",
    }
    for locale in ("zh_CN", "en"):
        try:
            text = render("script/base.j2", {**variables, "hang_up": HANG_UP[locale]}, locale=locale)
        except TemplateRenderError as exc:  # pragma: no cover - shows which variable the base needs
            pytest.fail(str(exc))
        assert "王奶奶" in text and "李明" in text and "24小时内不要漱口" in text
