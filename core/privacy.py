"""Patient data handling: what may be shown, logged or exported."""

from __future__ import annotations

import re

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


def mask_name(name: str | None) -> str:
    """王*英 / E***y: for logs that must mention a patient at all."""
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
