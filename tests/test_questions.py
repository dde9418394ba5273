"""Answers as a coordinator types them: validated against the question, in either language."""

from __future__ import annotations

import pytest

from core.protocol import Question

RECOVERY = Question.model_validate({
    "key": "recovery_status", "type": "choice",
    "text": {"zh_CN": "恢复得怎么样？", "en": "How is your recovery?"},
    "choices": [
        {"value": "better", "labels": {"zh_CN": "好转了", "en": "Better"}},
        {"value": "same", "labels": {"zh_CN": "差不多", "en": "About the same"}},
        {"value": "worse", "labels": {"zh_CN": "变差了", "en": "Worse"}},
    ],
})


@pytest.mark.parametrize("typed", ["worse", "Worse", "变差了", "3"])
def test_a_choice_accepts_its_value_label_or_number(typed: str) -> None:
    assert RECOVERY.parse_answer(typed) == "worse"


@pytest.mark.parametrize("typed", ["4", "0", "terrible", ""])
def test_an_unknown_choice_names_what_is_allowed(typed: str) -> None:
    with pytest.raises(ValueError, match="expected one of better, same, worse"):
        RECOVERY.parse_answer(typed)


@pytest.mark.parametrize(("typed", "expected"), [("yes", True), ("是", True), ("n", False), ("否", False)])
def test_yes_no_in_both_languages(typed: str, expected: bool) -> None:
    question = Question.model_validate({"key": "fever", "type": "yes_no",
                                        "text": {"zh_CN": "发烧吗？", "en": "Fever?"}})
    assert question.parse_answer(typed) is expected


def test_a_number_on_a_yes_no_question_is_an_error() -> None:
    question = Question.model_validate({"key": "fever", "type": "yes_no",
                                        "text": {"zh_CN": "发烧吗？", "en": "Fever?"}})
    with pytest.raises(ValueError, match="fever: answer yes or no, got '5'"):
        question.parse_answer("5")


def test_a_scale_answer_outside_its_range_is_an_error() -> None:
    question = Question.model_validate(
        {"key": "pain", "type": "scale", "min": 0, "max": 10, "text": {"zh_CN": "疼吗？", "en": "Pain?"}}
    )
    assert question.parse_answer("7") == 7
    with pytest.raises(ValueError, match="expected 0–10, got 11"):
        question.parse_answer("11")
