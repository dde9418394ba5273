"""A per-user cache of work that depends only on files: what a command need not redo while they stay as they are.

Every entry is a JSON file (never pickle: nothing in it is executed) holding the key it was made for; a
key lists the files its value depends on with their modification time and size, so editing, adding or
removing any of them makes a new key. Entries are read only from a folder and files owned by the user
and writable by nobody else; a missing, foreign or unreadable entry is recomputed, never an error.

Where: ``$FOLLOWUP_CACHE_DIR``, else ``$XDG_CACHE_HOME/clinic-followup``, else
``~/.cache/clinic-followup``. ``FOLLOWUP_CACHE_DIR=off`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when an entry's meaning changes


def folder() -> Path | None:
    configured = os.environ.get("FOLLOWUP_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clinic-followup"


def stamp(paths: Iterable[Path | str]) -> list[list[Any]]:
    """``[path, mtime_ns, size]`` of each file (``None`` when it does not exist): part of a key."""
    out: list[list[Any]] = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append([str(path), st.st_mtime_ns, st.st_size])
        except OSError:
            out.append([str(path), None, None])
    return out


def tree(root: Path | str, suffixes: tuple[str, ...] = (".py", ".yaml", ".yml", ".j2")) -> list[Path]:
    """Every file under ``root`` with one of ``suffixes`` (a plugin's code, catalogue and templates)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        found += [Path(dirpath, f) for f in sorted(filenames) if f.endswith(suffixes)]
    return found


def _safe(path: Path) -> bool:
    """Owned by us and writable by nobody else (a shared or planted entry is ignored)."""
    try:
        st = path.stat()
    except OSError:
        return False
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return mine and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _file(name: str, key: Any) -> tuple[Path, str] | None:
    where = folder()
    if where is None:
        return None
    text = json.dumps([FORMAT, sys.version_info[:2], key], sort_keys=True, default=_plain)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return where / f"{name}-{digest[:32]}.json", digest


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def get(name: str, key: Any) -> Any | None:
    """The value stored for ``key``, or ``None``."""
    found = _file(name, key)
    if found is None:
        return None
    path, digest = found
    if not (_safe(path.parent) and _safe(path)):
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != digest:
        return None
    return entry.get("value")


def put(name: str, key: Any, value: Any) -> None:
    """Store ``value`` (JSON) for ``key``; a cache that cannot be written is skipped silently."""
    found = _file(name, key)
    if found is None:
        return
    path, digest = found
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _safe(path.parent):
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"key": digest, "value": value}, out, ensure_ascii=False)
            os.replace(tmp, path)  # readers see the old entry or the new one, never half of one
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, TypeError, ValueError):
        return
