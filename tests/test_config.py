"""Clinic configuration (DESIGN.md §4): every error names the file, the line and the key.

Each test copies the demo chain in ``config/`` to a temporary folder, breaks one
thing, and checks what the user is told. Specialties are checked against tiny
test plugins (``tests/data/plugins``) so these tests do not depend on the
shipped plugins' content.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from core.config import ChainConfig, TimeRange, check_against_plugins, load_config
from core.content import ProtocolPlugin
from core.general import CorePlugin
from core.plugins import Plugins
from core.protocol import Duration, Milestone, Window
from core.yamlfile import ConfigError, load_located

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SPECIALTIES = ("aesthetic", "dental", "hair", "inpatient")


def mini_plugins() -> Plugins:
    plugins = Plugins()
    plugins.register(CorePlugin(), "core")
    for name in SPECIALTIES:
        plugins.register(ProtocolPlugin(f"test_{name}", root=DATA / "plugins" / name), name)
    return plugins


# A site override of the rhinoplasty splint call, as a site could write one: the override tests edit it.
# (The demo's SH-AES moves the removal day with ``events:`` instead; the call follows that.)
SPLINT_OVERRIDE = """overrides:
  - milestone: aesthetic.rhinoplasty.splint_removal
    offset: 5d
    window: [4d, 6d]
    note: splint removed on day 5 at this site
"""


@pytest.fixture
def chain_dir(tmp_path: Path) -> Path:
    found = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    site = found / "sites" / "sh-aes.yaml"
    text = site.read_text(encoding="utf-8")
    text = text[:text.index("events:")] + SPLINT_OVERRIDE  # the override tests edit an override, not events
    site.write_text(text, encoding="utf-8")
    return found


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def load(chain_dir: Path) -> ChainConfig:
    config = load_config(chain_dir / "chain.yaml", check_plugins=False)
    check_against_plugins(config, mini_plugins())
    return config


def problem(chain_dir: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load(chain_dir)
    return str(info.value)


def sh_aes_rhinoplasty(config: ChainConfig, plugins: Plugins) -> tuple[list[Milestone], list[Milestone]]:
    """The plugin's rhinoplasty milestones, and the same after SH-AES's overrides."""
    original = [m for _, m in plugins.milestones("aesthetic", "rhinoplasty")]
    return original, config.site("SH-AES").apply_overrides("aesthetic", "rhinoplasty", original)


def line_of(path: Path, text: str) -> int:
    return next(
        i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line
    )


# --- the demo chain ----------------------------------------------------------------------


def test_demo_chain_loads_with_three_sites(chain_dir: Path) -> None:
    config = load(chain_dir)
    assert sorted(config.sites) == ["BJ-HOSP", "SH-AES", "SH-DENT"]
    dent = config.site("SH-DENT")
    assert [str(w) for w in dent.calling_windows] == ["10:00-11:30", "15:30-17:00"]
    assert dent.closed_days == [date(2026, 12, 31)]
    aes = config.site("SH-AES")
    assert str(aes.timezone) == "Asia/Shanghai"  # the chain default
    assert [str(w) for w in aes.calling_windows] == ["09:00-11:30", "14:30-17:30"]
    assert str(aes.quiet_hours) == "21:00-08:00"
    assert aes.max_failed_attempts == 3


def test_a_site_override_moves_one_milestone(chain_dir: Path) -> None:
    original, effective = sh_aes_rhinoplasty(load(chain_dir), mini_plugins())
    splint = next(m for m in effective if m.key == "splint_removal")
    assert splint.offset == Duration.parse("5d")
    assert splint.window == Window.model_validate(["4d", "6d"])
    assert [m.key for m in effective] == [m.key for m in original]  # nothing else touched
    assert next(m for m in original if m.key == "splint_removal").offset == Duration.parse("3d")


def test_demo_chain_loads_with_the_installed_plugins(
    request: pytest.FixtureRequest, plugins: Plugins
) -> None:
    failed = [f"{p.name}: {p.error}" for p in plugins.failed()]
    assert not failed, "shipped plugins failed to load: " + "; ".join(failed)
    _, effective = sh_aes_rhinoplasty(request.getfixturevalue("config"), plugins)
    splint = next(m for m in effective if m.key == "splint_removal")
    # SH-AES takes the splint off on day 5: the day-3 call reminds the patient of it (seed 002).
    assert (splint.offset, splint.before, splint.event_at) == (Duration.parse("3d"), "splint_removal",
                                                               Duration.parse("5d"))


def test_unknown_site_code_suggests_the_close_one(chain_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown site 'SH-DNT' — did you mean 'SH-DENT'"):
        load(chain_dir).site("SH-DNT")


def test_holiday_notices_reach_the_site_calendar(chain_dir: Path) -> None:
    edit(
        chain_dir / "chain.yaml",
        "holiday_notices: {}",
        "holiday_notices:\n  2027:\n    holidays: [2027-06-15]\n    workdays: [2027-06-13]",
    )
    calendar = load(chain_dir).site("SH-AES").calendar(load(chain_dir))
    assert not calendar.is_working_day(date(2027, 6, 15))  # a Tuesday, off by notice
    assert calendar.is_working_day(date(2027, 6, 13))  # a Sunday, worked by notice
    assert calendar.is_published(date(2027, 6, 15))


def test_site_closed_days_reach_the_site_calendar(chain_dir: Path) -> None:
    config = load(chain_dir)
    assert not config.site("SH-DENT").calendar(config).is_working_day(date(2026, 12, 31))
    assert config.site("SH-AES").calendar(config).is_working_day(date(2026, 12, 31))


# --- typos and unknown values -------------------------------------------------------------


def test_misspelt_key_suggests_specialties(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-dent.yaml"
    edit(site, "specialties:", "specialities:")
    message = problem(chain_dir)
    assert (
        f"{site}:{line_of(site, 'specialities')}: specialities: unknown key 'specialities'"
        in message
    )
    assert "did you mean 'specialties'?" in message


def test_misspelt_specialty_suggests_dental_and_lists_installed(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-dent.yaml"
    edit(site, "specialties: [dental]", "specialties: [dentl]")
    message = problem(chain_dir)
    assert f"{site}:{line_of(site, 'dentl')}: sites.SH-DENT.specialties" in message
    assert "specialty 'dentl' is not installed — did you mean 'dental'?" in message
    assert "(installed: aesthetic, dental, hair, inpatient)" in message


def test_misspelt_key_in_an_inline_site_names_its_path(chain_dir: Path) -> None:
    chain = chain_dir / "chain.yaml"
    shutil.rmtree(chain_dir / "sites")
    edit(
        chain,
        "sites_dir: sites",
        (
            "sites:\n"
            "  - code: GZ-DENT\n"
            "    name: {zh_CN: 广州口腔, en: Guangzhou Dental}\n"
            "    specialties: [dental]\n"
            "    closed_day: [2026-12-31]\n"
        ),
    )
    message = problem(chain_dir)
    assert (
        f"{chain}:{line_of(chain, 'closed_day')}: sites.0.closed_day: unknown key 'closed_day'"
        in message
    )
    assert "did you mean 'closed_days'?" in message


def test_unknown_timezone_in_chain_defaults_names_the_key(chain_dir: Path) -> None:
    chain = chain_dir / "chain.yaml"
    edit(chain, "timezone: Asia/Shanghai", "timezone: Asia/Shanghia")
    message = problem(chain_dir)
    assert f"{chain}:{line_of(chain, 'Shanghia')}: defaults.timezone" in message
    assert "unknown timezone 'Asia/Shanghia'" in message


def test_unknown_timezone_in_a_site_names_the_site_file(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "bj-hosp.yaml"
    edit(site, "timezone: Asia/Shanghai", "timezone: Beijing")
    assert (
        f"{site}:{line_of(site, 'Beijing')}: timezone: unknown timezone 'Beijing'"
        in problem(chain_dir)
    )


def test_impossible_calling_window_is_rejected(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-dent.yaml"
    edit(site, '"15:30-17:00"', '"15:30-17:60"')
    message = problem(chain_dir)
    assert f"{site}:{line_of(site, '17:60')}: calling_windows.1" in message
    assert "invalid time range '15:30-17:60'" in message


def test_bare_number_offset_asks_for_a_unit(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-aes.yaml"
    edit(site, "offset: 5d", "offset: 5")
    message = problem(chain_dir)
    assert f"{site}:{line_of(site, 'offset: 5')}: overrides.0.offset" in message
    assert "add a unit, e.g. '5d'" in message


# --- YAML syntax ---------------------------------------------------------------------------


def test_tab_indentation_names_the_line(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-dent.yaml"
    edit(site, "locale: zh_CN\n", "locale: zh_CN\n\tclosed_days: []\n")
    message = problem(chain_dir)
    assert f"{site}:{line_of(site, 'closed_days: []')}: invalid YAML" in message


def test_stray_colon_names_the_line(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "bj-hosp.yaml"
    edit(site, "locale: zh_CN", "locale: zh_CN: en")
    message = problem(chain_dir)
    assert (
        f"{site}:{line_of(site, 'zh_CN: en')}: invalid YAML: mapping values are not allowed here"
        in message
    )


def test_a_date_that_does_not_exist_names_the_line(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-dent.yaml"
    edit(site, "closed_days: [2026-12-31]", "closed_days: [2026-02-30]")
    message = problem(chain_dir)
    assert f"{site}:{line_of(site, '2026-02-30')}: '2026-02-30': invalid value: day is out of range" in message

def test_missing_chain_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="chain.yaml: file not found"):
        load_config(tmp_path / "chain.yaml", check_plugins=False)


def test_empty_chain_file_says_it_is_empty(chain_dir: Path) -> None:
    chain = chain_dir / "chain.yaml"
    chain.write_text("# nothing yet\n", encoding="utf-8")
    message = problem(chain_dir)
    assert f"{chain}:1: the chain file is empty" in message


def test_chain_file_that_is_a_list_is_rejected(chain_dir: Path) -> None:
    (chain_dir / "chain.yaml").write_text("- a\n- b\n", encoding="utf-8")
    assert "must be a mapping" in problem(chain_dir)


def test_chain_without_sites_says_where_sites_go(chain_dir: Path) -> None:
    shutil.rmtree(chain_dir / "sites")
    assert "sites: no sites defined" in problem(chain_dir)


# --- sites and overrides --------------------------------------------------------------------


def test_duplicate_site_code_names_both_files(chain_dir: Path) -> None:
    edit(chain_dir / "sites" / "bj-hosp.yaml", "code: BJ-HOSP", "code: SH-DENT")
    message = problem(chain_dir)
    assert "site 'SH-DENT' is defined twice" in message
    assert f"{chain_dir / 'sites' / 'bj-hosp.yaml'}:1" in message
    assert f"{chain_dir / 'sites' / 'sh-dent.yaml'}:1" in message


def test_override_of_unknown_milestone_suggests_the_near_one(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-aes.yaml"
    edit(site, "aesthetic.rhinoplasty.splint_removal", "aesthetic.rhinoplasty.splint_remove")
    message = problem(chain_dir)
    assert f"{site}:{line_of(site, 'splint_remove')}: sites.SH-AES.overrides" in message
    assert "no milestone 'splint_remove' — did you mean 'splint_removal'?" in message


def test_override_of_unknown_procedure_suggests_the_near_one(chain_dir: Path) -> None:
    edit(chain_dir / "sites" / "sh-aes.yaml", "aesthetic.rhinoplasty.", "aesthetic.rhinoplasti.")
    assert "no procedure 'rhinoplasti' in aesthetic — did you mean 'rhinoplasty'?" in problem(
        chain_dir
    )


def test_override_of_a_specialty_the_site_does_not_enable(chain_dir: Path) -> None:
    edit(chain_dir / "sites" / "sh-aes.yaml", "aesthetic.rhinoplasty.", "dental.rhinoplasty.")
    assert "specialty 'dental' is not enabled at this site" in problem(chain_dir)


def test_override_offset_outside_the_window_is_rejected(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-aes.yaml"
    edit(site, "offset: 5d", "offset: 15d")
    message = problem(chain_dir)
    assert (
        f"{site}:{line_of(site, 'aesthetic.rhinoplasty.splint_removal')}: sites.SH-AES.overrides"
        in message
    )
    assert "offset 15d lies outside its window [4d, 6d]" in message


def test_override_window_alone_must_still_hold_the_plugin_offset(chain_dir: Path) -> None:
    # Without its own offset the override keeps the plugin's day 3, outside a [4d, 6d] window.
    edit(chain_dir / "sites" / "sh-aes.yaml", "    offset: 5d\n", "")
    assert "offset 3d lies outside its window [4d, 6d]" in problem(chain_dir)


def test_override_window_earliest_after_latest_is_rejected(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-aes.yaml"
    edit(site, "window: [4d, 6d]", "window: [6d, 4d]")
    message = problem(chain_dir)
    assert f"{site}:{line_of(site, 'window: [6d, 4d]')}: overrides.0.window" in message
    assert "window earliest 6d is after latest 4d" in message


def test_disabled_override_drops_the_milestone(chain_dir: Path) -> None:
    edit(chain_dir / "sites" / "sh-aes.yaml", "    note:", "    disabled: true\n    note:")
    original, effective = sh_aes_rhinoplasty(load(chain_dir), mini_plugins())
    assert "splint_removal" not in [m.key for m in effective]
    assert len(effective) == len(original) - 1


def test_the_same_milestone_overridden_twice_is_an_error(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-aes.yaml"
    edit(
        site,
        "    note: splint removed on day 5 at this site\n",
        (
            "    note: splint removed on day 5 at this site\n"
            "  - milestone: aesthetic.rhinoplasty.splint_removal\n"
            "    disabled: true\n"
        ),
    )
    message = problem(chain_dir)
    assert "aesthetic.rhinoplasty.splint_removal is overridden twice" in message
    assert f"{site}:{line_of(site, 'disabled: true') - 1}" in message


# --- the located YAML loader ------------------------------------------------------------------


def test_located_yaml_knows_the_line_of_every_key(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b: 1\n  c:\n    - x\n    - y\n", encoding="utf-8")
    located = load_located(path)
    assert located.line_of(("a", "b")) == 2
    assert located.line_of(("a", "c", 1)) == 5
    assert located.line_of(("a", "missing")) == 1  # nearest located parent


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "chain.yaml"
    path.write_bytes("name: 康华".encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_located(path)


def test_time_range_may_wrap_midnight() -> None:
    quiet = TimeRange.model_validate("21:00-08:00")
    assert quiet.contains(TimeRange.model_validate("23:00-23:30").start)
    assert not quiet.contains(TimeRange.model_validate("12:00-13:00").start)


def test_a_key_written_twice_is_an_error_not_silently_dropped(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-dent.yaml"
    edit(site, "closed_days: [2026-12-31]", "closed_days: [2026-12-31]\nclosed_days: [2026-10-09]")
    message = problem(chain_dir)
    assert (
        f"{site}:{line_of(site, '2026-10-09')}: closed_days: key 'closed_days' appears twice"
        in message
    )
    assert f"also on line {line_of(site, '2026-12-31')}" in message


def test_calling_window_wrapping_midnight_is_rejected(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-dent.yaml"
    edit(site, '"15:30-17:00"', '"19:00-01:00"')
    message = problem(chain_dir)
    assert f"{site}:{line_of(site, '19:00-01:00')}: calling_windows" in message
    assert "calling window 19:00-01:00 must start before it ends" in message


def test_calling_window_inside_quiet_hours_is_rejected(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "sh-dent.yaml"
    edit(site, '"15:30-17:00"', '"19:30-21:30"')
    message = problem(chain_dir)
    assert (
        f"{site}:{line_of(site, '19:30-21:30')}: calling_windows.1: calling window 19:30-21:30"
        in message
    )
    assert "overlaps the quiet hours 21:00-08:00 (site SH-DENT)" in message


def test_early_calling_window_in_chain_defaults_is_rejected_for_sites_using_it(
    chain_dir: Path,
) -> None:
    chain = chain_dir / "chain.yaml"
    edit(chain, '["09:00-11:30", "14:30-17:30"]', '["07:30-11:30", "14:30-17:30"]')
    message = problem(chain_dir)
    assert f"{chain}:{line_of(chain, '07:30-11:30')}: defaults.calling_windows.0" in message
    assert (
        "(site SH-AES)" in message and "(site SH-DENT)" not in message
    )  # SH-DENT has its own windows


def test_unknown_holiday_country_is_a_config_error_naming_the_line(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "bj-hosp.yaml"
    site.write_text(site.read_text(encoding="utf-8") + "holiday_country: XX\n", encoding="utf-8")
    message = problem(chain_dir)
    assert (
        f"{site}:{line_of(site, 'holiday_country')}: holiday_country: no working-day calendar for 'XX'"
        in message
    )
    assert "(site BJ-HOSP)" in message


def test_holiday_country_is_case_insensitive(chain_dir: Path) -> None:
    site = chain_dir / "sites" / "bj-hosp.yaml"
    site.write_text(site.read_text(encoding="utf-8") + "holiday_country: gb\n", encoding="utf-8")
    config = load(chain_dir)
    assert config.site("BJ-HOSP").holiday_country == "GB"
    assert not config.site("BJ-HOSP").calendar(config).is_working_day(date(2026, 12, 25))


def test_times_of_a_site_no_longer_configured_are_shown_in_the_chain_timezone(config) -> None:  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    assert config.timezone_of("SH-DENT") == config.sites["SH-DENT"].timezone
    # Rows of a closed site stay readable, in clinic time rather than the server's.
    assert config.timezone_of("CLOSED-2025") == ZoneInfo(config.model.defaults.timezone)
