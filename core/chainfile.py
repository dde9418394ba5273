"""Where the chain configuration is, and a starter one for a new installation.

An installed ``followup`` finds its chain file, in this order: ``--config``, the
``FOLLOWUP_CONFIG`` environment variable, ``./config/chain.yaml``, then
``chain.yaml`` in the user's configuration folder (``platformdirs``: e.g.
``~/.config/followup`` on Linux). ``followup init [DIR]`` writes a starter chain.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from core.errors import FollowupError
from core.messages import os_error

APP_NAME = "followup"
LOCAL = Path("config") / "chain.yaml"


def user_config_dir() -> Path:
    """The user's configuration folder for followup (``platformdirs``)."""
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False)


def candidates() -> list[Path]:
    """Where a chain file is looked for when neither --config nor FOLLOWUP_CONFIG is given."""
    return [LOCAL, user_config_dir() / "chain.yaml"]


def find_config(option: str | Path | None) -> Path:
    """The chain file to load: the one given, else the first candidate that exists.

    When none exists the error says where it looked and how to create one.
    """
    if option:
        return Path(option)
    if LOCAL.is_file():  # the common case, without importing platformdirs
        return LOCAL
    for path in candidates():
        if path.is_file():
            return path
    raise FollowupError(key="no_chain", values={"looked": ", ".join(map(str, candidates())),
                                                "folder": user_config_dir()})


CHAIN = """\
# A starter chain written by `followup init`: edit the names, then add your sites under sites/.
# Every key is described in docs/configuration.md.
name:
  zh_CN: 我的医疗集团
  en: My Clinic Group

# A chain runs PostgreSQL, e.g. postgresql+psycopg://followup@db.internal/followup
database_url: sqlite:///{database}

defaults:
  locale: {locale}
  timezone: Asia/Shanghai
  calling_windows: ["09:00-11:30", "14:30-17:30"]
  quiet_hours: "21:00-08:00"
  holiday_country: CN
  attempt_policy:
    max_failed_attempts: 3
    min_gap: 2h
    claim_hold: 30min

holiday_notices: {{}}

staff:
  - {{username: {user}, name: {user}, role: admin, sites: [MAIN]}}

sites_dir: sites
"""

SITE = """\
code: MAIN
name:
  zh_CN: 总院
  en: Main clinic
timezone: Asia/Shanghai
locale: {locale}
specialties: [{specialties}]
"""


def write_starter(folder: Path, *, specialties: Sequence[str], user: str, locale: str = "zh_CN",
                  force: bool = False) -> list[Path]:
    """Write ``chain.yaml`` and ``sites/main.yaml`` into ``folder``; never overwrite unless ``force``."""
    chain, site = folder / "chain.yaml", folder / "sites" / "main.yaml"
    existing = [p for p in (chain, site) if p.exists()]
    if existing and not force:
        raise FollowupError(key="init_exists", values={"path": existing[0]})
    if not specialties:
        raise FollowupError(key="init_no_specialties")
    try:
        site.parent.mkdir(parents=True, exist_ok=True)
        chain.write_text(CHAIN.format(database=(folder / "followup.db").resolve().as_posix(), locale=locale,
                                      user=json.dumps(user, ensure_ascii=False)), encoding="utf-8")
        site.write_text(SITE.format(locale=locale, specialties=", ".join(specialties)), encoding="utf-8")
    except OSError as exc:
        raise FollowupError(key="init_cannot_write", values={"path": folder, "error": os_error(exc)}) from None
    return [chain, site]
