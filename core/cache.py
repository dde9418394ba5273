"""A per-user cache of work that depends only on files: what a command need not redo while they stay as they are.

Every entry holds the key it was made for; a key lists the files its value depends on with their
modification time and size, so editing, adding or removing any of them makes a new key. Entries are
read only from a folder and files owned by the user and writable by nobody else; a missing, foreign or
unreadable entry is recomputed, never an error.

Two kinds of entry: JSON (:func:`get`, :func:`put`) for plain values, and validated objects
(:func:`get_object`, :func:`put_object`: the loaded configuration) as pickles that carry an HMAC-SHA256
made with a secret only this user can read (``.secret``, 0600, created on first use). An entry that
does not carry the right code (planted, copied from another user or machine, altered) is never
unpickled, so nothing in the cache is executed unless this user's own process wrote it.

Writing an entry removes the entries of its kind written more than 30 days before (most keys hold the
day: the folder would otherwise grow every day).

Where: ``$FOLLOWUP_CACHE_DIR``, else ``$XDG_CACHE_HOME/clinic-followup``, else
``~/.cache/clinic-followup``. ``FOLLOWUP_CACHE_DIR=off`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import sys
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


def tree(root: Path | str, suffixes: tuple[str, ...] = (".py", ".yaml", ".yml", ".j2")) -> list[str]:
    """Every file under ``root`` with one of ``suffixes`` (a plugin's code, catalogue and templates)."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(suffixes)]
    return found


# Values a command computes once: ``followup`` (core.cli.main) sets it to a dict for its process, whose
# files do not change while one command runs; ``None`` elsewhere (a test edits files between calls).
MEMO: dict[str, Any] | None = None


def _safe(path: Path) -> bool:
    """Owned by us and writable by nobody else (a shared or planted entry is ignored)."""
    try:
        st = path.stat()
    except OSError:
        return False
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return mine and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _file(name: str, key: Any, suffix: str = ".json") -> tuple[Path, str] | None:
    where = folder()
    if where is None:
        return None
    text = json.dumps([FORMAT, sys.version_info[:2], key], sort_keys=True, default=_plain)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return where / f"{name}-{digest[:32]}{suffix}", digest


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
        import tempfile  # only to write: tempfile imports shutil and random, which a read does not need

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
    _prune(path)


SECRET = ".secret"


def _secret(where: Path, create: bool) -> bytes | None:
    """This user's signing key for object entries (32 random bytes, 0600); ``None`` when unusable."""
    path = where / SECRET
    if not path.exists() and create:
        try:
            where.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(os.urandom(32))
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError:
            return None
    if not (_safe(where) and _safe(path)):
        return None
    try:
        if path.stat().st_mode & 0o077:  # readable by others: anyone could sign entries
            return None
        secret = path.read_bytes()
    except OSError:
        return None
    return secret if len(secret) == 32 else None


def _code(secret: bytes, digest: str, body: bytes) -> bytes:
    return hmac.new(secret, digest.encode() + b"\0" + body, hashlib.sha256).digest()


def get_bytes(name: str, key: Any, suffix: str = ".bin") -> bytes | None:
    """The bytes stored for ``key`` by :func:`put_bytes` and signed by this user, or ``None``."""
    found = _file(name, key, suffix)
    if found is None:
        return None
    path, digest = found
    secret = _secret(path.parent, create=False)
    if secret is None or not _safe(path):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    code, body = data[:32], data[32:]
    if len(code) != 32 or not hmac.compare_digest(code, _code(secret, digest, body)):
        return None
    return body


def put_bytes(name: str, key: Any, body: bytes, suffix: str = ".bin") -> None:
    """Store ``body`` for ``key``, signed with this user's secret; skipped silently when it cannot be."""
    found = _file(name, key, suffix)
    if found is None:
        return
    path, digest = found
    secret = _secret(path.parent, create=True)
    if secret is None:
        return
    try:
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_code(secret, digest, body) + body)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return
    _prune(path)


KEEP_DAYS = 30  # an entry of the same kind not written again for this long is removed


def _prune(written: Path) -> None:
    """After a new entry is written: the entries of its kind written more than :data:`KEEP_DAYS` ago are
    removed. Most keys hold the day, so without this the folder would grow by a catalogue every day; an
    entry still in use that goes is made again by the next command that needs it."""
    import re
    import time

    name, _, rest = written.name.rpartition("-")
    pattern = re.compile(rf"{re.escape(name)}-[0-9a-f]{{32}}{re.escape(rest[32:])}")
    cutoff = time.time() - KEEP_DAYS * 86400
    try:
        for other in written.parent.iterdir():
            if other != written and pattern.fullmatch(other.name) and other.stat().st_mtime < cutoff:
                other.unlink()
    except OSError:
        return


def get_object(name: str, key: Any) -> Any | None:
    """The object stored for ``key`` by :func:`put_object`, or ``None`` (missing, unsigned, unreadable)."""
    import pickle

    body = get_bytes(name, key, ".pickle")
    if body is None:
        return None
    try:
        return pickle.loads(body)
    except Exception:  # a class renamed since: recompute
        return None


def put_object(name: str, key: Any, value: Any) -> None:
    """Store ``value`` (pickled, signed) for ``key``; skipped silently when it cannot be."""
    import pickle

    try:
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # something in it cannot be pickled: never cached
        return
    put_bytes(name, key, body, ".pickle")
