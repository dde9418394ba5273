"""The per-user cache (core/cache.py): a command skips the plugin check only while nothing it depends on
changed, and never trusts an entry someone else could have written."""

from __future__ import annotations

import os
import shutil
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
