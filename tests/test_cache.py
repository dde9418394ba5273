"""The per-user cache (core/cache.py): a command skips the plugin check only while nothing it depends on
changed, and never trusts an entry someone else could have written."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pytest

from core import cache
from core.config import load_config
from core.plugins import reset_plugins
from core.yamlfile import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("FOLLOWUP_CACHE_DIR", str(folder))
    reset_plugins()  # the check is cached only in a process that has not loaded the plugins yet
    yield folder
    reset_plugins()


def _no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("the plugins were loaded although the check was cached")

    monkeypatch.setattr("core.plugins.build_plugins", refuse)


def test_a_passed_check_is_not_redone_while_nothing_changed(cached: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    chain = Path(shutil.copytree(ROOT / "config", tmp_path / "config")) / "chain.yaml"
    first = load_config(chain)
    assert len(list(cached.glob("config-check-*.json"))) == 1
    reset_plugins()
    _no_plugins(monkeypatch)
    second = load_config(chain)
    assert list(map(repr, second.warnings)) == list(map(repr, first.warnings)) and first.warnings
    assert list(second.sites) == list(first.sites)


def test_an_edited_site_file_is_checked_again(cached: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    load_config(folder / "chain.yaml")
    reset_plugins()
    site = folder / "sites" / "sh-dent.yaml"
    text = site.read_text(encoding="utf-8")
    assert "specialties: [dental]" in text
    site.write_text(text.replace("specialties: [dental]", "specialties: [dentall]", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="specialty 'dentall' is not installed"):
        load_config(folder / "chain.yaml")


def test_an_entry_others_could_write_or_a_broken_one_is_ignored(cached: Path) -> None:
    cache.put("probe", ["k"], {"answer": 42})
    assert cache.get("probe", ["k"]) == {"answer": 42}
    assert cache.get("probe", ["other key"]) is None
    [entry] = cached.glob("probe-*.json")
    os.chmod(entry, 0o666)
    assert cache.get("probe", ["k"]) is None
    os.chmod(entry, 0o600)
    entry.write_text("{not json", encoding="utf-8")
    assert cache.get("probe", ["k"]) is None
    os.chmod(cached, 0o777)
    cache.put("probe", ["k"], 1)
    assert cache.get("probe", ["k"]) is None  # a folder anyone can write to is not used at all


def test_the_cache_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_CACHE_DIR", "off")
    cache.put("probe", ["k"], 1)
    assert cache.get("probe", ["k"]) is None


# -- validated objects: signed pickles -------------------------------------------------------------------


def test_an_object_entry_is_read_only_with_this_users_signature(cached: Path) -> None:
    cache.put_object("probe", ["k"], {"answer": [42]})
    assert cache.get_object("probe", ["k"]) == {"answer": [42]}
    [entry] = cached.glob("probe-*.pickle")
    secret = cached / cache.SECRET
    assert oct(secret.stat().st_mode & 0o777) == "0o600" and oct(entry.stat().st_mode & 0o777) == "0o600"
    data = entry.read_bytes()
    entry.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit of the pickle changed
    assert cache.get_object("probe", ["k"]) is None
    entry.write_bytes(data)
    assert cache.get_object("probe", ["k"]) == {"answer": [42]}
    secret.write_bytes(os.urandom(32))  # signed by someone else (another user's or machine's secret)
    assert cache.get_object("probe", ["k"]) is None
    cache.put_object("probe", ["k"], "again")
    assert cache.get_object("probe", ["k"]) == "again"
    os.chmod(secret, 0o644)  # a secret others can read signs nothing
    assert cache.get_object("probe", ["k"]) is None


def test_a_planted_pickle_is_never_unpickled(cached: Path, tmp_path: Path) -> None:
    import pickle

    cache.put_object("probe", ["k"], 1)
    [entry] = cached.glob("probe-*.pickle")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (marker.write_text, ("pwned",))

    entry.write_bytes(os.urandom(32) + pickle.dumps(Payload()))
    assert cache.get_object("probe", ["k"]) is None and not marker.exists()


def test_the_configuration_comes_back_validated_and_follows_its_files(cached: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    first = load_config(folder / "chain.yaml")
    assert len(list(cached.glob("config-*.pickle"))) == 1
    reset_plugins()
    _no_plugins(monkeypatch)
    monkeypatch.setattr("core.config._load_config", lambda path: (_ for _ in ()).throw(AssertionError("parsed")))
    second = load_config(folder / "chain.yaml")  # neither YAML nor pydantic: the cached result
    assert second.model == first.model and list(second.sites) == list(first.sites)
    assert second.sites["SH-DENT"].calendar(second).is_working_day(date(2026, 10, 1)) is False  # kept: no plugins
    monkeypatch.undo()
    reset_plugins()
    site = folder / "sites" / "sh-dent.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace("name:", "name_typo:", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="sh-dent.yaml"):  # an edited site file is read again
        load_config(folder / "chain.yaml")
    shutil.copy(ROOT / "config" / "sites" / "sh-dent.yaml", site)
    (folder / "sites" / "zz-new.yaml").write_text(
        (ROOT / "config" / "sites" / "sh-dent.yaml").read_text(encoding="utf-8").replace("SH-DENT", "ZZ-NEW"),
        encoding="utf-8")
    assert "ZZ-NEW" in load_config(folder / "chain.yaml").sites  # a site file added: read again


def test_names_and_catalogue_from_the_cache_equal_the_plugins(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.plugins import LazyPlugins, get_plugins
    from core.words import Names

    real = get_plugins()
    expected = {(s, p.code): [(n, m.key, m.names.get("zh_CN")) for n, m in real.milestones(s, p.code)]
                for s, (_, spec) in real.specialties().items() for p in spec.procedures}
    lazy = LazyPlugins()
    assert lazy.specialties() == real.specialties()  # built once from the plugins, then stored
    reset_plugins()
    _no_plugins(monkeypatch)
    lazy = LazyPlugins()
    got = {(s, p.code): [(n, m.key, m.names.get("zh_CN")) for n, m in lazy.milestones(s, p.code)]
           for s, (_, spec) in lazy.specialties().items() for p in spec.procedures}
    assert got == expected
    monkeypatch.undo()
    reset_plugins()
    Names(LazyPlugins(), "en").specialty("dental")  # builds the table from the plugins the first time
    reset_plugins()
    _no_plugins(monkeypatch)
    zh, en = Names(LazyPlugins(), "zh_CN"), Names(LazyPlugins(), "en")
    assert zh.specialty("dental") == real.specialty("dental").names.get("zh_CN") != en.specialty("dental")
    assert zh.milestone("dental", "implant", "check_24h") == dict(
        (m.key, m.names.get("zh_CN")) for _, m in real.milestones("dental", "implant"))["check_24h"]


EPISODE_HEADER = ["episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at", "doctor",
                  "department", "diagnosis"]


def _scripts(cli, url: str) -> dict[tuple[str, str], str]:  # type: ignore[no-untyped-def]
    """Every open call's script, in both locales (the call card and the script), by patient and locale."""
    import json

    out = {}
    for patient in ("D1", "R1", "H1"):
        listed = json.loads(cli("tasks", "--patient", patient, "--format", "json", db=url).output)
        task = next(t["id"] for t in listed if t["status"] == "open")
        for locale in ("zh_CN", "en"):
            out[(patient, locale)] = cli("script", str(task), "--locale", locale, db=url,
                                         now="2026-11-23T10:05+08:00", user="admin").output
    return out


def test_a_call_script_from_the_cache_equals_the_plugins_own(cached: Path, cli, db_url: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``followup script`` takes each milestone's questions, aftercare and the template folders from the
    cache, and the salutation and the script from core alone: the same text, without loading the plugins."""
    from clinic_data import seed

    seed(cli, tmp_path, db_url, [
        ["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
        ["R1", "李娜", "F", "1995-06-01", "13812345602", "SH-AES"],
        ["H1", "刘建国", "M", "1948-03-02", "13612345699", "BJ-HOSP"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远", "种植科", "下颌后牙缺失"],
        ["R1E", "R1", "SH-AES", "aesthetic", "rhinoplasty", "2026-11-20T09:00", "周敏", "整形外科", ""],
        ["H1E", "H1", "BJ-HOSP", "inpatient", "discharge", "2026-11-17T07:30", "王建华", "心内科", "冠心病"],
    ], episode_header=EPISODE_HEADER)
    expected = _scripts(cli, db_url)  # the plugins loaded (by the commands above): they answer
    assert "(D1)" in expected[("D1", "zh_CN")] and expected[("D1", "zh_CN")] != expected[("D1", "en")]
    reset_plugins()
    assert _scripts(cli, db_url) == expected  # the first time without them: made from the plugins and kept
    assert list(cached.glob("script-content-*.pickle"))
    reset_plugins()
    _no_plugins(monkeypatch)
    assert _scripts(cli, db_url) == expected


def test_aftercare_for_a_changed_milestone_is_asked_of_the_plugins(cached: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache answers for a milestone as the protocol gives it; a task's own copy with another offset (a
    rescheduled review) may be due other aftercare points, so the plugins are asked."""
    from core.plugins import LazyPlugins, get_plugins
    from core.protocol import Duration

    real = get_plugins()
    milestones = {m.key: m for _, m in real.milestones("aesthetic", "rhinoplasty")}
    reset_plugins()
    LazyPlugins().questions("aesthetic", "rhinoplasty", "dressing_change")  # fills the cache
    reset_plugins()
    _no_plugins(monkeypatch)
    lazy = LazyPlugins()
    for key, milestone in milestones.items():
        for locale in ("zh_CN", "en"):
            assert lazy.aftercare("aesthetic", "rhinoplasty", locale, milestone) == real.aftercare(
                "aesthetic", "rhinoplasty", locale, milestone)
        assert lazy.questions("aesthetic", "rhinoplasty", key) == real.questions("aesthetic", "rhinoplasty", key)
    first = next(iter(milestones.values()))
    moved = first.model_copy(update={"offset": Duration.parse("200d")})
    with pytest.raises(AssertionError, match="the plugins were loaded"):
        lazy.aftercare("aesthetic", "rhinoplasty", "en", moved)
    monkeypatch.undo()
    assert LazyPlugins().aftercare("aesthetic", "rhinoplasty", "en", moved) == real.aftercare(
        "aesthetic", "rhinoplasty", "en", moved)


def test_a_plugin_failing_for_the_script_is_still_named_and_nothing_is_kept(cached: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin whose template folders are garbage: the script's data is not kept, and the error still names
    the plugin where the script asks for the folders."""
    from core import hookimpl
    from core.plugins import LazyPlugins, PluginError, build_plugins

    class Broken:
        @hookimpl
        def followup_template_dirs(self) -> object:
            return 42

    def with_broken(strict: bool | None = None):  # type: ignore[no-untyped-def]
        plugins = build_plugins(strict)
        plugins.register(Broken(), "broken_templates")
        return plugins

    monkeypatch.setattr("core.plugins.build_plugins", with_broken)
    lazy = LazyPlugins()
    assert "pain_level" in lazy.questions("dental", "implant", "check_24h")
    with pytest.raises(PluginError, match="plugin 'broken_templates', hook followup_template_dirs"):
        lazy.template_dirs()
    assert not list(cached.glob("script-content-*"))


def test_entries_not_written_for_a_month_go_when_their_kind_is_written(cached: Path) -> None:
    """The keys hold the day, so a new catalogue is kept every day: the old ones of the same kind go when a
    new one is written; recent ones, other kinds and the secret stay."""
    import time

    cache.put("names", ["yesterday"], {"a": 1})
    cache.put_object("catalogue", ["yesterday"], {"b": 2})
    cache.put("config-check", ["old"], [])
    old = time.time() - (cache.KEEP_DAYS + 1) * 86400
    names, catalogue, check = (next(cached.glob(f"{kind}-*")) for kind in ("names", "catalogue", "config-check"))
    for path in (names, catalogue, check):
        os.utime(path, (old, old))
    recent = cached / ("names-" + "0" * 32 + ".json")
    recent.write_text("{}", encoding="utf-8")
    cache.put("names", ["today"], {"a": 2})
    cache.put_object("catalogue", ["today"], {"b": 3})
    assert not names.exists() and not catalogue.exists()
    assert recent.exists() and check.exists() and (cached / ".secret").exists()
    assert cache.get("names", ["today"]) == {"a": 2} and cache.get_object("catalogue", ["today"]) == {"b": 3}


def test_a_compiled_template_follows_its_source(cached: Path, tmp_path: Path) -> None:
    from core import templates

    folder = tmp_path / "tpl" / "en"
    folder.mkdir(parents=True)
    (folder / "probe.j2").write_text("Hello {{ name }}", encoding="utf-8")
    templates._environment.cache_clear()
    assert templates.render("probe.j2", {"name": "Li"}, locale="en", dirs=[tmp_path / "tpl"]) == "Hello Li\n"
    assert list(cached.glob("template-*.bin"))
    templates._environment.cache_clear()  # a new process: the compiled template comes from the cache
    assert templates.render("probe.j2", {"name": "Li"}, locale="en", dirs=[tmp_path / "tpl"]) == "Hello Li\n"
    (folder / "probe.j2").write_text("Goodbye {{ name }}", encoding="utf-8")
    templates._environment.cache_clear()
    assert templates.render("probe.j2", {"name": "Li"}, locale="en", dirs=[tmp_path / "tpl"]) == "Goodbye Li\n"


def _install(folder: Path, name: str) -> None:
    """A distribution declaring one followup plugin, as pip lays it out in a site-packages folder."""
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[followup]\n{name} = followup_{name}:plugin\n", encoding="utf-8")


def test_a_plugin_installed_after_the_entry_points_were_kept_is_found(
    cached: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry points are kept per site-packages folders: installing a distribution changes its folder,
    so the next command reads them again and finds the new plugin."""
    from core.plugins import entry_points_found

    site = tmp_path / "site-packages"
    site.mkdir()
    _install(site, "eyes")
    monkeypatch.syspath_prepend(str(site))
    first = [ep[0] for ep in entry_points_found()]
    assert "eyes" in first and "dental" in first
    assert entry_points_found() == entry_points_found()  # read back from the cache as it was kept
    os.utime(site, ns=(1, 1))  # a folder time of its own: the next install surely changes it
    _install(site, "ears")
    again = entry_points_found()
    assert [ep[0] for ep in again] == sorted([*first, "ears"])
    assert ["ears", "followup_ears:plugin", "followup_ears", ["ears", "1.0"]] in again
