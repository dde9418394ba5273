"""Every label a report shows, in zh_CN and en, and the definition of every figure.

The definitions here are the ones printed in each report's footer and in the
``definitions`` object of the JSON; docs/metrics.md says the same in prose.
Keep the three in step.
"""

from __future__ import annotations

from typing import Any

from core.words import WORDS

LOCALES = ("zh_CN", "en")

LABELS: dict[str, tuple[str, str]] = {
    # headline figures
    "due": ("应回访", "Due"),
    "attempted": ("已拨打", "Attempted"),
    "reached": ("回访成功", "Reached"),
    "reached_in_window": ("按时完成", "Reached on time"),
    "unsuccessful": ("不成功回访", "Unsuccessful"),
    "refused": ("拒绝回访", "Refused"),
    "wrong_number": ("号码错误", "Wrong number"),
    "open": ("待回访", "Still open"),
    "coverage": ("覆盖率", "Coverage"),
    "follow_up_rate": ("回访率", "Follow-up rate"),
    "on_time_rate": ("按时率", "On-time rate"),
    "avg_attempts_per_reached": ("人均拨打次数", "Attempts per reached task"),
    "satisfaction_n": ("满意度答复数", "Satisfaction answers"),
    "overall_satisfaction_rate": ("总体满意率", "Overall satisfaction rate"),
    "nps": ("净推荐值", "NPS"),
    "nps_n": ("推荐意愿答复数", "Recommendation answers"),
    "small_sample": ("样本不足30", "Fewer than 30"),
    # satisfaction
    "dimension": ("维度", "Dimension"),
    "n": ("样本", "n"),
    "mean": ("平均分", "Mean"),
    "top2": ("4–5分人数", "Scored 4–5"),
    "top2_rate": ("满意率(4–5分)", "Top-2-box"),
    # complaints, escalations
    "complaints": ("投诉", "Complaints"),
    "opened": ("新增", "Opened"),
    "responded_within_3d": ("3天内答复", "Answered within 3 days"),
    "responded_within_3d_rate": ("3天内答复率", "Answered within 3 days (%)"),
    "overdue": ("已超期", "Overdue"),
    "closed": ("已结案", "Closed"),
    "category": ("类别", "Category"),
    "escalations": ("转医生处理", "Escalations to doctors"),
    "resolved": ("已处理", "Resolved"),
    "median_hours_to_resolve": ("处理时长中位数(小时)", "Median hours to resolve"),
    # messages per channel (docs/channels.md)
    "channels": ("短信、微信与邮件", "Messages by channel"),
    "channel": ("渠道", "Channel"),
    "sent": ("已发送", "Sent"),
    "delivered": ("已送达", "Delivered"),
    "failed": ("失败", "Failed"),
    "answered": ("已填问卷", "Questionnaires answered"),
    "response_rate": ("问卷回复率", "Response rate"),
    "channel_sms": ("短信", "SMS"),
    "channel_wechat": ("微信", "WeChat"),
    "channel_email": ("邮件", "Email"),
    # staff, sales, coordinators
    "staff": ("表扬与批评", "Praise and criticism"),
    "staff_member": ("工作人员", "Staff member"),
    "praise": ("表扬", "Praise"),
    "criticism": ("批评", "Criticism"),
    "sales": ("咨询转化", "Lead conversion"),
    "leads": ("应回访客户", "Leads due"),
    "followed_up": ("已跟进", "Followed up"),
    "booked": ("已预约", "Booked"),
    "conversion_rate": ("转化率", "Conversion rate"),
    "coordinators": ("回访员工作量", "Coordinator productivity"),
    "coordinator": ("回访员", "Coordinator"),
    "attempts": ("拨打次数", "Attempts"),
    "calling_hours": ("通话时段(小时)", "Calling hours"),
    "calls_per_hour": ("每小时拨打", "Calls per hour"),
    "qa_reviewed": ("抽查通话数", "Calls reviewed"),
    "qa_avg_score": ("抽查平均分", "Average QA score"),
    # beyond the milestones (core/reports/followups.py)
    "followups": ("预约、转介绍、月末补打与问候", "Bookings, referrals, sweep and greetings"),
    "interruptions": ("治疗中断原因", "Why treatment was interrupted"),
    "reason.cost": ("费用", "Cost"),
    "reason.time": ("时间", "Time"),
    "reason.fear": ("害怕", "Fear"),
    "reason.result": ("效果", "Result"),
    "reason.other": ("其他", "Other"),
    "reviews_booked": ("回访中预约到院", "Appointments booked on calls"),
    "referrals_accepted": ("接受转介绍邀请", "Referral invitations accepted"),
    "referrals_referred": ("转介绍新患者", "Referred new patients"),
    "referrer": ("推荐人", "Referrer"),
    "sweep_swept": ("月末补打", "Month-end sweep calls"),
    "sweep_recovered": ("月末补打找回", "Recovered by the sweep"),
    "greetings_due": ("应发问候", "Greetings due"),
    "greetings_done": ("已问候", "Greetings sent or made"),
    # lists
    "unreachable": ("月末补打名单", "Call again at month end"),
    "suggestions": ("建议与需求", "Suggestions and needs"),
    "open_complaints": ("未结投诉", "Open complaints"),
    "task_id": ("任务", "Task"),
    "patient_id": ("患者编号", "Patient"),
    "patient_name": ("姓名", "Name"),
    "phone": ("电话", "Phone"),
    "site": ("门店", "Site"),
    "specialty": ("专科", "Specialty"),
    "procedure": ("项目", "Procedure"),
    "milestone": ("节点", "Milestone"),
    "due_at": ("应回访时间", "Due"),
    "last_outcome": ("最后结果", "Last outcome"),
    "last_attempt_at": ("最后拨打", "Last attempt"),
    "status": ("状态", "Status"),
    "date": ("日期", "Date"),
    "text": ("内容", "Text"),
    "complaint_id": ("投诉号", "Complaint"),
    "description": ("描述", "Description"),
    "opened_at": ("投诉时间", "Opened"),
    "deadline": ("答复期限", "Answer by"),
    "open_escalations": ("未处理的上报医生", "Open escalations"),
    "escalation_id": ("上报号", "Escalation"),
    "severity": ("紧急程度", "Severity"),
    "severity:clinical": ("紧急", "clinical"),
    "severity:routine": ("常规", "routine"),
    "assignee": ("负责医生", "Doctor"),
    "escalated_at": ("上报时间", "Escalated"),
    "handle_by": ("处理时限", "Handle by"),
    "reason": ("原因", "Reason"),
    # report frame
    "report_week": ("周回访报表", "Weekly follow-up report"),
    "report_month": ("月回访报表", "Monthly follow-up report"),
    "report_quarter": ("季度回访报表", "Quarterly follow-up report"),
    "period": ("统计期间", "Period"),
    "previous": ("上期", "Previous"),
    "delta": ("变化", "Change"),
    "figures": ("回访概况", "Follow-up figures"),
    "satisfaction": ("满意度", "Satisfaction"),
    "breakdown": ("分组明细", "Breakdown"),
    "trend": ("趋势", "Trend"),
    "sites": ("各门店", "By site"),
    "definitions": ("指标说明", "Definitions"),
    "metric": ("指标", "Figure"),
    "value": ("数值", "Value"),
    "group": ("分组", "Group"),
    "none": ("无", "none"),
    "all_sites": ("全部门店", "All sites"),
    "generated": ("生成时间", "Generated"),
    "timezone": ("时区", "Timezone"),
    "chart_follow_up_by_site": ("各门店回访率", "Follow-up rate by site"),
    "chart_satisfaction": ("各维度满意率(4–5分)", "Satisfaction by dimension (top-2-box)"),
    "chart_trend": ("回访率与覆盖率趋势", "Follow-up rate and coverage by period"),
    "no_data": ("本期无数据", "No data in this period"),
    "by_site": ("门店", "Site"),
    "by_specialty": ("专科", "Specialty"),
    "by_procedure": ("项目", "Procedure"),
    "by_coordinator": ("回访员", "Coordinator"),
    "by_staff": ("主治医生", "Attending doctor"),
    "unassigned": ("未拨打", "not attempted"),
    "rows": ("条", "rows"),
    "empty": ("空值", "Empty rates"),
    "chart_note": (
        "* 样本不足30，图中以浅色显示；“—”为本期无数据。",
        "* fewer than 30: drawn lighter; — means no data in the period.",
    ),
    "privacy": ("隐私", "Privacy"),
    "running": ("本期尚未结束：数据截至 {through}，只计已到期的任务",
                "period still running: figures through {through}, counting only tasks already due"),
    "comment": ("评价内容", "Comment"),
    "procedure_label": ("项目", "Procedure"),
    "milestone_label": ("节点", "Milestone"),
    "kind": ("类型", "Kind"),
    "label": ("名称", "Name"),
    "first_day": ("首日", "First day"),
    "last_day": ("末日", "Last day"),
    "section": ("部分", "Section"),
    "key": ("代码", "Key"),
    "this_period": ("本期", "This period"),
    "data": ("数据", "Data"),
}

DIMENSIONS: dict[str, tuple[str, str]] = {
    "overall": ("总体满意度", "Overall"),
    "medical_quality": ("医疗质量", "Medical quality"),
    "service_process": ("服务流程", "Service process"),
    "attitude": ("服务态度", "Attitude"),
    "ward_environment": ("病房环境", "Ward environment"),
    "support_services": ("后勤服务", "Support services"),
    "tests_and_fees": ("检查与收费合理", "Tests and fees"),
    "result": ("治疗效果", "Result"),
    "recovery": ("恢复情况", "Recovery"),
    "pain": ("疼痛", "Pain"),
}

CATEGORIES: dict[str, tuple[str, str]] = {
    "rules_misunderstanding": ("对制度不理解", "Misunderstood rules (fees, rounds, records)"),
    "treatment_effect": ("治疗效果", "Treatment effect"),
    "staff_or_service": ("人员或服务", "A person or a service"),
    "emotional": ("情绪因素", "Emotional"),
    "other": ("其他", "Other"),
}

# one catalogue of the words (core/words.py): outcomes as the call card and the lists say them
OUTCOMES: dict[str, tuple[str, str]] = WORDS["outcome"]

STATUSES: dict[str, tuple[str, str]] = {
    "task:open": ("待回访", "open"),
    "task:unsuccessful": ("不成功", "unsuccessful"),
    "complaint:open": ("待答复", "awaiting an answer"),
    "complaint:responded": ("已答复", "answered"),
    "complaint:closed": ("已结案", "closed"),
    "escalation:open": ("待处理", "open"),
    "escalation:acknowledged": ("医生已确认", "acknowledged"),
}

DEFINITIONS: dict[str, tuple[str, str]] = {
    "due": (
        "目标时间（tasks.due_at）落在统计期间内的回访任务，不含已取消、免打扰和已过期的任务。",
        "Tasks whose target time (tasks.due_at) falls in"
        " the period, not cancelled, suppressed or expired.",
    ),
    "attempted": (
        "应回访任务中至少拨打过一次的。",
        "Due tasks with at least one recorded attempt.",
    ),
    "reached": (
        "应回访任务中状态为已完成或已预约的。",
        "Due tasks whose status is completed or booked.",
    ),
    "reached_in_window": (
        "回访成功且完成时间在该任务回访窗口（window_start 至 window_end）之内的。",
        "Reached tasks completed between their window_start and window_end.",
    ),
    "unsuccessful": (
        "应回访任务中三次（或计划规定次数）未接通而判为不成功的。",
        "Due tasks marked unsuccessful after the plan's number of failed attempts.",
    ),
    "refused": (
        "应回访任务中患者拒绝回访的。",
        "Due tasks the patient refused.",
    ),
    "wrong_number": (
        "应回访任务中因号码错误而结束的。",
        "Due tasks closed because the phone number was wrong.",
    ),
    "open": (
        "应回访任务中截至报表生成时仍待回访的。",
        "Due tasks still open when the report was made.",
    ),
    "coverage": ("覆盖率 = 已拨打 ÷ 应回访。", "Coverage = attempted / due."),
    "follow_up_rate": ("回访率 = 回访成功 ÷ 应回访。", "Follow-up rate = reached / due."),
    "on_time_rate": (
        "按时率 = 按时完成 ÷ 回访成功。",
        "On-time rate = reached inside the window / reached.",
    ),
    "avg_attempts_per_reached": (
        "回访成功任务的拨打次数总和 ÷ 回访成功任务数。",
        "All attempts on reached tasks / reached tasks.",
    ),
    "satisfaction": (
        "统计期间内拨打时记录的答复，只计1–5分量表题（以插件的题目定义为准），按维度汇总：样本数、平均分、4–5分占比。",
        "Answers recorded on calls made in the period to"
        " 1–5 scale questions (as the plugins define them), "
        "by dimension: n, mean, share scoring 4 or 5 (top-2-box).",
    ),
    "satisfaction_n": (
        "统计期间内拨打时记录的总体满意度题（1–5分）答复数，即总体满意率的分母。",
        "Answers to overall_satisfaction (1–5) recorded on calls made in the period:"
        " the base of the overall satisfaction rate.",
    ),
    "overall_satisfaction_rate": (
        "总体满意率 = 总体满意度题4–5分人数 ÷ 该题答复数。",
        "Overall satisfaction rate = overall_satisfaction answers of 4 or 5 / its answers.",
    ),
    "nps_n": (
        "统计期间内拨打时记录的推荐意愿题（0–10分）答复数，即净推荐值的分母。",
        "Answers to recommend (0–10) recorded on calls made in the period: the base of the NPS.",
    ),
    "nps": (
        "净推荐值 = 推荐意愿9–10分占比 − 0–6分占比（百分点，−100 至 100）。",
        "NPS = % of recommend answers 9–10 minus % 0–6 (points, −100 to 100).",
    ),
    "small_sample": (
        "分母少于30的比率标记为样本不足，仅供参考。",
        "A rate whose base is under 30 is marked small_sample: read it with care.",
    ),
    "empty": (
        "分母为0时比率为空（JSON 中为 null，表格中为“—”），不计为0。",
        "A rate whose base is 0 is empty (null in JSON, — in tables), never 0.",
    ),
    "complaints": (
        "统计期间内新建的投诉；3天内答复 = 答复时间不晚于期限（"
        "建立后3天）；已超期 = 截至报表生成时未结案、未答复且已过期限；"
        "一通电话一条投诉，按类别统计时计入它涉及的每个类别。",
        "Complaints opened in the period; answered within"
        " 3 days = responded no later than their deadline "
        "(3 days after opening); overdue = not closed, not"
        " answered and past the deadline when the report was made;"
        " one complaint per call, counted under each of its categories.",
    ),
    "escalations": (
        "统计期间内转给医生的红旗问题；已超期 = 截至报表生成时未处理完且已过处理时限；"
        "处理时长中位数按已处理者计（小时）。",
        "Escalations opened in the period; overdue = not resolved and past their deadline when the report"
        " was made; median hours from opening to resolution over the resolved ones.",
    ),
    "staff": (
        "统计期间内“表扬”“批评”两题的自由文本答复，去除首尾空格后按相同文字计数。",
        "Free-text answers to staff_praise and staff_criticism"
        " on calls made in the period, counted per "
        "distinct trimmed text.",
    ),
    "sales": (
        "咨询未到院、面诊未成交的客户（如植发咨询、面诊未手术，按就诊记录计），"
        "本期有应回访任务者；转化率 = 已预约 ÷ 已跟进。",
        "Leads (episodes) who consulted but never came, or came but did not buy (hair "
        "consultation, visit without treatment), with a task due in the period; "
        "conversion rate = booked / followed up (attempted).",
    ),
    "coordinators": (
        "统计期间内每位回访员的拨打次数与接通次数；通话时段 ="
        " 每人每天第一次到最后一次拨打的时长，不足1小时按1小时计，"
        "逐日相加；每小时拨打 = 拨打次数 ÷ 通话时段。",
        "Attempts and reached calls per coordinator in the"
        " period; calling hours = for each day with attempts, the "
        "span from the first to the last attempt, at least 1"
        " hour, summed over days; calls per hour = attempts / "
        "calling hours.",
    ),
    "qa_reviewed": (
        "统计期间内每位回访员被主管抽查评分的通话数（按通话时间计，followup qa score）。",
        "Calls made in the period that a supervisor scored (followup qa score), per coordinator.",
    ),
    "qa_avg_score": (
        "这些通话评分（0–100）的平均值；无评分时为空。",
        "The mean of those scores (0–100); empty when none was scored.",
    ),
    "interruptions": (
        "统计期间内拨打时记录的治疗中断原因（interruption_reason：费用、时间、害怕、效果、其他），按门店和专科计数。",
        "Reasons for interrupted treatment (interruption_reason: cost, time, fear, result, other) recorded on calls "
        "made in the period, counted by site and specialty.",
    ),
    "reviews_booked": (
        "统计期间内以“已预约”结束的回访（复查、拆线、邀约、改约等邀请回院的节点；咨询转化另计），按完成时间计。",
        "Follow-ups that ended booked in the period (reviews, suture removal, invitations, rebooking: milestones "
        "that invite the patient back; sales leads are counted under lead conversion), by when the call was made.",
    ),
    "referrals_accepted": (
        "统计期间内患者在回访中接受转介绍邀请的次数（referral_accepted = 是），每通电话最多计1次。",
        "Referral invitations accepted on calls in the period (referral_accepted = yes), at most one per call.",
    ),
    "referrals_referred": (
        "统计期间内导入的、填写了推荐人（referred_by）的新患者数，计入其门店，并按推荐人列出。",
        "New patients imported in the period naming who referred them (referred_by), at their site, and per "
        "referring patient.",
    ),
    "sweep_swept": (
        "统计期间内月末补打（每月25–27日，可配置）再打一次的回访数：当月因无人接听、关机、停机、无法接通而不成功的。",
        "Follow-ups the month-end sweep (days 25–27, configurable) gave one more attempt in the period: those that "
        "ended unsuccessful that month with no answer, powered off, out of service or cannot connect.",
    ),
    "sweep_recovered": (
        "其中补打接通、原回访因此完成（已完成或已预约）的数量。",
        "Of those, the follow-ups the sweep call reached, completing them (completed or booked).",
    ),
    "greetings_due": (
        "统计期间内应发出的生日、结婚纪念日问候（短信或电话）。",
        "Birthday and wedding-anniversary greetings (SMS or phone) due in the period.",
    ),
    "greetings_done": (
        "其中已发送或已打电话问候的。",
        "Of those, the greetings sent or made.",
    ),
    "unreachable": (
        "应回访任务中不成功的，或仍待回访且最后一次结果为无人接听、关机、停机、无法接通的：月末（25–27日）再打一遍。",
        "Due tasks that are unsuccessful, or still open with"
        " the last outcome no answer, powered off, out of "
        "service or cannot connect: call them again in the month-end sweep (days 25–27).",
    ),
    "suggestions": (
        "统计期间内“建议与需求”题的答复。",
        "Answers to the suggestions question on calls made in the period.",
    ),
    "open_complaints": (
        "截至报表生成时未结案、且在期末前建立的投诉。",
        "Complaints not closed when the report was made, opened before the period ended.",
    ),
    "open_escalations": (
        "截至报表生成时医生尚未处理完、且在期末前上报的；已超过处理时限的排在前面并标红。",
        "Escalations not resolved when the report was made, opened before the period ended; those past"
        " their deadline come first, highlighted.",
    ),
    "delta": (
        "变化 = 本期 − 上期（比率为小数差，NPS 为百分点差）。",
        "Change = this period − the previous one (rates as fractions, NPS in points).",
    ),
    "privacy": (
        "电话号码一律打码（138****1234）。",
        "Phone numbers are always masked (138****1234).",
    ),
}


def label(key: str, locale: str, table: dict[str, tuple[str, str]] | None = None) -> str:
    entry = (table or LABELS).get(key)
    if entry is None:
        return key
    return entry[0] if locale == "zh_CN" else entry[1]


def definitions(locale: str) -> dict[str, str]:
    return {key: (zh if locale == "zh_CN" else en) for key, (zh, en) in DEFINITIONS.items()}


def localized(value: Any, locale: str) -> str:
    """A LocalizedText-like object or a plain string, in the locale."""
    if value is None:
        return ""
    getter = getattr(value, "get", None)
    if callable(getter) and not isinstance(value, dict):
        return str(getter(locale))
    return str(value)
