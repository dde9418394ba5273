"""Core's own plugin: what every follow-up shares, whatever the specialty.

Registered as the plugin ``core`` before any entry-point plugin, with its
first-result hooks marked ``trylast`` so any specialty or chain plugin can
take precedence.
"""

from __future__ import annotations

from typing import Any

from core.calendar import default_calendar
from core.hookspecs import hookimpl
from core.names import salutation
from core.protocol import Action, Condition, LocalizedText, PatientInfo, Question, Rule, TaskContext


def _make(model: Any, **fields: Any) -> Any:
    """One of the constants below, built without validating: validating them would build four validators in
    every command that loads the plugins. tests/test_general.py checks each equals its validated form."""
    return model.model_construct(**fields)


T = LocalizedText

GENERAL_QUESTIONS: tuple[Question, ...] = (
    _make(
        Question,
        key="overall_satisfaction",
        type="scale", min=1, max=5, dimension="overall", treated_only=True,
        text=_make(
            T, zh_CN="总体来说，您对这次就诊满意吗？1分很不满意，5分非常满意。",
            en="Overall, how satisfied are you with your care, from 1 (very dissatisfied) to 5 (very satisfied)?"),
    ),
    _make(
        Question,
        key="recommend",
        type="scale", min=0, max=10, dimension="recommend", treated_only=True, optional=True,
        text=_make(T, zh_CN="如果满分是10分，您有多大可能把我们推荐给亲友？",
                      en="On a scale of 0 to 10, how likely are you to recommend us to family and friends?"),
    ),
    _make(
        Question,
        key="staff_praise",
        type="text", treated_only=True, optional=True,
        text=_make(T, zh_CN="有没有哪位医生、护士或工作人员让您特别满意、想表扬的？",
                      en="Is there a doctor, nurse or staff member you would like to praise?"),
    ),
    _make(
        Question,
        key="staff_criticism",
        type="text", treated_only=True,
        text=_make(T, zh_CN="有没有哪位工作人员或哪项服务让您不满意？",
                      en="Was there a staff member or a service you were unhappy with?"),
    ),
    _make(
        Question,
        key="complaint",
        type="yes_no",
        text=_make(T, zh_CN="您是否有需要我们处理的意见或投诉？",
                      en="Do you have a concern or complaint you want us to handle?"),
    ),
    _make(
        Question,
        key="suggestions",
        type="text", optional=True,
        text=_make(T, zh_CN="您对我们还有什么建议或需要？", en="Do you have any suggestions or needs for us?"),
    ),
)

# Asked when a milestone lists them or the coordinator records them (``--answer birthday=05-12``), never
# appended to every call: the days a patient is greeted on (record_dates, core/greetings.py) and a
# referral invitation they accepted (core/referrals.py).
ON_REQUEST_QUESTIONS: tuple[Question, ...] = (
    _make(
        Question,
        key="birthday",
        type="month_day",
        text=_make(T, zh_CN="方便告诉我们您的生日吗？我们登记一下，到时给您送上祝福。",
                      en="Would you tell us your birthday? We note it down so we can send you our wishes on the day."),
    ),
    _make(
        Question,
        key="anniversary",
        type="month_day",
        text=_make(T, zh_CN="您的结婚纪念日是哪一天呢？（不方便说也没关系）",
                      en="And your wedding anniversary, if you would like to share it?"),
    ),
    _make(
        Question,
        key="referral_accepted",
        type="yes_no",
        text=_make(
            T, zh_CN="您愿意把我们介绍给家人朋友吗？他们来的时候报您的名字就可以。",
            en="Would you be happy to introduce family or friends to us? They only need to mention your name."),
    ),
)
ON_REQUEST = frozenset(q.key for q in ON_REQUEST_QUESTIONS)

GENERAL_RULES: tuple[Rule, ...] = (
    _make(
        Rule,
        when=(_make(Condition, question="overall_satisfaction", op="lte", value=2),),
        action="complaint", category="other",
        reason=_make(T, zh_CN="患者总体不满意，需在3天内核实并答复",
                        en="Patient dissatisfied overall: check and answer within 3 days"),
    ),
    _make(
        Rule,
        when=(_make(Condition, question="complaint", op="eq", value=True),),
        action="complaint", category="other",
        reason=_make(T, zh_CN="患者提出投诉，需在3天内核实并答复",
                        en="Patient raised a complaint: check and answer within 3 days"),
    ),
    _make(
        Rule,
        when=(_make(Condition, question="staff_criticism", op="answered"),),
        action="complaint", category="staff_or_service",
        reason=_make(T, zh_CN="患者对工作人员或服务有批评", en="Patient criticised a staff member or service"),
    ),
    _make(
        Rule,
        when=(_make(Condition, question="recommend", op="gte", value=9),),
        action="referral",
        reason=_make(T, zh_CN="患者很满意：邀请其推荐亲友", en="Patient very satisfied: invite a referral"),
    ),
    _make(
        Rule,
        when=(_make(Condition, question="referral_accepted", op="eq", value=True),),
        action="referral",
        reason=_make(T, zh_CN="患者接受了推荐邀请：已登记为推荐人",
                        en="The patient accepted the referral invitation: recorded"),
    ),
    _make(
        Rule,
        when=(_make(Condition, question="birthday", op="answered"),),
        action="record_dates",
        reason=_make(T, zh_CN="已登记生日，届时送上祝福", en="Birthday recorded for greetings"),
    ),
    _make(
        Rule,
        when=(_make(Condition, question="anniversary", op="answered"),),
        action="record_dates",
        reason=_make(T, zh_CN="已登记结婚纪念日，届时送上祝福", en="Wedding anniversary recorded for greetings"),
    ),
)


def default_salutation(patient: PatientInfo, locale: str, bands: dict[str, int]) -> str:
    """王奶奶 / 李先生 / 欧阳女士 / 阿依古丽·买买提女士 / 高佳怡的家长, or Ms Wang / Mr Li (see core/names.py)."""
    return salutation(patient.name, patient.gender, patient.age, locale, bands)


class CorePlugin:
    """General questions, rules, salutation, the base script and the default calendar."""

    @hookimpl(trylast=True)
    def followup_questions(self) -> list[Question]:
        return [*GENERAL_QUESTIONS, *ON_REQUEST_QUESTIONS]

    @hookimpl(trylast=True)
    def followup_actions(self, context: TaskContext, answers: dict[str, Any]) -> list[Action]:
        found = (r.evaluate(answers, context.days_since, context.procedure) for r in GENERAL_RULES)
        return [a for a in found if a is not None]

    @hookimpl(trylast=True)
    def followup_salutation(self, patient: PatientInfo, locale: str, age_bands: dict[str, int]) -> str:
        return default_salutation(patient, locale, age_bands)

    @hookimpl(trylast=True)
    def followup_script(self, milestone: Any, render: Any, variables: dict[str, Any]) -> str:
        return render(milestone.script, variables)

    @hookimpl(trylast=True)
    def followup_calendar(self, country: str) -> Any:
        return default_calendar(country)
