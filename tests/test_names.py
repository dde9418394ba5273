"""Salutations and staff titles (core/names.py): invariants over generated names, ages and age bands."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.names import COMPOUND_SURNAMES, SINGLE_SURNAMES, doctor_title, salutation, split_han_name

BANDS = {"child_under": 14, "minor_under": 18, "elderly_from": 60}
GIVEN = st.text(alphabet="娜伟芳强军敏静丽涛明华秀英佳怡光", min_size=1, max_size=2)
SINGLE = st.sampled_from(sorted(SINGLE_SURNAMES))
COMPOUND = st.sampled_from(COMPOUND_SURNAMES)
GENDER = st.sampled_from(["F", "M"])
bands = st.integers(1, 20).flatmap(
    lambda child: st.integers(child, 30).flatmap(
        lambda minor: st.integers(30, 120).map(
            lambda elderly: {"child_under": child, "minor_under": minor, "elderly_from": elderly})))


@given(COMPOUND, GIVEN, GENDER, st.integers(18, 110))
def test_a_compound_surname_is_never_cut(surname: str, given: str, gender: str, age: int) -> None:
    text = salutation(surname + given, gender, age, "zh_CN", BANDS)  # type: ignore[arg-type]
    assert text.startswith(surname) and text[len(surname):] in ("女士", "先生", "奶奶", "爷爷")
    assert salutation(surname + given, gender, age, "en", BANDS).split()[-1] not in (surname[0], surname)  # pinyin


@given(SINGLE, GIVEN, GENDER, st.integers(18, 59))
def test_an_adult_with_a_han_surname_is_surname_and_honorific(surname: str, given: str, gender: str, age: int) -> None:
    name = surname + given
    parts = split_han_name(name)
    assert parts is not None
    assert salutation(name, gender, age, "zh_CN", BANDS) == parts[0] + {"F": "女士", "M": "先生"}[gender]  # type: ignore[arg-type]


def _no_han_surname(name: str) -> bool:
    return name[0] != "·" and name[-1] != "·" and ("·" in name or name[0] not in SINGLE_SURNAMES)


NO_SURNAME = st.text(alphabet="阿依古丽买提热娜尔·", min_size=2, max_size=9).filter(_no_han_surname)


@given(NO_SURNAME, GENDER, st.integers(18, 110))
def test_a_name_without_a_han_surname_is_said_in_full(name: str, gender: str, age: int) -> None:
    text = salutation(name, gender, age, "zh_CN", BANDS)  # type: ignore[arg-type]
    assert text == name + {"F": "女士", "M": "先生"}[gender]


@given(st.one_of(SINGLE, COMPOUND), GIVEN, st.sampled_from(["F", "M", "U"]), st.integers(0, 110), bands)
def test_minors_are_reached_through_a_guardian_whatever_the_bands(surname: str, given: str, gender: str, age: int,
                                                                   configured: dict[str, int]) -> None:
    name = surname + given
    for locale in ("zh_CN", "en"):
        text = salutation(name, gender, age, locale, configured)  # type: ignore[arg-type]
        if age < configured["minor_under"]:
            assert name in text and ("家长" in text or "guardian" in text)
        else:
            assert "家长" not in text and "guardian" not in text
            if locale == "zh_CN" and gender != "U":
                elderly = age >= configured["elderly_from"]
                assert text.endswith(("奶奶", "爷爷") if elderly else ("女士", "先生"))


@given(st.one_of(SINGLE, COMPOUND), GIVEN)
def test_doctors_keep_their_title(surname: str, given: str) -> None:
    assert doctor_title(surname + given, "zh_CN") == surname + "医生"
    assert doctor_title(surname + "医生", "zh_CN") == surname + "医生"
    assert doctor_title(surname + given, "en").startswith("Dr ")


def test_known_examples() -> None:
    assert salutation("欧阳娜", "F", 80, "zh_CN", BANDS) == "欧阳奶奶"
    assert salutation("欧阳娜", "F", 80, "en", BANDS) == "Ms Ouyang"
    assert salutation("买买提", "M", 40, "zh_CN", BANDS) == "买买提先生"
    assert salutation("高佳怡", "F", 14, "zh_CN", BANDS) == "高佳怡的家长"
    assert salutation("Emily Chen", "F", 29, "en", BANDS) == "Ms Chen"
    assert doctor_title("陈志远", "en") == "Dr Chen"
