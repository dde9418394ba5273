"""Phone numbers typed into free text: masked when they are phones, untouched when they are not."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.privacy import scrub_phones

MASKED = [
    # mobiles, as mask_phone shows them
    ("请回电13800001111", "请回电138****1111"),
    ("call me on 138 1234 5678 please", "call me on 138****5678 please"),
    ("手机：139-1234-5678。", "手机：139****5678。"),
    ("+86 13812345678", "138****5678"),
    ("008613812345678", "138****5678"),
    # landlines: country and area code as written, then **** and the local number's last digits
    ("010-12345678", "010-****5678"),
    ("请拨021 6123 4567找护士", "请拨021 ****4567找护士"),
    ("0755-8888 6666", "0755-****6666"),
    ("(0571)87654321", "(0571)****4321"),
    ("（0571）8765 4321", "（0571）****4321"),
    ("+86 10 12345678", "+86 10 ****5678"),
    ("86-21-61234567", "86-21-****4567"),
    ("+86 (0)21 6123 4567", "+86 (0)21 ****4567"),
    ("02161234567", "021****4567"),
    ("0371-1234567", "0371-****567"),  # a 7-digit local number keeps three
    ("科室电话010-12345678转123", "科室电话010-****5678转123"),  # the extension stays
    ("0755-88886666 ext 12", "0755-****6666 ext 12"),
    ("010-12345678-8001", "010-****5678-8001"),
    # a local number without its area code, only where a word says it is a phone
    ("电话：87654321", "电话：****4321"),
    ("座机 8765-4321", "座机 ****4321"),
    ("Tel: 6123 4567", "Tel: ****4567"),
    # service numbers
    ("客服400-820-8820", "客服400-****820"),
    ("800 810 8888", "800 ****888"),
    ("4008208820", "400****820"),
    # next to other numbers that are not phones
    ("14:30 021-61234567", "14:30 021-****4567"),
    ("房间302 010-12345678", "房间302 010-****5678"),
    ("2026-11-23回电13800001111", "2026-11-23回电138****1111"),
]

UNCHANGED = [
    "2026-11-23",
    "2026/11/23 14:30",
    "2026年11月23日",
    "20261123",
    "12000元",
    "¥38,000",
    "费用 38000.00 元",
    "14:30",
    "room 302",
    "3 次",
    "room 302, 3 次, 14:30-17:30",
    "110101199003071234",  # an 18-digit ID number: not a phone, never partly masked
    "身份证 11010119900307123X",
    "6222 0755 1234 5678",  # a bank card in groups of four
    "6222021234567890123",
    "0101234567890",  # 13 digits: longer than any landline
    "139123456789",  # 12 digits: not a mobile
    "87654321",  # a bare 8-digit number is not known to be a phone
    "订单 12345678",
    "0.5 mg 3 times",
    "",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_phone_numbers_in_text_are_masked(text: str, expected: str) -> None:
    assert scrub_phones(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_what_is_not_a_phone_number_is_left_as_it_is(text: str) -> None:
    assert scrub_phones(text) == text


def test_none_and_empty_pass_through() -> None:
    assert scrub_phones(None) is None
    assert scrub_phones("") == ""


def test_reports_still_import_it_from_build() -> None:
    from core.reports import build

    assert build.scrub_phones is scrub_phones


# -- property: any phone in any text ------------------------------------------------------------------

DIGIT = st.sampled_from("0123456789")
SEP = st.sampled_from(["", " ", "-"])


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.lists(DIGIT, min_size=n, max_size=n).map("".join)


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    number = "1" + draw(st.sampled_from("3456789")) + draw(_digits(9))
    sep = draw(SEP)
    written = f"{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}"
    return draw(st.sampled_from(["", "+86 ", "+86-", "86", "0086 "])) + written


@st.composite
def landlines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["10", "2x", "xxx"]))  # 010, 02x, 03xx-09xx
    area = {"10": "10", "2x": "2" + draw(DIGIT), "xxx": draw(st.sampled_from("3456789")) + draw(_digits(2))}[kind]
    local = draw(st.sampled_from("123456789")) + draw(_digits(draw(st.sampled_from([6, 7]))))
    split = draw(st.sampled_from([0, len(local) - 4]))
    inner = draw(SEP) if split else ""
    local = f"{local[:split]}{inner}{local[split:]}"
    sep = draw(SEP)
    head = draw(st.sampled_from([f"0{area}{sep}", f"(0{area}){sep}", f"（0{area}）{sep}", f"+86 {area} ",
                                 f"86-{area}-", f"+86 (0){area} "]))
    extension = draw(st.sampled_from(["", "转123", " ext 12", "分机8001"]))
    return head + local + extension


@st.composite
def service_numbers(draw: st.DrawFn) -> str:
    number = draw(st.sampled_from(["400", "800"])) + draw(_digits(7))
    sep = draw(SEP)
    cut = draw(st.sampled_from([6, 7]))
    return f"{number[:3]}{sep}{number[3:cut]}{sep}{number[cut:]}"


# Chinese and ASCII text with punctuation and spaces, but no digit.
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ ,.:;!?()+-/#@，。：；！？（）、\n"),
    ),
    max_size=30,
)


def _phone_digits(written: str) -> str:
    """The number's own digits: without an extension, which is not the phone number."""
    return re.sub(r"\D", "", re.split(r"转|ext|分机", written)[0])


@given(before=TEXT, phone=st.one_of(mobiles(), landlines(), service_numbers()), after=TEXT)
def test_any_phone_in_any_text_is_masked(before: str, phone: str, after: str) -> None:
    out = scrub_phones(before + phone + after)
    assert out is not None
    digits = _phone_digits(phone)
    assert digits not in out
    assert digits not in re.sub(r"\D", "", out)  # not even with its separators dropped
    assert out.startswith(before) and out.endswith(after)  # nothing but the number changes


@given(text=TEXT)
def test_text_without_digits_is_unchanged(text: str) -> None:
    assert scrub_phones(text) == text
