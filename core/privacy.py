"""Patient data handling: what may be shown, logged or exported."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

_NON_DIGITS = re.compile(r"\D")


def mask_phone(phone: str | None) -> str:
    """138****1234: keep the first three and last four digits (fewer for short numbers).

    Digits are what ``\\d`` matches (any Unicode decimal digit), exactly the
    characters for which ``str.isdecimal`` holds: a number stored as digits only,
    the usual case, is used as it is, without the regular expression.
    """
    if not phone:
        return ""
    digits = phone if phone.isdecimal() else _NON_DIGITS.sub("", phone)
    if len(digits) >= 11:
        return f"{digits[-11:-8]}****{digits[-4:]}"
    if len(digits) >= 7:
        return f"{digits[:2]}***{digits[-2:]}"
    return "*" * len(digits)


# A phone number typed into free text: a mainland mobile, a landline with its area code, a landline
# after a word that says it is one, or a 400/800 service number. Every form must stand alone: no
# digit touches it on either side (a digit run longer than a phone, such as an 18-digit ID number or
# a bank card, is never partly masked: it is not a phone and stays as it is), and it does not
# continue a group of four digits and a separator ("6222 0755 1234 5678", a card written in groups).
_AREA = r"(?:10|2\d|[3-9]\d\d)"  # after the trunk 0: 010, 02x (3 digits), 03xx-09xx (4 digits)


@functools.cache
def _phone_in_text() -> re.Pattern[str]:
    """Compiled when first needed: most commands never scrub free text, and this pattern takes
    about 2 ms to compile."""
    return re.compile(
        rf"""
        (?<!\d)(?<!\d{{4}}[ -])
        (?:
            (?P<mobile>(?:(?:\+|00)?86[ -]?)?1[ -]?[3-9](?:[ -]?\d){{9}})  # 138 1234 5678, +86 13812345678
          | (?P<area>
                (?:(?:\+|00)?86[ -]?(?:\(0\)|0)?{_AREA}                    # +86 10, 86-21, +86 (0)21
                  | [(（]0{_AREA}[)）]                                       # (0571)
                  | 0{_AREA}                                                 # 010, 0755
                )[ \-－]?
            )(?P<local>\d{{3,4}}[ -]?\d{{4}})                                # 7-8 digit local number
          | (?P<said>(?:电话|座机|固话|tel|phone)(?:号码|号)?[ ]?[:：]?[ ]?)   # 电话: 87654321
            (?![48]00)(?P<bare>[2-9]\d{{2,3}}[ -]?\d{{4}})                # (400 and 800: service numbers)
          | (?P<service>[48]00[ \-－]?)(?P<number>\d(?:[ -]?\d){{6}})       # 400-820-8820
        )
        (?!\d)
        """,
        re.VERBOSE | re.IGNORECASE,
    )


def _mask_local(number: str) -> str:
    """**** then the last digits: a 7-digit local number keeps three, an 8-digit one four."""
    digits = _NON_DIGITS.sub("", number)
    return "****" + digits[4:]


def _mask_in_text(match: re.Match[str]) -> str:
    if match["mobile"]:
        return mask_phone(match["mobile"])
    if match["local"]:
        return match["area"] + _mask_local(match["local"])
    if match["bare"]:
        return match["said"] + _mask_local(match["bare"])
    return match["service"] + _mask_local(match["number"])


def scrub_phones(text: str | None) -> str | None:
    """Mask phone numbers typed into free text (suggestions, complaint descriptions, staff answers).

    Mobile numbers as :func:`mask_phone` does (``138****5678``). Landlines keep their
    country and area code as written and show only the last digits of the local number
    (``010-****5678``, ``(0571)****4321``, ``+86 21 ****4567``), an extension after it
    (转123, ext 12) stays; a local number without an area code only after a word that
    says it is one (电话, 座机, 固话, tel, phone: ``电话****4321``); service numbers keep
    400/800 (``400-****820``). Dates, times, amounts, short numbers, and digit runs
    longer than a phone number (ID numbers, bank cards) are left as they are.
    """
    if not text:
        return text
    plain = text.translate(_WIDE)  # the same text with full-width digits, + and - as ASCII (same length)
    if plain is text or plain == text:
        return _phone_in_text().sub(_mask_in_text, text)
    out, last = [], 0
    for match in _phone_in_text().finditer(plain):
        out += [text[last:match.start()], _mask_in_text(match)]
        last = match.end()
    return "".join(out) + text[last:]


# Full-width digits (１３８…), plus and dash, as ASCII: one character for one, so positions stay.
FULL_WIDTH = _WIDE = {0xFF10 + i: ord("0") + i for i in range(10)} | {
    0xFF0B: ord("+"), 0xFF0D: ord("-"), 0x3000: ord(" ")}


class Revealed(str):
    """A full phone number released to someone who needs it (the call card of a task they hold, the doctor
    of an escalation): the masking layer leaves it as it is. Only :func:`reveal` makes one, and audits it."""


def reveal(session: object, *, phone: str | None, user: str, at: object, patient_id: int, why: str,
           entity: str, entity_id: int | None) -> Revealed | None:
    """The full number for ``user``, and an audit row saying who saw whose number, and why."""
    if not phone:
        return None
    from core.audit import audit

    audit(session, user=user, at=at, action="phone:shown", entity=entity, entity_id=entity_id,  # type: ignore[arg-type]
          patient_id=patient_id, detail={"why": why})
    return Revealed(phone)


def mask_text(text: str | None) -> str | None:
    """The masking layer for one piece of text: phone numbers in it masked, a :class:`Revealed` number kept."""
    if text is None or isinstance(text, Revealed):
        return text
    return scrub_phones(text)


def mask_data(value: Any) -> Any:
    """The masking layer for output: every string inside ``value`` (dicts, lists) through :func:`mask_text`."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_data(v) for v in value]
    if type(value) is tuple:
        return tuple(mask_data(v) for v in value)
    return value


def mask_name(name: str | None) -> str:
    """王*英 / E***y: for logs that must mention a patient at all."""
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


PRIVATE_MODE = 0o600


def private_file(path: str | Path) -> Path:
    """Create ``path`` (or empty it) readable and writable by its owner only (0600), before patient data goes in.

    Writers that open it afterwards (``open(..., "w")``, a workbook's zip) keep the mode: truncating a
    file never widens it. A file that already exists with a wider mode is narrowed.
    """
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)
    return path


def private_sqlite(database: str | None) -> None:
    """An SQLite database and its -wal, -shm and -journal files: 0600 (SQLite gives its side files the
    database's own mode). Created empty when missing; narrowed when it is wider."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        if not path.parent.is_dir():
            return  # SQLite says it cannot open the file
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_MODE))
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            if candidate.stat().st_mode & 0o077:
                os.chmod(candidate, PRIVATE_MODE)
        except OSError:
            pass  # not there, or not ours: SQLite reports what matters


def install_log_masking() -> None:
    """Every log record, whoever logs it (followup, SQLAlchemy, werkzeug), passes the masking layer: its
    message with numbers masked, an exception as one masked line instead of a traceback (a traceback
    quotes a query's parameters: patient data). Installed once per process by the CLI."""
    import logging

    previous = logging.getLogRecordFactory()
    if getattr(previous, "followup_masking", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            record.msg, record.args = mask_text(record.getMessage()), None
        except Exception:  # a record whose message does not format: leave it to logging's own handling
            return record
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            record.exc_text = mask_text(f"{type(exc).__name__}: {first}")
        return record

    factory.followup_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
