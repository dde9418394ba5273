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


# A phone number typed into free text: a mainland mobile, a landline with its area code, a landline
# after a word that says it is one, or a 400/800 service number. Every form must stand alone: no
# digit touches it on either side (a digit run longer than a phone, such as an 18-digit ID number or
# a bank card, is never partly masked: it is not a phone and stays as it is), and it does not
# continue a group of four digits and a separator ("6222 0755 1234 5678", a card written in groups).
_AREA = r"(?:10|2\d|[3-9]\d\d)"  # after the trunk 0: 010, 02x (3 digits), 03xx-09xx (4 digits)
_PHONE_IN_TEXT = re.compile(
    rf"""
    (?<!\d)(?<!\d{{4}}[ -])
    (?:
        (?P<mobile>(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d){{8}})     # 138 1234 5678, +86 13812345678
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
    return _PHONE_IN_TEXT.sub(_mask_in_text, text)


def mask_name(name: str | None) -> str:
    """王*英 / E***y: for logs that must mention a patient at all."""
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
