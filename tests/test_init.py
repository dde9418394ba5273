"""An installed CLI finds its chain: --config, FOLLOWUP_CONFIG, ./config/chain.yaml, the user's config folder."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``followup`` from an empty folder, with a user config folder of its own."""
    from click.testing import CliRunner

    from core.cli.main import cli as group

    work, home = tmp_path / "work", tmp_path / "userconf"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr("core.chainfile.user_config_dir", lambda: home)
    for var in ("FOLLOWUP_CONFIG", "FOLLOWUP_DATABASE_URL", "FOLLOWUP_NOW", "FOLLOWUP_USER"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(group, ["--as", "admin", *args], env=env, catch_exceptions=False)

    run.home = home  # type: ignore[attr-defined]
    return run


def test_without_a_chain_the_error_says_how_to_create_one(outside) -> None:  # type: ignore[no-untyped-def]
    result = outside("config", "check")
    assert result.exit_code == 1
    assert "followup init" in result.output and "--config" in result.output and "FOLLOWUP_CONFIG" in result.output
    assert "Traceback" not in result.output


def test_init_writes_a_chain_in_the_user_folder_that_is_found_without_options(outside) -> None:  # type: ignore[no-untyped-def]
    made = outside("init")
    assert made.exit_code == 0, made.output
    assert (outside.home / "chain.yaml").is_file() and (outside.home / "sites" / "main.yaml").is_file()
    checked = outside("config", "check")
    assert checked.exit_code == 0, checked.output
    assert "MAIN" in checked.output and str(outside.home / "chain.yaml") in checked.output
    again = outside("init")  # never overwritten by accident
    assert again.exit_code == 1 and "--force" in again.output


def test_init_dir_says_how_to_point_at_it_and_env_and_option_find_it(outside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "chain"
    made = outside("init", str(target), "--locale", "en")
    assert made.exit_code == 0 and "--config" in made.output and "FOLLOWUP_CONFIG" in made.output
    assert outside("config", "check").exit_code == 1  # not in a searched place
    by_option = outside("--config", str(target / "chain.yaml"), "config", "check")
    by_env = outside("config", "check", env={"FOLLOWUP_CONFIG": str(target / "chain.yaml")})
    assert by_option.exit_code == 0 and by_env.exit_code == 0 and "Main clinic" in by_option.output


def test_local_config_folder_comes_before_the_user_folder(outside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outside("init")
    outside("init", "config", "--locale", "en")  # ./config/chain.yaml, in the working folder
    checked = outside("config", "check")
    assert checked.exit_code == 0 and "config/chain.yaml" in checked.output
    assert str(outside.home) not in checked.output


def test_the_package_metadata_causes_no_setuptools_warning() -> None:
    """A quiet install: the license is an SPDX string (a TOML table is deprecated), platformdirs is declared."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert isinstance(project["project"]["license"], str)
    assert any(d.startswith("platformdirs") for d in project["project"]["dependencies"])
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])


def test_before_any_chain_exists_a_chinese_system_reads_the_error_in_chinese(outside) -> None:  # type: ignore[no-untyped-def]
    chinese = outside("config", "check", env={"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""})
    assert chinese.exit_code == 1 and chinese.output.startswith("错误：找不到集团配置")
    assert "followup init" in chinese.output
    english = outside("config", "check", env={"LANG": "C.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""})
    assert english.output.startswith("Error: no chain configuration found")
